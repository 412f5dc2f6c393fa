"""Drive the real decision core (mcast_sdn.core.Core) without a network.

The same path the Ryu adapter takes: ``Core.packet_in(now, dpid, port, cookie, frame)``
with real IGMPv3 report frames (``packets.build_igmp_report``) and real UDP first
packets for source discovery; the returned ``Out`` holds the FlowMods/GroupMods
(``ofmodel`` changes) the adapter would send. Clock: a simulated ``now`` advanced by
the caller (the core never reads a clock).
"""
from __future__ import annotations

import ipaddress
import pickle
import time

import common  # noqa: F401
from mcast_sdn import packets, topofile
from mcast_sdn.fakedp import connect
from mcast_sdn.core import Core, CoreConfig, Out
from mcast_sdn.forwarding import RangePolicy, TreeConfig
from mcast_sdn.messages import RecordType
from mcast_sdn.ofmodel import COOKIE_MISS, COOKIE_PUNT, COOKIE_SRCDISC, FlowEntry, GroupEntry


_BASE: dict[str, bytes] = {}


def tree_config(mode: str) -> TreeConfig:
    return TreeConfig(policies=(RangePolicy(ipaddress.ip_network("224.0.0.0/4"), mode),
                                RangePolicy(ipaddress.ip_network("ff00::/8"), mode)), default_mode=mode)


def fresh_core(spec: topofile.TopologySpec, mode: str = "spt", learn_hosts: bool = True) -> Core:
    """make_core(spec, mode), built once per topology and then cloned (pickle): building
    a k=8 fat-tree core with all hosts learned takes seconds (see the profile section)."""
    key = f"{spec.name}:{len(spec.switches)}:{len(spec.hosts)}:{learn_hosts}"
    if key not in _BASE:
        _BASE[key] = pickle.dumps(make_core(spec, "spt", learn_hosts))
    core = pickle.loads(_BASE[key])
    core.tree_config = tree_config(mode)
    return core


def make_core(spec: topofile.TopologySpec, mode: str = "spt", learn_hosts: bool = True) -> Core:
    tc = TreeConfig(policies=(RangePolicy(ipaddress.ip_network("224.0.0.0/4"), mode),
                              RangePolicy(ipaddress.ip_network("ff00::/8"), mode)), default_mode=mode)
    core = Core(CoreConfig(settle=0.0), tree_config=tc)
    connect(core, spec)
    core.tick(0.1)
    for h in spec.hosts if learn_hosts else ():  # every host learned (as after its first ARP)
        frame = b"\xff" * 6 + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28
        core.packet_in(0.1, spec.dpid(h.switch), h.port, COOKIE_MISS, frame)
    return core


def host_ip(h) -> str:
    return h.ip.split("/")[0]


def join_frame(h, group: str) -> bytes:
    return packets.build_igmp_report(3, h.mac, host_ip(h), records=[(RecordType.CHANGE_TO_EXCLUDE, group, ())])


def leave_frame(h, group: str) -> bytes:
    return packets.build_igmp_report(3, h.mac, host_ip(h), records=[(RecordType.CHANGE_TO_INCLUDE, group, ())])


def v2_report_frame(h, group: str, leave: bool = False) -> bytes:
    return packets.build_igmp_report(2, h.mac, host_ip(h), group, leave=leave)


def udp_frame(h, group: str) -> bytes:
    src = ipaddress.ip_address(host_ip(h))
    g = ipaddress.ip_address(group)
    mac = bytes.fromhex(packets.multicast_mac(g).replace(":", ""))
    hdr = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 8, 17, 0, 0]) + src.packed + g.packed
    return mac + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x00" + hdr + b"\x00" * 8


def group_addr(i: int) -> str:
    """Distinct routable ASM groups 239.x.y.z (i < 2**24)."""
    i += 1
    return f"239.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def count_mods(out: Out) -> tuple[int, int, int]:
    """(flow mods, group mods, packet outs) in an Out."""
    fm = gm = po = 0
    for d in {d for st in out.stages() for d in st}:
        for c in out.all_changes(d):
            name = type(c).__name__
            what = getattr(c, "entry", None)
            if isinstance(what, GroupEntry) or "Group" in name:
                gm += 1
            elif isinstance(what, FlowEntry) or "Flow" in name:
                fm += 1
            elif name == "PacketOut":
                po += 1
            else:
                fm += 1
    return fm, gm, po


class Driver:
    """A Core on a topology spec, fed with real frames; `now` advances 1 ms per event
    (the core's per-switch IGMP budget is 1,000 PacketIns/s)."""

    def __init__(self, spec, mode: str = "spt", step: float = 0.001, learn_hosts: bool = True):
        self.spec = spec
        self.core = fresh_core(spec, mode, learn_hosts)
        self.now = 1.0
        self.step = step

    def _in(self, h, cookie, frame) -> Out:
        self.now += self.step
        return self.core.packet_in(self.now, self.spec.dpid(h.switch), h.port, cookie, frame)

    def join(self, h, group) -> Out:
        return self._in(h, COOKIE_PUNT, join_frame(h, group))

    def leave(self, h, group) -> Out:
        return self._in(h, COOKIE_PUNT, leave_frame(h, group))

    def source(self, h, group) -> Out:
        return self._in(h, COOKIE_SRCDISC, udp_frame(h, group))

    def advance(self, dt: float) -> Out:
        self.now += dt
        return self.core.tick(self.now)

    def timed(self, f, *a):
        t0 = time.perf_counter()
        out = f(*a)
        return time.perf_counter() - t0, out
