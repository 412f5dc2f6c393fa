#!/usr/bin/env python3
"""Multicast sender for tests: N sequence-numbered datagrams to one group at a fixed rate.

Runs inside a Mininet host (see mcast_sdn.traffic.start_sender). Payload format in
mcast_sdn/traffic.py (magic, stream id, sequence number, send time, padding).

    mcast_send.py --group G [--port 5001] [--count 100] [--rate 100] [--size 64]
                  [--stream 1] [--ttl 8] [--iface IF] [--loop 0] [--bind ADDR]
                  [--start-after 0] [--max-seconds 60] [--first-seq 0]
                  [--progress SECONDS] [--out FILE]

Bounded twice: it stops after --count datagrams and after --max-seconds (counted from
start, --start-after included), and on SIGTERM/SIGINT; in every case it writes the
summary record ``{"event": "sent", "group", "src", "count", "first_seq", "last_seq",
"t_first", "t_last", "errors", ...}`` (first_seq..last_seq is the range *attempted*;
``errors`` counts sends the kernel refused, which never reached the wire).

Sends are paced against a fixed schedule (datagram k at start + k/rate), so a late
wake-up does not slow the whole stream down. The interface is set explicitly
(IP_MULTICAST_IF with the interface index, IPV6_MULTICAST_IF) rather than left to the
routing table, TTL/hop limit with IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, and loopback
of the host's own datagrams is off by default (--loop 0) so a receiver on the sending
host does not hide what the network delivers. --bind picks the source address (for
source-specific tests from a host with several addresses).
"""
from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mcast_sdn import traffic as T  # noqa: E402


def _mcast_addr(text: str) -> str:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address")
    if not a.is_multicast:
        raise argparse.ArgumentTypeError(f"{text} is not a multicast address")
    return str(a)


def _ranged(kind, lo, hi, name):
    def conv(text: str):
        v = kind(text)
        if not (lo <= v <= hi):
            raise argparse.ArgumentTypeError(f"{name} {text} not in [{lo}, {hi}]")
        return v
    return conv


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mcast_send.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", type=_mcast_addr, required=True, help="destination multicast group")
    ap.add_argument("--port", type=_ranged(int, 1, 65535, "port"), default=T.DEFAULT_PORT,
                    help="UDP port (default %(default)s)")
    ap.add_argument("--count", type=_ranged(int, 0, 10**9, "count"), default=100,
                    help="datagrams to send (default %(default)s)")
    ap.add_argument("--rate", type=_ranged(float, 0.001, 1e6, "rate"), default=100.0,
                    help="datagrams per second (default %(default)s)")
    ap.add_argument("--size", type=_ranged(int, T.HEADER_SIZE, T.MAX_SIZE, "size"), default=64,
                    help=f"UDP payload bytes, >= {T.HEADER_SIZE} (default %(default)s)")
    ap.add_argument("--stream", type=_ranged(int, 0, 2**32 - 1, "stream"), default=1,
                    help="stream id written in every datagram (default %(default)s)")
    ap.add_argument("--ttl", type=_ranged(int, 0, 255, "ttl"), default=8,
                    help="IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS (default %(default)s)")
    ap.add_argument("--iface", default=None, help="outgoing interface (default: the first non-lo interface)")
    ap.add_argument("--loop", type=_ranged(int, 0, 1, "loop"), default=0,
                    help="IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP (default %(default)s)")
    ap.add_argument("--bind", default=None, help="source address to bind to (default: the kernel's choice)")
    ap.add_argument("--start-after", type=_ranged(float, 0, 86400, "start-after"), default=0.0,
                    help="seconds to wait before the first datagram")
    ap.add_argument("--max-seconds", type=_ranged(float, 0.001, 86400, "max-seconds"), default=60.0,
                    help="hard bound on the run time in seconds (default %(default)s)")
    ap.add_argument("--first-seq", type=_ranged(int, 0, 2**64 - 1, "first-seq"), default=0,
                    help="sequence number of the first datagram (default %(default)s)")
    ap.add_argument("--progress", type=_ranged(float, 0, 86400, "progress"), default=0.0,
                    help="write a progress record every this many seconds (0: only the summary)")
    ap.add_argument("--out", default=None, help="JSON lines file (default: stdout)")
    ap.add_argument("--allow-init-netns", action="store_true",
                    help="run even in PID 1's network namespace (real interfaces); refused by default")
    return ap


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    if args.first_seq + max(args.count, 1) - 1 >= 2**64:
        ap.error("--first-seq + --count overflows the 64-bit sequence number")
    if args.start_after >= args.max_seconds:
        ap.error("--start-after must be less than --max-seconds")
    if args.bind is not None:
        try:
            b = ipaddress.ip_address(args.bind)
        except ValueError:
            ap.error(f"--bind {args.bind!r} is not an IP address")
        if b.version != ipaddress.ip_address(args.group).version:
            ap.error("--bind and --group are of different address families")
    return args


