"""Unit tests for the multicast traffic tools: mcast_sdn.traffic, mininet/mcast_send.py, mininet/mcast_recv.py.

Pure parts (datagram codec, socket option structs, record parsing and summaries,
command lines, the Mininet-side helpers against fake hosts) run anywhere. One test
runs the real tools against the kernel's IGMP/MLD and source-filter code: as root it
builds a throwaway network namespace ``mcttest-<pid>`` (loopback for IPv4, a veth pair
inside the namespace for IPv6, see test_real_namespace) and deletes it afterwards.
Nothing is ever sent from the test's own namespace.
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcast_sdn import traffic as T

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    """Import a tool from mininet/ by path (the directory is not a package, on purpose)."""
    path = ROOT / "mininet" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


recv_tool = _load("mcast_recv")
send_tool = _load("mcast_send")


# ---------------------------------------------------------------------------
# Datagram codec
# ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    stream=st.integers(0, 2**32 - 1),
    seq=st.integers(0, 2**64 - 1),
    ts=st.floats(allow_nan=False, allow_infinity=False),
    size=st.integers(T.HEADER_SIZE, 2000),
)
def test_encode_decode_round_trip(stream, seq, ts, size):
    data = T.encode(stream, seq, ts, size)
    assert len(data) == size
    assert T.decode(data) == (stream, seq, ts)
    assert T.decode(bytearray(data)) == (stream, seq, ts)
    assert T.decode(memoryview(data)) == (stream, seq, ts)


def test_header_layout_is_the_documented_one():
    data = T.encode(0x01020304, 0x0A0B0C0D0E0F1011, 1.5, 40)
    assert T.HEADER_SIZE == 28
    assert data[:4] == b"MCSD" and data[4] == T.VERSION and data[5:8] == b"\0\0\0"
    assert data[8:12] == bytes([1, 2, 3, 4])
    assert data[12:20] == bytes.fromhex("0a0b0c0d0e0f1011")
    assert struct.unpack("!d", data[20:28]) == (1.5,)
    assert data[28:] == bytes(12)
    assert T.decode(T.encode(1, 2, 3.0, T.MAX_SIZE)) == (1, 2, 3.0)


@pytest.mark.parametrize("args", [
    (-1, 0, 0.0, 64), (2**32, 0, 0.0, 64), (0, -1, 0.0, 64), (0, 2**64, 0.0, 64),
    (0, 0, 0.0, T.HEADER_SIZE - 1), (0, 0, 0.0, T.MAX_SIZE + 1),
])
def test_encode_rejects_values_that_do_not_fit(args):
    with pytest.raises(ValueError):
        T.encode(*args)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_decode_random_bytes_never_raises(data):
    out = T.decode(data)
    if out is not None:  # only possible when the bytes happen to carry our magic and version
        assert data[:4] == T.MAGIC and data[4] == T.VERSION
        assert math.isfinite(out[2])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=T.HEADER_SIZE - 5, max_size=T.HEADER_SIZE + 40))
def test_decode_random_bytes_behind_our_magic_never_raises(tail):
    T.decode(T.MAGIC + bytes([T.VERSION]) + tail)


def test_decode_rejects_non_payloads():
    good = T.encode(7, 9, 1.25, 64)
    assert T.decode(good[: T.HEADER_SIZE]) == (7, 9, 1.25)
    assert T.decode(good[: T.HEADER_SIZE - 1]) is None
    assert T.decode(b"XXXX" + good[4:]) is None
    assert T.decode(good[:4] + bytes([T.VERSION + 1]) + good[5:]) is None
    for bad_ts in (math.nan, math.inf, -math.inf):
        assert T.decode(good[:20] + struct.pack("!d", bad_ts) + good[28:]) is None
    for junk in (None, 5, "MCSD" * 10, object(), [1, 2, 3], b""):
        assert T.decode(junk) is None


# ---------------------------------------------------------------------------
# Socket option structures
# ---------------------------------------------------------------------------


def test_ip_mreq_source_uses_linux_field_order():
    # Linux: imr_multiaddr, imr_interface, imr_sourceaddr (BSD puts the source second)
    b = T.pack_ip_mreq_source("239.1.2.3", "10.0.0.1", "10.9.9.9")
    assert b == bytes([239, 1, 2, 3, 10, 0, 0, 1, 10, 9, 9, 9])


def test_ip_mreqn_and_ipv6_mreq():
    b = T.pack_ip_mreqn("239.1.2.3", 7)
    assert len(b) == 12 and b[:8] == bytes([239, 1, 2, 3, 0, 0, 0, 0])
    assert struct.unpack("@i", b[8:]) == (7,)
    b6 = T.pack_ipv6_mreq("ff15::1", 3)
    assert len(b6) == 20 and b6[:16] == socket.inet_pton(socket.AF_INET6, "ff15::1")
    assert struct.unpack("@I", b6[16:]) == (3,)


def test_group_source_req_layout():
    ptr = struct.calcsize("P")
    head = 4 + (ptr - 4 if ptr > 4 else 0)
    b = T.pack_group_source_req(5, "ff15::1", "2001:db8::7")
    assert len(b) == head + 2 * 128  # 264 on 64-bit: u32 + pad to pointer alignment + 2 x sockaddr_storage
    assert struct.unpack_from("@I", b) == (5,)
    fam, = struct.unpack_from("@H", b, head)
    assert fam == socket.AF_INET6
    assert b[head + 8: head + 24] == socket.inet_pton(socket.AF_INET6, "ff15::1")
    src = head + 128
    assert struct.unpack_from("@H", b, src) == (socket.AF_INET6,)
    assert b[src + 8: src + 24] == socket.inet_pton(socket.AF_INET6, "2001:db8::7")
    b4 = T.pack_group_source_req(2, "232.1.1.1", "10.0.0.9")
    assert struct.unpack_from("@H", b4, head) == (socket.AF_INET,)
    assert b4[head + 4: head + 8] == bytes([232, 1, 1, 1])
    assert b4[head + 128 + 4: head + 128 + 8] == bytes([10, 0, 0, 9])
    assert len(T.pack_group_req(1, "239.0.0.1")) == head + 128


def test_ipv6_scope_needing_an_interface():
    assert T.group_scope_needs_ifindex("ff02::1") and T.group_scope_needs_ifindex("ff12::5")
    assert T.group_scope_needs_ifindex("ff01::1")
    assert not T.group_scope_needs_ifindex("ff15::1") and not T.group_scope_needs_ifindex("ff0e::1")
    assert not T.group_scope_needs_ifindex("239.1.1.1")


# ---------------------------------------------------------------------------
# Records and summaries
# ---------------------------------------------------------------------------


def _rx(t, seq, group="239.1.1.1", src="10.0.0.1", stream=1, sent=None, event="rx"):
    return {"event": event, "t": t, "group": group, "src": src, "stream": stream, "seq": seq,
            "sent": t - 0.001 if sent is None else sent}


def test_parse_records_skips_junk_lines():
    text = "\n".join([
        T.dumps({"event": "joined", "t": 1.0, "group": "239.1.1.1"}).strip(),
        "",
        "   ",
        '{"event": "rx", "t": 2.0, "seq"',  # torn last line of a killed writer
        "[1, 2]",
        '{"no_event": 1}',
        '{"event": 5}',
        "not json",
        T.dumps({"event": "done", "t": 3.0}).strip(),
    ])
    recs = T.parse_records(text)
    assert [r["event"] for r in recs] == ["joined", "done"]
    assert T.parse_records(text.encode()) == recs
    assert T.parse_records(text.splitlines()) == recs
    assert T.parse_records([line.encode() for line in text.splitlines()] + [b"\xff\xfe"]) == recs


def test_collect_reads_a_file_and_tolerates_absence(tmp_path):
    p = tmp_path / "r.jsonl"
    assert T.collect(p) == []
    p.write_text(T.dumps({"event": "rx", "t": 1}) + '{"event": "rx", "t"')
    assert T.collect(p) == [{"event": "rx", "t": 1}]


def test_summary_counts_duplicates_missing_and_latencies():
    g, s = "239.1.1.1", "10.0.0.1"
    recs = [
        {"event": "start", "t": 99.0},
        {"event": "joined", "t": 100.0, "group": g, "sources": [], "iface": "h1-eth0"},
        _rx(100.25, 0), _rx(100.30, 1), _rx(100.35, 1),  # duplicate of 1
        _rx(100.40, 3), _rx(100.45, 2),  # 2 late: out of order
        _rx(100.50, 5),  # 4 missing
        {"event": "left", "t": 101.0, "group": g, "final": False},
        _rx(101.2, 6, event="wire"), _rx(101.5, 7, event="wire"),  # still delivered after the leave
        {"event": "left", "t": 102.0, "group": g, "final": True},
        {"event": "done", "t": 102.0},
    ]
    summ = T.summarize(recs, expected_seqs=range(0, 8))
    assert list(summ) == [(g, s)]
    x = summ[(g, s)]
    assert x["received"] == 6 and x["unique"] == 5 and x["duplicates"] == 1
    assert x["expected"] == 8 and x["missing_seqs"] == [4, 6, 7] and x["missing"] == 3
    assert x["out_of_order"] == 1
    assert x["first_rx"] == 100.25 and x["last_rx"] == 100.50
    assert x["joined"] == 100.0 and x["left"] == 101.0  # the final leave at exit is not "the leave"
    assert x["join_latency"] == pytest.approx(0.25)
    assert x["leave_latency"] == pytest.approx(0.5)
    assert x["wire_after_leave"] == 2 and x["wire_before_join"] == 0
    assert x["delay_min"] == pytest.approx(0.001) and x["delay_max"] == pytest.approx(0.001)
    assert x["streams"] == [1]

    # without the sender's range only inner gaps are visible
    y = T.summarize(recs)[(g, s)]
    assert y["expected"] is None and y["missing_seqs"] == [4]


def test_summary_keys_leave_and_join_edge_cases():
    g = "ff15::1"
    recs = [
        _rx(9.5, 0, group=g, src="2001:db8::1", event="wire"),  # before the join: flooding
        {"event": "joined", "t": 10.0, "group": "ff15:0::1"},  # non-canonical spelling, same group
        _rx(10.1, 1, group=g, src="2001:db8:0::1"),
        _rx(10.2, 2, group=g, src="2001:db8::1"),
        _rx(10.3, 1, group=g, src="2001:db8::2"),  # another source: its own key
        {"event": "left", "t": 11.0, "group": g},
    ]
    summ = T.summarize(recs)
    a = summ[(g, "2001:db8::1")]
    assert a["received"] == 2 and a["wire_before_join"] == 1 and a["wire_after_leave"] == 0
    assert a["join_latency"] == pytest.approx(0.1)
    assert a["leave_latency"] == 0.0  # nothing arrived after the leave
    b = summ[(g, "2001:db8::2")]
    assert b["received"] == 1 and b["join_latency"] == pytest.approx(0.3)
    assert T.summarize([_rx(1.0, 0)])[("239.1.1.1", "10.0.0.1")]["leave_latency"] is None


def test_summary_with_sender_records_reports_silent_keys():
    sent = [
        {"event": "start", "t": 0.0},
        {"event": "sent", "group": "239.1.1.1", "src": "10.0.0.1", "first_seq": 0, "last_seq": 9, "count": 10},
        {"event": "sent", "group": "239.1.1.1", "src": "10.0.0.2", "first_seq": 5, "last_seq": 6, "count": 2},
        {"event": "sent", "group": "239.1.1.2", "src": "10.0.0.2", "first_seq": None, "last_seq": None, "count": 0},
    ]
    exp = T.expected_from_sent(sent)
    assert exp == {("239.1.1.1", "10.0.0.1"): range(0, 10), ("239.1.1.1", "10.0.0.2"): range(5, 7)}
    second_stream = {"event": "sent", "group": "239.1.1.1", "src": "10.0.0.2", "first_seq": 20, "last_seq": 21}
    assert set(T.expected_from_sent(sent + [second_stream])[("239.1.1.1", "10.0.0.2")]) == {5, 6, 20, 21}
    recs = [_rx(1.0 + i / 10, i) for i in range(10) if i != 3]
    summ = T.summarize(recs, exp)
    assert summ[("239.1.1.1", "10.0.0.1")]["missing_seqs"] == [3]
    silent = summ[("239.1.1.1", "10.0.0.2")]
    assert silent["received"] == 0 and silent["missing"] == 2 and silent["first_rx"] is None
    # once the records say which groups were joined, other groups' silence is not reported
    joined = [{"event": "joined", "t": 0.5, "group": "239.1.1.2"}] + recs
    assert ("239.1.1.1", "10.0.0.2") not in T.summarize(joined, exp)
    # a mapping keyed by group applies to every source of the group
    by_group = T.summarize(recs, {"239.1.1.1": range(0, 12)})
    assert by_group[("239.1.1.1", "10.0.0.1")]["missing_seqs"] == [3, 10, 11]


def test_summary_unique_is_per_stream():
    recs = [_rx(1.0, 0, stream=1), _rx(1.1, 0, stream=2), _rx(1.2, 0, stream=1)]
    x = T.summarize(recs)[("239.1.1.1", "10.0.0.1")]
    assert x["unique"] == 2 and x["duplicates"] == 1 and x["streams"] == [1, 2]


def test_summary_ignores_malformed_rx():
    recs = [{"event": "rx", "t": 1.0},
            {"event": "rx", "t": "x", "stream": 1, "seq": 1, "group": "239.1.1.1"},
            _rx(2.0, 4)]
    summ = T.summarize(recs)
    assert summ[("239.1.1.1", "10.0.0.1")]["received"] == 1


def test_rx_count():
    recs = [_rx(1.0, 0), _rx(1.1, 1, src="10.0.0.2"), _rx(1.2, 2, event="wire")]
    assert T.rx_count(recs) == 2
    assert T.rx_count(recs, "239.1.1.1", "10.0.0.2") == 1
    assert T.rx_count(recs, event="wire") == 1
    assert T.rx_count(recs, "239.9.9.9") == 0


# ---------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------


def test_recv_parser_defaults_and_repeats():
    a = recv_tool.parse_args(["--group", "239.1.1.1", "--group", "FF15::0001", "--source", "10.0.0.1",
                              "--source", "2001:db8::1"])
    assert a.group == ["239.1.1.1", "ff15::1"]
    assert a.source == ["10.0.0.1", "2001:db8::1"] and a.block == []
    assert a.port == 5001 and a.duration == 10.0 and a.iface is None and a.out is None
    assert a.join_after == 0.0 and a.leave_after is None and a.ready_file is None and a.wire == "auto"
    b = recv_tool.parse_args(["--group", "239.1.1.1", "--block", "10.0.0.1", "--block", "10.0.0.2",
                              "--duration", "5", "--join-after", "1", "--leave-after", "3", "--iface", "h1-eth0",
                              "--out", "/tmp/x", "--ready-file", "/tmp/y", "--port", "6000", "--wire", "off"])
    assert b.block == ["10.0.0.1", "10.0.0.2"] and b.duration == 5.0 and b.leave_after == 3.0
    assert (b.iface, b.out, b.ready_file, b.port, b.wire) == ("h1-eth0", "/tmp/x", "/tmp/y", 6000, "off")


@pytest.mark.parametrize("argv", [
    [],  # --group is required
    ["--group", "10.0.0.1"],  # not multicast
    ["--group", "nonsense"],
    ["--group", "239.1.1.1", "--source", "239.1.1.2"],  # multicast source
    ["--group", "239.1.1.1", "--source", "10.0.0.1", "--block", "10.0.0.2"],  # INCLUDE and EXCLUDE
    ["--group", "239.1.1.1", "--source", "2001:db8::1"],  # no IPv6 group
    ["--group", "239.1.1.1", "--group", "239.1.1.1"],
    ["--group", "239.1.1.1", "--duration", "0"],
    ["--group", "239.1.1.1", "--duration", "-1"],
    ["--group", "239.1.1.1", "--duration", "nan"],
    ["--group", "239.1.1.1", "--duration", "5", "--leave-after", "5"],
    ["--group", "239.1.1.1", "--join-after", "2", "--leave-after", "1"],
    ["--group", "239.1.1.1", "--port", "0"],
    ["--group", "239.1.1.1", "--wire", "maybe"],
])
def test_recv_parser_rejects(argv, capsys):
    with pytest.raises(SystemExit) as e:
        recv_tool.parse_args(argv)
    assert e.value.code == 2


def test_send_parser_defaults_and_values():
    a = send_tool.parse_args(["--group", "239.1.1.1"])
    assert (a.port, a.count, a.rate, a.size, a.stream, a.ttl, a.loop) == (5001, 100, 100.0, 64, 1, 8, 0)
    assert (a.start_after, a.max_seconds, a.first_seq, a.iface, a.bind, a.out) == (0.0, 60.0, 0, None, None, None)
    b = send_tool.parse_args(["--group", "ff15::1", "--port", "7000", "--count", "5", "--rate", "2.5",
                              "--size", "1400", "--stream", "9", "--ttl", "1", "--iface", "h2-eth0", "--loop", "1",
                              "--start-after", "0.5", "--max-seconds", "3", "--bind", "2001:db8::2",
                              "--first-seq", "100", "--out", "/tmp/s"])
    assert (b.group, b.port, b.count, b.rate, b.size, b.stream, b.ttl, b.iface, b.loop) == (
        "ff15::1", 7000, 5, 2.5, 1400, 9, 1, "h2-eth0", 1)
    assert (b.start_after, b.max_seconds, b.bind, b.first_seq, b.out) == (0.5, 3.0, "2001:db8::2", 100, "/tmp/s")


@pytest.mark.parametrize("argv", [
    [],
    ["--group", "10.1.1.1"],
    ["--group", "239.1.1.1", "--size", str(T.HEADER_SIZE - 1)],
    ["--group", "239.1.1.1", "--size", str(T.MAX_SIZE + 1)],
    ["--group", "239.1.1.1", "--rate", "0"],
    ["--group", "239.1.1.1", "--count", "-1"],
    ["--group", "239.1.1.1", "--ttl", "256"],
    ["--group", "239.1.1.1", "--loop", "2"],
    ["--group", "239.1.1.1", "--stream", str(2**32)],
    ["--group", "239.1.1.1", "--max-seconds", "0"],
    ["--group", "239.1.1.1", "--start-after", "5", "--max-seconds", "5"],
    ["--group", "239.1.1.1", "--bind", "2001:db8::1"],
    ["--group", "239.1.1.1", "--bind", "host"],
    ["--group", "239.1.1.1", "--first-seq", str(2**64 - 1), "--count", "2"],
])
def test_send_parser_rejects(argv, capsys):
    with pytest.raises(SystemExit) as e:
        send_tool.parse_args(argv)
    assert e.value.code == 2


def test_helper_argv_is_what_the_tools_parse():
    argv = T.recv_argv(["239.1.1.1", "ff15::1"], port=6001, iface="h1-eth0", sources=["10.0.0.1"],
                       duration=4, leave_after=2.5, join_after=0.5, out_path="/tmp/o", ready_file="/tmp/r",
                       wire="on")
    assert argv[:2] == [sys.executable, str(ROOT / "mininet" / "mcast_recv.py")]
    a = recv_tool.parse_args(argv[2:])
    assert (a.group, a.port, a.iface, a.source, a.duration, a.leave_after, a.join_after, a.out, a.ready_file,
            a.wire) == (["239.1.1.1", "ff15::1"], 6001, "h1-eth0", ["10.0.0.1"], 4.0, 2.5, 0.5, "/tmp/o",
                        "/tmp/r", "on")
    assert recv_tool.parse_args(T.recv_argv("239.1.1.1", blocks="10.0.0.3")[2:]).block == ["10.0.0.3"]
    argv = T.send_argv("239.1.1.1", port=6001, count=7, rate=50, size=100, stream=3, ttl=2, iface="h2-eth0",
                       loop=1, start_after=0.2, max_seconds=5, bind="10.0.0.2", first_seq=10, out_path="/tmp/s",
                       python="/usr/bin/python3")
    assert argv[:2] == ["/usr/bin/python3", str(ROOT / "mininet" / "mcast_send.py")]
    b = send_tool.parse_args(argv[2:])
    assert (b.group, b.port, b.count, b.rate, b.size, b.stream, b.ttl, b.iface, b.loop, b.start_after,
            b.max_seconds, b.bind, b.first_seq, b.out) == (
        "239.1.1.1", 6001, 7, 50.0, 100, 3, 2, "h2-eth0", 1, 0.2, 5.0, "10.0.0.2", 10, "/tmp/s")


def test_tools_refuse_the_initial_namespace(monkeypatch, capsys):
    monkeypatch.setattr(T, "in_init_netns", lambda: True)
    assert send_tool.main(["--group", "239.1.1.1", "--count", "1"]) == 2
    assert recv_tool.main(["--group", "239.1.1.1", "--duration", "1"]) == 2
    assert "refusing" in capsys.readouterr().err
    a = send_tool.parse_args(["--group", "239.1.1.1", "--allow-init-netns"])
    assert send_tool.guard_netns(a) is None


def test_scripts_run_with_the_venv_python_from_anywhere(tmp_path):
    """The tools find mcast_sdn through their own path, not the working directory or PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for tool in ("mcast_recv.py", "mcast_send.py"):
        out = subprocess.run([sys.executable, str(ROOT / "mininet" / tool), "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert "--group" in out.stdout
    assert not (ROOT / "mininet" / "__init__.py").exists()


def test_parse_wire_frames():
    payload = T.encode(4, 8, 1.0, 40)
    udp = struct.pack("!HHHH", 40000, 5001, 8 + len(payload), 0) + payload
    ip4 = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 1, 17, 0,
                      socket.inet_aton("10.0.0.1"), socket.inet_aton("239.1.1.1")) + udp
    assert recv_tool.parse_wire(ip4, T.ETH_P_IP) == ("10.0.0.1", "239.1.1.1", 5001, payload)
    frag = bytearray(ip4)
    frag[6:8] = struct.pack("!H", 10)  # a later fragment: no UDP header in it
    assert recv_tool.parse_wire(bytes(frag), T.ETH_P_IP) is None
    hbh = bytes([17, 0]) + bytes(6)  # hop-by-hop header (8 bytes) before UDP
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(hbh) + len(udp), 0, 1,
                      socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                      socket.inet_pton(socket.AF_INET6, "ff15::1")) + hbh + udp
    assert recv_tool.parse_wire(ip6, T.ETH_P_IPV6) == ("2001:db8::1", "ff15::1", 5001, payload)
    assert recv_tool.parse_wire(ip4, T.ETH_P_IPV6) is None
    for n in range(len(ip6)):
        recv_tool.parse_wire(ip6[:n], T.ETH_P_IPV6)
        recv_tool.parse_wire(ip4[:n], T.ETH_P_IP)


