"""Multicast test traffic: datagram format, record formats, summaries, Mininet-side helpers.

Standard library only and importable without Mininet, because three different processes
share it: the two tools in ``mininet/`` (``mcast_send.py``, ``mcast_recv.py``) run inside
Mininet host namespaces with the venv python, and the tests that drive them run in the
root namespace. Whatever one side writes the other side parses with the code in here.

Datagram payload (network byte order), then padding to the requested size::

    0      4   5      8          12                 20                 28
    | MCSD | v | pad  | stream u32 | seq u64          | sent float64     | zero padding...

``sent`` is ``time.time()`` (CLOCK_REALTIME) on the sender: every Mininet host shares
the machine's clock, so receive time minus ``sent`` is the one-way delay.

Records are JSON objects, one per line (``event`` says which):

* receiver (``mcast_recv.py``): ``start``, ``joined`` (per group: ``group``, ``sources``,
  ``blocks``, ``mode``, ``iface``), ``rx`` (a datagram the socket delivered: ``group``,
  ``src`` = IP source, ``stream``, ``seq``, ``sent``, ``size``), ``wire`` (a datagram for
  one of our groups seen on the interface while *not* joined, i.e. before
  ``--join-after`` or after ``--leave-after``: what the network still delivers to a
  non-member, which a UDP socket can never show), ``junk`` (undecodable payload),
  ``left`` (per group; ``final`` is true for the leave at exit), ``warning``, ``error``,
  ``done`` (counters);
* sender (``mcast_send.py``): ``start``, ``progress`` (optional), ``sent`` (summary:
  ``group``, ``src``, ``stream``, ``count``, ``first_seq``, ``last_seq``, ``t_first``,
  ``t_last``, ``errors``).

The ``t`` of receiver records is the kernel receive timestamp (SO_TIMESTAMPNS) when
there is one, so a datagram that waited in the socket buffer is not counted late.
"""
from __future__ import annotations

import ctypes
import ipaddress
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------
# Datagram format
# ---------------------------------------------------------------------------

MAGIC = b"MCSD"
VERSION = 1
_HEADER = struct.Struct("!4sB3xIQd")
HEADER_SIZE = _HEADER.size  # 28
MAX_SIZE = 65507  # largest IPv4 UDP payload; IPv6 allows 65527 but one limit keeps tools symmetric
DEFAULT_PORT = 5001


def encode(stream: int, seq: int, ts: float, size: int = HEADER_SIZE) -> bytes:
    """One datagram payload of exactly `size` bytes (header + zero padding).

    Raises ValueError for values that do not fit (the sender validates its arguments
    with this before it sends anything).
    """
    if not 0 <= stream < 2**32:
        raise ValueError(f"stream id {stream} out of range (u32)")
    if not 0 <= seq < 2**64:
        raise ValueError(f"sequence number {seq} out of range (u64)")
    if not HEADER_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size {size} out of range [{HEADER_SIZE}, {MAX_SIZE}]")
    head = _HEADER.pack(MAGIC, VERSION, stream, seq, float(ts))
    return head + bytes(size - HEADER_SIZE)


def decode(data: Any) -> tuple[int, int, float] | None:
    """(stream, seq, sent) of a payload, or None for anything that is not ours.

    Never raises: receivers see whatever the network delivers to the group/port,
    including other tools' traffic and truncated datagrams.
    """
    try:
        if len(data) < HEADER_SIZE:
            return None
        magic, version, stream, seq, ts = _HEADER.unpack_from(bytes(data[:HEADER_SIZE]))
    except Exception:  # noqa: BLE001 - junk of any type is "not ours"
        return None
    if magic != MAGIC or version != VERSION or not math.isfinite(ts):
        return None
    return stream, seq, ts


# ---------------------------------------------------------------------------
# Socket option structures (Linux). Pure packing, kept here so it is unit-tested.
# ---------------------------------------------------------------------------

