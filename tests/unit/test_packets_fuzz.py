"""Fuzzing mcast_sdn.packets.parse_frame: hostile bytes must become a counted Drop.

Deterministic (fixed-seed `random.Random`), so a failure reproduces; run with ``-s`` to
see the per-reason histogram. Mutations start from valid frames of every kind built by
our builders. Half of the mutated frames get their checksums recomputed, otherwise
nearly everything would stop at the checksum and the deeper checks (counts, lengths,
addresses) would never be exercised; the test asserts that they were.

`parse_frame` has a catch-all that turns an exception into ``PARSER_ERROR``; that would
hide bugs from a plain "does not raise" test, so these tests assert it never appears.
"""
from __future__ import annotations

import collections
import ipaddress
import math
import random
import struct
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from ryu.lib.packet import packet, packet_utils

from mcast_sdn.messages import (
    Drop,
    DropReason,
    GroupRecord,
    Leave,
    Parsed,
    PimHello,
    Query,
    RecordType,
    Report,
)
from mcast_sdn.packets import (
    build_igmp_query,
    build_igmp_report,
    build_mld_query,
    build_mld_report,
    build_pim_hello,
    decode_igmp_code,
    decode_mld_code,
    is_link_local_group,
    parse_frame,
)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
MAC = "02:00:00:00:00:01"
ITERATIONS = 120_000


def seed_frames() -> list[bytes]:
    """Valid frames of every kind the parser accepts."""
    v4recs = [
        (1, "239.0.0.1", ["10.1.1.2", "10.1.1.1"]),
        (2, "239.0.0.2", []),
        (3, "239.0.0.3", ["10.1.1.3"]),
        (4, "224.0.0.251", []),
        (5, "232.0.0.5", ["192.0.2.1"], b"AUX!"),
        (6, "232.0.0.6", ["192.0.2.1", "192.0.2.2", "192.0.2.1"]),
    ]
    v6recs = [
        (1, "ff05::1", ["2001:db8::2", "2001:db8::1"]),
        (2, "ff02::1:ff00:2", []),
        (3, "ff3e::8000:3", ["2001:db8::3"]),
        (4, "ff15::4", [], b"12345678"),
        (5, "ff08::5", ["fe80::9"]),
        (6, "ff0e::6", ["2001:db8::1", "2001:db8::2"]),
    ]
    many = [(1, f"239.2.{i}.1", [f"10.0.{i}.{j}" for j in range(1, 9)]) for i in range(12)]
    return [
        build_igmp_query(1, MAC, "10.0.0.1"),
        build_igmp_query(2, MAC, "10.0.0.1"),
        build_igmp_query(2, MAC, "10.0.0.1", "239.1.1.1", max_resp=1.0),
        build_igmp_query(3, MAC, "10.0.0.1"),
        build_igmp_query(3, MAC, "10.0.0.1", "239.1.1.1", ["10.0.0.7", "10.0.0.3"], 25.6, True, 3, 300),
        build_igmp_report(1, MAC, "10.0.0.2", "239.1.1.1"),
        build_igmp_report(2, MAC, "0.0.0.0", "239.1.1.1"),
        build_igmp_report(2, MAC, "10.0.0.2", "239.1.1.1", leave=True),
        build_igmp_report(3, MAC, "10.0.0.2", records=v4recs),
        build_igmp_report(3, MAC, "10.0.0.2", records=v4recs[:2], vlan=10),
        build_igmp_report(3, MAC, "10.0.0.2", records=many),
        build_igmp_report(3, MAC, "10.0.0.2", records=[(2, "239.9.9.9", [])], router_alert=False),
        build_mld_query(1, MAC, "fe80::1"),
        build_mld_query(1, MAC, "fe80::1", "ff05::1"),
        build_mld_query(2, MAC, "fe80::1"),
        build_mld_query(2, MAC, "fe80::1", "ff05::1", ["2001:db8::7", "2001:db8::3"], 40.0, True, 7, 60),
        build_mld_report(1, MAC, "fe80::2", "ff05::1"),
        build_mld_report(1, MAC, "::", "ff05::1", done=True),
        build_mld_report(2, MAC, "fe80::2", records=v6recs),
        build_mld_report(2, MAC, "::", records=v6recs[:3], vlan=20),
        build_mld_report(2, MAC, "fe80::2", records=[(4, "ff05::1", [])], router_alert=False),
        build_pim_hello(MAC, "10.0.0.1"),
        build_pim_hello(MAC, "fe80::1", vlan=30),
    ]


