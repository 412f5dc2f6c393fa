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

import ipaddress
import logging
import time

import networkx as nx

from mcast_sdn import forwarding, packets, plan, trees, unicast
from mcast_sdn.config import MembershipConfig
from mcast_sdn.forwarding import GroupRoute, McastTable, SourceInfo, TreeConfig
from mcast_sdn.membership import Interest
from mcast_sdn.membership_manager import Effects, MembershipManager
from mcast_sdn.messages import Drop, Leave, Report
from mcast_sdn.ofmodel import (
    COOKIE_MASK_ALL,
    COOKIE_PREFIX,
    COOKIE_L2,
    COOKIE_MCAST,
    COOKIE_MISS,
    COOKIE_PUNT,
    COOKIE_SRCDISC,
    OFPP_CONTROLLER,
    OFPP_TABLE,
    TABLE_CLASSIFY,
    TABLE_INGRESS,
    TABLE_L2,
    TABLE_MCAST,
    Barrier,
    Bundle,
    Change,
    GroupAdd,
    DeleteAllOurs,
    FlowAdd,
    FlowDelete,
    GroupDelete,
    GroupEntry,
    GroupModify,
    MeterEntry,
    COOKIE_LEARN,
    FlowEntry,
    Output,
    PacketOut,
    SwitchState,
    ToController,
    ToGroup,
    apply,
    diff,
    diff_subset,
    match,
)
from mcast_sdn.topology import Topology

LOG = logging.getLogger("mcast_sdn.core")

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_LLDP = 0x88CC
ETH_VLAN = 0x8100
IPPROTO_IGMP = 2
IPPROTO_ICMPV6 = 58
IPPROTO_PIM = 103
MLD_TYPES = (130, 131, 132, 143)
PRIO_PUNT = 1000
PRIO_MISS = 0


def punt_matches() -> list[dict]:
    """What goes to the controller: IGMP, PIM (v4/v6) and the four MLD message types."""
    ms = [
        dict(eth_type=ETH_IPV4, ip_proto=IPPROTO_IGMP),
        dict(eth_type=ETH_IPV4, ip_proto=IPPROTO_PIM),
        dict(eth_type=ETH_IPV6, ip_proto=IPPROTO_PIM),
    ]
    ms += [dict(eth_type=ETH_IPV6, ip_proto=IPPROTO_ICMPV6, icmpv6_type=t) for t in MLD_TYPES]
    return ms


def metered_punt_flows(port: int) -> list[FlowEntry]:
    """Per host port, the same punts through that port's meter: a host flooding reports is
    cut down in the switch, before it can congest the control channel for everyone else."""
    return [
        FlowEntry(TABLE_INGRESS, PRIO_PUNT + 2, match(in_port=port, **m), (ToController(),), cookie=COOKIE_PUNT, meter=port)
        for m in punt_matches()
    ]


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
    # LLDP to the controller (Ryu installs the same; ours survives a del-flows because the
    # audit restores it, and without it LLDP would be flooded and confuse discovery)
    flows.append(FlowEntry(TABLE_INGRESS, PRIO_PUNT + 1, match(eth_type=ETH_LLDP), ctl, cookie=COOKIE_PUNT))
    # IEEE 802.1D reserved addresses (STP, LACP, LLDP, ...) are never forwarded
    flows.append(FlowEntry(TABLE_INGRESS, PRIO_PUNT - 100, match(eth_dst=("01:80:c2:00:00:00", "ff:ff:ff:ff:ff:f0")), (), cookie=COOKIE_PUNT))
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
    ip_dst: str | None = None


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
    ip_src = ip_dst = None
    proto = None
    if etype == ETH_IPV4 and len(data) >= off + 20:
        proto = data[off + 9]
        ip_src = ".".join(str(x) for x in data[off + 12 : off + 16])
        ip_dst = ".".join(str(x) for x in data[off + 16 : off + 20])
    elif etype == ETH_IPV6 and len(data) >= off + 40:
        proto = data[off + 6]
        ip_src = str(ipaddress.IPv6Address(data[off + 8 : off + 24]))
        ip_dst = str(ipaddress.IPv6Address(data[off + 24 : off + 40]))
    return EthInfo(_mac(dst), _mac(src), etype, vlan, ip_src, proto, ip_dst)


class Out:
    """Ordered changes per switch, in stages.

    `by_dpid` (stage 0) goes first; then each of `mid` in stage order; `late` last. The
    adapter waits for every switch of a stage to confirm (barrier) before it sends the
    next: multicast trees are installed from the leaves up to the first hop, and packets
    re-injected into a new tree go last, so traffic never enters a part of a tree that is
    not installed yet (make-before-break across switches).
    """

    __slots__ = ("by_dpid", "mid", "late", "confirms", "pauses")

    def __init__(self) -> None:
        self.by_dpid: dict[int, list[Change]] = {}
        self.mid: dict[int, dict[int, list[Change]]] = {}
        self.late: dict[int, list[Change]] = {}
        # tokens the adapter hands back to `Core.confirmed` once every stage is confirmed
        self.confirms: list = []
        # stage number -> seconds to wait (after the previous stage was confirmed) before
        # sending it: packets in flight drain (a stream moved with a version tag)
        self.pauses: dict[int, float] = {}

    def add(self, dpid: int, changes: list[Change], late: bool = False, stage: int = 0) -> None:
        if not changes:
            return
        if late:
            target = self.late
        elif stage > 0:
            target = self.mid.setdefault(stage, {})
        else:
            target = self.by_dpid
        target.setdefault(dpid, []).extend(changes)

    def extend(self, other: "Out") -> None:
        for d, ch in other.by_dpid.items():
            self.add(d, ch)
        for k, st in other.mid.items():
            for d, ch in st.items():
                self.add(d, ch, stage=k)
        for d, ch in other.late.items():
            self.add(d, ch, late=True)
        self.confirms.extend(other.confirms)
        for k, v in other.pauses.items():
            self.pauses[k] = max(v, self.pauses.get(k, 0.0))

    def stages(self) -> list[dict[int, list[Change]]]:
        """Non-empty stages in sending order (see `timed_stages`)."""
        return [st for _pause, st in self.timed_stages()]

    def timed_stages(self) -> list[tuple[float, dict[int, list[Change]]]]:
        """(pause before it, stage) in sending order. Consecutive stages that concern one
        and the same switch are merged (unless a pause separates them): a switch applies
        one connection's messages in order, so the barrier round trip between them would
        only add latency (a join on one switch goes out as one batch)."""
        res: list = []
        order = [(0, self.by_dpid)] + [(k, self.mid[k]) for k in sorted(self.mid)] + [(None, self.late)]
        for k, st in order:
            if not st:
                continue
            pause = self.pauses.get(k, 0.0) if k is not None else 0.0
            if res and not pause and len(st) == 1 and len(res[-1][1]) == 1 and next(iter(st)) == next(iter(res[-1][1])):
                d = next(iter(st))
                res[-1] = (res[-1][0], {d: res[-1][1][d] + st[d]})
            else:
                res.append((pause, st))
        return res

    def __bool__(self) -> bool:
        return bool(self.by_dpid or self.mid or self.late or self.confirms)

    def count(self) -> int:
        return sum(len(v) for st in self.stages() for v in st.values())

    def all_changes(self, dpid: int) -> list[Change]:
        return [c for st in self.stages() for c in st.get(dpid, [])]