# ---------------------------------------------------------------------------
# Mininet-side helpers with fake hosts
# ---------------------------------------------------------------------------


class FakeIntf:
    name = "h1-eth0"


class FakeHost:
    """Answers sysctl like a kernel would: remembers writes, reads them back."""

    def __init__(self, sticky=True):
        self.cmds = []
        self.values = {}
        self.sticky = sticky

    def defaultIntf(self):
        return FakeIntf()

    def cmd(self, c):
        self.cmds.append(c)
        parts = c.split()
        if parts[:3] == ["sysctl", "-q", "-w"]:
            k, v = parts[3].split("=")
            if self.sticky:
                self.values[k] = v
        elif parts[:2] == ["sysctl", "-n"]:
            return self.values.get(parts[2], "0") + "\n"
        return ""


def test_set_host_versions():
    h = FakeHost()
    got = T.set_host_versions(h, igmp=2, mld=1)
    assert got == {"net.ipv4.conf.h1-eth0.force_igmp_version": 2, "net.ipv6.conf.h1-eth0.force_mld_version": 1}
    assert h.values == {"net/ipv4/conf/h1-eth0/force_igmp_version": "2", "net/ipv6/conf/h1-eth0/force_mld_version": "1"}
    h2 = FakeHost()
    assert T.set_host_versions(h2, igmp=0, iface="eth0.10") == {"net.ipv4.conf.eth0.10.force_igmp_version": 0}
    assert h2.cmds[0] == "sysctl -q -w net/ipv4/conf/eth0.10/force_igmp_version=0"  # slashes: dotted names work
    assert T.set_host_versions(FakeHost()) == {}
    for bad in ({"igmp": 4}, {"mld": 3}, {"igmp": "2"}):
        with pytest.raises(ValueError):
            T.set_host_versions(FakeHost(), **bad)
    with pytest.raises(RuntimeError):
        T.set_host_versions(FakeHost(sticky=False), igmp=3)
    inherited = FakeHost()  # conf/all inherited from the machine says v2
    inherited.values["net/ipv4/conf/all/force_igmp_version"] = "2"
    assert T.set_host_versions(inherited, igmp=1)  # v1 still wins
    for v in (0, 3):
        with pytest.raises(RuntimeError, match="conf.all"):
            T.set_host_versions(inherited, igmp=v)
    inherited.values["net/ipv6/conf/all/force_mld_version"] = "1"
    with pytest.raises(RuntimeError):
        T.set_host_versions(inherited, mld=2)


