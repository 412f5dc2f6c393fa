"""Random message sequences against the membership manager, checking invariants after every step.

Fixed seeds (reproducible): thousands of sequences of reports (IGMPv1/2/3, MLDv1/2, all
record types), leaves, queries from lower/higher/own/unspecified addresses, PIM hellos,
port and switch removal, parser drops, with random time steps (including the exact RFC
intervals), under several configurations (small limits, immediate leave, querier off,
older querier versions, other robustness/LMQ settings). A hypothesis variant of the same
generator shrinks failures to a short sequence.

Invariants:
* no exceptions;
* INCLUDE records have no group timer, no Q(G) pending, only running source timers;
  EXCLUDE records have a running group timer, sources either running or zero;
* no state for deleted groups: a record exists iff its interest is not None;
* the interest reported (interest(), groups(), ports_for()) equals the one recomputed from
  the raw state, and equals the one rebuilt from the InterestChanged stream;
* every InterestChanged has before != after and `before` equal to the last `after` for
  that (dpid, port, group);
* limits are never exceeded;
* every pending deadline is in the future and has a heap entry no later than it;
  next_deadline() is exactly the earliest pending deadline;
* queries emitted by tick() come only from ports where we are the querier;
* router-port change events agree with router_ports().
"""
from __future__ import annotations

import ipaddress
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcast_sdn.config import MembershipConfig
from mcast_sdn.membership import EXCLUDE, INCLUDE, Interest
from mcast_sdn.membership_manager import MembershipManager
from mcast_sdn.messages import Drop, DropReason, GroupRecord, Leave, PimHello, Query, RecordType, Report
from mcast_sdn.querier import NEVER

ip = ipaddress.ip_address
DPIDS = (1, 2)
PORTS = (1, 2, 3)
GROUPS = {4: [ip(f"239.0.0.{i}") for i in (1, 2, 3)], 6: [ip(f"ff0e::{i}") for i in (1, 2, 3)]}
SOURCES = {4: [ip(f"192.0.2.{i}") for i in range(1, 6)], 6: [ip(f"2001:db8::{i}") for i in range(1, 6)]}
HOSTS = {4: ip("10.0.0.7"), 6: ip("fe80::7")}
QUERIERS = {
    4: [ip("10.0.0.1"), ip("10.255.255.255"), ip("0.0.0.0"), ip("10.255.255.254")],
    6: [ip("fe80::1"), ip("fe80::ffff:ffff:ffff:ffff"), ip("::"), ip("fe80::ffff:ffff:ffff:fffe")],
}
STEPS = [0.0, 0.0, 0.001, 0.25, 0.5, 1.0, 1.0, 2.0, 10.0, 31.25, 125.0, 255.0, 260.0]

CONFIGS = [
    {},
    {"max_groups_per_port": 2, "max_sources_per_group": 3},
    {"immediate_leave_ports": [[1, 1], [2, 2]], "static_router_ports": [[1, 3]]},
    {"querier_enabled": False},
    {"igmp_version": 2, "mld_version": 1},
    {"igmp_version": 1},
    {"robustness": 1, "last_member_query_count": 3, "last_member_query_interval": 0.5},
    {"robustness": 3, "query_interval": 20.0, "query_response_interval": 5.0, "max_sources_per_group": 1},
    {"querier_ipv4": "0.0.0.0", "router_port_timeout": 15.0, "pim_hello_holdtime": 7.0},
]


def subset(rng: random.Random, items: list, k: int | None = None) -> tuple:
    k = rng.randint(0, min(4, len(items))) if k is None else k
    return tuple(sorted(rng.sample(items, k)))


def random_message(rng: random.Random):
    fam = rng.choice((4, 6))
    kind = rng.choices(["report", "leave", "query", "pim", "drop"], weights=[60, 12, 16, 3, 2])[0]
    if kind == "report":
        native = 3 if fam == 4 else 2
        version = rng.choice([native, native, native] + list(range(1, native)))
        if version < native:
            recs = (GroupRecord(RecordType.MODE_IS_EXCLUDE, rng.choice(GROUPS[fam])),)
        else:
            recs = tuple(
                GroupRecord(rng.choice(list(RecordType)), rng.choice(GROUPS[fam]), subset(rng, SOURCES[fam]))
                for _ in range(rng.randint(1, 3))
            )
        return Report(fam, version, HOSTS[fam], recs)
    if kind == "leave":
        return Leave(fam, 2 if fam == 4 else 1, HOSTS[fam], rng.choice(GROUPS[fam]))
    if kind == "query":
        version = rng.choice((1, 2, 3) if fam == 4 else (1, 2))
        group = rng.choice([None, None] + GROUPS[fam])
        srcs = subset(rng, SOURCES[fam]) if group is not None and version >= (3 if fam == 4 else 2) else ()
        return Query(
            fam, version, rng.choice(QUERIERS[fam]), group, srcs,
            rng.choice([0.0, 1.0, 10.0]), rng.random() < 0.3,
            rng.choice([None, 0, 1, 2, 3]), rng.choice([None, 0.0, 30.0, 125.0]),
        )
    if kind == "pim":
        return PimHello(fam, QUERIERS[fam][0])
    return Drop(rng.choice(list(DropReason)))