@dataclass
class CoreConfig:
    settle: float = 3.0  # seconds a port must be up without LLDP before it is an edge port
    max_hosts_per_port: int = 64
    source_discovery_per_second: float = 200.0  # controller budget for unknown-source PacketIns per switch
    punt_per_second: float = 1000.0  # controller budget for IGMP/MLD PacketIns per switch
    punt_per_port_per_second: float = 50.0  # ... and per host port (hosts send a few per second)
    # After a controller (re)start, multicast entries found on switches are kept untouched for
    # this long while membership is rebuilt by queries (None: settle + startup query interval
    # + query response interval + 2 s), so members that stay joined lose nothing.
    restart_grace: float | None = None
    audit_interval: float = 30.0  # seconds between read-back audits of one switch (round robin)
    steiner_repair_interval: float = 30.0  # background repair of incrementally grown steiner trees
    # RFC 4541 §2.1.2(3): ports that receive all multicast, registered or not (like router
    # ports), e.g. for hosts that cannot speak IGMP/MLD. [[dpid, port], ...]
    flood_ports: tuple = ()

    def __post_init__(self) -> None:
        ports = []
        for item in self.flood_ports or ():
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in item)):
                raise ValueError(f"core: flood_ports entries must be [dpid, port], got {item!r}")
            ports.append((item[0], item[1]))
        self.flood_ports = tuple(sorted(set(ports)))