# ---------------------------------------------------------------------------
# Mutation tools. They only have to be good enough to produce interesting inputs, and
# must never raise themselves (so they guard every access).
# ---------------------------------------------------------------------------


def locate(b) -> tuple[int, int, int, int, int] | None:
    """(ip_off, l4_off, l4_end, family, proto) if the frame looks like IP, else None."""
    if len(b) < 14:
        return None
    off = 14
    etype = (b[12] << 8) | b[13]
    if etype == 0x8100 and len(b) >= 18:
        etype = (b[16] << 8) | b[17]
        off = 18
    if etype == 0x0800 and len(b) >= off + 20:
        ihl = (b[off] & 0x0F) * 4
        total = (b[off + 2] << 8) | b[off + 3]
        if ihl < 20 or off + ihl > len(b):
            return None
        return off, off + ihl, min(off + total, len(b)), 4, b[off + 9]
    if etype == 0x86DD and len(b) >= off + 40:
        end = min(off + 40 + ((b[off + 4] << 8) | b[off + 5]), len(b))
        nh, p = b[off + 6], off + 40
        for _ in range(8):
            if nh not in (0, 43, 60) or p + 2 > end:
                break
            nh, p = b[p], p + (b[p + 1] + 1) * 8
        if p > end:
            return None
        return off, p, end, 6, nh
    return None


def fix_checksums(frame) -> bytes:
    """Recompute the IPv4 header and IGMP/ICMPv6/PIM checksums, where they can be found."""
    b = bytearray(frame)
    loc = locate(b)
    if loc is None:
        return bytes(b)
    ip, l4, end, fam, proto = loc
    if fam == 4:
        b[ip + 10 : ip + 12] = b"\0\0"
        struct.pack_into("!H", b, ip + 10, packet_utils.checksum(bytes(b[ip:l4])))
    if l4 + 4 <= end:
        b[l4 + 2 : l4 + 4] = b"\0\0"
        pseudo = b""
        if fam == 6:
            pseudo = bytes(b[ip + 8 : ip + 40]) + struct.pack("!IxxxB", end - l4, proto)
        struct.pack_into("!H", b, l4 + 2, packet_utils.checksum(pseudo + bytes(b[l4:end])))
    return bytes(b)


def count_offsets(b) -> list[tuple[int, str]]:
    """Positions of record/source counts and aux lengths (first records) in a frame."""
    loc = locate(b)
    if loc is None:
        return []
    _, l4, end, fam, _ = loc
    if l4 >= end:
        return []
    t = b[l4]
    rec, addr = (8, 4) if fam == 4 else (20, 16)
    out = []
    if t in (0x22, 143):  # v3 / MLDv2 report: record count, then walk two records
        out.append((l4 + 6, "!H"))
        p = l4 + 8
        for _ in range(2):
            if p + rec > end:
                break
            out += [(p + 1, "!B"), (p + 2, "!H")]
            p += rec + addr * ((b[p + 2] << 8) | b[p + 3]) + 4 * b[p + 1]
    elif t == 0x11:
        out.append((l4 + 10, "!H"))
    elif t == 130:
        out.append((l4 + 26, "!H"))
    return [(pos, fmt) for pos, fmt in out if pos + struct.calcsize(fmt) <= len(b)]


SUSPICIOUS_V4 = [
    V4(a).packed
    for a in ("0.0.0.0", "255.255.255.255", "224.0.0.1", "224.0.0.251", "239.1.1.1", "240.0.0.1", "10.0.0.1")
]
SUSPICIOUS_V6 = [
    V6(a).packed
    for a in ("::", "ff02::1", "ff01::2", "ff05::1", "ff12::3", "ff00::", "fe80::1", "2001:db8::1", "::1")
]
INTERESTING16 = [0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF]


