"""The decision core: events in, per-switch changes out. No Ryu, no clock of its own.

`Core` owns the topology, the host table and what it believes each switch holds
(`installed`). Every entry point takes `now` and returns an `Out`: the ordered
changes per switch that the adapter must send. Desired state is recomputed for the
switches an event touches and diffed against `installed` (`ofmodel.diff`), so
re-sending is never needed and repeated events are no-ops.
"""
from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from mcast_sdn import unicast
from mcast_sdn.ofmodel import (
    COOKIE_L2,
    COOKIE_MCAST,
    COOKIE_MISS,
    COOKIE_PUNT,
    OFPP_TABLE,
    TABLE_CLASSIFY,
    TABLE_INGRESS,
    TABLE_L2,
    TABLE_MCAST,
    Change,
    DeleteAllOurs,
    FlowEntry,
    Output,
    PacketOut,
    SwitchState,
    ToController,
    apply,
    diff,
    match,
)
from mcast_sdn.topology import Topology

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
IPPROTO_IGMP = 2
IPPROTO_ICMPV6 = 58
IPPROTO_PIM = 103
MLD_TYPES = (130, 131, 132, 143)
PRIO_PUNT = 1000
PRIO_MISS = 0


def punt_flows() -> list[FlowEntry]:
    """IGMP, MLD and PIM to the controller (table 0, above everything of ours).

    OVS parses past the IPv6 Hop-by-Hop header that MLD rides behind, so matching
    ip_proto=58 plus icmpv6_type finds MLD messages with the Router Alert option.
    """
    ctl = (ToController(),)
    flows = [
        FlowEntry(TABLE_INGRESS, PRIO_PUNT, match(eth_type=ETH_IPV4, ip_proto=IPPROTO_IGMP), ctl, cookie=COOKIE_PUNT),
        FlowEntry(TABLE_INGRESS, PRIO_PUNT, match(eth_type=ETH_IPV4, ip_proto=IPPROTO_PIM), ctl, cookie=COOKIE_PUNT),
        FlowEntry(TABLE_INGRESS, PRIO_PUNT, match(eth_type=ETH_IPV6, ip_proto=IPPROTO_PIM), ctl, cookie=COOKIE_PUNT),
    ]
    for t in MLD_TYPES:
        flows.append(
            FlowEntry(
                TABLE_INGRESS,
                PRIO_PUNT,
                match(eth_type=ETH_IPV6, ip_proto=IPPROTO_ICMPV6, icmpv6_type=t),
                ctl,
                cookie=COOKIE_PUNT,
            )
        )
    # unknown (port, source) pairs: to the controller for host learning
    flows.append(FlowEntry(TABLE_INGRESS, PRIO_MISS, match(), ctl, cookie=COOKIE_MISS))
    return flows


def classify_flows() -> list[FlowEntry]:
    """Table 1: routable multicast to the multicast table, the rest to L2.

    Link-local groups (224.0.0.0/24, ff02::/16) are flooded like broadcast (RFC 4541
    §2.1.2 item 2, §3): they carry no membership state. Everything else multicast
    goes to the tree table.
    """
    return [
        FlowEntry(TABLE_CLASSIFY, 60, match(eth_type=ETH_IPV4, ipv4_dst=("224.0.0.0", "255.255.255.0")), goto=TABLE_L2, cookie=COOKIE_L2),
        FlowEntry(TABLE_CLASSIFY, 50, match(eth_type=ETH_IPV4, ipv4_dst=("224.0.0.0", "240.0.0.0")), goto=TABLE_MCAST, cookie=COOKIE_MCAST),
        FlowEntry(TABLE_CLASSIFY, 60, match(eth_type=ETH_IPV6, ipv6_dst=("ff02::", "ffff::")), goto=TABLE_L2, cookie=COOKIE_L2),
        FlowEntry(TABLE_CLASSIFY, 60, match(eth_type=ETH_IPV6, ipv6_dst=("ff01::", "ffff::")), goto=TABLE_L2, cookie=COOKIE_L2),
        FlowEntry(TABLE_CLASSIFY, 50, match(eth_type=ETH_IPV6, ipv6_dst=("ff00::", "ff00::")), goto=TABLE_MCAST, cookie=COOKIE_MCAST),
        FlowEntry(TABLE_CLASSIFY, 0, match(), goto=TABLE_L2, cookie=COOKIE_L2),
    ]