# Linux values; Python's socket module lacks most of them (3.11 has none of these).
IP_PKTINFO = 8
IP_ADD_MEMBERSHIP = getattr(socket, "IP_ADD_MEMBERSHIP", 35)
IP_DROP_MEMBERSHIP = getattr(socket, "IP_DROP_MEMBERSHIP", 36)
IP_UNBLOCK_SOURCE = 37
IP_BLOCK_SOURCE = 38
IP_ADD_SOURCE_MEMBERSHIP = 39
IP_DROP_SOURCE_MEMBERSHIP = 40
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29
MCAST_JOIN_GROUP = 42
MCAST_BLOCK_SOURCE = 43
MCAST_UNBLOCK_SOURCE = 44
MCAST_LEAVE_GROUP = 45
MCAST_JOIN_SOURCE_GROUP = 46
MCAST_LEAVE_SOURCE_GROUP = 47
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # == SCM_TIMESTAMPNS (x86, arm, generic)
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SIOCGIFADDR = 0x8915
INIT_NET_INO = 0xEFFFFFF9  # nsfs inode of init_net since Linux 6.18 (NET_NS_INIT_INO)

# struct __kernel_sockaddr_storage is 128 bytes aligned like a pointer; group_req and
# group_source_req start with a u32 interface index, so on 64-bit there are 4 bytes of
# padding before the first sockaddr_storage (264 bytes in all, 260 on 32-bit).
_SS_SIZE = 128
_SS_ALIGN = ctypes.alignment(ctypes.c_void_p)


def ip_version(addr: str) -> int:
    """4 or 6 (ValueError for anything that is not an IP address)."""
    return ipaddress.ip_address(addr).version


def pack_ip_mreqn(group: str, ifindex: int, local: str = "0.0.0.0") -> bytes:
    """struct ip_mreqn {imr_multiaddr; imr_address; int imr_ifindex} (IP_ADD_MEMBERSHIP, IP_MULTICAST_IF).

    The index form picks the interface without needing its address.
    """
    return socket.inet_aton(group) + socket.inet_aton(local) + struct.pack("@i", ifindex)


def pack_ip_mreq_source(group: str, iface_addr: str, source: str) -> bytes:
    """struct ip_mreq_source for IP_{ADD,DROP}_SOURCE_MEMBERSHIP and IP_{BLOCK,UNBLOCK}_SOURCE.

    Linux's field order is imr_multiaddr, imr_interface, imr_sourceaddr (BSD and macOS
    put the source second). imr_interface is an *address*: 0.0.0.0 lets the kernel pick
    the interface from the routing table, which on a host with a 224/4 route elsewhere
    is the wrong one, so callers pass the interface's own IPv4 address.
    """
    return socket.inet_aton(group) + socket.inet_aton(iface_addr) + socket.inet_aton(source)


def pack_ipv6_mreq(group: str, ifindex: int) -> bytes:
    """struct ipv6_mreq {in6_addr; unsigned ifindex} for IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP."""
    return socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)


def pack_sockaddr_storage(addr: str) -> bytes:
    """A sockaddr_in / sockaddr_in6 (port 0) padded to sockaddr_storage's 128 bytes."""
    if ip_version(addr) == 4:
        sa = struct.pack("@H", socket.AF_INET) + struct.pack("!H", 0) + socket.inet_aton(addr) + bytes(8)
    else:
        sa = (struct.pack("@H", socket.AF_INET6) + struct.pack("!HI", 0, 0)
              + socket.inet_pton(socket.AF_INET6, addr) + struct.pack("@I", 0))
    return sa + bytes(_SS_SIZE - len(sa))


def _gr_head(ifindex: int) -> bytes:
    head = struct.pack("@I", ifindex)
    pad = (-len(head)) % _SS_ALIGN
    return head + bytes(pad)


def pack_group_req(ifindex: int, group: str) -> bytes:
    """struct group_req {u32 gr_interface; sockaddr_storage gr_group} (MCAST_JOIN_GROUP)."""
    return _gr_head(ifindex) + pack_sockaddr_storage(group)


def pack_group_source_req(ifindex: int, group: str, source: str) -> bytes:
    """struct group_source_req {u32 gsr_interface; sockaddr_storage gsr_group, gsr_source}.

    The protocol-independent API (RFC 3678): the only way to do source filtering on an
    IPv6 socket (MCAST_JOIN_SOURCE_GROUP, MCAST_BLOCK_SOURCE), and for IPv4 an
    alternative that needs an interface index instead of an address.
    """
    return _gr_head(ifindex) + pack_sockaddr_storage(group) + pack_sockaddr_storage(source)


def default_iface() -> str | None:
    """The first non-loopback interface by index (a Mininet host's ``hN-eth0``)."""
    for _idx, name in sorted(socket.if_nameindex()):
        if name != "lo":
            return name
    return None