class TokenBucket:
    """Controller-side PacketIn budget (per switch); the clock is passed in."""

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.burst
        self.last: float | None = None

    def take(self, now: float) -> bool:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Core:
    """Topology + hosts + membership + trees -> desired switch state -> ordered changes."""

    def __init__(
        self,
        config: CoreConfig | None = None,
        membership: MembershipConfig | None = None,
        tree_config: TreeConfig | None = None,
    ) -> None:
        self.config = config or CoreConfig()
        self.topo = Topology(settle=self.config.settle)
        self.hosts = unicast.HostTable(max_per_port=self.config.max_hosts_per_port)
        self.members = MembershipManager(membership)
        self.tree_config = tree_config or TreeConfig()
        self.installed: dict[int, SwitchState] = {}
        self.counters: Counter[str] = Counter()
        self._next_settle: float | None = None
        self._settled_upto = float("-inf")  # time of the last pass that turned settled ports into edge ports
        # multicast
        self.sources: dict[object, dict[object, SourceInfo]] = {}  # group -> addr -> where
        self.negative: dict[tuple, float] = {}  # (group, addr) -> expiry of the negative cache
        self.routes: dict[object, GroupRoute] = {}
        self.route_switches: dict[object, set[int]] = {}
        self.by_switch: dict[int, set] = {}
        self.mtables: dict[int, McastTable] = {}
        self._base: dict[int, tuple[tuple, dict]] = {}  # dpid -> (cache key, non-multicast-tree flows)
        self._host_keys: dict[tuple[int, str], set] = {}  # (dpid, mac) -> keys of that host's entries
        self._member_ports: set[tuple[int, int]] = set()
        self._ports_dirty = True
        self._cache: trees.PathCache | None = None
        self._cache_version = -1
        self._center: int | None = None
        self._budgets: dict[tuple[str, int], TokenBucket] = {}
        self.timings: Counter[str] = Counter()  # cumulative seconds per phase (profiling aid)
        # static joins (operators, REST): (dpid, port, group) -> frozenset of sources, or None for (*,G)
        self.static_joins: dict[tuple, frozenset | None] = {}
        # resilience: switches whose read-back is awaited; entries adopted after a restart
        self.pending_readback: set[int] = set()
        self.frozen: dict[int, tuple[set, set]] = {}  # dpid -> (flow keys, group ids) kept during grace
        self.candidates: list[tuple] = []  # (group, source, dpid, port) seen in adopted first hops
        self.started: float | None = None
        self.grace_until: float | None = None
        self._change_seq: Counter[int] = Counter()
        self.absent_since: dict[int, float] = {}
        self.meter_ok: dict[int, bool] = {}  # per switch: OpenFlow meters usable for punt rate limits
        self.incremental: dict = {}  # (group, source) -> trees.IncrementalTree (steiner mode)
        self._next_repair: float | None = None
        self._batch: dict = {}  # group -> plan.GroupChange of the changes not yet synced
        self._tmp_seq: dict[int, int] = {}  # per switch: temporary (union) group ids handed out
        self._installing: dict[tuple, list] = {}  # (group, source) -> [deadline, packets buffered]

    # ================================================================== desired state
    def desired(self, now: float, dpid: int) -> SwitchState:
        st = SwitchState(dict(self._base_flows(now, dpid)), {}, self._meters(now, dpid))
        mt = self.mtables.get(dpid)
        if mt is not None:
            st.flows.update(mt.flows)
            st.groups.update(mt.groups)
        return st

    def _meters(self, now: float, dpid: int) -> dict:
        if not self.meter_ok.get(dpid):
            return {}
        rate = max(1, int(self.config.punt_per_port_per_second))
        return {p: MeterEntry(p, rate, rate) for p in self.topo.edge_ports(now, dpid) if p <= METER_ID_MAX}

    def set_meter_support(self, now: float, dpid: int, ok: bool) -> Out:
        """The adapter learned whether the switch has packet-rate drop meters."""
        if self.meter_ok.get(dpid) == ok:
            return Out()
        self.meter_ok[dpid] = ok
        self._base.pop(dpid, None)
        return self._sync(now, {dpid}) if dpid in self.installed else Out()

    def _base_flows(self, now: float, dpid: int) -> dict:
        """Everything but the multicast trees, cached until topology or hosts change."""
        edge = tuple(self.topo.edge_ports(now, dpid))
        key = (self.topo.version, self.hosts.epoch, edge, self.meter_ok.get(dpid, False))
        cached = self._base.get(dpid)
        if cached is not None and cached[0] == key:
            return cached[1]
        flows: dict = {}
        for f in punt_flows():
            flows[f.key] = f
        for f in classify_flows():
            flows[f.key] = f
        if self.meter_ok.get(dpid):
            for p in edge:
                if p <= METER_ID_MAX:
                    for f in metered_punt_flows(p):
                        flows[f.key] = f
        # unknown (S,G) from a host port: to the controller (source discovery);
        # from another switch: drop (RPF failure or a tree being changed)
        f = FlowEntry(TABLE_MCAST, 0, match(), (ToController(),), cookie=COOKIE_SRCDISC)
        flows[f.key] = f
        lp = self.topo.link_ports()
        for p, info in self.topo.switches.get(dpid, {}).items():
            if info.up and (dpid, p) in lp:
                f = FlowEntry(TABLE_MCAST, 1, match(in_port=p), (), cookie=COOKIE_MCAST)
                flows[f.key] = f
        for f in unicast.switch_flows(self.topo, now, dpid):
            flows[f.key] = f
        for mac, h in self.hosts.hosts.items():
            fl = unicast.host_flows(self.topo, h, dpid)
            self._host_keys[(dpid, mac)] = {f.key for f in fl}
            for f in fl:
                flows[f.key] = f
        self._base[dpid] = (key, flows)
        return flows

    def _host_moved(self, now: float, mac: str) -> dict[int, tuple[set, set]]:
        """A host appeared or moved: update its entries in every switch's cached base
        flows (O(switches)) instead of recomputing every switch (O(switches x hosts)).
        Returns per switch the flow keys that changed (for a key-level diff)."""
        h = self.hosts.hosts.get(mac)
        changed: dict[int, tuple[set, set]] = {}
        for dpid in self.installed:
            cached = self._base.get(dpid)
            if cached is None:
                continue  # computed in full on the next sync of that switch
            flows = cached[1]
            keys = set()
            for k in self._host_keys.pop((dpid, mac), ()):
                if flows.pop(k, None) is not None:
                    keys.add(k)
            if h is not None:
                fl = unicast.host_flows(self.topo, h, dpid)
                self._host_keys[(dpid, mac)] = {f.key for f in fl}
                for f in fl:
                    flows[f.key] = f
                    keys.add(f.key)
            if keys:
                changed[dpid] = (keys, set())
        return changed

    def _sync_keys(self, now: float, changed: dict[int, tuple[set, set]], out: Out, first: int | None = None) -> None:
        """Key-level diff of base (non-tree) entries; switch `first` goes first."""
        order = sorted(changed, key=lambda d: (d != first, d))
        for dpid in order:
            inst = self.installed.get(dpid)
            if inst is None or dpid in self.pending_readback or dpid in self.absent_since:
                continue
            cached = self._base.get(dpid)
            if cached is None:
                continue
            keys, _ = changed[dpid]
            changes = diff_subset(SwitchState(cached[1]), inst, keys, ())
            if changes:
                self._change_seq[dpid] += 1
            apply(inst, changes)
            out.add(dpid, changes)

    def _sync(self, now: float, dpids, out: Out | None = None, mc: dict | None = None) -> Out:
        """Diff and apply: whole switches in `dpids`, only the listed keys for `mc`.

        Non-tree changes go to stage 0 of `out`. Tree changes (`mc`) are ordered by
        `plan.Planner` into prepare / grow / flip (atomic, from each stream's source down
        its new tree) / shrink stages, so no intermediate state loses or duplicates a
        packet of a member the change does not concern.
        """
        out = out if out is not None else Out()
        t0 = time.perf_counter()
        mc = mc or {}
        full = set(dpids)
        planner = plan.Planner(self.topo.link_ports(), self._batch, self._tmp_seq,
                               lambda d: d in self.installed and d not in self.pending_readback and d not in self.absent_since)
        phases: dict[int, dict] = {}
        for dpid in sorted(full | set(mc)):
            inst = self.installed.get(dpid)
            if inst is None or dpid in self.pending_readback or dpid in self.absent_since:
                continue
            base: list[Change] = []
            ph = None
            if dpid in full:
                base = diff(self.desired(now, dpid), inst)
                if dpid in mc:
                    base = _without(base, *mc[dpid])
            if dpid in mc:
                keys, gids = mc[dpid]
                mt = self.mtables[dpid]
                ph = planner.plan_switch(dpid, inst, SwitchState(mt.flows, mt.groups), keys, gids)
            if dpid in self.frozen:
                base = self._unfrozen(dpid, base)
                if ph is not None:
                    ph = {k: self._unfrozen(dpid, v) for k, v in ph.items()}
                    if dpid in planner.flips:
                        planner.flips[dpid] = {k: v for k, v in ((k, self._unfrozen(dpid, v)) for k, v in planner.flips[dpid].items()) if v}
            swaps = planner.flips.get(dpid, {})
            lists = [base] + ([ph["prep"], ph["grow"]] + list(swaps.values()) + [ph["shrink"]] if ph else [])
            if any(lists):
                self._change_seq[dpid] += 1
            for ch in lists:
                apply(inst, ch)
            out.add(dpid, base)
            if ph is not None:
                phases[dpid] = ph
            mt = self.mtables.get(dpid)
            if mt is not None:
                mt.commit()  # released ids were deleted on this switch (in this Out)
        versioned = planner.versioned_lists(self.installed.get)
        for dpid, vl in versioned.items():
            inst = self.installed[dpid]
            if dpid in self.frozen:
                vl["vchg"] = self._unfrozen(dpid, vl["vchg"])
            self._change_seq[dpid] += 1
            for k in ("vprep", "vpush", "vchg", "vunpush", "vclean"):
                apply(inst, vl[k])
        if versioned:
            self.counters["tree_moves_versioned"] += len(planner.versioned)
            out.pauses[plan.STAGE_VCHANGE] = plan.DRAIN_SECONDS
            out.pauses[plan.STAGE_SHRINK] = plan.DRAIN_SECONDS
        levels = planner.flip_levels()
        for dpid, ph in phases.items():
            out.add(dpid, ph["prep"], stage=plan.STAGE_PREP)
            out.add(dpid, ph["grow"], stage=plan.STAGE_GROW)
            by_level: dict[int, list] = {}
            for stream, ch in planner.flips.get(dpid, {}).items():
                by_level.setdefault(levels[(dpid, stream)], []).extend(ch)
            for lv, ch in sorted(by_level.items()):
                out.add(dpid, [Bundle(tuple(ch))] if len(ch) > 1 else ch, stage=plan.STAGE_FLIP0 + lv)
            out.add(dpid, ph["shrink"], stage=plan.STAGE_SHRINK)
        for dpid, vl in versioned.items():
            out.add(dpid, vl["vprep"], stage=plan.STAGE_PREP)
            out.add(dpid, vl["vpush"], stage=plan.STAGE_VPUSH)
            out.add(dpid, vl["vchg"], stage=plan.STAGE_VCHANGE)
            out.add(dpid, vl["vunpush"], stage=plan.STAGE_VUNPUSH)
            out.add(dpid, vl["vclean"], stage=plan.STAGE_SHRINK)
        self._batch.clear()
        # deadlines after the last settle pass, not after `now`: a sync of some other switch
        # must not skip a port that settled a moment ago and is still waiting for its pass
        self._next_settle = self.topo.next_settle_deadline(self._settled_upto)
        self.timings["sync"] += time.perf_counter() - t0
        return out

    def _unfrozen(self, dpid: int, changes: list[Change]) -> list[Change]:
        """During the restart grace, adopted multicast tree entries are neither changed nor
        removed, and no other adopted entry is removed; everything else goes through."""
        keys, gids = self.frozen[dpid]
        res: list[Change] = []
        for c in changes:
            if isinstance(c, Bundle):
                inner = self._unfrozen(dpid, list(c.changes))
                if inner:
                    res.append(Bundle(tuple(inner)) if len(inner) > 1 else inner[0])
                continue
            if isinstance(c, FlowDelete) and c.entry.key in keys:
                continue
            if isinstance(c, FlowAdd) and c.entry.key in keys and c.entry.table == TABLE_MCAST:
                continue
            if isinstance(c, (GroupModify, GroupDelete)) and (c.entry.group_id if isinstance(c, GroupModify) else c.group_id) in gids:
                continue
            res.append(c)
        if res and isinstance(res[-1], Barrier):
            res.pop()
        return res

    # ================================================================== orchestration
    def _finish(self, now: float, out: Out, dirty: set[int], groups: set, topo_changed: bool = False, extra_mc: dict | None = None) -> Out:
        """Common tail of every entry point: member ports, trees, then switch diffs."""
        if topo_changed:
            self._ports_dirty = True
        if self.candidates:
            groups = set(groups) | self._take_candidates(now)
        eff = self._reconcile_member_ports(now) if self._ports_dirty else Effects()
        eff.extend(self.members.tick(now))
        groups = set(groups) | self._effects(now, eff, out)
        if topo_changed:
            groups |= set(self.routes) | set(self.sources) | set(self.members.groups())
        mc = self._recompute(now, groups)
        for d, (k, g) in (extra_mc or {}).items():
            ck, cg = mc.setdefault(d, (set(), set()))
            ck |= k
            cg |= g
        return self._sync(now, dirty, out, mc)

    def _reconcile_member_ports(self, now: float) -> Effects:
        self._ports_dirty = False
        eff = Effects()
        edge = set()
        for d in self.installed:
            for p in self.topo.edge_ports(now, d):
                edge.add((d, p))
        for k in sorted(edge - self._member_ports):
            eff.extend(self.members.add_port(now, *k))
        keep = set()
        for k in sorted(self._member_ports - edge):
            d, p = k
            if d not in self.installed or self.topo.port_kind(now, d, p) == "pending":
                keep.add(k)  # switch away or port not settled yet: membership stays (timers run)
            else:
                eff.extend(self.members.remove_port(now, *k))
        self._member_ports = edge | keep
        return eff

    def _effects(self, now: float, eff: Effects, out: Out, data: bytes | None = None) -> set:
        """Turn membership effects into PacketOuts; return the groups to recompute."""
        cfg = self.members.config
        for q in eff.queries:
            try:
                if q.family == 4:
                    frame = packets.build_igmp_query(
                        q.version, cfg.querier_mac, cfg.querier_ipv4, q.group, q.sources, q.max_resp, q.s_flag,
                        q.qrv or 2, q.qqi or cfg.query_interval,
                    )
                else:
                    frame = packets.build_mld_query(
                        q.version, cfg.querier_mac, cfg.querier_ipv6, q.group, q.sources, q.max_resp, q.s_flag,
                        q.qrv or 2, q.qqi or cfg.query_interval,
                    )
            except (ValueError, TypeError) as e:  # a bug, not input: count and go on
                self.counters["query_build_error"] += 1
                self.counters["last_error:" + type(e).__name__] += 1
                continue
            if q.dpid in self.installed:
                out.add(q.dpid, [PacketOut(OFPP_CONTROLLER, (Output(q.port),), frame)])
                self.counters[f"query_sent_v{q.family}"] += 1
        if data is not None:
            for f in eff.forward_to_routers:
                if f.dpid in self.installed and (f.dpid, f.port) != (f.in_dpid, f.in_port):
                    out.add(f.dpid, [PacketOut(OFPP_CONTROLLER, (Output(f.port),), data)])
                    self.counters["report_forwarded_to_router"] += 1
        groups = {c.group for c in eff.changes}
        if eff.router_port_changes:
            groups |= set(self.routes) | set(self.sources)
        return groups

    def _path_cache(self) -> trees.PathCache:
        if self._cache is None or self._cache_version != self.topo.version:
            self._cache = trees.PathCache(self.topo.graph())
            self._cache_version = self.topo.version
            self._center = None
            self.incremental.clear()  # full recompute on topology change
        return self._cache

    def _recompute(self, now: float, groups) -> dict[int, tuple[set, set]]:
        """Recompute the routes of `groups`; return per switch the changed flow keys and group ids."""
        changed: dict[int, tuple[set, set]] = {}
        if not groups:
            return changed
        t0 = time.perf_counter()
        g = self.topo.graph()
        cache = self._path_cache()
        held = _held_trees(self.installed, self.frozen) if self.frozen else {}
        for grp in groups:
            old = self.route_switches.get(grp, set())
            srcs = list(self.sources.get(grp, {}).values())
            mem = self.members.group_members(grp)
            if self.static_joins:
                mem = self._with_static({grp: mem}, {grp}).get(grp, {})
            route = None
            if srcs or mem:
                family = 4 if ipaddress.ip_address(grp).version == 4 else 6
                routers = self.members.router_ports(family) | set(self.config.flood_ports)
                mode, _ = self.tree_config.mode_for(grp)
                center = None
                try:
                    if mode == "shared":
                        if self._center is None and g.number_of_nodes():
                            self._center = _center(g, cache)
                        center = self._center
                    route = forwarding.compute_group(grp, g, mem, routers, srcs, self.tree_config, cache, center, self.incremental, self._adopted_route(grp, srcs, held) or self.routes.get(grp))
                except Exception as e:  # never let one group break the controller
                    self.counters["tree_error"] += 1
                    self.counters["tree_error:" + type(e).__name__] += 1
                    if self.counters["tree_error:" + type(e).__name__] == 1:
                        LOG.exception("computing the tree of %s failed (the previous route is kept; counted as tree_error)", grp)
                    if grp in self.routes:
                        continue  # keep what works: the previous route stays installed
            new = set(route.entries) if route is not None else set()
            gc = self._batch.get(grp)
            if gc is None:
                # before: what the switches hold; our table says the same, except on switches
                # whose adopted entries are frozen (restart grace): read those from `installed`
                before = {d: list(self.mtables[d].by_group.get(grp, ())) for d in old if d in self.mtables and d not in self.frozen}
                for d, by_grp in held.items():
                    if by_grp.get(grp):
                        before[d] = list(by_grp[grp])
                gc = self._batch[grp] = plan.GroupChange(before, {}, [])
            gc.sources = srcs
            for d in old | new:
                mt = self.mtables.get(d)
                if mt is None:
                    continue
                entries = route.entries.get(d, ()) if route is not None else ()
                if d in self.frozen and entries:
                    # restart grace: no negative-cache entry may shadow an adopted (S,G) entry
                    fk = self.frozen[d][0]
                    entries = [e for e in entries if not (e[1] == forwarding.PRIO_NEG and (TABLE_MCAST, forwarding.PRIO_SG, e[0]) in fk)]
                keys, gids = mt.set_group(grp, entries)
                if keys or gids:
                    ck, cg = changed.setdefault(d, (set(), set()))
                    ck |= keys
                    cg |= gids
            gc.new = {d: list(self.mtables[d].by_group.get(grp, ())) for d in new if d in self.mtables}
            for d in old - new:
                self.by_switch.get(d, set()).discard(grp)
            for d in new:
                self.by_switch.setdefault(d, set()).add(grp)
            if self.incremental:
                keep = set(route.trees) if route is not None and route.mode == "steiner" else set()
                for key in [k for k in self.incremental if k[0] == grp and k[1] not in keep]:
                    del self.incremental[key]
            if route is None:
                self.routes.pop(grp, None)
                self.route_switches.pop(grp, None)
            else:
                self.routes[grp] = route
                self.route_switches[grp] = new
                for addr, edges in route.trees.items():
                    if addr != "*" and not edges and not self._has_local_receivers(route, addr):
                        self.negative.setdefault((grp, addr), now + self.tree_config.negative_cache_seconds)
                    else:
                        self.negative.pop((grp, addr), None)
        self.timings["trees"] += time.perf_counter() - t0
        return changed

    def _adopted_route(self, grp, srcs, held: dict) -> GroupRoute | None:
        """During the restart grace, the trees the switches still hold (adopted entries),
        as the previous route: rebuilt trees keep their links where a shortest path allows,
        so they come out equal to what is installed and nothing moves (two entries for one
        stream on a switch would duplicate it). Preferred over our own earlier route while
        the grace lasts: switches adopted later complete the picture."""
        if not held or not srcs:
            return None
        tables = {d: by_grp[grp] for d, by_grp in held.items() if by_grp.get(grp)}
        if not tables:
            return None
        links = self.topo.link_ports()
        route = GroupRoute(grp, self.tree_config.mode_for(grp)[0])
        for s in srcs:
            w = plan.walk(tables, links, s.dpid, s.port, s.addr)
            route.trees[s.addr] = [(p, 0, c, 0) for c, p in w.parent.items() if p is not None]
        return route

    def repair_trees(self) -> set:
        """Background pass: re-optimise incrementally grown steiner trees (they drift under
        churn); returns the groups whose tree changed (to be reinstalled make-before-break)."""
        changed = set()
        for (grp, _src), inc in list(self.incremental.items()):
            try:
                if inc.repair():
                    changed.add(grp)
                    self.counters["steiner_repairs"] += 1
            except Exception:  # a disconnected terminal etc.: the next recompute handles it
                self.counters["steiner_repair_error"] += 1
        return changed

    def _with_static(self, members: dict, groups) -> dict:
        """Membership interest merged with static joins (union of what each port wants)."""
        merged = {g: dict(p) for g, p in members.items() if g in groups}
        for (d, p, g), srcs in self.static_joins.items():
            if g not in groups:
                continue
            static = Interest("exclude", frozenset()) if srcs is None else Interest("include", srcs)
            ports = merged.setdefault(g, {})
            ports[(d, p)] = merge_interest(ports.get((d, p)), static)
        return merged

    # ================================================================== operator writes
    def static_join(self, now: float, dpid: int, port: int, group, source=None) -> Out:
        """Port (dpid, port) receives (source, group), or (*, group) when source is None."""
        grp = ipaddress.ip_address(group)
        key = (dpid, port, grp)
        cur = self.static_joins.get(key, frozenset()) if key in self.static_joins else frozenset()
        if source is None:
            self.static_joins[key] = None
        elif key in self.static_joins and self.static_joins[key] is None:
            pass  # (*,G) already covers every source
        else:
            self.static_joins[key] = frozenset(cur | {ipaddress.ip_address(source)})
        self.counters["static_join"] += 1
        return self._finish(now, Out(), set(), {grp})

    def static_leave(self, now: float, dpid: int, port: int, group, source=None) -> tuple[bool, Out]:
        """Undo a static join; returns (found, changes)."""
        grp = ipaddress.ip_address(group)
        key = (dpid, port, grp)
        if key not in self.static_joins:
            return False, Out()
        cur = self.static_joins[key]
        if source is None:
            del self.static_joins[key]
        else:
            s = ipaddress.ip_address(source)
            if cur is None or s not in cur:
                return False, Out()
            rest = cur - {s}
            if rest:
                self.static_joins[key] = rest
            else:
                del self.static_joins[key]
        self.counters["static_leave"] += 1
        return True, self._finish(now, Out(), set(), {grp})

    def set_tree_config(self, now: float, tree_config: TreeConfig) -> Out:
        """Replace tree modes/RPs per range; every group is recomputed (make-before-break)."""
        self.tree_config = tree_config
        return self._finish(now, Out(), set(), set(self.routes) | set(self.sources) | set(self.members.groups()))

    @staticmethod
    def _has_local_receivers(route: GroupRoute, addr) -> bool:
        for entries in route.entries.values():
            for m, prio, outs, _ in entries:
                if prio == forwarding.PRIO_NEG:
                    return False
        return True

    # ================================================================== switch / port / link events
    def switch_enter(self, now: float, dpid: int, ports, readback: bool = False) -> Out:
        """A switch connected. `ports`: iterable of (port_no, is_up, hw_addr).

        readback=False: start from a clean table (delete all our entries, install all).
        readback=True: the adapter is reading back what the switch holds and will call
        `adopt()`; until then nothing is sent to it (so nothing is ever torn down blindly).
        """
        self.counters["switch_enter"] += 1
        if self.started is None:
            self.started = now
            mcfg = self.members.config
            grace = self.config.restart_grace
            if grace is None:
                grace = self.config.settle + mcfg.timers.startup_query_interval + mcfg.query_response_interval + 2.0
            self.grace_until = now + grace
        returning = self.absent_since.pop(dpid, None) is not None and dpid in self.mtables
        self.topo.add_switch(now, dpid, ports)
        self.installed[dpid] = SwitchState()
        self.frozen.pop(dpid, None)
        self._base.pop(dpid, None)
        if not returning:
            self.mtables[dpid] = McastTable()
            for grp, sw in self.route_switches.items():
                sw.discard(dpid)  # its entries must be re-made for the new (empty) table
        out = Out()
        if readback:
            self.pending_readback.add(dpid)
        else:
            out.add(dpid, [DeleteAllOurs()])
        return self._finish(now, out, set(self.installed), set(), topo_changed=True)

    def adopt(self, now: float, dpid: int, flows: list[FlowEntry] | None, groups: list[GroupEntry] | None, meters=None) -> Out:
        """The switch's read-back arrived (None: it failed: start clean).

        What it holds becomes `installed`, and one diff makes it what we want: entries
        still wanted stay untouched (no flap on reconnect, nothing duplicated). Within the
        restart grace (controller just started, membership not rebuilt yet), multicast
        entries found are kept as they are until the grace ends, their groups are adopted
        so rebuilt trees reuse the same ids, and their first hops name the sources.
        """
        if dpid not in self.pending_readback or dpid not in self.installed:
            return Out()
        self.pending_readback.discard(dpid)
        out = Out()
        if flows is None or groups is None:
            self.counters["readback_failed"] += 1
            out.add(dpid, [DeleteAllOurs()])
            self.installed[dpid] = SwitchState()
            return self._finish(now, out, {dpid}, set())
        inst = SwitchState(
            {f.key: f for f in flows if f.cookie & COOKIE_MASK_ALL == COOKIE_PREFIX},
            {g.group_id: g for g in groups},
            {m.meter_id: m for m in meters or ()},
        )
        self.installed[dpid] = inst
        self.counters["readback_adopted"] += 1
        self.counters["readback_flows"] += len(inst.flows)
        self.counters["readback_groups"] += len(inst.groups)
        if self.grace_until is not None and now < self.grace_until:
            keys, gids = set(), set()
            adopt_groups = {}
            for g in inst.groups.values():
                ports = [a.port for b in g.buckets for a in b if isinstance(a, Output)]
                if g.type == "all" and len(ports) == len(g.buckets):
                    adopt_groups[g.group_id] = frozenset(ports)
            for f in inst.flows.values():
                if f.table == TABLE_MCAST and f.cookie == COOKIE_MCAST and f.priority >= forwarding.PRIO_STAR_G:
                    keys.add(f.key)
                    gids.update(a.group_id for a in f.actions if isinstance(a, ToGroup))
                    m = dict(f.match)
                    src = m.get("ipv4_src") or m.get("ipv6_src")
                    grp = m.get("ipv4_dst") or m.get("ipv6_dst")
                    if src and grp and "in_port" in m and f.priority == forwarding.PRIO_SG:
                        self.candidates.append((ipaddress.ip_address(grp), ipaddress.ip_address(src), dpid, m["in_port"]))
                else:
                    # host admissions, transit admissions of link ports, flooding...: kept
                    # (not deleted) until the grace ends. A switch that is back before its
                    # neighbours does not know its links yet; deleting its `in_port=link`
                    # admission would drop the streams crossing it until discovery (seen: 1.2 s)
                    keys.add(f.key)
            self.frozen[dpid] = (keys, gids)
            self.counters["adopted_mcast_flows"] += sum(1 for k in keys if k[0] == TABLE_MCAST and k[1] >= forwarding.PRIO_STAR_G)
            self._rebuild_table(dpid, inst, hold={g: p for g, p in adopt_groups.items() if g in gids})
            # the trees of the groups it holds are re-derived with its entries known
            regroups = {plan.group_of_match(k[2]) for k in keys if k[0] == TABLE_MCAST} - {None}
        else:
            self._rebuild_table(dpid, inst)
            regroups = set()
        self._finish(now, out, {dpid}, regroups)
        for c in out.all_changes(dpid):
            self.counters["adopt_changes"] += 1
            self.counters["adopt_changes:" + type(c).__name__] += 1
        return out

    def _rebuild_table(self, dpid: int, inst: SwitchState, hold: dict | None = None) -> None:
        """Re-derive a switch's multicast table around the group ids it really holds.

        Why: while a switch waited for its read-back, trees were computed for it with ids
        of our own choosing; the switch may hold those very ids with other buckets
        (controller restart, switches reconnecting seconds apart). Keeping our choice
        would rewrite groups that its flows still point at. Instead the ids it holds
        keep their bucket sets (`hold`: adopted for the restart grace; otherwise the
        ones still needed keep their id and the rest are deleted), and new bucket sets
        get ids above every id the switch holds."""
        old = self.mtables.get(dpid)
        mt = McastTable()
        if hold is None:
            hold = {}
            for g in inst.groups.values():
                ports = [a.port for b in g.buckets for a in b if isinstance(a, Output)]
                if g.type == "all" and len(ports) == len(g.buckets):
                    hold[g.group_id] = frozenset(ports)
            temporary = False
        else:
            temporary = True
        mt.adopt(hold)
        mt._next = max([mt._next] + [gid + 1 for gid in inst.groups])
        fk = self.frozen.get(dpid, (set(), set()))[0]
        for grp, entries in (old.by_group.items() if old is not None else ()):
            if fk:
                entries = [e for e in entries if not (e[1] == forwarding.PRIO_NEG and (TABLE_MCAST, forwarding.PRIO_SG, e[0]) in fk)]
            mt.set_group(grp, entries)
        if not temporary:
            mt.release_held()  # unused ones go (deleted by the diff), used ones stay as they are
        self.mtables[dpid] = mt

    def audit_token(self, dpid: int) -> int:
        """Taken when a read-back for an audit is requested (see `audit`)."""
        return self._change_seq[dpid]

    def audit(self, now: float, dpid: int, token: int, flows: list[FlowEntry] | None, groups: list[GroupEntry] | None, meters=None) -> Out:
        """Periodic audit: compare a read-back with what we believe is installed and repair drift.

        `token` from `audit_token` at request time: if we sent changes to the switch since,
        the read-back may predate them, so the audit is skipped (the next one will do).
        """
        if flows is None or groups is None or dpid not in self.installed or dpid in self.pending_readback:
            return Out()
        if token != self._change_seq[dpid]:
            self.counters["audit_skipped_busy"] += 1
            return Out()
        self.counters["audit_runs"] += 1
        have = SwitchState(
            {f.key: f for f in flows if f.cookie & COOKIE_MASK_ALL == COOKIE_PREFIX},
            {g.group_id: g for g in groups},
            {m.meter_id: m for m in meters} if meters is not None else dict(self.installed[dpid].meters),
        )
        inst = self.installed[dpid]
        if have.flows == inst.flows and have.groups == inst.groups and have.meters == inst.meters:
            return Out()
        missing = len(set(inst.flows) - set(have.flows)) + len(set(inst.groups) - set(have.groups))
        extra = len(set(have.flows) - set(inst.flows)) + len(set(have.groups) - set(inst.groups))
        self.counters["audit_repairs"] += 1
        self.counters["audit_missing_entries"] += missing
        self.counters["audit_extra_entries"] += extra
        self.installed[dpid] = have
        return self._sync(now, {dpid})

    def _end_grace(self, now: float) -> Out:
        self.grace_until = None
        groups = set()
        for dpid in list(self.frozen):
            mt = self.mtables.get(dpid)
            if mt is not None:
                mt.release_held()
        self.frozen.clear()
        self.candidates = []
        self.counters["restart_grace_ended"] += 1
        # adopted entries become the rebuilt trees: a tree change like any other (planned)
        return self._finish(now, Out(), set(self.installed), groups, extra_mc=self._drift(set(self.installed)))

    def _drift(self, dpids) -> dict[int, tuple[set, set]]:
        """Tree entries and groups where a switch holds something else than its table
        says, as `mc` for `_sync`, with the groups' before/after for the planner (the
        "before" read from what the switches hold)."""
        mc: dict[int, tuple[set, set]] = {}
        groups = set()
        for d in dpids:
            inst, mt = self.installed.get(d), self.mtables.get(d)
            if inst is None or mt is None or d in self.pending_readback or d in self.absent_since:
                continue
            have = {k for k, f in inst.flows.items() if _is_tree_flow(f)}
            keys = {k for k in have | set(mt.flows) if inst.flows.get(k) != mt.flows.get(k)}
            gids = {g for g in set(inst.groups) | set(mt.groups) if inst.groups.get(g) != mt.groups.get(g)}
            if keys or gids:
                mc[d] = (keys, gids)
                groups.update(plan.group_of_match(k[2]) for k in keys)
        groups.discard(None)
        held = _held_trees(self.installed, list(self.installed)) if groups else {}
        for grp in groups:
            old = {d: list(by_grp[grp]) for d, by_grp in held.items() if by_grp.get(grp)}
            new = {d: list(mt.by_group[grp]) for d, mt in self.mtables.items() if grp in mt.by_group}
            self._batch[grp] = plan.GroupChange(old, new, list(self.sources.get(grp, {}).values()))
        return mc

    def _take_candidates(self, now: float) -> set:
        """Sources named by adopted (S,G) entries whose ingress port faces a host.

        Every adopted entry is a candidate first hop: which one really is cannot be told
        until discovery has found the links (switches reconnect in any order, seconds
        apart, and a transit entry's ingress looks like a host port until its link is
        seen). So candidates stay until the restart grace ends: a source learned on a
        port that turns out to be a link is forgotten (`link_add`), and the next pass
        learns it from the candidate whose port still faces a host."""
        groups = set()
        for grp, src, dpid, port in self.candidates:
            if self.topo.port_kind(now, dpid, port) != "edge":
                continue
            srcs = self.sources.setdefault(grp, {})
            if src not in srcs:
                srcs[src] = SourceInfo(src, dpid, port)
                groups.add(grp)
                self.counters["source_adopted"] += 1
        for grp in [g for g, v in self.sources.items() if not v]:
            del self.sources[grp]
        return groups

    def switch_leave(self, now: float, dpid: int) -> Out:
        """The control channel of a switch went away.

        With fail_mode secure the switch keeps forwarding on what it holds, so it stays in
        the graph and in the trees: its hosts keep their traffic. Nothing is sent to it
        until it is back (then a read-back and a diff), links through it are dropped only
        when its neighbours report their ports down. If it stays away longer than the
        group membership interval it is forgotten for good (see `tick`).
        """
        if dpid not in self.installed:
            return Out()
        self.counters["switch_leave"] += 1
        self.pending_readback.discard(dpid)
        self.absent_since[dpid] = now
        return Out()

    def _forget_switch(self, now: float, dpid: int, out: Out) -> set:
        self.installed.pop(dpid, None)
        self.frozen.pop(dpid, None)
        self.mtables.pop(dpid, None)
        self._base.pop(dpid, None)
        self.topo.remove_switch(dpid)
        self.hosts.forget_switch(dpid)
        eff = self.members.remove_switch(now, dpid)
        self._member_ports = {k for k in self._member_ports if k[0] != dpid}
        for grp, sw in self.route_switches.items():
            sw.discard(dpid)
        self.by_switch.pop(dpid, None)
        self.counters["switch_forgotten"] += 1
        return self._effects(now, eff, out) | self._forget_sources(lambda s: s.dpid == dpid)

    def port_update(self, now: float, dpid: int, port_no: int, up: bool, hw_addr: str = "") -> Out:
        changed = self.topo.port_update(now, dpid, port_no, up, hw_addr)
        groups = set()
        if not up:
            self.hosts.forget_port(dpid, port_no)
            groups = self._forget_sources(lambda s: (s.dpid, s.port) == (dpid, port_no))
        if not changed and not groups:
            return Out()
        return self._finish(now, Out(), set(self.installed), groups, topo_changed=changed)

    def port_delete(self, now: float, dpid: int, port_no: int) -> Out:
        self.topo.port_delete(dpid, port_no)
        self.hosts.forget_port(dpid, port_no)
        groups = self._forget_sources(lambda s: (s.dpid, s.port) == (dpid, port_no))
        return self._finish(now, Out(), set(self.installed), groups, topo_changed=True)

    def link_add(self, now: float, src: tuple[int, int], dst: tuple[int, int]) -> Out:
        if not self.topo.link_add(src, dst):
            return Out()
        self.counters["link_add"] += 1
        # hosts and sources wrongly learned on what turned out to be a switch port
        for ref in (src, dst):
            self.hosts.forget_port(*ref)
        groups = self._forget_sources(lambda s: (s.dpid, s.port) in (src, dst))
        return self._finish(now, Out(), set(self.installed), groups, topo_changed=True)

    def link_delete(self, now: float, src: tuple[int, int], dst: tuple[int, int]) -> Out:
        if src[0] in self.absent_since or dst[0] in self.absent_since:
            # discovery lost sight of a switch whose control channel is down; its data plane
            # may well work. Neighbours' port-down events are what take a link away.
            self.counters["link_delete_ignored_absent"] += 1
            return Out()
        if not self.topo.link_delete(src, dst):
            return Out()
        self.counters["link_delete"] += 1
        return self._finish(now, Out(), set(self.installed), set(), topo_changed=True)

    def _forget_sources(self, pred) -> set:
        groups = set()
        for grp, srcs in list(self.sources.items()):
            for addr in [a for a, s in srcs.items() if pred(s)]:
                del srcs[addr]
                self.negative.pop((grp, addr), None)
                groups.add(grp)
            if not srcs:
                del self.sources[grp]
        return groups

    # ================================================================== packets
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
        if cookie == COOKIE_SRCDISC:
            return self._source_discovery(now, dpid, in_port, eth, data)
        return self._miss(now, dpid, in_port, eth, data)

    def _budget(self, kind: str, key, rate: float, now: float) -> bool:
        b = self._budgets.get((kind, key))
        if b is None:
            if len(self._budgets) > 100000:  # bounded: ports come and go
                self._budgets.clear()
            b = self._budgets[(kind, key)] = TokenBucket(rate)
        return b.take(now)

    def _learn(self, now: float, dpid: int, in_port: int, eth: EthInfo) -> bool:
        src = bytes.fromhex(eth.src.replace(":", ""))
        if src[0] & 1 or src == b"\x00" * 6:
            self.counters["drop_bad_src_mac"] += 1
            return False
        changed, _old, status = self.hosts.learn(now, eth.src, dpid, in_port)
        h = self.hosts.hosts.get(eth.src)
        if h is not None and eth.ip_src and eth.ip_src not in ("0.0.0.0", "::"):
            ips = h.ipv6 if ":" in eth.ip_src else h.ipv4
            if len(ips) < 16:
                ips.add(eth.ip_src)
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
            # this switch first: its admission entry must precede the re-injected packet
            self._sync_keys(now, self._host_moved(now, eth.src), out, first=dpid)
        if eth.src in self.hosts.hosts and self.hosts.hosts[eth.src].dpid == dpid:
            # re-run the pipeline now that the host is admitted (no first-packet loss)
            out.add(dpid, [PacketOut(in_port, (Output(OFPP_TABLE),), data)])
        return out

    def _punted(self, now: float, dpid: int, in_port: int, eth: EthInfo, data: bytes) -> Out:
        kind = "igmp" if eth.ip_proto == IPPROTO_IGMP else "pim" if eth.ip_proto == IPPROTO_PIM else "mld"
        self.counters[f"punt_{kind}"] += 1
        # per port first (a flooding host cannot use up the switch's budget), then per switch
        if not self._budget("punt", (dpid, in_port), self.config.punt_per_port_per_second, now) or not self._budget(
            "punt", dpid, self.config.punt_per_second, now
        ):
            self.members.count_drop("rate_limited")
            self.counters["drop_punt_rate_limited"] += 1
            return Out()
        port_kind = self.topo.port_kind(now, dpid, in_port)
        if port_kind != "edge":
            # membership lives on host-facing ports only; a report on a switch port is not state
            self.counters[f"drop_punt_{port_kind}_port"] += 1
            return Out()
        out = Out()
        if self._learn(now, dpid, in_port, eth):
            self._sync_keys(now, self._host_moved(now, eth.src), out, first=dpid)
        t0 = time.perf_counter()
        parsed = packets.parse_frame(data)
        if isinstance(parsed, Drop):
            self.members.count_drop(parsed.reason)
            return out
        eff = self.members.handle(now, dpid, in_port, parsed.message)
        self.timings["membership"] += time.perf_counter() - t0
        groups = self._effects(now, eff, out, data)
        return self._finish(now, out, set(), groups)

    def _source_discovery(self, now: float, dpid: int, in_port: int, eth: EthInfo, data: bytes) -> Out:
        self.counters["source_packet_in"] += 1
        if self.topo.port_kind(now, dpid, in_port) != "edge":
            self.counters["drop_source_not_edge"] += 1
            return Out()
        if not self._budget("src", dpid, self.config.source_discovery_per_second, now):
            self.counters["drop_source_rate_limited"] += 1
            return Out()
        try:
            src = ipaddress.ip_address(eth.ip_src)
            grp = ipaddress.ip_address(eth.ip_dst)
        except (ValueError, TypeError):
            self.counters["drop_source_bad_ip"] += 1
            return Out()
        if not grp.is_multicast or src.is_multicast or src.is_unspecified or (grp.version == 4 and grp in _LL4) or (
            grp.version == 6 and grp in _LL6
        ):
            self.counters["drop_source_bad_ip"] += 1
            return Out()
        srcs = self.sources.setdefault(grp, {})
        known = srcs.get(src)
        info = SourceInfo(src, dpid, in_port)
        out = Out()
        if known == info:
            pend = self._installing.get((grp, src))
            if pend is not None and now < pend[0]:
                # its tree is still being installed (the packet overtook it): keep it, in
                # order, behind that tree (Outs are sent in order); nothing is re-sent
                if pend[1] >= SOURCE_BUFFER:
                    self.counters["drop_source_buffer_full"] += 1
                    return out
                pend[1] += 1
                self.counters["source_packet_buffered"] += 1
                self._reinject(dpid, in_port, grp, src, data, out)
                return out
            # the switch lost (or expired) the entry while we still hold the source: re-send
            inst = self.installed.get(dpid)
            keys = set()
            if inst is not None:
                key = self._first_hop_key(dpid, in_port, grp, src)
                if key is not None and inst.flows.pop(key, None) is not None:
                    keys.add(key)
            self.counters["source_refresh"] += 1
            self._finish(now, out, set(), set())
            self._sync(now, set(), out, {dpid: (keys, set())})
            self._reinject(dpid, in_port, grp, src, data, out)
            return out
        else:
            if len(srcs) >= MAX_SOURCES_PER_GROUP and known is None:
                self.counters["drop_source_limit"] += 1
                return Out()
            srcs[src] = info
            self.counters["source_learned" if known is None else "source_moved"] += 1
            groups = {grp}
        self._finish(now, out, set(), groups)
        # packets that reach the controller before the tree is confirmed are kept behind it
        if len(self._installing) >= 4 * MAX_SOURCES_PER_GROUP:
            self._installing = {k: v for k, v in self._installing.items() if now < v[0]}
        self._installing[(grp, src)] = [now + INSTALL_WINDOW, 0]
        out.confirms.append((grp, src))
        # deliver this first packet along the new tree, once the tree is installed
        self._reinject(dpid, in_port, grp, src, data, out)
        return out

    def _first_hop_key(self, dpid: int, in_port: int, grp, src):
        """The flow key of `src`'s entry at its first hop, if the route has one."""
        route = self.routes.get(grp)
        for m, prio, _outs, _ in (route.entries.get(dpid, ()) if route is not None else ()):
            md = dict(m)
            if md.get("in_port") == in_port and (md.get("ipv4_src") or md.get("ipv6_src")) == str(src):
                return (TABLE_MCAST, prio, m)
        return None

    def _reinject(self, dpid: int, in_port: int, grp, src, data: bytes, out: Out) -> None:
        """Send a punted packet of `src` through the pipeline again, last in `out` (after
        its tree), but only if its first-hop entry is (about to be) installed: otherwise
        it would come straight back (switch awaiting read-back, tree not computable)."""
        key = self._first_hop_key(dpid, in_port, grp, src)
        inst = self.installed.get(dpid)
        if key is None or inst is None or key not in inst.flows or dpid in self.pending_readback:
            self.counters["drop_source_no_entry"] += 1
            return
        out.add(dpid, [PacketOut(in_port, (Output(OFPP_TABLE),), data)], late=True)

    def confirmed(self, now: float, tokens) -> None:
        """The adapter sent (and switches confirmed) an Out: the new sources it installed
        are live, so their packets reaching the controller again mean a lost entry."""
        for t in tokens:
            self._installing.pop(t, None)

    # ================================================================== time
    def tick(self, now: float) -> Out:
        """Periodic: ports that settled, membership timers and queries, negative-cache expiry."""
        groups = set()
        for key, t in list(self.negative.items()):
            if self.frozen:
                break  # adopted trees after a restart: nobody has re-joined yet, no source is judged unwanted
            if now >= t:
                grp, addr = key
                del self.negative[key]
                srcs = self.sources.get(grp)
                if srcs is not None and addr in srcs:
                    del srcs[addr]
                    if not srcs:
                        del self.sources[grp]
                    groups.add(grp)
                    self.counters["source_expired"] += 1
        if self.grace_until is not None and now >= self.grace_until:
            out = self._end_grace(now)
            out.extend(self.tick(now))
            return out
        forgot = False
        for dpid, since in list(self.absent_since.items()):
            if now - since >= self.members.config.group_membership_interval:
                del self.absent_since[dpid]
                out0 = Out()
                groups |= self._forget_switch(now, dpid, out0)
                forgot = True
        if forgot:
            return self._finish(now, Out(), set(self.installed), groups, topo_changed=True)
        if self.incremental:
            if self._next_repair is None:
                self._next_repair = now + self.config.steiner_repair_interval
            elif now >= self._next_repair:
                self._next_repair = now + self.config.steiner_repair_interval
                groups |= self.repair_trees()
        settle_due = self._next_settle is not None and now >= self._next_settle
        nd = self.members.next_deadline()
        members_due = nd is not None and now >= nd
        if not (groups or settle_due or members_due):
            return Out()
        if settle_due:
            self._ports_dirty = True
            self._settled_upto = now
        dirty = set(self.installed) if settle_due else set()
        return self._finish(now, Out(), dirty, groups)

    def next_deadline(self) -> float | None:
        cands = [t for t in (self._next_settle, self.members.next_deadline(), min(self.negative.values(), default=None)) if t is not None]
        return min(cands) if cands else None

    # ================================================================== views (REST, tests)
    def all_counters(self) -> dict:
        c = {f"core.{k}": v for k, v in self.counters.items()}
        c.update({f"membership.{k}": v for k, v in self.members.counters().items()})
        return dict(sorted(c.items()))

    def group_view(self, grp) -> dict:
        route = self.routes.get(grp)
        members = self.members.groups().get(grp, {})
        if self.static_joins:
            members = self._with_static({grp: members}, {grp}).get(grp, {})
        return {
            "group": str(grp),
            "mode": route.mode if route else self.tree_config.mode_for(grp)[0],
            "root": route.root if route else None,
            "members": [{"dpid": d, "port": p, **i.to_dict(), "static": (d, p, grp) in self.static_joins} for (d, p), i in sorted(members.items())],
            "sources": [{"address": str(s.addr), "dpid": s.dpid, "port": s.port} for s in sorted(self.sources.get(grp, {}).values(), key=lambda s: str(s.addr))],
            "trees": {
                str(k): [{"from": [a, ap], "to": [b, bp]} for a, ap, b, bp in edges] for k, edges in (route.trees.items() if route else [])
            },
        }

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


