"""What hosts need besides multicast: ARP, ND and unicast, loop-free on any topology.

Design (pure; the core asks for desired entries per switch):

* Host learning happens only at edge ports (topology.port_kind == 'edge'): an
  unknown (port, source MAC) misses table 0 and reaches the controller, which learns
  the host and installs an admission entry `in_port, eth_src -> goto L2`.
* Known destinations are forwarded by destination MAC along shortest paths toward
  the host's switch. The next hops of all switches toward one switch come from one
  shortest-path tree, so forwarding toward any destination is loop-free.
* Broadcast, unknown unicast and link-local multicast are flooded only along the
  spanning tree (plus edge ports), with one entry per allowed ingress port: a copy
  arriving on a non-tree inter-switch port matches nothing and is dropped. That is
  why no broadcast storm can form, whatever loops the topology has.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mcast_sdn.ofmodel import (
    COOKIE_FLOOD,
    COOKIE_L2,
    COOKIE_LEARN,
    TABLE_CLASSIFY,
    TABLE_INGRESS,
    TABLE_L2,
    FlowEntry,
    Output,
    match,
)
from mcast_sdn.topology import Topology

PRIO_LEARNED = 200
PRIO_TRANSIT = 100
PRIO_DST = 100
PRIO_FLOOD = 10


@dataclass(slots=True)
class Host:
    mac: str
    dpid: int
    port: int
    ipv4: set[str] = field(default_factory=set)
    ipv6: set[str] = field(default_factory=set)
    last_seen: float = 0.0

    def to_dict(self) -> dict:
        return {
            "mac": self.mac,
            "dpid": self.dpid,
            "port": self.port,
            "ipv4": sorted(self.ipv4),
            "ipv6": sorted(self.ipv6),
        }


@dataclass(slots=True)
class HostTable:
    hosts: dict[str, Host] = field(default_factory=dict)
    max_per_port: int = 64
    per_port: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    version: int = 0  # bumped whenever a host appears, moves or is forgotten
    epoch: int = 0  # bumped only when hosts are forgotten (bulk changes: recompute everything)

    def learn(self, now: float, mac: str, dpid: int, port: int) -> tuple[bool, Host | None, str]:
        """Learn or move a host. Returns (changed, previous location host copy, status)."""
        h = self.hosts.get(mac)
        if h is not None and h.dpid == dpid and h.port == port:
            h.last_seen = now
            return False, None, "known"
        on_port = self.per_port.setdefault((dpid, port), set())
        if len(on_port) >= self.max_per_port:
            return False, None, "limit"
        old = None
        if h is not None:
            old = Host(h.mac, h.dpid, h.port)
            self.per_port.get((h.dpid, h.port), set()).discard(mac)
            h.dpid, h.port, h.last_seen = dpid, port, now
        else:
            self.hosts[mac] = Host(mac, dpid, port, last_seen=now)
        on_port.add(mac)
        self.version += 1
        return True, old, "learned" if old is None else "moved"

    def forget_port(self, dpid: int, port: int) -> list[str]:
        macs = sorted(self.per_port.pop((dpid, port), set()))
        for m in macs:
            self.hosts.pop(m, None)
        if macs:
            self.version += 1
            self.epoch += 1
        return macs

    def forget_switch(self, dpid: int) -> list[str]:
        out = []
        for key in [k for k in self.per_port if k[0] == dpid]:
            out += self.forget_port(*key)
        return out

    def on(self, dpid: int) -> list[Host]:
        return [h for h in self.hosts.values() if h.dpid == dpid]


def flood_ports(topo: Topology, now: float, dpid: int) -> list[int]:
    """Ports a flooded frame may use on this switch: spanning-tree ports and edge ports."""
    return sorted(set(topo.tree_ports().get(dpid, ())) | set(topo.edge_ports(now, dpid)))


def host_flows(topo: Topology, h: Host, dpid: int) -> list[FlowEntry]:
    """The entries one host needs on switch `dpid`: admission at its own port, and the
    next hop toward it everywhere in its component."""
    if h.dpid == dpid:
        return [
            FlowEntry(TABLE_INGRESS, PRIO_LEARNED, match(in_port=h.port, eth_src=h.mac), goto=TABLE_CLASSIFY, cookie=COOKIE_LEARN),
            FlowEntry(TABLE_L2, PRIO_DST, match(eth_dst=h.mac), (Output(h.port),), cookie=COOKIE_L2),
        ]
    nh = topo.toward(h.dpid).get(dpid)
    if nh is None:
        return []
    return [FlowEntry(TABLE_L2, PRIO_DST, match(eth_dst=h.mac), (Output(nh),), cookie=COOKIE_L2)]


def switch_flows(topo: Topology, now: float, dpid: int) -> list[FlowEntry]:
    """Per-switch entries that do not depend on hosts: transit admission and flooding."""
    out: list[FlowEntry] = []
    lp = topo.link_ports()
    ports = topo.switches.get(dpid, {})
    # table 0: traffic from other switches goes straight to classification
    for p, info in ports.items():
        if info.up and (dpid, p) in lp:
            out.append(FlowEntry(TABLE_INGRESS, PRIO_TRANSIT, match(in_port=p), goto=TABLE_CLASSIFY, cookie=COOKIE_L2))
    # flooding along the tree, one entry per allowed ingress port
    fp = flood_ports(topo, now, dpid)
    for p in fp:
        outs = tuple(Output(q) for q in fp if q != p)
        out.append(FlowEntry(TABLE_L2, PRIO_FLOOD, match(in_port=p), outs, cookie=COOKIE_FLOOD))
    return out


def desired_flows(topo: Topology, hosts: HostTable, now: float, dpid: int) -> list[FlowEntry]:
    """All unicast/flood entries switch `dpid` should hold."""
    out = switch_flows(topo, now, dpid)
    for h in hosts.hosts.values():
        out.extend(host_flows(topo, h, dpid))
    return out