def parse_args(argv=None) -> argparse.Namespace:
    ap = build_parser()
    return check_args(ap, ap.parse_args(argv))


guard_netns = T.guard_netns  # shared with the other tool (mcast_sdn/traffic.py)


def make_socket(group: str, ifindex: int, ttl: int, loop: int, bind: str | None) -> socket.socket:
    """A UDP socket with the multicast interface, TTL/hops and loopback set, optionally bound to a source."""
    v6 = T.ip_version(group) == 6
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if v6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, loop)
            if bind:
                s.bind((bind, 0, 0, 0))
        else:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, T.pack_ip_mreqn("0.0.0.0", ifindex))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, loop)
            if bind:
                s.bind((bind, 0))
    except BaseException:
        s.close()
        raise
    return s


def dest(group: str, port: int, ifindex: int):
    if T.ip_version(group) == 6:
        return (group, port, 0, ifindex if T.group_scope_needs_ifindex(group) else 0)
    return (group, port)


def source_address(args, ifindex: int) -> str | None:
    """The source address the kernel will use: connect a twin socket (UDP connect sends nothing).

    The sending socket itself stays unconnected, so it never keeps a route cached from
    before a receiver on this host joined.
    """
    try:
        with make_socket(args.group, ifindex, args.ttl, args.loop, args.bind) as s:
            s.connect(dest(args.group, args.port, ifindex))
            return s.getsockname()[0].split("%")[0]
    except OSError:
        return None


class Recorder:
    def __init__(self, path: str | None):
        self.fh = open(path, "w", encoding="utf-8") if path else sys.stdout

    def __call__(self, event: str, **fields) -> None:
        rec = {"event": event, "t": time.time()}
        rec.update(fields)
        self.fh.write(T.dumps(rec))
        self.fh.flush()

    def close(self) -> None:
        if self.fh is not sys.stdout:
            self.fh.close()


def run(args: argparse.Namespace) -> int:
    stop_reason = None

    def on_signal(signum, _frame):
        nonlocal stop_reason
        stop_reason = stop_reason or signal.Signals(signum).name

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    t0 = time.monotonic()
    hard_end = t0 + args.max_seconds
    rec = Recorder(args.out)
    sent = errors = 0
    seq = args.first_seq
    t_first = t_last = None
    last_error = None
    summary_common = {"group": args.group, "port": args.port, "stream": args.stream, "size": args.size,
                      "rate": args.rate, "ttl": args.ttl}
    try:
        iface = args.iface or T.default_iface()
        if not iface:
            raise RuntimeError("no non-loopback interface; pass --iface")
        ifindex = T.iface_index(iface)
        summary_common["iface"] = iface
        src = source_address(args, ifindex)
        summary_common["src"] = src
        sock = make_socket(args.group, ifindex, args.ttl, args.loop, args.bind)
        addr = dest(args.group, args.port, ifindex)
        rec("start", count=args.count, first_seq=args.first_seq, **summary_common)

        def sleep_until(deadline: float) -> None:
            # short naps: a signal or the hard bound is noticed within 50 ms
            while stop_reason is None:
                left = min(deadline, hard_end) - time.monotonic()
                if left <= 0:
                    return
                time.sleep(min(left, 0.05))

        sleep_until(t0 + args.start_after)
        start = time.monotonic()
        next_progress = start + args.progress if args.progress else None
        for k in range(args.count):
            if stop_reason is not None:
                break
            due = start + k / args.rate
            sleep_until(due)
            if stop_reason is not None:
                break
            if time.monotonic() >= hard_end:
                stop_reason = "max-seconds"
                break
            seq = args.first_seq + k
            now = time.time()
            try:
                sock.sendto(T.encode(args.stream, seq, now, args.size), addr)
                sent += 1
            except OSError as e:  # e.g. ENOBUFS, ENETUNREACH: counted, the schedule goes on
                errors += 1
                last_error = f"{type(e).__name__}: {e}"
            if t_first is None:
                t_first = now
            t_last = now
            if next_progress is not None and time.monotonic() >= next_progress:
                rec("progress", sent=sent, errors=errors, last_seq=seq, **summary_common)
                next_progress += args.progress
        sock.close()
        attempted = sent + errors
        rec("sent", count=sent, errors=errors, last_error=last_error,
            first_seq=args.first_seq if attempted else None,
            last_seq=args.first_seq + attempted - 1 if attempted else None,
            t_first=t_first, t_last=t_last, reason=stop_reason or "count", **summary_common)
        return 0 if errors == 0 else 1
    except Exception as e:  # noqa: BLE001 - reported as a record and an exit status
        rec("error", msg=f"{type(e).__name__}: {e}", **summary_common)
        print(f"mcast_send.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        rec.close()


def main(argv=None) -> int:
    args = parse_args(argv)
    why = guard_netns(args)
    if why:
        print(f"{Path(__file__).name}: {why}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