def test_effective_versions_follow_the_kernel_rules():
    assert T.effective_igmp_version(0, 0) == 3
    assert T.effective_igmp_version(0, 2) == 2 and T.effective_igmp_version(2, 0) == 2
    assert T.effective_igmp_version(2, 3) == 2 and T.effective_igmp_version(3, 1) == 1
    assert T.effective_mld_version(0, 0) == 2 and T.effective_mld_version(0, 1) == 1
    assert T.effective_mld_version(2, 1) == 2 and T.effective_mld_version(1, 2) == 1  # all overrides


def test_wait_ready(tmp_path):
    p = tmp_path / "ready"
    with pytest.raises(TimeoutError):
        T.wait_ready(p, timeout=0.1)
    p.write_text("1\n")
    assert T.wait_ready(p, timeout=0.1) < 0.1
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(RuntimeError):
        T.wait_ready(tmp_path / "never", timeout=5, proc=proc)


def test_stop_terms_then_kills():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    assert T.stop(polite, timeout=5) == -signal.SIGTERM
    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
         "time.sleep(30)"],
        stdout=subprocess.PIPE)
    stubborn.stdout.readline()  # the handler is in place
    t0 = time.monotonic()
    assert T.stop(stubborn, timeout=0.3) == -signal.SIGKILL
    assert time.monotonic() - t0 < 5
    stubborn.stdout.close()
    assert T.stop(polite) == -signal.SIGTERM  # already gone: just the status