def mutate(rng: random.Random, frame: bytes, seeds: list[bytes]) -> bytes:
    op = rng.randrange(13)
    b = bytearray(frame)
    if op == 0:  # truncate anywhere
        return bytes(b[: rng.randrange(len(b) + 1)])
    if op in (1, 2):  # random byte values; half the time with checksums repaired
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return fix_checksums(b) if op == 2 else bytes(b)
    if op == 3:  # single bit flips, repaired
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return fix_checksums(b)
    if op in (4, 5):  # absurd record/source counts and aux lengths, repaired
        offs = count_offsets(b)
        if not offs:
            return fix_checksums(b)
        for pos, fmt in rng.sample(offs, rng.randint(1, len(offs))):
            hi = 0xFF if fmt == "!B" else 0xFFFF
            v = rng.choice(INTERESTING16 + [rng.randrange(hi + 1)]) & hi
            struct.pack_into(fmt, b, pos, v)
        return fix_checksums(b)
    if op == 6:  # IP length fields and IHL, repaired
        loc = locate(b)
        if loc is None:
            return bytes(b)
        ip, _, _, fam, _ = loc
        if fam == 4 and rng.random() < 0.3:
            b[ip] = 0x40 | rng.randrange(16)
        else:
            pos = ip + 2 if fam == 4 else ip + 4
            v = rng.choice(INTERESTING16 + [rng.randrange(len(b) + 8)])
            struct.pack_into("!H", b, pos, v)
            if rng.random() < 0.5:  # and make the buffer end where the header says
                del b[ip + v + (0 if fam == 4 else 40) :]
        return fix_checksums(b)
    if op == 7:  # insert or delete bytes in the middle
        pos = rng.randrange(len(b) + 1)
        if rng.random() < 0.5:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del b[pos : pos + rng.randint(1, 8)]
        return fix_checksums(b) if rng.random() < 0.5 else bytes(b)
    if op == 8:  # pure noise
        return bytes(rng.randrange(256) for _ in range(rng.randrange(120)))
    if op == 9:  # valid headers, random payload of the declared length
        loc = locate(b)
        if loc is None:
            return bytes(b)
        _, l4, end, _, _ = loc
        b[l4:end] = bytes(rng.randrange(256) for _ in range(end - l4))
        return fix_checksums(b)
    if op == 10:  # splice the head of one frame onto the tail of another
        other = rng.choice(seeds)
        return bytes(b[: rng.randrange(len(b) + 1)]) + other[rng.randrange(len(other) + 1) :]
    if op == 12:  # overwrite an address-sized field with a suspicious address, repaired
        loc = locate(b)
        if loc is None:
            return bytes(b)
        _, l4, end, fam, _ = loc
        size = 4 if fam == 4 else 16
        slots = range(l4 + 4, end - size + 1, 4)  # addresses are 4-aligned after l4
        if not slots:
            return bytes(b)
        pos = rng.choice(slots)
        b[pos : pos + size] = rng.choice(SUSPICIOUS_V4 if fam == 4 else SUSPICIOUS_V6)
        return fix_checksums(b)
    # op 11: trailing data inside the IP packet (RFC "additional data"), repaired
    loc = locate(b)
    if loc is None:
        return bytes(b)
    ip, _, end, fam, _ = loc
    extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 24)))
    b[end:end] = extra
    if fam == 4:
        struct.pack_into("!H", b, ip + 2, ((b[ip + 2] << 8) | b[ip + 3]) + len(extra))
    else:
        struct.pack_into("!H", b, ip + 4, ((b[ip + 4] << 8) | b[ip + 5]) + len(extra))
    return fix_checksums(b)


# ---------------------------------------------------------------------------
# Invariants of accepted messages
# ---------------------------------------------------------------------------


def assert_unicast(addr, family):
    assert addr.version == family
    assert not addr.is_multicast and not addr.is_unspecified
    if family == 4:
        assert addr != V4("255.255.255.255")


def assert_sources(sources, family):
    assert isinstance(sources, tuple)
    assert all(a < b for a, b in zip(sources, sources[1:])), "sorted and unique"
    for s in sources:
        assert_unicast(s, family)


def assert_snoopable_group(group, family):
    assert group.version == family and group.is_multicast and not is_link_local_group(group)