def iface_index(iface: str) -> int:
    """Interface index, with an error that names the interface (the namespace may lack it)."""
    try:
        return socket.if_nametoindex(iface)
    except OSError:
        raise RuntimeError(f"no interface {iface!r} in this network namespace") from None


def in_init_netns() -> bool | None:
    """True if this process shares PID 1's network namespace (the machine's real interfaces).

    The tools refuse to run there unless told to (--allow-init-netns): test traffic and
    IGMP/MLD reports belong in Mininet hosts or throwaway namespaces. Three witnesses of
    the initial namespace, since each can be unavailable: PID 1's namespace (unreadable
    in some sandboxes even for root), kthreadd's (kernel threads always live in init_net;
    PID 2 when there is no PID namespace), and the fixed inode number Linux >= 6.18 gives
    init_net. None when none of them can be read.
    """
    try:
        me = os.stat("/proc/self/ns/net")
    except OSError:
        return None
    mine = (me.st_dev, me.st_ino)
    known = False
    for pid, comm in (("1", None), ("2", "kthreadd")):
        try:
            if comm is not None and Path(f"/proc/{pid}/comm").read_text().strip() != comm:
                continue
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        known = True
        if (st.st_dev, st.st_ino) == mine:
            return True
    if me.st_ino == INIT_NET_INO:
        return True
    return False if known else None


def guard_netns(args) -> str | None:
    """Why a tool run must not go ahead (in the machine's own network namespace, where its
    traffic would reach real interfaces), or None. `args.allow_init_netns` overrides."""
    if not args.allow_init_netns and in_init_netns():
        return ("refusing to run in PID 1's network namespace (real interfaces): run inside a Mininet "
                "host or a test namespace, or pass --allow-init-netns")
    return None


def iface_ipv4(iface: str) -> str | None:
    """The (primary) IPv4 address of an interface, or None (SIOCGIFADDR)."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            ifr = struct.pack("16s16x", iface.encode()[:15])
            res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, ifr)
        except OSError:
            return None
    return socket.inet_ntoa(res[20:24])


def group_scope_needs_ifindex(group: str) -> bool:
    """True for IPv6 interface-/link-local multicast scopes (ff?1::, ff?2::): binding needs a scope id."""
    a = ipaddress.ip_address(group)
    return a.version == 6 and ((int(a) >> 112) & 0xF) in (1, 2)


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


def dumps(record: Mapping[str, Any]) -> str:
    """One record as a JSON line (newline included)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n"


def parse_records(lines: Iterable[str | bytes] | str | bytes) -> list[dict]:
    """Records from JSON lines; blank, torn or foreign lines are skipped.

    A tool killed with SIGKILL may leave half a line at the end, and a reader polling
    a growing file may see one; neither must break a test's analysis.
    """
    if isinstance(lines, (str, bytes)):
        lines = lines.splitlines()
    out = []
    for line in lines:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("event"), str):
            out.append(rec)
    return out


def collect(out_path: str | os.PathLike) -> list[dict]:
    """Records of a tool's --out file ([] if the tool never created it)."""
    try:
        with open(out_path, "rb") as fh:
            return parse_records(fh.read())
    except FileNotFoundError:
        return []


def expected_from_sent(records: Iterable[Mapping]) -> dict[tuple[str, str], range | frozenset]:
    """{(group, src): range(first_seq, last_seq + 1)} from senders' ``sent`` records (for summarize).

    Two senders of one (group, src) (streams from the same host) give the union of their ranges.
    """
    exp: dict[tuple[str, str], range | frozenset] = {}
    for r in records:
        if r.get("event") != "sent" or r.get("first_seq") is None or r.get("last_seq") is None:
            continue
        key = (_norm(r["group"]), _norm(r.get("src")))
        seqs = range(int(r["first_seq"]), int(r["last_seq"]) + 1)
        exp[key] = frozenset(exp[key]) | frozenset(seqs) if key in exp else seqs
    return exp


def _norm(addr: Any) -> Any:
    """Canonical text form of an IP address (so 'ff15::0001' and 'ff15::1' are one key)."""
    if not isinstance(addr, str):
        return addr
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def _lookup_expected(expected_seqs, key):
    if expected_seqs is None:
        return None
    if isinstance(expected_seqs, Mapping):
        for k in (key, key[0]):
            if k in expected_seqs:
                return expected_seqs[k]
        return None
    return expected_seqs