MAX_SOURCES_PER_GROUP = 1024
# a new source's packets that reach the controller while its tree is being installed are
# re-injected behind the tree, up to this many per source (then counted drops) ...
SOURCE_BUFFER = 256
# ... for at most this long without the adapter's confirmation (then: the switch lost it)
INSTALL_WINDOW = 5.0
METER_ID_MAX = 0xFFFF0000


def merge_interest(a: Interest | None, b: Interest | None) -> Interest | None:
    """Union of two interests (RFC 4541 §2.1.2 item 7: forward what either wants)."""
    if a is None:
        return b
    if b is None:
        return a
    ex_a, ex_b = a.mode == "exclude", b.mode == "exclude"
    if ex_a and ex_b:
        return Interest("exclude", a.sources & b.sources)
    if ex_a:
        return Interest("exclude", a.sources - b.sources)
    if ex_b:
        return Interest("exclude", b.sources - a.sources)
    return Interest("include", a.sources | b.sources)
_LL4 = ipaddress.ip_network("224.0.0.0/24")
_LL6 = ipaddress.ip_network("ff02::/16")


def _group_key(g):
    a = ipaddress.ip_address(g)
    return (a.version, int(a))


def _without(changes: list[Change], keys, gids) -> list[Change]:
    """`changes` minus those on the given flow keys and group ids (planned separately)."""
    res: list[Change] = []
    for c in changes:
        if isinstance(c, (FlowAdd, FlowDelete)) and c.entry.key in keys:
            continue
        if isinstance(c, (GroupAdd, GroupModify)) and c.entry.group_id in gids:
            continue
        if isinstance(c, GroupDelete) and c.group_id in gids:
            continue
        if isinstance(c, Barrier) and (not res or isinstance(res[-1], Barrier)):
            continue
        res.append(c)
    while res and isinstance(res[-1], Barrier):
        res.pop()
    return res