def check_parsed(result: Parsed) -> None:
    m, fr = result.message, result.frame
    assert len(fr.eth_src) == 17 and len(fr.eth_dst) == 17
    assert int(fr.eth_src[:2], 16) & 1 == 0, "multicast Ethernet source accepted"
    assert fr.vlan is None or 1 <= fr.vlan <= 4095
    if isinstance(m, Report):
        assert (m.family, m.version) in {(4, 1), (4, 2), (4, 3), (6, 1), (6, 2)}
        assert m.src.version == m.family
        if m.version < 3 and not (m.family == 6 and m.version == 2):
            assert len(m.records) == 1 and m.records[0].rtype is RecordType.MODE_IS_EXCLUDE
        for rec in m.records:
            assert isinstance(rec, GroupRecord) and isinstance(rec.rtype, RecordType)
            assert_snoopable_group(rec.group, m.family)
            assert_sources(rec.sources, m.family)
        if m.family == 6:
            assert m.src.is_link_local or m.src.is_unspecified
    elif isinstance(m, Leave):
        assert (m.family, m.version) in {(4, 2), (6, 1)}
        assert_snoopable_group(m.group, m.family)
        if m.family == 6:
            assert m.src.is_link_local or m.src.is_unspecified
    elif isinstance(m, Query):
        assert (m.family, m.version) in {(4, 1), (4, 2), (4, 3), (6, 1), (6, 2)}
        assert m.group is None or (m.group.version == m.family and m.group.is_multicast)
        assert_sources(m.sources, m.family)
        assert not m.sources or m.group is not None
        assert math.isfinite(m.max_resp) and m.max_resp >= 0
        v3 = (m.family, m.version) in {(4, 3), (6, 2)}
        assert (m.qrv is not None) is v3 and (m.qqi is not None) is v3
        if v3:
            assert 0 <= m.qrv <= 7 and m.qqi >= 0
        if m.family == 6:
            assert m.src.is_link_local
    else:
        assert isinstance(m, PimHello) and m.family in (4, 6) and m.src.version == m.family


def ryu_report_view(frame: bytes):
    """Groups/sources of a v3/MLDv2 report according to ryu, or None if ryu fails."""
    try:
        for proto in packet.Packet(frame).protocols:
            recs = getattr(proto, "records", None)
            if recs is None:
                recs = getattr(getattr(proto, "data", None), "records", None)
            if recs is not None:
                return [(r.type_, r.address, sorted(set(r.srcs), key=ipaddress.ip_address)) for r in recs]
    except Exception:
        return None
    return None


def test_fuzz_parse_frame():
    rng = random.Random(0x5EED_1C3F)
    seeds = seed_frames()
    for f in seeds:
        result = parse_frame(f)
        assert isinstance(result, Parsed), result
    hist: collections.Counter = collections.Counter()
    compared = 0
    t0 = time.perf_counter()
    for i in range(ITERATIONS):
        frame = mutate(rng, rng.choice(seeds), seeds)
        result = parse_frame(frame)
        if isinstance(result, Drop):
            assert isinstance(result.reason, DropReason) and isinstance(result.detail, str)
            hist[result.reason.value] += 1
            continue
        assert isinstance(result, Parsed), repr(result)
        hist["parsed:" + type(result.message).__name__] += 1
        check_parsed(result)
        m = result.message
        # Differential check: where ryu can decode an accepted v3/MLDv2 report, it must
        # see the same records (modulo our de-duplication and link-local skipping).
        if isinstance(m, Report) and (m.family, m.version) in {(4, 3), (6, 2)} and compared < 2000:
            theirs = ryu_report_view(frame)
            if theirs is not None:
                compared += 1
                ours = [(int(r.rtype), str(r.group), [str(s) for s in r.sources]) for r in m.records]
                kept = [
                    (t, ipaddress.ip_address(g).compressed, [ipaddress.ip_address(s).compressed for s in srcs])
                    for t, g, srcs in theirs
                    if not is_link_local_group(g)
                ]
                assert ours == kept, (frame.hex(), ours, kept)
    elapsed = time.perf_counter() - t0
    total = sum(hist.values())
    print(f"\nfuzzed {total} frames in {elapsed:.1f} s; {compared} reports cross-checked with ryu")
    for key, n in sorted(hist.items(), key=lambda kv: -kv[1]):
        print(f"  {key:28s} {n:7d}")
    assert total == ITERATIONS >= 100_000
    assert DropReason.PARSER_ERROR.value not in hist, "parser raised (caught by the safety net)"
    # The mutations reach deep: nearly every parser drop reason and every message kind.
    parser_reasons = {
        r.value
        for r in DropReason
        if r not in {DropReason.RATE_LIMITED, DropReason.LIMIT_GROUPS, DropReason.LIMIT_SOURCES, DropReason.PARSER_ERROR}
    }
    assert parser_reasons <= set(hist), parser_reasons - set(hist)
    for kind in ("Report", "Leave", "Query", "PimHello"):
        assert hist["parsed:" + kind] > 100, kind
    assert compared > 200