class Harness:
    def __init__(self, cfg: MembershipConfig):
        self.cfg = cfg
        self.m = MembershipManager(cfg)
        self.now = 0.0
        self.last_after: dict[tuple, Interest | None] = {}
        self.router: dict[tuple, bool] = {}
        self.changes = 0

    # ---- effects ---------------------------------------------------------------------------
    def absorb(self, eff, *, from_tick: bool) -> None:
        for c in eff.changes:
            key = (c.dpid, c.port, c.group)
            assert c.before != c.after, c
            assert self.last_after.get(key) == c.before, (c, self.last_after.get(key))
            self.last_after[key] = c.after
            self.changes += 1
        for rc in eff.router_port_changes:
            key = (rc.dpid, rc.port)
            assert key not in self.cfg.static_router_ports
            assert self.router.get(key, False) != rc.is_router, rc
            self.router[key] = rc.is_router
        for q in eff.queries:
            assert q.family in (4, 6) and q.max_resp >= 0
            if q.sources:
                assert q.group is not None and list(q.sources) == sorted(set(q.sources))
            if from_tick:
                querier = self.m.querier(q.dpid, q.port, q.family)
                assert querier is not None and querier.is_querier, q
                assert self.cfg.querier_enabled
        for f in eff.forward_to_routers:
            assert (f.dpid, f.port) != (f.in_dpid, f.in_port)
            assert (f.dpid, f.port) in self.m.router_ports(f.message.family)

    # ---- steps -----------------------------------------------------------------------------
    def step(self, rng: random.Random) -> None:
        self.now += rng.choice(STEPS) if rng.random() < 0.85 else rng.uniform(0, 300)
        r = rng.random()
        dpid, port = rng.choice(DPIDS), rng.choice(PORTS)
        if r < 0.60:
            self.absorb(self.m.handle(self.now, dpid, port, random_message(rng)), from_tick=False)
        elif r < 0.88:
            self.absorb(self.m.tick(self.now), from_tick=True)
        elif r < 0.93:
            self.absorb(self.m.add_port(self.now, dpid, port), from_tick=False)
        elif r < 0.98:
            self.absorb(self.m.remove_port(self.now, dpid, port), from_tick=False)
        else:
            self.absorb(self.m.remove_switch(self.now, dpid), from_tick=False)
        self.check()

    # ---- invariants --------------------------------------------------------------------------
    def check(self) -> None:
        m, now, cfg = self.m, self.now, self.cfg
        assert m.now in (now, None)
        known = set(m.ports())
        owner_deadlines = []
        by_group: dict = {}
        for dpid in DPIDS:
            for port in PORTS:
                key = (dpid, port)
                reported = m.interest(dpid, port)
                if key not in known:
                    assert reported == {} and m.port_state(dpid, port) is None
                    for fam in (4, 6):
                        for g in GROUPS[fam]:
                            assert self.last_after.get((dpid, port, g)) is None
                    continue
                n_groups = 0
                for fam in (4, 6):
                    q = m.querier(dpid, port, fam)
                    assert q.alive
                    d = q.next_deadline()
                    if d is not None:
                        assert d > now, (d, now)
                        assert q.scheduled is not None and q.scheduled <= d
                        owner_deadlines.append(d)
                    if not cfg.querier_enabled:
                        assert not q.is_querier and q.next_general is None
                    for g in GROUPS[fam]:
                        gs = m.group_record(dpid, port, g)
                        recomputed = self.recompute(gs)
                        assert reported.get(g) == recomputed
                        assert self.last_after.get((dpid, port, g)) == recomputed
                        if gs is None:
                            continue
                        n_groups += 1
                        assert gs.alive and gs.interest == recomputed is not None
                        by_group.setdefault(g, {})[key] = recomputed
                        self.check_group(gs, now)
                        d = gs.next_deadline()
                        if d is not None:
                            assert d > now and gs.scheduled is not None and gs.scheduled <= d
                            owner_deadlines.append(d)
                assert n_groups <= cfg.max_groups_per_port
                assert len(reported) == n_groups
                is_router = key in m.router_ports()
                if key in cfg.static_router_ports:
                    assert is_router
                else:
                    assert self.router.get(key, False) == is_router
        assert m.groups() == by_group
        for fam in (4, 6):
            for g in GROUPS[fam]:
                for s in [None] + SOURCES[fam][:2]:
                    want = {k for k, i in by_group.get(g, {}).items() if i.wants(s)}
                    assert m.ports_for(g, s) == want
        expected_next = min(owner_deadlines) if owner_deadlines else None
        assert m.next_deadline() == expected_next
        assert all(isinstance(v, int) and v > 0 for v in m.counters().values())

    @staticmethod
    def recompute(gs) -> Interest | None:
        """RFC 3376 §6.3 from the raw record, by timer values relative to now."""
        if gs is None:
            return None
        if gs.mode == INCLUDE:
            return Interest(INCLUDE, frozenset(gs.sources)) if gs.sources else None
        return Interest(EXCLUDE, frozenset(s for s, r in gs.sources.items() if r.expires == NEVER))

    def check_group(self, gs, now: float) -> None:
        cfg = self.cfg
        assert len(gs.sources) <= cfg.max_sources_per_group
        assert all(s.version == gs.family for s in gs.sources)
        assert gs.older_v1_until == NEVER or gs.older_v1_until > now
        assert gs.older_v2_until == NEVER or gs.older_v2_until > now
        if gs.family == 6:
            assert gs.older_v2_until == NEVER
        assert gs.gsq_retransmit >= 0
        if gs.mode == INCLUDE:
            # No group timer semantics in INCLUDE mode (RFC 3376 §6.2.1).
            assert gs.group_timer is None and gs.gsq_retransmit == 0 and gs.gsq_next is None
            assert gs.sources, "an empty INCLUDE record must have been deleted"
            assert all(r.expires != NEVER and r.expires > now for r in gs.sources.values())
        else:
            assert gs.mode == EXCLUDE and gs.group_timer is not None and gs.group_timer > now
            assert all(r.expires == NEVER or r.expires > now for r in gs.sources.values())
            if gs.compat_version(now) < (3 if gs.family == 4 else 2):
                # Older hosts present: BLOCK and exclude lists are ignored, so the only
                # way to exclude a source is an X source timing out.
                pass
        if gs.gsq_retransmit > 0:
            assert gs.gsq_next is not None and gs.gsq_next > now
        for r in gs.sources.values():
            assert r.retransmit >= 0
            if r.retransmit > 0:
                assert gs.gssq_next is not None and r.expires != NEVER
        key = (gs.dpid, gs.port)
        if key in cfg.immediate_leave_ports:
            # Immediate leave never queries, so nothing is ever pending.
            assert gs.gsq_retransmit == 0 and all(r.retransmit == 0 for r in gs.sources.values())


