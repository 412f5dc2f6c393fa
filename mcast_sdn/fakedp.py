"""A multi-switch fake data plane that executes `ofmodel` tables (for tests and benchmarks).

Why: tests should assert behaviour ("each member port gets exactly one copy, no other
port gets any, no link carries two"), not message lists. This interprets the same
values the controller sends to switches, with the OpenFlow 1.3 / OVS semantics that
matter for multicast:

* the highest-priority matching entry of a table wins; `goto` continues the pipeline;
* apply-actions outputs happen at once; a group of type ALL outputs once per bucket;
* output to the packet's own ingress port is skipped (OVS does that unless IN_PORT is used);
* masked matches on addresses (ipv4_dst=("224.0.0.0", "240.0.0.0"));
* push/pop of a VLAN tag per copy (a bucket's actions work on that bucket's copy); a
  tagged packet has `vlan_vid` = vid | 0x1000, as OpenFlow matches it;
* deleting a group deletes the flows pointing at it (OVS) — modelled in `ofmodel.apply`.

A packet is a dict of match fields (eth_src, eth_dst, eth_type, ipv4_src, ipv4_dst,
ipv6_src, ipv6_dst, ip_proto); `in_port` is set by the walk.
"""
from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

from mcast_sdn.ofmodel import FlowEntry, Output, PopVlan, PushVlan, SwitchState, ToController, ToGroup


def _field_matches(name: str, want, have) -> bool:
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = want
        if name.startswith("ipv4") or name.startswith("ipv6"):
            ip = ipaddress.ip_address
            try:
                h, v, m = int(ip(have)), int(ip(value)), int(ip(mask))
            except ValueError:
                return False
            return (h & m) == (v & m)
        if name.startswith("eth"):
            h = int(str(have).replace(":", ""), 16)
            v = int(str(value).replace(":", ""), 16)
            m = int(str(mask).replace(":", ""), 16)
            return (h & m) == (v & m)
        return (have & mask) == (value & mask)
    if name.startswith("ipv4") or name.startswith("ipv6"):
        try:
            return ipaddress.ip_address(have) == ipaddress.ip_address(want)
        except ValueError:
            return False
    return have == want


def lookup(state: SwitchState, table: int, pkt: dict) -> FlowEntry | None:
    best = None
    for f in state.flows.values():
        if f.table != table:
            continue
        if best is not None and f.priority <= best.priority:
            continue
        if all(_field_matches(k, v, pkt.get(k)) for k, v in f.match):
            best = f
    return best


@dataclass
class WalkResult:
    delivered: Counter = field(default_factory=Counter)  # (dpid, port) of non-link ports -> copies
    link_copies: Counter = field(default_factory=Counter)  # (dpid, out port) -> copies sent on the link
    to_controller: list = field(default_factory=list)  # (dpid, in_port, table)
    tagged: Counter = field(default_factory=Counter)  # host ports that got a copy with a version tag
    hops: int = 0

    def max_link_stress(self) -> int:
        return max(self.link_copies.values(), default=0)


class FakeNetwork:
    """Switch tables plus the links between them."""

    def __init__(self, tables: dict[int, SwitchState], links: dict[tuple[int, int], tuple[int, int]], max_hops: int = 100000):
        self.tables = tables
        self.links = links
        self.max_hops = max_hops

    def inject(self, dpid: int, in_port: int, pkt: dict) -> WalkResult:
        res = WalkResult()
        todo = [(dpid, in_port, pkt)]
        while todo:
            d, p, pk = todo.pop()
            res.hops += 1
            if res.hops > self.max_hops:
                raise RuntimeError("packet storm: the walk did not terminate")
            st = self.tables.get(d)
            if st is None:
                continue
            for out_port, copy in self._pipeline(st, d, p, pk, res):
                if out_port == p:
                    continue
                peer = self.links.get((d, out_port))
                if peer is not None:
                    res.link_copies[(d, out_port)] += 1
                    todo.append((peer[0], peer[1], copy))
                else:
                    res.delivered[(d, out_port)] += 1
                    if "vlan_vid" in copy and "vlan_vid" not in pkt:
                        res.tagged[(d, out_port)] += 1  # a version tag leaked to a host
        return res

    def _pipeline(self, st: SwitchState, dpid: int, in_port: int, pkt: dict, res: WalkResult) -> list:
        outs: list = []
        fields = dict(pkt, in_port=in_port)
        table = 0
        for _ in range(256):
            f = lookup(st, table, fields)
            if f is None:
                break  # table miss in OF1.3 = drop
            cur = dict(pkt)
            for a in f.actions:
                cur = self._act(st, dpid, in_port, table, a, outs, res, cur)
            if f.goto is None or f.goto <= table:
                break
            table = f.goto
        return outs

    def _act(self, st, dpid, in_port, table, a, outs, res, pkt: dict) -> dict:
        """Apply one action to (a copy of) the packet; returns the packet as modified."""
        if isinstance(a, Output):
            outs.append((a.port, dict(pkt)))
        elif isinstance(a, ToController):
            res.to_controller.append((dpid, in_port, table))
        elif isinstance(a, PushVlan):
            pkt = dict(pkt, vlan_vid=a.vid | 0x1000)
        elif isinstance(a, PopVlan):
            pkt = {k: v for k, v in pkt.items() if k != "vlan_vid"}
        elif isinstance(a, ToGroup):
            g = st.groups.get(a.group_id)
            if g is None:
                return pkt  # OVS would have refused the flow; count as drop
            for bucket in g.buckets:
                cur = dict(pkt)  # each bucket works on its own copy
                for b in bucket:
                    cur = self._act(st, dpid, in_port, table, b, outs, res, cur)
        return pkt


def spec_ports(spec) -> dict[int, list[int]]:
    """Per switch dpid, the port numbers a topology spec uses (links and hosts)."""
    ports: dict[int, list[int]] = {s.dpid: [] for s in spec.switches}
    for l in spec.links:
        ports[spec.dpid(l.a)].append(l.a_port)
        ports[spec.dpid(l.b)].append(l.b_port)
    for h in spec.hosts:
        ports[spec.dpid(h.switch)].append(h.port)
    return ports


def connect(core, spec, now: float = 0.0, readback: bool = False):
    """Tell a core that every switch of `spec` connected and every link was discovered,
    as the adapter would (tests and benchmarks drive the core this way without a network).
    Returns the core's combined output."""
    from mcast_sdn.core import Out

    out = Out()
    for d, ps in spec_ports(spec).items():
        out.extend(core.switch_enter(now, d, [(p, True, "") for p in ps], readback=readback))
    for l in spec.links:
        out.extend(core.link_add(now, (spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port)))
    return out