@given(st.binary(max_size=400))
@settings(max_examples=2000, deadline=None)
def test_random_bytes_never_raise(data):
    result = parse_frame(data)
    assert isinstance(result, (Parsed, Drop))
    if isinstance(result, Drop):
        assert result.reason is not DropReason.PARSER_ERROR, result


@given(st.binary(min_size=0, max_size=120), st.sampled_from(seed_frames()))
@settings(max_examples=2000, deadline=None)
def test_valid_headers_random_payload(payload, seed):
    # keep Ethernet/IP headers, replace the rest, repair lengths and checksums
    loc = locate(seed)
    ip, l4, _, fam, _ = loc
    b = bytearray(seed[:l4] + payload)
    if fam == 4:
        struct.pack_into("!H", b, ip + 2, len(b) - ip)
    else:
        struct.pack_into("!H", b, ip + 4, len(b) - ip - 40)
    result = parse_frame(fix_checksums(b))
    assert isinstance(result, (Parsed, Drop))
    if isinstance(result, Drop):
        assert result.reason is not DropReason.PARSER_ERROR, result
    else:
        check_parsed(result)


# ---------------------------------------------------------------------------
# Round-trip properties: whatever the builders encode, the parser gives back
# ---------------------------------------------------------------------------

v4_group = st.integers(0xE0000100, 0xEFFFFFFF).map(V4)  # multicast, above 224.0.0.0/24
v4_source = st.integers(1, 0xDFFFFFFF).map(V4)
v6_group = st.tuples(st.integers(0, 255), st.integers(0, 2**112 - 1)).filter(lambda t: t[0] not in (1, 2)).map(
    lambda t: V6((0xFF << 120) | (t[0] << 112) | t[1])
)
v6_source = st.integers(1, (0xFF << 120) - 1).map(V6)


def records(group, source):
    return st.lists(
        st.tuples(st.sampled_from(list(RecordType)), group, st.lists(source, max_size=6)),
        max_size=8,
    )


@given(records(v4_group, v4_source), v4_source)
@settings(max_examples=300, deadline=None)
def test_igmpv3_report_round_trip(recs, src):
    got = parse_frame(build_igmp_report(3, MAC, src, records=recs))
    assert got.message == Report(
        4, 3, src, tuple(GroupRecord(t, g, tuple(sorted(set(s)))) for t, g, s in recs)
    )


@given(records(v6_group, v6_source), st.integers(0, 2**64 - 1))
@settings(max_examples=300, deadline=None)
def test_mldv2_report_round_trip(recs, iid):
    src = V6((0xFE80 << 112) | iid)
    got = parse_frame(build_mld_report(2, MAC, src, records=recs))
    assert got.message == Report(
        6, 2, src, tuple(GroupRecord(t, g, tuple(sorted(set(s)))) for t, g, s in recs)
    )


@given(
    st.one_of(st.none(), v4_group),
    st.lists(v4_source, max_size=5),
    st.integers(0, 255),
    st.integers(0, 255),
    st.booleans(),
    st.integers(0, 7),
)
@settings(max_examples=300, deadline=None)
def test_igmpv3_query_round_trip(group, sources, resp_code, qqic, s_flag, qrv):
    sources = sources if group is not None else []
    # every representable value survives the seconds <-> code conversion exactly
    max_resp = decode_igmp_code(resp_code) / 10
    qqi = float(decode_igmp_code(qqic))
    q = parse_frame(build_igmp_query(3, MAC, "10.0.0.1", group, sources, max_resp, s_flag, qrv, qqi)).message
    assert q == Query(4, 3, V4("10.0.0.1"), group, tuple(sorted(set(sources))), max_resp, s_flag, qrv, qqi)


@given(
    st.one_of(st.none(), v6_group),
    st.lists(v6_source, max_size=5),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.booleans(),
    st.integers(0, 7),
)
@settings(max_examples=300, deadline=None)
def test_mldv2_query_round_trip(group, sources, resp_code, qqic, s_flag, qrv):
    sources = sources if group is not None else []
    max_resp = decode_mld_code(resp_code) / 1000
    qqi = float(decode_igmp_code(qqic))
    q = parse_frame(build_mld_query(2, MAC, "fe80::1", group, sources, max_resp, s_flag, qrv, qqi)).message
    assert q == Query(6, 2, V6("fe80::1"), group, tuple(sorted(set(sources))), max_resp, s_flag, qrv, qqi)