def summarize(records: Iterable[Mapping], expected_seqs=None) -> dict[tuple[str, str], dict]:
    """Per (group, source) statistics of one receiver's records.

    `expected_seqs` says which sequence numbers the sender sent: None (then "missing"
    are only the gaps between the lowest and highest received, since losses at either
    end cannot be seen), one iterable for every key, or a mapping keyed by
    (group, src) or by group (see expected_from_sent). (group, src) keys that were
    expected but got nothing appear with received == 0, if this receiver joined the
    group (or the records have no joins at all).

    Per key: received (rx events), unique (distinct (stream, seq)), duplicates,
    missing / missing_seqs, expected, streams, out_of_order (arrivals below an already
    seen seq of the same stream), first_rx / last_rx, delay_min/avg/max (t - sent),
    joined / left (times of this receiver's join and first non-final leave of the
    group), join_latency (first rx at or after the join, minus the join), wire_before_join
    and wire_after_leave (datagrams that reached the interface while not a member),
    leave_latency (last datagram seen at or after the leave, rx or wire, minus the
    leave; 0.0 when nothing came after the leave; None without a leave).
    """
    records = list(records)
    joined: dict[str, float] = {}
    left: dict[str, float] = {}
    for r in records:
        ev = r.get("event")
        g = _norm(r.get("group"))
        if ev == "joined" and g is not None and "t" in r:
            joined.setdefault(g, float(r["t"]))
        elif ev == "left" and g is not None and "t" in r and not r.get("final"):
            left.setdefault(g, float(r["t"]))

    per: dict[tuple[str, str], dict] = {}

    def slot(key):
        if key not in per:
            per[key] = {"rx": [], "wire": []}
        return per[key]

    for r in records:
        ev = r.get("event")
        if ev not in ("rx", "wire"):
            continue
        try:
            item = (float(r["t"]), int(r["stream"]), int(r["seq"]), r.get("sent"))
        except (KeyError, TypeError, ValueError):
            continue
        slot((_norm(r.get("group")), _norm(r.get("src"))))[ev].append(item)

    if isinstance(expected_seqs, Mapping):
        for k in expected_seqs:
            # a silent key only matters for a group this receiver joined (all, for records without joins)
            if isinstance(k, tuple) and (not joined or _norm(k[0]) in joined):
                slot((_norm(k[0]), _norm(k[1])))

    out: dict[tuple[str, str], dict] = {}
    for key, d in per.items():
        group, src = key
        rx = sorted(d["rx"], key=lambda x: x[0])
        wire = sorted(d["wire"], key=lambda x: x[0])
        seen: set[tuple[int, int]] = set()
        high: dict[int, int] = {}
        ooo = 0
        for _t, stream, seq, _sent in rx:
            seen.add((stream, seq))
            if stream in high and seq < high[stream]:
                ooo += 1
            high[stream] = max(high.get(stream, seq), seq)
        seqs = {s for _st, s in seen}
        exp = _lookup_expected(expected_seqs, key)
        if exp is not None:
            exp_set = set(exp)
        elif seqs:
            exp_set = set(range(min(seqs), max(seqs) + 1))
        else:
            exp_set = set()
        missing = sorted(exp_set - seqs)
        delays = [t - float(sent) for t, _s, _q, sent in rx if isinstance(sent, (int, float))]
        tj = joined.get(group)
        tl = left.get(group)
        after_join = [t for t, *_ in rx if tj is None or t >= tj]
        last_seen = max([x[0] for x in rx] + [x[0] for x in wire], default=None)
        if tl is None:
            leave_latency = None
        elif last_seen is not None and last_seen >= tl:
            leave_latency = last_seen - tl
        else:
            leave_latency = 0.0
        out[key] = {
            "group": group,
            "src": src,
            "streams": sorted({s for s, _q in seen}),
            "received": len(rx),
            "unique": len(seen),
            "duplicates": len(rx) - len(seen),
            "expected": len(exp_set) if exp is not None else None,
            "missing": len(missing),
            "missing_seqs": missing,
            "out_of_order": ooo,
            "first_rx": rx[0][0] if rx else None,
            "last_rx": rx[-1][0] if rx else None,
            "delay_min": min(delays) if delays else None,
            "delay_avg": sum(delays) / len(delays) if delays else None,
            "delay_max": max(delays) if delays else None,
            "joined": tj,
            "left": tl,
            "join_latency": (after_join[0] - tj) if (tj is not None and after_join) else None,
            "wire_before_join": sum(1 for x in wire if tj is None or x[0] < tj),
            "wire_after_leave": sum(1 for x in wire if tl is not None and x[0] >= tl),
            "leave_latency": leave_latency,
        }
    return out