def run_sequence(rng: random.Random, steps: int, cfg: MembershipConfig) -> Harness:
    h = Harness(cfg)
    h.check()
    for _ in range(steps):
        h.step(rng)
    json.dumps(h.m.snapshot())
    return h


@pytest.mark.parametrize("cfg_index", range(len(CONFIGS)))
@pytest.mark.parametrize("seed_block", range(4))
def test_random_sequences(cfg_index, seed_block):
    """9 configs x 4 blocks x 60 sequences = 2160 sequences of 40 steps."""
    cfg = MembershipConfig.from_dict(CONFIGS[cfg_index])
    total_changes = 0
    for k in range(60):
        seed = (cfg_index * 1_000_003) ^ (seed_block * 60 + k)
        h = run_sequence(random.Random(seed), 40, cfg)
        total_changes += h.changes
    assert total_changes > 100  # the sequences do exercise state changes


@pytest.mark.parametrize("cfg_index", range(len(CONFIGS)))
def test_long_random_sequences(cfg_index):
    """Fewer, longer runs: state accumulates across many timer generations."""
    cfg = MembershipConfig.from_dict(CONFIGS[cfg_index])
    for seed in range(3):
        run_sequence(random.Random(10_000 + 97 * cfg_index + seed), 800, cfg)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cfg_index=st.integers(0, len(CONFIGS) - 1),
       steps=st.integers(1, 60))
def test_hypothesis_sequences(rng, cfg_index, steps):
    """Same generator driven by hypothesis, so a failure shrinks to a minimal sequence."""
    run_sequence(rng, steps, MembershipConfig.from_dict(CONFIGS[cfg_index]))
