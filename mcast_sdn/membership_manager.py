"""`MembershipManager`: the facade over membership state and queriers that the Ryu adapter uses.

Every entry point takes ``now`` (float seconds, non-decreasing; a smaller value is treated
as the last one seen) and returns an `Effects` record: interest changes to compile into
flows, queries to send, reports to forward to router ports, router-port changes. Nothing
here reads a clock, opens a socket or starts a thread.

Time: every deadline (group/source timers, host-present timers, query retransmissions,
General Query schedule, other-querier and router-port timers) belongs to an *owner*
(a `GroupState` or a `PortQuerier`). The manager keeps one heap of (deadline, owner)
entries. An owner is pushed again only when its earliest deadline moves *earlier*; when it
moves later the old entry is left and simply re-evaluated when it pops. So refreshing a
timer costs O(1), `tick` costs O(due * log n) and does no work at all when nothing is due,
and `next_deadline` is exact. Due owners are processed in deadline order, each at its own
deadline, so a late `tick` produces the same transitions, in the same order, as timely ones.

Every entry point first advances time to ``now`` and, after handling its input, runs
whatever became due "now" (for example the first startup query of a new port, the
immediate transmission of a group-specific query, or an immediate-leave expiry), so the
state is always as of ``now`` and the returned effects are complete.
"""
from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .config import MembershipConfig, PortKey
from .membership import (
    NATIVE_VERSION,
    ActionContext,
    GroupState,
    Interest,
    InterestChanged,
    translate_for_compat,
)
from .messages import Drop, DropReason, IPAddress, Leave, Message, PimHello, Query, RecordType, Report
from .querier import QUERY_ELECTED, QUERY_OWN, PortQuerier, RouterPortChanged, SendQuery

FAMILIES = (4, 6)


@dataclass(frozen=True, slots=True)
class ForwardToRouter:
    """Send `message` (a report or leave received on in_dpid/in_port) out of router port (dpid, port).

    RFC 4541 §2.1.1(1): membership reports go to multicast-router ports only.
    """

    dpid: int
    port: int
    message: Message
    in_dpid: int
    in_port: int


@dataclass(slots=True)
class Effects:
    """What an entry point asks the network to do. Mergeable with `extend`."""

    changes: list[InterestChanged] = field(default_factory=list)
    queries: list[SendQuery] = field(default_factory=list)
    forward_to_routers: list[ForwardToRouter] = field(default_factory=list)
    router_port_changes: list[RouterPortChanged] = field(default_factory=list)

    def extend(self, other: "Effects") -> "Effects":
        self.changes.extend(other.changes)
        self.queries.extend(other.queries)
        self.forward_to_routers.extend(other.forward_to_routers)
        self.router_port_changes.extend(other.router_port_changes)
        return self

    def __bool__(self) -> bool:
        return bool(self.changes or self.queries or self.forward_to_routers or self.router_port_changes)


@dataclass(slots=True, eq=False)
class PortState:
    """Everything known about one (dpid, port)."""

    dpid: int
    port: int
    immediate_leave: bool
    static_router: bool
    groups: dict[IPAddress, GroupState] = field(default_factory=dict)
    queriers: dict[int, PortQuerier] = field(default_factory=dict)
    router_flag: bool = False  # last announced router-port status (static or learned)
    router_families: frozenset = frozenset()  # families for which it is a learned router port


def _proto(family: int, version: int) -> str:
    return f"igmpv{version}" if family == 4 else f"mldv{version}"