@dataclass(slots=True)
class EthInfo:
    dst: str
    src: str
    ethertype: int
    vlan: int | None
    ip_src: str | None
    ip_proto: int | None


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def parse_eth(data: bytes) -> EthInfo | None:
    """Minimal, non-raising Ethernet/IP header peek for host learning and dispatch."""
    if len(data) < 14:
        return None
    dst, src = data[0:6], data[6:12]
    (etype,) = struct.unpack_from("!H", data, 12)
    off = 14
    vlan = None
    if etype == ETH_VLAN:
        if len(data) < 18:
            return None
        tci, etype = struct.unpack_from("!HH", data, 14)
        vlan = tci & 0x0FFF
        off = 18
    ip_src = None
    proto = None
    if etype == ETH_IPV4 and len(data) >= off + 20:
        proto = data[off + 9]
        ip_src = ".".join(str(x) for x in data[off + 12 : off + 16])
    elif etype == ETH_IPV6 and len(data) >= off + 40:
        proto = data[off + 6]
        import ipaddress

        ip_src = str(ipaddress.IPv6Address(data[off + 8 : off + 24]))
    return EthInfo(_mac(dst), _mac(src), etype, vlan, ip_src, proto)


class Out:
    """Ordered changes per switch (dict preserves first-touch order of switches)."""

    __slots__ = ("by_dpid",)

    def __init__(self) -> None:
        self.by_dpid: dict[int, list[Change]] = {}

    def add(self, dpid: int, changes: list[Change]) -> None:
        if changes:
            self.by_dpid.setdefault(dpid, []).extend(changes)

    def extend(self, other: "Out") -> None:
        for d, ch in other.by_dpid.items():
            self.add(d, ch)

    def __bool__(self) -> bool:
        return bool(self.by_dpid)

    def count(self) -> int:
        return sum(len(v) for v in self.by_dpid.values())


@dataclass
class CoreConfig:
    settle: float = 3.0  # seconds a port must be up without LLDP before it is an edge port
    max_hosts_per_port: int = 64


