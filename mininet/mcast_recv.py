#!/usr/bin/env python3
"""Multicast receiver for tests: join groups with the host's real IGMP/MLD stack, record every datagram.

Runs inside a Mininet host (``h1.popen([sys.executable, 'mininet/mcast_recv.py', ...])``,
see mcast_sdn.traffic.start_receiver) and writes one JSON record per event (formats in
mcast_sdn/traffic.py): ``start``, ``joined`` per group, ``rx`` per datagram, ``wire``
per datagram seen on the interface while not a member, ``left``, ``done``.

    mcast_recv.py --group 239.1.1.1 [--group ff15::1] [--port 5001] [--iface h1-eth0]
                  [--source S ... | --block S ...] [--duration 10] [--join-after S]
                  [--leave-after S] [--out FILE] [--ready-file FILE] [--wire auto|on|off]

Joins are made the way an application would, so the kernel sends the reports itself:

* IPv4 any-source: IP_ADD_MEMBERSHIP (struct ip_mreqn, by interface index);
* IPv4 --source: IP_ADD_SOURCE_MEMBERSHIP per source (struct ip_mreq_source, whose
  Linux field order is multiaddr, interface, sourceaddr; the interface is given by its
  IPv4 address), or MCAST_JOIN_SOURCE_GROUP when the interface has no IPv4 address;
* IPv4 --block: IP_ADD_MEMBERSHIP, then IP_BLOCK_SOURCE per source: EXCLUDE {S...};
* IPv6 (chosen by the group's address): IPV6_JOIN_GROUP with the interface index;
  --source: MCAST_JOIN_SOURCE_GROUP; --block: IPV6_JOIN_GROUP + MCAST_BLOCK_SOURCE
  (struct group_source_req with sockaddr_storage).

The IGMP/MLD *version* is not chosen here. It is host state that the caller sets in
the host's namespace before starting the receiver (mcast_sdn.traffic.set_host_versions):
net.ipv4.conf.<if>.force_igmp_version (0 = default v3, 1, 2, 3) and
net.ipv6.conf.<if>.force_mld_version (0 = default v2, 1, 2). With IGMPv1 a leave is
silent, with IGMPv2/MLDv1 a --source join degrades to an any-source report.

One socket per group, bound to the group address and port with SO_REUSEADDR, so groups
never mix and several receivers on one host can share a port. IP_MULTICAST_ALL /
IPV6_MULTICAST_ALL are switched off: by default Linux hands a socket bound to G that
has *no* membership of G (before --join-after, after --leave-after) every datagram for
G that another socket of the host joined, so a second receiver on the host would make
a leave look like it never happened. IPv6 matches a socket's memberships by group only
(not by interface), so the arrival interface is taken from IPV6_PKTINFO (IP_PKTINFO
for IPv4) and datagrams from other interfaces are only counted (``other_iface`` in
``done``).

--leave-after drops the memberships at that time (seconds from start) but keeps
running until --duration. A UDP socket sees nothing once its membership is gone, so
with --wire (default auto: on when --join-after/--leave-after is given and the process
may open a packet socket) the receiver also captures datagrams for its groups/port on
the interface with an AF_PACKET socket and records those arriving while it is not a
member as ``wire``: what the network keeps sending after a leave (leave latency,
leaks) or before a join (flooding). Another member on the same host makes them
legitimate; use one receiver per host for such measurements.

Bounded: exits after --duration seconds, or on SIGTERM/SIGINT, leaving its groups
and writing ``done`` in both cases.
"""
from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mcast_sdn import traffic as T  # noqa: E402

MAX_JUNK_RECORDS = 20  # junk is counted always, recorded only this often (a flood must not fill the disk)
RECV_BUF = 65536 + 64


def _mcast_addr(text: str) -> str:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address")
    if not a.is_multicast:
        raise argparse.ArgumentTypeError(f"{text} is not a multicast address")
    return str(a)