def rx_count(records: Iterable[Mapping], group: str | None = None, src: str | None = None, event: str = "rx") -> int:
    """How many `event` records (default rx) match group / src (None = any)."""
    g, s = _norm(group), _norm(src)
    return sum(
        1 for r in records
        if r.get("event") == event
        and (g is None or _norm(r.get("group")) == g)
        and (s is None or _norm(r.get("src")) == s)
    )


# ---------------------------------------------------------------------------
# Mininet-side helpers (any object with .popen() / .cmd() like a Mininet host)
# ---------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
RECV_SCRIPT = REPO_ROOT / "mininet" / "mcast_recv.py"
SEND_SCRIPT = REPO_ROOT / "mininet" / "mcast_send.py"


def _as_list(x) -> list:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def recv_argv(groups, *, port: int = DEFAULT_PORT, iface: str | None = None, sources=(), blocks=(),
              duration: float = 10.0, leave_after: float | None = None, join_after: float | None = None,
              out_path=None, ready_file=None, wire: str | None = None, python: str | None = None) -> list[str]:
    """The command line of mcast_recv.py (the same python as the caller, script path from the repo)."""
    argv = [python or sys.executable, str(RECV_SCRIPT)]
    for g in _as_list(groups):
        argv += ["--group", str(g)]
    argv += ["--port", str(port), "--duration", str(duration)]
    if iface:
        argv += ["--iface", iface]
    for s in _as_list(sources):
        argv += ["--source", str(s)]
    for b in _as_list(blocks):
        argv += ["--block", str(b)]
    if leave_after is not None:
        argv += ["--leave-after", str(leave_after)]
    if join_after is not None:
        argv += ["--join-after", str(join_after)]
    if out_path is not None:
        argv += ["--out", str(out_path)]
    if ready_file is not None:
        argv += ["--ready-file", str(ready_file)]
    if wire is not None:
        argv += ["--wire", wire]
    return argv


def send_argv(group: str, *, port: int = DEFAULT_PORT, count: int = 100, rate: float = 100.0, size: int = 64,
              stream: int = 1, ttl: int = 8, iface: str | None = None, loop: int = 0, start_after: float = 0.0,
              max_seconds: float = 60.0, bind: str | None = None, first_seq: int = 0, out_path=None,
              python: str | None = None) -> list[str]:
    """The command line of mcast_send.py."""
    argv = [python or sys.executable, str(SEND_SCRIPT), "--group", str(group), "--port", str(port),
            "--count", str(count), "--rate", str(rate), "--size", str(size), "--stream", str(stream),
            "--ttl", str(ttl), "--loop", str(loop), "--start-after", str(start_after),
            "--max-seconds", str(max_seconds), "--first-seq", str(first_seq)]
    if iface:
        argv += ["--iface", iface]
    if bind:
        argv += ["--bind", bind]
    if out_path is not None:
        argv += ["--out", str(out_path)]
    return argv


def _popen(host, argv: list[str], out_path) -> subprocess.Popen:
    # stdout is the records only when there is no --out; stderr goes to a file next to the
    # records: a PIPE nobody reads would block a chatty tool, DEVNULL would hide its errors.
    err_path = Path(f"{out_path}.stderr") if out_path is not None else None
    err = open(err_path, "wb") if err_path else subprocess.DEVNULL
    try:
        return host.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    finally:
        if err_path:
            err.close()


def start_receiver(host, groups, *, out_path, ready_file=None, **kw) -> subprocess.Popen:
    """Start mcast_recv.py on `host` (records to out_path, errors to out_path + '.stderr').

    A stale ready file is removed first, so wait_ready cannot return on a previous run's file.
    Keyword arguments are those of recv_argv.
    """
    if ready_file is not None:
        Path(ready_file).unlink(missing_ok=True)
    Path(out_path).unlink(missing_ok=True)
    return _popen(host, recv_argv(groups, out_path=out_path, ready_file=ready_file, **kw), out_path)