class RecordingHost:
    def __init__(self):
        self.calls = []

    def popen(self, argv, **kw):
        self.calls.append((argv, kw))
        return subprocess.Popen([sys.executable, "-c", "pass"], **kw)


def test_start_helpers_use_the_callers_python_and_repo_paths(tmp_path):
    h = RecordingHost()
    ready = tmp_path / "ready"
    ready.write_text("stale")
    p = T.start_receiver(h, ["239.1.1.1"], out_path=tmp_path / "r.jsonl", ready_file=ready, iface="h1-eth0")
    p.wait()
    assert not ready.exists()  # a stale ready file must not satisfy wait_ready
    q = T.start_sender(h, "239.1.1.1", out_path=tmp_path / "s.jsonl", count=3)
    q.wait()
    (ra, rkw), (sa, _skw) = h.calls
    assert ra[:2] == [sys.executable, str(T.RECV_SCRIPT)] and sa[:2] == [sys.executable, str(T.SEND_SCRIPT)]
    assert T.RECV_SCRIPT.is_file() and T.SEND_SCRIPT.is_file()
    assert rkw["stdout"] == subprocess.DEVNULL and (tmp_path / "r.jsonl.stderr").exists()


# ---------------------------------------------------------------------------
# The real thing, in a throwaway namespace (root only)
# ---------------------------------------------------------------------------