def _center(g: nx.Graph, cache) -> int:
    """The shared trees' default root: the graph centre, or on a partitioned network the
    centre of the largest part (ties: the part with the smallest dpid), so a partition
    does not stop every group from being rerouted."""
    if nx.is_connected(g):
        return trees.choose_center(g, cache=cache)
    part = max(nx.connected_components(g), key=lambda c: (len(c), -min(c)))
    return trees.choose_center(g.subgraph(part).copy())


def _is_tree_flow(f: FlowEntry) -> bool:
    return f.table == TABLE_MCAST and f.cookie == COOKIE_MCAST and f.priority >= forwarding.PRIO_STAR_G


def _held_trees(installed: dict, dpids) -> dict[int, dict]:
    """Per switch, per group, the tree entries the switch holds (`GroupRoute.entries`
    form), in one pass over each switch's flows (callers need many groups at once)."""
    res: dict[int, dict] = {}
    for d in dpids:
        inst = installed.get(d)
        if inst is None:
            continue
        by_grp: dict = {}
        for f in inst.flows.values():
            if not _is_tree_flow(f):
                continue
            grp = plan.group_of_match(f.match)
            outs = set()
            for a in f.actions:
                if isinstance(a, ToGroup) and a.group_id in inst.groups:
                    outs.update(x.port for b in inst.groups[a.group_id].buckets for x in b if isinstance(x, Output))
            by_grp.setdefault(grp, []).append((f.match, f.priority, frozenset(outs), f.hard_timeout))
        res[d] = by_grp
    return res