class Core:
    def __init__(self, config: CoreConfig | None = None) -> None:
        self.config = config or CoreConfig()
        self.topo = Topology(settle=self.config.settle)
        self.hosts = unicast.HostTable(max_per_port=self.config.max_hosts_per_port)
        self.installed: dict[int, SwitchState] = {}
        self.counters: Counter[str] = Counter()
        self._next_settle: float | None = None

    # ------------------------------------------------------------------ desired state
    def desired(self, now: float, dpid: int) -> SwitchState:
        st = SwitchState()
        for f in punt_flows():
            st.flows[f.key] = f
        for f in classify_flows():
            st.flows[f.key] = f
        for f in self.mcast_flows(now, dpid):
            st.flows[f.key] = f
        for f in unicast.desired_flows(self.topo, self.hosts, now, dpid):
            st.flows[f.key] = f
        return st

    def mcast_flows(self, now: float, dpid: int) -> list[FlowEntry]:
        """Multicast table entries (trees come with the forwarding module)."""
        # until trees are installed, routable multicast is flooded like link-local traffic
        return [FlowEntry(TABLE_MCAST, 0, match(), goto=TABLE_L2, cookie=COOKIE_MCAST)]

    def _sync(self, now: float, dpids, out: Out | None = None) -> Out:
        out = out if out is not None else Out()
        for dpid in sorted(dpids):
            inst = self.installed.get(dpid)
            if inst is None:
                continue
            changes = diff(self.desired(now, dpid), inst)
            apply(inst, changes)
            out.add(dpid, changes)
        self._next_settle = self.topo.next_settle_deadline(now)
        return out

    # ------------------------------------------------------------------ switch / port / link events
    def switch_enter(self, now: float, dpid: int, ports) -> Out:
        """A switch connected. `ports`: iterable of (port_no, is_up, hw_addr)."""
        self.counters["switch_enter"] += 1
        self.topo.add_switch(now, dpid, ports)
        self.installed[dpid] = SwitchState()
        out = Out()
        out.add(dpid, [DeleteAllOurs()])
        return self._sync(now, list(self.installed), out)

    def switch_leave(self, now: float, dpid: int) -> Out:
        self.counters["switch_leave"] += 1
        self.installed.pop(dpid, None)
        self.topo.remove_switch(dpid)
        self.hosts.forget_switch(dpid)
        return self._sync(now, list(self.installed))

    def port_update(self, now: float, dpid: int, port_no: int, up: bool, hw_addr: str = "") -> Out:
        changed = self.topo.port_update(now, dpid, port_no, up, hw_addr)
        if not up:
            self.hosts.forget_port(dpid, port_no)
        if not changed:
            return Out()
        return self._sync(now, list(self.installed))

    def port_delete(self, now: float, dpid: int, port_no: int) -> Out:
        self.topo.port_delete(dpid, port_no)
        self.hosts.forget_port(dpid, port_no)
        return self._sync(now, list(self.installed))

    def link_add(self, now: float, src: tuple[int, int], dst: tuple[int, int]) -> Out:
        if not self.topo.link_add(src, dst):
            return Out()
        self.counters["link_add"] += 1
        # hosts wrongly learned on what turned out to be a switch port
        for ref in (src, dst):
            self.hosts.forget_port(*ref)
        return self._sync(now, list(self.installed))

    def link_delete(self, now: float, src: tuple[int, int], dst: tuple[int, int]) -> Out:
        if not self.topo.link_delete(src, dst):
            return Out()
        self.counters["link_delete"] += 1
        return self._sync(now, list(self.installed))

    # ------------------------------------------------------------------ packets
    def packet_in(self, now: float, dpid: int, in_port: int, cookie: int, data: bytes) -> Out:
        self.counters["packet_in"] += 1
        if dpid not in self.installed:
            self.counters["drop_unknown_switch"] += 1
            return Out()
        eth = parse_eth(data)
        if eth is None:
            self.counters["drop_runt"] += 1
            return Out()
        if cookie == COOKIE_PUNT:
            return self._punted(now, dpid, in_port, eth, data)
        return self._miss(now, dpid, in_port, eth, data)

    def _learn(self, now: float, dpid: int, in_port: int, eth: EthInfo) -> bool:
        src = bytes.fromhex(eth.src.replace(":", ""))
        if src[0] & 1 or src == b"\x00" * 6:
            self.counters["drop_bad_src_mac"] += 1
            return False
        changed, _old, status = self.hosts.learn(now, eth.src, dpid, in_port)
        h = self.hosts.hosts.get(eth.src)
        if h is not None and eth.ip_src and eth.ip_src not in ("0.0.0.0", "::"):
            (h.ipv6 if ":" in eth.ip_src else h.ipv4).add(eth.ip_src)
        if status == "limit":
            self.counters["drop_host_limit"] += 1
        elif changed:
            self.counters["host_" + status] += 1
        return changed

    def _miss(self, now: float, dpid: int, in_port: int, eth: EthInfo, data: bytes) -> Out:
        kind = self.topo.port_kind(now, dpid, in_port)
        if kind != "edge":
            self.counters[f"drop_miss_{kind}_port"] += 1
            return Out()
        out = Out()
        if self._learn(now, dpid, in_port, eth):
            comp = self.topo.component(dpid) or {dpid}
            # this switch first: its admission entry must precede the re-injected packet
            self._sync(now, [dpid], out)
            self._sync(now, sorted(comp - {dpid}), out)
        if eth.src in self.hosts.hosts and self.hosts.hosts[eth.src].dpid == dpid:
            # re-run the pipeline now that the host is admitted (no first-packet loss)
            out.add(dpid, [PacketOut(in_port, (Output(OFPP_TABLE),), data)])
        return out

    def _punted(self, now: float, dpid: int, in_port: int, eth: EthInfo, data: bytes) -> Out:
        kind = "igmp" if eth.ip_proto == IPPROTO_IGMP else "pim" if eth.ip_proto == IPPROTO_PIM else "mld"
        self.counters[f"punt_{kind}"] += 1
        out = Out()
        if self.topo.port_kind(now, dpid, in_port) == "edge" and self._learn(now, dpid, in_port, eth):
            self._sync(now, [dpid], out)
            self._sync(now, sorted((self.topo.component(dpid) or {dpid}) - {dpid}), out)
        return out

    # ------------------------------------------------------------------ time
    def tick(self, now: float) -> Out:
        """Periodic: ports that finished settling become edge ports (flooding, learning)."""
        if self._next_settle is not None and now >= self._next_settle:
            return self._sync(now, list(self.installed))
        return Out()

    # ------------------------------------------------------------------ views (REST, tests)
    def snapshot(self, now: float) -> dict:
        return {
            "switches": {
                str(d): {
                    str(p): {"up": i.up, "kind": self.topo.port_kind(now, d, p)} for p, i in sorted(ports.items())
                }
                for d, ports in sorted(self.topo.switches.items())
            },
            "links": [{"a": list(l.a), "b": list(l.b), "weight": l.weight} for l in self.topo.links()],
            "tree_ports": {str(d): sorted(p) for d, p in sorted(self.topo.tree_ports().items())},
            "hosts": [h.to_dict() for h in sorted(self.hosts.hosts.values(), key=lambda h: h.mac)],
            "counters": dict(self.counters),
        }