class NetnsHost:
    """Just enough of a Mininet host for the helpers: popen/cmd inside `ip netns exec NS`.

    `ip netns exec` execs the command, so the Popen's pid is the tool itself (as with mnexec).
    """

    def __init__(self, ns: str):
        self.ns = ns

    def popen(self, argv, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], **kw)

    def cmd(self, command: str) -> str:
        return subprocess.run(["ip", "netns", "exec", self.ns, "sh", "-c", command],
                              capture_output=True, text=True, timeout=10).stdout

    def __str__(self):
        return self.ns


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def netns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a throwaway network namespace")
    ns = f"mcttest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", ns)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create a network namespace: {e.stderr.decode().strip()}")
    try:
        # IPv4 on loopback: multicast flag, a 224/4 route, and a second source address
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", "lo", "multicast", "on")
        _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo")
        _ip("-n", ns, "addr", "add", "10.99.0.1/32", "dev", "lo")
        # IPv6: the kernel does not deliver IPv6 multicast over lo (the output path drops it,
        # Ip6OutNoRoutes), so a veth pair lives inside the namespace: send on mct0, receive on mct1
        _ip("-n", ns, "link", "add", "mct0", "type", "veth", "peer", "name", "mct1")
        for i, dev in enumerate(("mct0", "mct1"), 1):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "-6", "addr", "add", f"fd00:99::{i}/64", "dev", dev, "nodad")
        _ip("-n", ns, "-6", "addr", "add", "fd00:99::3/64", "dev", "mct0", "nodad")  # a second IPv6 source
        yield NetnsHost(ns)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def test_real_namespace(netns, tmp_path):
    """Real sockets, real kernel filters: ASM, SSM (matching and non-matching source),
    EXCLUDE, IPv6 ASM and SSM, and a leave with wire capture, all at once so the test stays short.

    A wrong struct layout (ip_mreq_source order, group_source_req padding) shows up here as
    EINVAL or as the wrong source getting through.
    """
    t_start = time.monotonic()
    assert T.set_host_versions(netns, igmp=2, iface="lo") == {"net.ipv4.conf.lo.force_igmp_version": 2}
    assert T.set_host_versions(netns, igmp=0, mld=0, iface="mct1")
    N = 20
    G_ASM, G_SSM, G_EXCL, G_LEAVE = "239.255.77.1", "239.255.77.2", "239.255.77.3", "239.255.77.4"
    G_V6, G_V6SSM = "ff15::77:1", "ff35::77:2"
    receivers = {
        "asm": dict(groups=[G_ASM], iface="lo"),
        "ssm": dict(groups=[G_SSM], iface="lo", sources=["10.99.0.1"]),
        "excl": dict(groups=[G_EXCL], iface="lo", blocks=["10.99.0.1"]),
        "v6": dict(groups=[G_V6], iface="mct1"),
        "v6ssm": dict(groups=[G_V6SSM], iface="mct1", sources=["fd00:99::1"]),
        "leave": dict(groups=[G_LEAVE], iface="lo", leave_after=1.5),
    }
    senders = [  # (name, group, iface, bind, count, rate)
        ("s_asm", G_ASM, "lo", "127.0.0.1", N, 100),
        ("s_ssm_other", G_SSM, "lo", "127.0.0.1", N, 100),
        ("s_ssm", G_SSM, "lo", "10.99.0.1", N, 100),
        ("s_excl_other", G_EXCL, "lo", "127.0.0.1", N, 100),
        ("s_excl", G_EXCL, "lo", "10.99.0.1", N, 100),
        ("s_v6", G_V6, "mct0", "fd00:99::1", N, 100),
        ("s_v6ssm", G_V6SSM, "mct0", "fd00:99::1", N, 100),
        ("s_v6ssm_other", G_V6SSM, "mct0", "fd00:99::3", N, 100),
        ("s_leave", G_LEAVE, "lo", "127.0.0.1", 100, 40),
    ]
    procs = {}
    try:
        for name, kw in receivers.items():
            procs[name] = T.start_receiver(netns, kw.pop("groups"), out_path=tmp_path / f"{name}.jsonl",
                                           ready_file=tmp_path / f"{name}.ready", duration=8, **kw)
        for name in receivers:
            T.wait_ready(tmp_path / f"{name}.ready", timeout=5, proc=procs[name])
        for i, (name, group, iface, bind, count, rate) in enumerate(senders):
            procs[name] = T.start_sender(netns, group, out_path=tmp_path / f"{name}.jsonl", iface=iface, bind=bind,
                                         count=count, rate=rate, stream=i + 1, max_seconds=5)
        for name, *_ in senders:
            assert procs[name].wait(timeout=8) == 0, (tmp_path / f"{name}.jsonl.stderr").read_text()
        time.sleep(0.2)  # the last datagrams are in flight for microseconds; this is generous
    finally:
        codes = {name: T.stop(p, timeout=3) for name, p in procs.items()}
    for name in receivers:
        assert codes[name] == 0, (name, (tmp_path / f"{name}.jsonl.stderr").read_text())

    sent = {name: T.collect(tmp_path / f"{name}.jsonl") for name, *_ in senders}
    for name, _g, _i, bind, count, _r in senders:
        s = [r for r in sent[name] if r["event"] == "sent"]
        assert len(s) == 1 and s[0]["count"] == count and s[0]["errors"] == 0, sent[name]
        if bind:
            assert s[0]["src"] == bind
    expected = T.expected_from_sent(r for recs in sent.values() for r in recs)
    got = {name: T.collect(tmp_path / f"{name}.jsonl") for name in receivers}
    for name, recs in got.items():
        done = [r for r in recs if r["event"] == "done"]
        assert len(done) == 1 and done[0]["reason"] == "SIGTERM", (name, recs[-3:])
        assert [r["event"] for r in recs if r["event"] == "joined"] == ["joined"]

    def exactly_once(name, group, src):
        summ = T.summarize(got[name], expected)
        heard = {k for k, v in summ.items() if v["received"]}
        assert heard == {(group, src)}, (name, heard)
        x = summ[(group, src)]
        assert (x["received"], x["unique"], x["duplicates"], x["missing"]) == (N, N, 0, 0), (name, x)
        assert 0 <= x["delay_min"] and x["delay_max"] < 1.0

    exactly_once("asm", G_ASM, "127.0.0.1")
    exactly_once("ssm", G_SSM, "10.99.0.1")  # INCLUDE {10.99.0.1}: nothing from 127.0.0.1
    assert T.summarize(got["ssm"], expected)[(G_SSM, "127.0.0.1")]["received"] == 0
    exactly_once("excl", G_EXCL, "127.0.0.1")  # EXCLUDE {10.99.0.1}
    exactly_once("v6", G_V6, "fd00:99::1")
    exactly_once("v6ssm", G_V6SSM, "fd00:99::1")  # MCAST_JOIN_SOURCE_GROUP: nothing from fd00:99::3
    joined = {r["group"]: r for name in receivers for r in got[name] if r["event"] == "joined"}
    assert joined[G_SSM]["sources"] == ["10.99.0.1"] and joined[G_SSM]["mode"] == "include"
    assert joined[G_SSM]["api"] == "IP_ADD_SOURCE_MEMBERSHIP"
    assert joined[G_EXCL]["blocks"] == ["10.99.0.1"] and joined[G_EXCL]["mode"] == "exclude"
    assert joined[G_V6]["api"] == "IPV6_JOIN_GROUP" and joined[G_V6SSM]["api"] == "MCAST_JOIN_SOURCE_GROUP"

    # the leave: the socket stops at the leave; what still reaches the interface is "wire"
    lv = T.summarize(got["leave"], expected)[(G_LEAVE, "127.0.0.1")]
    left = [r for r in got["leave"] if r["event"] == "left" and not r["final"]]
    assert len(left) == 1 and lv["left"] == left[0]["t"]
    assert lv["received"] > 0 and lv["last_rx"] <= lv["left"]
    # loopback has no network to stop the stream, so every later datagram is still seen
    assert lv["wire_after_leave"] > 0 and lv["leave_latency"] > 0
    assert lv["received"] + lv["wire_after_leave"] + lv["wire_before_join"] == 100
    assert time.monotonic() - t_start < 15