def _unicast_addr(text: str) -> str:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address")
    if a.is_multicast or a.is_unspecified:
        raise argparse.ArgumentTypeError(f"{text} is not a unicast source address")
    return str(a)


def _port(text: str) -> int:
    p = int(text)
    if not 1 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"port {p} out of range")
    return p


def _seconds(text: str) -> float:
    v = float(text)
    if not (v >= 0 and v < 86400):
        raise argparse.ArgumentTypeError(f"{text} is not a duration in seconds")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mcast_recv.py", description=__doc__.split("\n\n")[0],
        epilog="IGMP/MLD version: set net.ipv4.conf.<if>.force_igmp_version / "
               "net.ipv6.conf.<if>.force_mld_version in the host before starting.")
    ap.add_argument("--group", action="append", type=_mcast_addr, required=True,
                    help="multicast group to join (repeatable; IPv6 if an IPv6 address)")
    ap.add_argument("--port", type=_port, default=T.DEFAULT_PORT, help="UDP port (default %(default)s)")
    ap.add_argument("--iface", default=None, help="interface (default: the first non-lo interface)")
    ap.add_argument("--source", action="append", type=_unicast_addr, default=[],
                    help="source-specific join: INCLUDE {S...} (repeatable)")
    ap.add_argument("--block", action="append", type=_unicast_addr, default=[],
                    help="any-source join that excludes S: EXCLUDE {S...} (repeatable)")
    ap.add_argument("--duration", type=_seconds, default=10.0,
                    help="hard bound on the run time in seconds (default %(default)s)")
    ap.add_argument("--join-after", type=_seconds, default=0.0, help="join this many seconds after start")
    ap.add_argument("--leave-after", type=_seconds, default=None,
                    help="leave this many seconds after start, keep recording until --duration")
    ap.add_argument("--out", default=None, help="JSON lines file (default: stdout)")
    ap.add_argument("--ready-file", default=None, help="created once the groups are joined")
    ap.add_argument("--wire", choices=("auto", "on", "off"), default="auto",
                    help="capture datagrams on the interface while not a member (default auto)")
    ap.add_argument("--allow-init-netns", action="store_true",
                    help="run even in PID 1's network namespace (real interfaces); refused by default")
    return ap


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Cross-option checks argparse cannot express (exits with status 2 like argparse)."""
    if args.source and args.block:
        ap.error("--source (INCLUDE) and --block (EXCLUDE) are exclusive: a membership has one filter mode")
    fams = {ipaddress.ip_address(g).version for g in args.group}
    for s in args.source + args.block:
        if ipaddress.ip_address(s).version not in fams:
            ap.error(f"source {s} has no group of its address family")
    if len(set(args.group)) != len(args.group):
        ap.error("a group is given twice")
    if args.duration <= 0:
        ap.error("--duration must be positive")
    if args.join_after >= args.duration:
        ap.error("--join-after must be less than --duration")
    if args.leave_after is not None and not args.join_after < args.leave_after < args.duration:
        ap.error("--leave-after must be after --join-after and before --duration")
    return args


def parse_args(argv=None) -> argparse.Namespace:
    ap = build_parser()
    return check_args(ap, ap.parse_args(argv))


guard_netns = T.guard_netns  # shared with the other tool (mcast_sdn/traffic.py)


class Recorder:
    """JSON lines to a file or stdout, one write and one flush per record (readers poll the file)."""

    def __init__(self, path: str | None):
        self.fh = open(path, "w", encoding="utf-8") if path else sys.stdout

    def __call__(self, event: str, t: float | None = None, **fields) -> None:
        rec = {"event": event, "t": time.time() if t is None else t}
        rec.update(fields)
        self.fh.write(T.dumps(rec))
        self.fh.flush()

    def close(self) -> None:
        if self.fh is not sys.stdout:
            self.fh.close()


def _rx_time(ancdata) -> float | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == T.SO_TIMESTAMPNS and len(data) >= struct.calcsize("@ll"):
            sec, nsec = struct.unpack_from("@ll", data)
            return sec + nsec / 1e9
    return None


def _rx_ifindex(ancdata) -> int | None:
    """Arrival interface from IP_PKTINFO (struct in_pktinfo) / IPV6_PKTINFO (struct in6_pktinfo)."""
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == T.IP_PKTINFO and len(data) >= 12:
            return struct.unpack_from("@i", data)[0]
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 20:
            return struct.unpack_from("@I", data, 16)[0]
    return None


_ANC = socket.CMSG_SPACE(struct.calcsize("@ll")) + socket.CMSG_SPACE(20)


class Group:
    """One group: its socket, its join/leave, and when it was a member (to classify wire captures)."""

    def __init__(self, group: str, port: int, iface: str, ifindex: int, iface_v4: str | None,
                 sources: list[str], blocks: list[str]):
        self.group = group
        self.port = port
        self.iface = iface
        self.ifindex = ifindex
        self.iface_v4 = iface_v4
        self.v6 = T.ip_version(group) == 6
        fam = 6 if self.v6 else 4
        self.sources = [s for s in sources if T.ip_version(s) == fam]
        self.blocks = [s for s in blocks if T.ip_version(s) == fam]
        self.api = ""
        self.member_from: float | None = None  # wall clock just before the join
        self.member_until: float | None = None  # wall clock just after the leave
        # (before, after) each join/leave call: a frame captured in there may or may not have
        # reached the socket too, so it is held back until the socket had its chance
        self.windows: list[tuple[float, float]] = []
        self.window_keys: set[tuple] = set()  # socket deliveries stamped inside a window
        self.pending: list[tuple[float, tuple, dict]] = []  # (read time, key, wire record)
        self.joined = False
        self.rx = 0
        self.wire = 0
        self.sock = socket.socket(socket.AF_INET6 if self.v6 else socket.AF_INET, socket.SOCK_DGRAM)
        s = self.sock
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:
            s.setsockopt(socket.SOL_SOCKET, T.SO_TIMESTAMPNS, 1)
        except OSError:
            pass  # fall back to the read time
        if self.v6:
            try:
                s.setsockopt(socket.IPPROTO_IPV6, T.IPV6_MULTICAST_ALL, 0)
            except OSError:
                pass  # kernels before 4.20: other sockets' joins may leak in
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            scope = ifindex if T.group_scope_needs_ifindex(group) else 0
            s.bind((group, port, 0, scope))
        else:
            s.setsockopt(socket.IPPROTO_IP, T.IP_MULTICAST_ALL, 0)
            s.setsockopt(socket.IPPROTO_IP, T.IP_PKTINFO, 1)
            s.bind((group, port))
        s.setblocking(False)

    # -- membership ---------------------------------------------------------
    def join(self) -> None:
        s, g = self.sock, self.group
        self.member_from = time.time()
        if self.v6:
            if self.sources:
                for src in self.sources:
                    s.setsockopt(socket.IPPROTO_IPV6, T.MCAST_JOIN_SOURCE_GROUP,
                                 T.pack_group_source_req(self.ifindex, g, src))
                self.api = "MCAST_JOIN_SOURCE_GROUP"
            else:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, T.pack_ipv6_mreq(g, self.ifindex))
                self.api = "IPV6_JOIN_GROUP"
                for src in self.blocks:
                    s.setsockopt(socket.IPPROTO_IPV6, T.MCAST_BLOCK_SOURCE,
                                 T.pack_group_source_req(self.ifindex, g, src))
                if self.blocks:
                    self.api += "+MCAST_BLOCK_SOURCE"
        else:
            if self.sources:
                for src in self.sources:
                    if self.iface_v4:
                        s.setsockopt(socket.IPPROTO_IP, T.IP_ADD_SOURCE_MEMBERSHIP,
                                     T.pack_ip_mreq_source(g, self.iface_v4, src))
                        self.api = "IP_ADD_SOURCE_MEMBERSHIP"
                    else:
                        s.setsockopt(socket.IPPROTO_IP, T.MCAST_JOIN_SOURCE_GROUP,
                                     T.pack_group_source_req(self.ifindex, g, src))
                        self.api = "MCAST_JOIN_SOURCE_GROUP"
            else:
                s.setsockopt(socket.IPPROTO_IP, T.IP_ADD_MEMBERSHIP, T.pack_ip_mreqn(g, self.ifindex))
                self.api = "IP_ADD_MEMBERSHIP"
                for src in self.blocks:
                    if self.iface_v4:
                        s.setsockopt(socket.IPPROTO_IP, T.IP_BLOCK_SOURCE,
                                     T.pack_ip_mreq_source(g, self.iface_v4, src))
                    else:
                        s.setsockopt(socket.IPPROTO_IP, T.MCAST_BLOCK_SOURCE,
                                     T.pack_group_source_req(self.ifindex, g, src))
                if self.blocks:
                    self.api += "+IP_BLOCK_SOURCE" if self.iface_v4 else "+MCAST_BLOCK_SOURCE"
        self.joined = True
        self.member_until = None
        self.windows.append((self.member_from, time.time()))

    def leave(self) -> None:
        """Drop the whole membership (whatever its filter) with one call; the kernel reports the change."""
        if not self.joined:
            return
        before = time.time()
        try:
            if self.v6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP,
                                     T.pack_ipv6_mreq(self.group, self.ifindex))
            else:
                self.sock.setsockopt(socket.IPPROTO_IP, T.IP_DROP_MEMBERSHIP,
                                     T.pack_ip_mreqn(self.group, self.ifindex))
        except OSError as e:
            if e.errno not in (errno.EADDRNOTAVAIL, errno.ENODEV):  # already gone with the interface
                raise
        self.joined = False
        self.member_until = time.time()
        self.windows.append((before, self.member_until))

    def in_window(self, t: float) -> bool:
        return any(b <= t <= a for b, a in self.windows)

    def membership_at(self, t: float) -> str:
        """'member', 'outside' or 'window' (during a join/leave call) at wall time t (a kernel timestamp)."""
        if self.in_window(t):
            return "window"
        if self.member_from is None or t < self.member_from:
            return "outside"
        if self.member_until is not None and t > self.member_until:
            return "outside"
        return "member"

    @property
    def mode(self) -> str:
        return "include" if self.sources else "exclude"


def parse_wire(data: bytes, proto: int):
    """(src, dst, dport, payload) of an IPv4/IPv6 UDP datagram in a captured frame (no link header), or None."""
    try:
        if proto == T.ETH_P_IP and len(data) >= 20 and data[0] >> 4 == 4:
            ihl = (data[0] & 0xF) * 4
            if data[9] != 17 or struct.unpack_from("!H", data, 6)[0] & 0x1FFF:
                return None  # not UDP, or a non-first fragment (no UDP header)
            src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
            off = ihl
        elif proto == T.ETH_P_IPV6 and len(data) >= 40 and data[0] >> 4 == 6:
            nh, off = data[6], 40
            while nh in (0, 43, 60):  # hop-by-hop, routing, destination options
                nh, off = data[off], off + (data[off + 1] + 1) * 8
            if nh != 17:
                return None
            src = socket.inet_ntop(socket.AF_INET6, data[8:24])
            dst = socket.inet_ntop(socket.AF_INET6, data[24:40])
        else:
            return None
        if len(data) < off + 8:
            return None
        dport = struct.unpack_from("!H", data, off + 2)[0]
        return src, dst, dport, data[off + 8:]
    except (IndexError, struct.error, OSError, ValueError):
        return None


def open_wire(iface: str):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(T.ETH_P_ALL))
    try:
        s.bind((iface, T.ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:
            s.setsockopt(socket.SOL_SOCKET, T.SO_TIMESTAMPNS, 1)
        except OSError:
            pass
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def run(args: argparse.Namespace) -> int:
    rec = Recorder(args.out)
    groups: list[Group] = []
    wire = None
    stop_reason = None
    counters = {"rx": 0, "wire": 0, "junk": 0, "foreign": 0, "other_iface": 0}
    wake_r, wake_w = socket.socketpair()
    old_handlers = {}

    def on_signal(signum, _frame):
        nonlocal stop_reason
        stop_reason = stop_reason or signal.Signals(signum).name

    if args.ready_file:
        Path(args.ready_file).unlink(missing_ok=True)
    try:
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            old_handlers[sig] = signal.signal(sig, on_signal)

        iface = args.iface or T.default_iface()
        if not iface:
            raise RuntimeError("no non-loopback interface; pass --iface")
        ifindex = T.iface_index(iface)
        iface_v4 = T.iface_ipv4(iface)
        for g in args.group:
            groups.append(Group(g, args.port, iface, ifindex, iface_v4, args.source, args.block))

        want_wire = args.wire == "on" or (args.wire == "auto" and (args.join_after > 0 or args.leave_after is not None))
        if want_wire:
            try:
                wire = open_wire(iface)
            except OSError as e:
                if args.wire == "on":
                    raise RuntimeError(f"--wire on: cannot open a packet socket on {iface}: {e}")
                rec("warning", msg=f"no wire capture (packet socket on {iface}: {e}); leave/join leaks are not seen")

        sel = selectors.DefaultSelector()
        sel.register(wake_r, selectors.EVENT_READ, None)
        for g in groups:
            sel.register(g.sock, selectors.EVENT_READ, g)
        if wire is not None:
            sel.register(wire, selectors.EVENT_READ, "wire")
        by_addr = {(g.group, g.port): g for g in groups}

        t0 = time.monotonic()
        join_at = t0 + args.join_after
        leave_at = None if args.leave_after is None else t0 + args.leave_after
        end = t0 + args.duration
        rec("start", iface=iface, ifindex=ifindex, groups=args.group, port=args.port, pid=os.getpid(),
            duration=args.duration, join_after=args.join_after, leave_after=args.leave_after,
            wire=wire is not None)
        state = "waiting"

        def read_group(g: Group) -> None:
            for _ in range(1000):  # bounded batch; select comes back if more is queued
                try:
                    data, anc, _flags, addr = g.sock.recvmsg(RECV_BUF, _ANC)
                except (BlockingIOError, InterruptedError):
                    return
                t = _rx_time(anc) or time.time()
                src = addr[0].split("%")[0]
                arrived = _rx_ifindex(anc)
                if arrived is not None and arrived != g.ifindex:
                    # IPv6 checks a socket's memberships by group only, not by interface, so a
                    # membership elsewhere on the host brings datagrams from other links in.
                    counters["other_iface"] += 1
                    continue
                d = T.decode(data)
                if d is None:
                    counters["junk"] += 1
                    if counters["junk"] <= MAX_JUNK_RECORDS:
                        rec("junk", t=t, group=g.group, src=src, size=len(data))
                    continue
                g.rx += 1
                counters["rx"] += 1
                if g.in_window(t):
                    key = (src, d[0], d[1])
                    g.window_keys.add(key)
                    g.pending = [p for p in g.pending if p[1] != key]  # its wire copy is no leak
                rec("rx", t=t, group=g.group, src=src, stream=d[0], seq=d[1], sent=d[2], size=len(data))

        def read_wire() -> None:
            for _ in range(1000):
                try:
                    data, anc, _flags, addr = wire.recvmsg(RECV_BUF, _ANC)
                except (BlockingIOError, InterruptedError):
                    return
                if addr[2] == socket.PACKET_OUTGOING:
                    continue
                p = parse_wire(data, addr[1])
                if p is None:
                    continue
                src, dst, dport, payload = p
                g = by_addr.get((dst, dport))
                if g is None:
                    continue
                t = _rx_time(anc) or time.time()
                where = g.membership_at(t)
                if where == "member":
                    continue  # the UDP socket has it: not a leak
                d = T.decode(payload)
                if d is None:
                    counters["foreign"] += 1
                    continue
                fields = dict(t=t, group=g.group, src=src, stream=d[0], seq=d[1], sent=d[2], size=len(payload))
                if where == "window":
                    key = (src, d[0], d[1])
                    if key not in g.window_keys:
                        g.pending.append((time.monotonic(), key, fields))
                    continue
                emit_wire(g, fields)

        def emit_wire(g: Group, fields: dict) -> None:
            g.wire += 1
            counters["wire"] += 1
            rec("wire", **fields)

        def flush_pending(force: bool = False) -> None:
            # 0.1 s is ages for a datagram already in the kernel to reach the socket's queue
            cutoff = time.monotonic() - 0.1
            for g in groups:
                keep = []
                for item in g.pending:
                    if force or item[0] <= cutoff:
                        emit_wire(g, item[2])
                    else:
                        keep.append(item)
                g.pending = keep

        while stop_reason is None:
            now = time.monotonic()
            if now >= end:
                stop_reason = "duration"
                break
            if state == "waiting" and now >= join_at:
                for g in groups:
                    g.join()
                    rec("joined", group=g.group, sources=g.sources, blocks=g.blocks, mode=g.mode,
                        iface=iface, port=g.port, api=g.api)
                state = "joined"
                if args.ready_file:
                    tmp = f"{args.ready_file}.tmp{os.getpid()}"
                    with open(tmp, "w") as fh:
                        fh.write(f"{os.getpid()}\n")
                    os.replace(tmp, args.ready_file)
            if state == "joined" and leave_at is not None and now >= leave_at:
                for g in groups:
                    g.leave()
                    rec("left", t=g.member_until, group=g.group, final=False)
                state = "left"
            deadlines = [end] + ([join_at] if state == "waiting" else []) + (
                [leave_at] if state == "joined" and leave_at is not None else [])
            if any(g.pending for g in groups):
                deadlines.append(time.monotonic() + 0.1)
            timeout = max(0.0, min(deadlines) - time.monotonic())
            for key, _mask in sel.select(timeout):
                if key.data is None:
                    try:
                        while wake_r.recv(64):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                elif key.data == "wire":
                    read_wire()
                else:
                    read_group(key.data)
            flush_pending()
        # drain what was already queued (kernel timestamps keep their times honest)
        for g in groups:
            read_group(g)
        if wire is not None:
            read_wire()
            for g in groups:
                read_group(g)
            flush_pending(force=True)
        rc = 0
    except Exception as e:  # noqa: BLE001 - reported as a record and an exit status
        rec("error", msg=f"{type(e).__name__}: {e}")
        print(f"mcast_recv.py: {type(e).__name__}: {e}", file=sys.stderr)
        stop_reason = stop_reason or "error"
        rc = 1
    finally:
        for g in groups:
            try:
                if g.joined:
                    g.leave()
                    rec("left", t=g.member_until, group=g.group, final=True)
            except OSError as e:
                rec("warning", msg=f"leave {g.group}: {e}")
            g.sock.close()
        if wire is not None:
            wire.close()
        rec("done", reason=stop_reason, rx=counters["rx"], wire=counters["wire"], junk=counters["junk"],
            other_iface=counters["other_iface"],
            per_group={g.group: {"rx": g.rx, "wire": g.wire} for g in groups})
        rec.close()
        signal.set_wakeup_fd(-1)
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
        wake_r.close()
        wake_w.close()
    return rc


def main(argv=None) -> int:
    args = parse_args(argv)
    why = guard_netns(args)
    if why:
        print(f"{Path(__file__).name}: {why}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