class MembershipManager:
    """Membership state and queriers for every (dpid, port, family). See the module docstring."""

    def __init__(self, config: MembershipConfig | None = None) -> None:
        self._config = config or MembershipConfig()
        self._now = float("-inf")
        self._ports: dict[PortKey, PortState] = {}
        self._switch_ports: dict[int, set[int]] = {}
        self._by_group: dict[IPAddress, dict[PortKey, Interest]] = {}
        self._router_ports: set[PortKey] = set()  # added ports that are router ports (any reason)
        self._family_router_ports: dict[int, set[PortKey]] = {f: set() for f in FAMILIES}
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._owners = 0  # live owners (groups + queriers), to decide heap compaction
        self._counters: Counter[str] = Counter()
        self.wakeups = 0  # owners processed by the timer loop (for tests of "tick is O(due)")

    @property
    def config(self) -> MembershipConfig:
        return self._config

    # Fields that are read where they are used (so a change takes effect at once);
    # everything else (timers, versions, querier identity, router ports) is start-up only.
    RUNTIME_FIELDS = ("immediate_leave_ports", "max_groups_per_port", "max_sources_per_group")

    def set_config(self, config: MembershipConfig) -> None:
        """Replace the config at run time (REST). Only `RUNTIME_FIELDS` may differ.

        Immediate-leave applies to known ports at once; the limits apply to the next
        report (existing state is never trimmed). Raises ValueError, changing nothing,
        when another field differs. No effects: none of these change interest by itself.
        """
        old = self._config.to_dict()
        new = config.to_dict()
        fixed = sorted(k for k in new if k not in self.RUNTIME_FIELDS and new[k] != old[k])
        if fixed:
            raise ValueError(f"start-up only membership setting(s) cannot change at run time: {', '.join(fixed)}")
        self._config = config
        for key, ps in self._ports.items():
            ps.immediate_leave = key in config.immediate_leave_ports

    @property
    def now(self) -> float | None:
        """The latest time seen by any entry point (None before the first call)."""
        return None if self._now == float("-inf") else self._now

    # ==== entry points ==========================================================================
    def add_port(self, now: float, dpid: int, port: int) -> Effects:
        """A host-facing port came up: start its queriers (startup General Queries).

        Idempotent: a port already known (added before, or created by a message) is left
        alone. Inter-switch ports should not be added (they would be queried).
        """
        t, eff = self._begin(now)
        self._ensure_port(t, dpid, port, eff)
        self._advance(t, eff)
        return eff

    def remove_port(self, now: float, dpid: int, port: int) -> Effects:
        """The port went down: drop its state; every interest it had changes to None."""
        t, eff = self._begin(now)
        self._drop_port(dpid, port, eff)
        return eff

    def remove_switch(self, now: float, dpid: int) -> Effects:
        """The switch left: `remove_port` for each of its ports."""
        t, eff = self._begin(now)
        for port in sorted(self._switch_ports.get(dpid, ())):
            self._drop_port(dpid, port, eff)
        return eff

    def handle(self, now: float, dpid: int, port: int, message: Message | Drop) -> Effects:
        """A parsed IGMP/MLD/PIM message arrived on (dpid, port). Unknown ports are created.

        A `Drop` from the parser is accepted too and only counted (``drop.<reason>``).
        """
        t, eff = self._begin(now)
        if isinstance(message, Drop):
            self.count_drop(message.reason)
            return eff
        ps = self._ensure_port(t, dpid, port, eff)
        if isinstance(message, Report):
            self._on_report(t, ps, message, eff)
        elif isinstance(message, Leave):
            self._on_leave(t, ps, message, eff)
        elif isinstance(message, Query):
            self._on_query(t, ps, message, eff)
        elif isinstance(message, PimHello):
            self._on_pim_hello(t, ps, message, eff)
        else:
            raise TypeError(f"not a membership message: {type(message).__name__}")
        self._advance(t, eff)
        return eff

    def tick(self, now: float) -> Effects:
        """Expire timers and send queries due at or before `now`. O(due), nothing when idle."""
        t, eff = self._begin(now)
        return eff

    def next_deadline(self) -> float | None:
        """When `tick` next has work to do (exact), or None if nothing is scheduled."""
        heap = self._heap
        while heap:
            d, _, owner = heap[0]
            if not owner.alive or owner.scheduled != d:
                heapq.heappop(heap)
                continue
            true = owner.next_deadline()
            if true is None or true > d:
                # The owner's timers moved later since it was pushed: re-file it.
                heapq.heappop(heap)
                owner.scheduled = None
                if true is not None:
                    owner.scheduled = true
                    heapq.heappush(heap, (true, next(self._seq), owner))
                continue
            return d
        return None

    def count_drop(self, reason: DropReason | str) -> None:
        """Count a packet the parser (or the adapter) dropped."""
        self._counters[f"drop.{DropReason(reason).value}"] += 1

    # ==== queries ===============================================================================
    def interest(self, dpid: int, port: int) -> dict[IPAddress, Interest]:
        ps = self._ports.get((dpid, port))
        if ps is None:
            return {}
        return {g: gs.interest for g, gs in ps.groups.items() if gs.interest is not None}

    def groups(self) -> dict[IPAddress, dict[PortKey, Interest]]:
        """group -> {(dpid, port): Interest} for every group some port is interested in."""
        return {g: dict(ports) for g, ports in self._by_group.items()}

    def group_members(self, group: IPAddress) -> dict[PortKey, Interest]:
        """{(dpid, port): Interest} of one group (a copy; O(members of that group))."""
        return dict(self._by_group.get(group, {}))

    def ports_for(self, group: IPAddress, source: IPAddress | None = None) -> set[PortKey]:
        """Ports that want traffic from `source` to `group` (source None: any source at all)."""
        return {k for k, i in self._by_group.get(group, {}).items() if i.wants(source)}

    def router_ports(self, family: int | None = None) -> set[PortKey]:
        """Multicast-router ports: static ones plus those learned (for `family`, or any)."""
        learned = self._router_ports if family is None else self._family_router_ports[family]
        return set(learned) | set(self._config.static_router_ports)

    def ports(self) -> list[PortKey]:
        return sorted(self._ports)

    def counters(self) -> dict[str, int]:
        """rx.<proto>.<type>, rx.record.<type>, tx.query.<kind>, drop.<reason>, ignored.<why>, ..."""
        return dict(sorted(self._counters.items()))

    def group_record(self, dpid: int, port: int, group: IPAddress) -> GroupState | None:
        """The raw state object (read-only by contract; for tests and debugging)."""
        ps = self._ports.get((dpid, port))
        return None if ps is None else ps.groups.get(group)

    def querier(self, dpid: int, port: int, family: int) -> PortQuerier | None:
        """The raw querier object (read-only by contract; for tests and debugging)."""
        ps = self._ports.get((dpid, port))
        return None if ps is None else ps.queriers.get(family)

    def port_state(self, dpid: int, port: int) -> dict[str, Any] | None:
        """JSON-serialisable details of one port for REST (times in seconds remaining)."""
        ps = self._ports.get((dpid, port))
        if ps is None:
            return None
        now = self._now
        return {
            "dpid": dpid,
            "port": port,
            "immediate_leave": ps.immediate_leave,
            "router_port": ps.router_flag,
            "static_router_port": ps.static_router,
            "queriers": {f"ipv{f}": q.describe(now) for f, q in sorted(ps.queriers.items())},
            "groups": {str(g): gs.describe(now) for g, gs in sorted(ps.groups.items(), key=_group_sort_key)},
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON-serialisable dicts."""
        return {
            "now": self.now,
            "config": self._config.to_dict(),
            "ports": [self.port_state(d, p) for d, p in self.ports()],
            "groups": {
                str(g): [{"dpid": k[0], "port": k[1], **i.to_dict()} for k, i in sorted(ports.items())]
                for g, ports in sorted(self._by_group.items(), key=_group_sort_key)
            },
            "router_ports": [list(k) for k in sorted(self.router_ports())],
            "counters": self.counters(),
        }

    # ==== internals: ports ======================================================================
    def _begin(self, now: float) -> tuple[float, Effects]:
        t = float(now)
        if t < self._now:
            t = self._now  # clock went backwards: never move state back in time
        self._now = t
        eff = Effects()
        self._advance(t, eff)
        return t, eff

    def _ensure_port(self, t: float, dpid: int, port: int, eff: Effects) -> PortState:
        key = (dpid, port)
        ps = self._ports.get(key)
        if ps is not None:
            return ps
        cfg = self._config
        ps = PortState(
            dpid, port,
            immediate_leave=key in cfg.immediate_leave_ports,
            static_router=key in cfg.static_router_ports,
        )
        ps.router_flag = ps.static_router
        if ps.static_router:
            self._router_ports.add(key)
        self._ports[key] = ps
        self._switch_ports.setdefault(dpid, set()).add(port)
        for fam in FAMILIES:
            q = PortQuerier.create(dpid, port, fam, cfg)
            q.start(t)
            ps.queriers[fam] = q
            self._owners += 1
            self._schedule(q)
        return ps

    def _drop_port(self, dpid: int, port: int, eff: Effects) -> None:
        key = (dpid, port)
        ps = self._ports.pop(key, None)
        if ps is None:
            return
        ports = self._switch_ports.get(dpid)
        if ports is not None:
            ports.discard(port)
            if not ports:
                del self._switch_ports[dpid]
        for g in sorted(ps.groups, key=_addr_key):
            gs = ps.groups[g]
            if gs.interest is not None:
                self._emit(gs, None, eff)
            gs.alive = False
            self._owners -= 1
        ps.groups.clear()
        for q in ps.queriers.values():
            q.alive = False
            self._owners -= 1
        for fam in FAMILIES:
            self._family_router_ports[fam].discard(key)
        self._router_ports.discard(key)
        if ps.router_flag and not ps.static_router:
            eff.router_port_changes.append(RouterPortChanged(dpid, port, False))

    def _update_router_flag(self, ps: PortState, t: float, eff: Effects) -> None:
        key = (ps.dpid, ps.port)
        fams = frozenset(f for f, q in ps.queriers.items() if q.is_router(t))
        if fams != ps.router_families:
            for f in FAMILIES:
                if f in fams:
                    self._family_router_ports[f].add(key)
                else:
                    self._family_router_ports[f].discard(key)
            ps.router_families = fams
        flag = ps.static_router or bool(fams)
        if flag != ps.router_flag:
            ps.router_flag = flag
            if flag:
                self._router_ports.add(key)
            else:
                self._router_ports.discard(key)
            eff.router_port_changes.append(RouterPortChanged(ps.dpid, ps.port, flag))

    # ==== internals: messages ===================================================================
    def _context(self, t: float, ps: PortState, q: PortQuerier) -> ActionContext:
        return ActionContext(t, q.timers, q.sends_specific_queries, ps.immediate_leave)

    def _on_report(self, t: float, ps: PortState, msg: Report, eff: Effects) -> None:
        fam = msg.family
        self._counters[f"rx.{_proto(fam, msg.version)}.report"] += 1
        q = ps.queriers[fam]
        ctx = self._context(t, ps, q)
        older = msg.version < NATIVE_VERSION[fam]
        max_groups = self._config.max_groups_per_port
        for rec in msg.records:
            if rec.group.version != fam:
                self._counters["ignored.family_mismatch"] += 1
                continue
            self._counters[f"rx.record.{rec.rtype.name.lower()}"] += 1
            gs = ps.groups.get(rec.group)
            new = gs is None
            if new:
                gs = GroupState(ps.dpid, ps.port, rec.group, fam)
            if older:
                gs.note_older_host(t, msg.version, q.timers.older_host_present_interval)
            rtype, sources, note = translate_for_compat(fam, gs.compat_version(t), rec.rtype, rec.sources)
            if note:
                self._counters[f"ignored.{note}"] += 1
            if rtype is None:
                if not new:
                    self._schedule(gs)
                continue
            sources = self._limit_sources(gs, rtype, sources)
            if new:
                if not _creates_state(rtype, sources):
                    continue
                if len(ps.groups) >= max_groups:
                    self.count_drop(DropReason.LIMIT_GROUPS)
                    continue
                ps.groups[rec.group] = gs
                self._owners += 1
            gs.apply(rtype, sources, ctx)
            self._settle(ps, gs, eff)
        self._forward(ps, msg, eff)

    def _limit_sources(self, gs: GroupState, rtype: RecordType, sources: tuple) -> tuple:
        """Keep a group within max_sources_per_group; count LIMIT_SOURCES when trimming.

        The record's list is cut to the limit (sources are sorted, so the cut is
        deterministic). For records that can add source records (all but IS_EX/TO_EX, whose
        result is a subset of the record's list, and BLOCK in INCLUDE mode, which adds
        nothing) the sources that would be new are cut to the room left. Existing records
        are never dropped, so state stays consistent. Trimming an exclude list forwards
        more than asked (safe); trimming an include list forwards less (the limit's intent).
        """
        limit = self._config.max_sources_per_group
        sources = tuple(dict.fromkeys(sources))
        trimmed = False
        if len(sources) > limit:
            sources = sources[:limit]
            trimmed = True
        grows = rtype not in (RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE) and not (
            gs.mode == "include" and rtype == RecordType.BLOCK_OLD_SOURCES
        )
        if grows:
            have = gs.sources
            new = [s for s in sources if s not in have]
            room = max(0, limit - len(have))
            if len(new) > room:
                keep = set(new[:room])
                sources = tuple(s for s in sources if s in have or s in keep)
                trimmed = True
        if trimmed:
            self.count_drop(DropReason.LIMIT_SOURCES)
        return sources

    def _on_leave(self, t: float, ps: PortState, msg: Leave, eff: Effects) -> None:
        fam = msg.family
        self._counters[f"rx.{_proto(fam, msg.version)}.{'leave' if fam == 4 else 'done'}"] += 1
        self._forward(ps, msg, eff)
        gs = ps.groups.get(msg.group)
        if gs is None:
            self._counters["ignored.leave_unknown_group"] += 1
            return
        q = ps.queriers[fam]
        if fam == 4 and (gs.compat_version(t) == 1 or q.version == 1):
            # RFC 3376 §7.3.2 (IGMPv1 host present) and §7.3.1 (IGMPv1 router): ignore leaves.
            self._counters["ignored.leave_igmpv1_mode"] += 1
            return
        # RFC 3376 §7.3.2, RFC 3810 §8.3.2: IGMPv2 Leave / MLDv1 Done == TO_IN({}).
        gs.apply(RecordType.CHANGE_TO_INCLUDE, (), self._context(t, ps, q))
        self._settle(ps, gs, eff)

    def _on_query(self, t: float, ps: PortState, msg: Query, eff: Effects) -> None:
        fam = msg.family
        self._counters[f"rx.{_proto(fam, msg.version)}.query"] += 1
        q = ps.queriers[fam]
        was_querier = q.is_querier
        verdict = q.on_query(t, msg)
        if verdict == QUERY_OWN:
            self._counters["ignored.own_query"] += 1
            return
        if msg.version < q.version:
            self._counters["warn.older_version_query"] += 1
        if verdict == QUERY_ELECTED:
            if was_querier:
                self._counters["querier.lost_election"] += 1
            if msg.group is not None and not msg.s_flag:
                # RFC 3376 §6.6.1: a specific query from the querier with S clear lowers
                # our timers to LMQT; the querier's LMQI is its Max Resp (§8.8).
                gs = ps.groups.get(msg.group)
                if gs is not None:
                    lmqi = msg.max_resp if msg.max_resp > 0 else q.timers.last_member_query_interval
                    gs.lower_on_query(t, msg.sources, lmqi * q.timers.last_member_query_count)
                    self._settle(ps, gs, eff)
        self._update_router_flag(ps, t, eff)
        self._schedule(q)

    def _on_pim_hello(self, t: float, ps: PortState, msg: PimHello, eff: Effects) -> None:
        self._counters["rx.pim_hello"] += 1
        q = ps.queriers[msg.family]
        q.on_pim_hello(t)
        self._update_router_flag(ps, t, eff)
        self._schedule(q)

    def _forward(self, ps: PortState, msg: Message, eff: Effects) -> None:
        """RFC 4541 §2.1.1(1): reports and leaves go to router ports only (not back in)."""
        here = (ps.dpid, ps.port)
        for key in sorted(self.router_ports(msg.family)):
            if key != here:
                eff.forward_to_routers.append(ForwardToRouter(key[0], key[1], msg, ps.dpid, ps.port))

    # ==== internals: state changes and time =====================================================
    def _emit(self, gs: GroupState, new: Interest | None, eff: Effects) -> None:
        key = (gs.dpid, gs.port)
        eff.changes.append(InterestChanged(gs.dpid, gs.port, gs.group, gs.interest, new))
        gs.interest = new
        if new is None:
            ports = self._by_group.get(gs.group)
            if ports is not None:
                ports.pop(key, None)
                if not ports:
                    del self._by_group[gs.group]
        else:
            self._by_group.setdefault(gs.group, {})[key] = new

    def _settle(self, ps: PortState, gs: GroupState, eff: Effects) -> None:
        """After any change to a group: report interest changes, delete if empty, reschedule."""
        new = gs.forwarding_interest()
        if new != gs.interest:
            self._emit(gs, new, eff)
        if gs.is_empty():
            if ps.groups.get(gs.group) is gs:
                del ps.groups[gs.group]
                self._owners -= 1
            gs.alive = False
        else:
            self._schedule(gs)

    def _schedule(self, owner: Any) -> None:
        d = owner.next_deadline()
        if d is None:
            return
        if owner.scheduled is None or d < owner.scheduled:
            owner.scheduled = d
            heapq.heappush(self._heap, (d, next(self._seq), owner))
            if len(self._heap) > 2 * self._owners + 1024:
                self._compact()

    def _compact(self) -> None:
        """Drop stale heap entries (left behind by re-filed or deleted owners)."""
        heap = []
        for ps in self._ports.values():
            for owner in itertools.chain(ps.queriers.values(), ps.groups.values()):
                if owner.alive and owner.scheduled is not None:
                    heap.append((owner.scheduled, next(self._seq), owner))
        heapq.heapify(heap)
        self._heap = heap

    def _advance(self, now: float, eff: Effects) -> None:
        """Process, in deadline order, every owner due at or before `now`."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, _, owner = heapq.heappop(heap)
            if not owner.alive or owner.scheduled != d:
                continue
            owner.scheduled = None
            self.wakeups += 1
            ps = self._ports[(owner.dpid, owner.port)]
            n = len(eff.queries)
            if isinstance(owner, GroupState):
                owner.process(d, ps.queriers[owner.family], eff.queries)
                self._settle(ps, owner, eff)
            else:
                owner.process(d, now, eff.queries)
                self._update_router_flag(ps, d, eff)
                self._schedule(owner)
            for sq in eff.queries[n:]:
                self._counters[f"tx.query.{sq.kind}"] += 1
            heap = self._heap  # _compact may have replaced it


def _creates_state(rtype: RecordType, sources: tuple) -> bool:
    """Would this record, applied to a fresh INCLUDE({}) record, leave any state?"""
    if rtype in (RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE):
        return True
    if rtype == RecordType.BLOCK_OLD_SOURCES:
        return False
    return bool(sources)


def _addr_key(a: IPAddress) -> tuple[int, int]:
    return (a.version, int(a))


def _group_sort_key(item: tuple) -> tuple[int, int]:
    return _addr_key(item[0])