def start_sender(host, group: str, *, out_path, **kw) -> subprocess.Popen:
    """Start mcast_send.py on `host`; keyword arguments are those of send_argv."""
    Path(out_path).unlink(missing_ok=True)
    return _popen(host, send_argv(group, out_path=out_path, **kw), out_path)


def host_iface(host, iface: str | None = None) -> str:
    """The interface to act on: `iface`, else the Mininet host's default interface."""
    if iface:
        return iface
    intf = host.defaultIntf() if hasattr(host, "defaultIntf") else None
    if intf is None:
        raise ValueError("no interface given and the host has no default interface")
    return intf.name if hasattr(intf, "name") else str(intf)


def effective_igmp_version(all_value: int, dev_value: int) -> int:
    """The IGMP version Linux speaks given conf/all and conf/<if> force_igmp_version.

    The kernel's IGMP_V1_SEEN / IGMP_V2_SEEN test *either* value, so the lowest forced
    version wins; nothing forced means v3 (older queriers still switch it down).
    """
    forced = [v for v in (all_value, dev_value) if v]
    return min(forced) if forced else 3


def effective_mld_version(all_value: int, dev_value: int) -> int:
    """The MLD version Linux speaks: conf/all force_mld_version, if non-zero, overrides conf/<if>."""
    return all_value or dev_value or 2


def set_host_versions(host, igmp: int | None = None, mld: int | None = None, iface: str | None = None) -> dict:
    """Force the IGMP / MLD version the host's kernel speaks on its interface (None = leave as is, 0 = kernel default).

    The tools never choose a version: it is host state (net.ipv4.conf.IF.force_igmp_version,
    net.ipv6.conf.IF.force_mld_version), set in the host's namespace. IGMPv1 has no leave
    message and IGMPv2/MLDv1 no source filters, so a version change changes what a
    receiver's --leave-after / --source can achieve. The kernel applies it to reports
    sent from now on; set it before the receiver joins.

    The per-interface value is not the whole story: conf/all takes part too (see
    effective_igmp_version / effective_mld_version), and a new namespace inherits IPv4's
    conf/all from the machine's (net.core.devconf_inherit_init_net = 0). So the effective
    version is computed from both read back, and RuntimeError raised if it is not the
    requested one (0 = the kernel default: v3 / MLDv2). Returns the values written.
    """
    if igmp not in (None, 0, 1, 2, 3):
        raise ValueError(f"igmp version {igmp!r} not in 0..3")
    if mld not in (None, 0, 1, 2):
        raise ValueError(f"mld version {mld!r} not in 0..2")
    name = host_iface(host, iface)
    plan = []
    if igmp is not None:
        plan.append(("ipv4", "force_igmp_version", igmp, igmp or 3, effective_igmp_version))
    if mld is not None:
        plan.append(("ipv6", "force_mld_version", mld, mld or 2, effective_mld_version))
    got = {}
    for fam, knob, val, want, effective in plan:
        # slash form: interface names may contain dots (VLANs), which dotted sysctl keys can't.
        key = f"net/{fam}/conf/{name}/{knob}"
        host.cmd(f"sysctl -q -w {key}={val}")
        back = host.cmd(f"sysctl -n {key}").strip()
        if back != str(val):
            raise RuntimeError(f"sysctl {key}={val} did not stick on {host} (reads {back!r})")
        all_back = host.cmd(f"sysctl -n net/{fam}/conf/all/{knob}").strip()
        all_val = int(all_back) if all_back.isdigit() else 0
        eff = effective(all_val, val)
        if eff != want:
            raise RuntimeError(f"{knob}={val} on {name} of {host} gives version {eff}, not {want}: "
                               f"net.{fam}.conf.all.{knob} is {all_val}")
        got[key.replace("/", ".")] = val
    return got


def wait_ready(path, timeout: float = 5.0, proc: subprocess.Popen | None = None, interval: float = 0.02) -> float:
    """Wait until `path` exists; returns seconds waited. TimeoutError past the deadline,
    RuntimeError at once if `proc` (the receiver) exits first (it will never write it)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        if os.path.exists(path):
            return time.monotonic() - t0
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before writing {path}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path} not written within {timeout:.1f}s")
        time.sleep(interval)


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """SIGTERM, wait up to `timeout`, then SIGKILL (by PID: only this process). Returns the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
