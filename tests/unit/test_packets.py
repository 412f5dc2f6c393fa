"""Unit tests for mcast_sdn.packets: parser, builders and RFC floating-point codes.

Frames come from three places, so that neither side only agrees with itself:
our builders (round trips), ryu.lib.packet (an independent encoder; parsed with ours)
and byte surgery on valid frames (one defect at a time, checksums recomputed with
ryu's own checksum routine so only the intended defect is present).
"""
from __future__ import annotations

import ipaddress
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ryu.lib.packet import ethernet, icmpv6, igmp, ipv4, ipv6, packet, packet_utils, vlan

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
    IGMP_CODE_MAX,
    MLD_CODE_MAX,
    build_igmp_query,
    build_igmp_report,
    build_mld_query,
    build_mld_report,
    build_pim_hello,
    decode_igmp_code,
    decode_mld_code,
    encode_igmp_code,
    encode_mld_code,
    inet_checksum,
    is_link_local_group,
    multicast_mac,
    parse_frame,
)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
MAC = "02:00:00:00:00:01"
HOST4 = "10.0.0.2"
HOST6 = "fe80::2"
R = RecordType


# ---------------------------------------------------------------------------
# Helpers: locate layers and recompute checksums independently (ryu's checksum)
# ---------------------------------------------------------------------------


def layers(frame: bytes):
    """(ip_offset, l4_offset, l4_end, family, upper_proto) of a well-laid-out frame."""
    off = 14
    etype = struct.unpack_from("!H", frame, 12)[0]
    if etype == 0x8100:
        etype = struct.unpack_from("!H", frame, 16)[0]
        off = 18
    if etype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, off + 2)[0]
        return off, off + ihl, off + total, 4, frame[off + 9]
    plen = struct.unpack_from("!H", frame, off + 4)[0]
    nh = frame[off + 6]
    p = off + 40
    while nh in (0, 43, 60):
        nh, hlen = frame[p], (frame[p + 1] + 1) * 8
        p += hlen
    return off, p, off + 40 + plen, 6, nh


def refresh(frame, *, ip_header=True, upper=True) -> bytes:
    """Recompute the IPv4 header checksum and the IGMP/ICMPv6/PIM checksum."""
    b = bytearray(frame)
    ip, l4, end, fam, proto = layers(b)
    if fam == 4 and ip_header:
        ihl = (b[ip] & 0x0F) * 4
        b[ip + 10 : ip + 12] = b"\0\0"
        struct.pack_into("!H", b, ip + 10, packet_utils.checksum(bytes(b[ip : ip + ihl])))
    if upper:
        b[l4 + 2 : l4 + 4] = b"\0\0"
        pseudo = b""
        if fam == 6:
            pseudo = bytes(b[ip + 8 : ip + 40]) + struct.pack("!IxxxB", end - l4, proto)
        struct.pack_into("!H", b, l4 + 2, packet_utils.checksum(pseudo + bytes(b[l4:end])))
    return bytes(b)


def checksums_valid(frame: bytes) -> bool:
    ip, l4, end, fam, proto = layers(frame)
    ok = True
    if fam == 4:
        ihl = (frame[ip] & 0x0F) * 4
        ok = packet_utils.checksum(frame[ip : ip + ihl]) == 0
        pseudo = b""
    else:
        pseudo = frame[ip + 8 : ip + 40] + struct.pack("!IxxxB", end - l4, proto)
    return ok and packet_utils.checksum(pseudo + frame[l4:end]) == 0


def patch(frame: bytes, pos: int, fmt: str, *values, fix=True) -> bytes:
    b = bytearray(frame)
    struct.pack_into(fmt, b, pos, *values)
    return refresh(b) if fix else bytes(b)


def msg(frame: bytes):
    r = parse_frame(frame)
    assert isinstance(r, Parsed), r
    return r.message


def reason(frame: bytes) -> DropReason:
    r = parse_frame(frame)
    assert isinstance(r, Drop), r
    return r.reason


def ryu_ipv4_frame(payload, *, src=HOST4, dst="224.0.0.22", proto=2, ttl=1, router_alert=True, vlan_id=None):
    p = packet.Packet()
    etype = 0x8100 if vlan_id is not None else 0x0800
    p.add_protocol(ethernet.ethernet(dst=multicast_mac(dst), src=MAC, ethertype=etype))
    if vlan_id is not None:
        p.add_protocol(vlan.vlan(vid=vlan_id, ethertype=0x0800))
    opt = b"\x94\x04\x00\x00" if router_alert else None
    p.add_protocol(
        ipv4.ipv4(header_length=6 if router_alert else 5, ttl=ttl, proto=proto, src=src, dst=dst, option=opt)
    )
    p.add_protocol(payload)
    p.serialize()
    return bytes(p.data)


def ryu_ipv6_frame(icmp, *, src=HOST6, dst="ff02::16", hbh=True, hop_limit=1):
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst=multicast_mac(dst), src=MAC, ethertype=0x86DD))
    ext = []
    if hbh:
        ext = [ipv6.hop_opts(nxt=58, data=[ipv6.option(5, 2, b"\0\0"), ipv6.option(1, 0, None)])]
    p.add_protocol(ipv6.ipv6(nxt=0 if hbh else 58, hop_limit=hop_limit, src=src, dst=dst, ext_hdrs=ext))
    p.add_protocol(icmp)
    p.serialize()
    # ryu 4.34 puts the IPv6 header's Next Header (0, hop-by-hop) into the ICMPv6
    # pseudo-header instead of 58 (RFC 8200 §8.1), so its checksum is wrong whenever
    # an extension header is present; recompute it independently.
    return refresh(bytes(p.data)) if hbh else bytes(p.data)


def ryu_decode(frame: bytes):
    """ryu's decoding of `frame`, as {class name: header object} (ICMPv6 body included)."""
    out = {}
    for proto in packet.Packet(frame).protocols:
        if isinstance(proto, (bytes, bytearray)):
            continue
        out[type(proto).__name__] = proto
        if isinstance(proto, icmpv6.icmpv6):
            out[type(proto.data).__name__] = proto.data
    return out


# ---------------------------------------------------------------------------
# Floating-point codes (RFC 3376 §4.1.1/§4.1.7, RFC 3810 §5.1.3)
# ---------------------------------------------------------------------------


def test_igmp_code_rfc_examples():
    assert decode_igmp_code(0) == 0
    assert decode_igmp_code(127) == 127
    assert decode_igmp_code(0x80) == 128  # exp 0, mant 0: (0x10) << 3
    assert decode_igmp_code(0x8F) == 31 << 3  # exp 0, mant 15
    assert decode_igmp_code(0x90) == 16 << 4  # exp 1, mant 0
    assert decode_igmp_code(0xF0) == 16 << 10
    assert decode_igmp_code(0xFF) == 31 << 10 == IGMP_CODE_MAX
    assert encode_igmp_code(128) == 0x80
    assert encode_igmp_code(256) == 0x90
    assert encode_igmp_code(31744) == 0xFF


def test_mld_code_rfc_examples():
    assert decode_mld_code(32767) == 32767
    assert decode_mld_code(0x8000) == 32768  # exp 0, mant 0: 0x1000 << 3
    assert decode_mld_code(0x8FFF) == 0x1FFF << 3
    assert decode_mld_code(0x9000) == 0x1000 << 4
    assert decode_mld_code(0xFFFF) == 0x1FFF << 10 == MLD_CODE_MAX
    assert encode_mld_code(32768) == 0x8000
    assert encode_mld_code(65536) == 0x9000


@pytest.mark.parametrize(
    "decode,encode,ncodes",
    [(decode_igmp_code, encode_igmp_code, 1 << 8), (decode_mld_code, encode_mld_code, 1 << 16)],
    ids=["igmp", "mld"],
)
def test_codes_round_trip_and_monotonic(decode, encode, ncodes):
    values = [decode(c) for c in range(ncodes)]
    assert all(a < b for a, b in zip(values, values[1:])), "decode must be strictly increasing"
    for code, value in enumerate(values):
        assert encode(value) == code
        assert encode(value, round_up=True) == code


@pytest.mark.parametrize(
    "decode,encode,top,maxcode",
    [(decode_igmp_code, encode_igmp_code, IGMP_CODE_MAX, 0xFF), (decode_mld_code, encode_mld_code, MLD_CODE_MAX, 0xFFFF)],
    ids=["igmp", "mld"],
)
def test_codes_round_down_and_up(decode, encode, top, maxcode):
    rng = random.Random(1)
    extra = [v for v in (top - 1, 129, 130, 32769, 32777) if v < top]
    for v in [rng.randrange(top) for _ in range(3000)] + extra:
        down, up = encode(v), encode(v, round_up=True)
        # down: the largest code not above v; up: the smallest code not below v
        assert decode(down) <= v
        assert down == maxcode or decode(down + 1) > v
        assert decode(up) >= v
        assert up == 0 or decode(up - 1) < v
    assert encode(top + 12345) == maxcode  # clamped
    assert encode(top + 12345, round_up=True) == maxcode


def test_code_argument_errors():
    with pytest.raises(ValueError):
        decode_igmp_code(256)
    with pytest.raises(ValueError):
        decode_mld_code(-1)
    with pytest.raises(ValueError):
        encode_igmp_code(-1)
    with pytest.raises(ValueError):
        encode_mld_code(-5)


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_inet_checksum_matches_ryu(data):
    assert inet_checksum(data) == packet_utils.checksum(data)
    # a buffer with its checksum inserted verifies
    buf = bytearray(data + (b"\0\0" if len(data) % 2 == 0 else b"\0\0\0"))
    struct.pack_into("!H", buf, len(buf) - 2, inet_checksum(bytes(buf)))
    assert packet_utils.checksum(bytes(buf)) == 0


# ---------------------------------------------------------------------------
# Address helpers
# ---------------------------------------------------------------------------


def test_multicast_mac():
    assert multicast_mac("224.0.0.1") == "01:00:5e:00:00:01"
    assert multicast_mac("239.129.2.3") == "01:00:5e:01:02:03"  # 24th bit dropped
    assert multicast_mac(V4("232.255.255.254")) == "01:00:5e:7f:ff:fe"
    assert multicast_mac("ff02::1") == "33:33:00:00:00:01"
    assert multicast_mac("ff02::1:ff00:1234") == "33:33:ff:00:12:34"
    assert multicast_mac(V6("ff0e::dead:beef")) == "33:33:de:ad:be:ef"


@pytest.mark.parametrize(
    "addr,expected",
    [
        ("224.0.0.251", True),
        ("224.0.0.0", True),
        ("224.0.1.1", False),
        ("239.1.1.1", False),
        ("10.0.0.1", False),
        ("ff02::fb", True),
        ("ff01::1", True),
        ("ff00::1", False),
        ("ff12::1234", False),  # link scope with flags: the pipeline does not flood it
        ("ff32::1", False),
        ("ff05::1", False),
        ("ff0e::1", False),
        ("ff3e::8000:1", False),
        ("fe80::1", False),
    ],
)
def test_is_link_local_group(addr, expected):
    assert is_link_local_group(addr) is expected


# ---------------------------------------------------------------------------
# IGMP queries: builder -> our parser, and builder -> ryu's decoder
# ---------------------------------------------------------------------------


def test_igmpv1_query():
    f = build_igmp_query(1, MAC, "10.0.0.1")
    assert checksums_valid(f)
    q = msg(f)
    assert q == Query(4, 1, V4("10.0.0.1"), None, (), 10.0, False, None, None)
    r = ryu_decode(f)
    assert r["ipv4"].ttl == 1 and r["ipv4"].dst == "224.0.0.1" and r["ipv4"].option is None
    assert r["igmp"].msgtype == 0x11 and r["igmp"].maxresp == 0 and len(f) == 14 + 20 + 8
    assert r["ethernet"].dst == "01:00:5e:00:00:01"


@pytest.mark.parametrize("group", [None, "239.1.2.3"])
def test_igmpv2_query(group):
    f = build_igmp_query(2, MAC, "10.0.0.1", group, max_resp=2.5)
    assert checksums_valid(f)
    q = msg(f)
    assert q == Query(4, 2, V4("10.0.0.1"), V4(group) if group else None, (), 2.5, False, None, None)
    r = ryu_decode(f)
    dst = group or "224.0.0.1"
    assert r["ipv4"].ttl == 1 and r["ipv4"].dst == dst and r["ipv4"].option == b"\x94\x04\x00\x00"
    assert r["igmp"].maxresp == 25 and r["igmp"].address == (group or "0.0.0.0")
    assert r["ethernet"].dst == multicast_mac(dst)


@pytest.mark.parametrize(
    "group,sources,max_resp,qqi,s_flag,qrv,exp_resp,exp_qqi",
    [
        (None, (), 10.0, 125.0, False, 2, 10.0, 125.0),
        ("239.1.1.1", (), 1.0, 125.0, True, 7, 1.0, 125.0),
        ("232.1.1.1", ("10.0.0.9", "10.0.0.3", "10.0.0.9"), 12.8, 128.0, False, 3, 12.8, 128.0),
        (None, (), 30.0, 300.0, False, 2, 28.8, 304.0),  # 300 tenths rounds down, 300 s up
        (None, (), 3174.4, 31744.0, False, 0, 3174.4, 31744.0),  # largest codes
        (None, (), 0.0, 0.0, False, 9, 0.0, 0.0),  # QRV > 7 is sent as 0
    ],
)
def test_igmpv3_query(group, sources, max_resp, qqi, s_flag, qrv, exp_resp, exp_qqi):
    f = build_igmp_query(3, MAC, "10.0.0.1", group, sources, max_resp, s_flag, qrv, qqi)
    assert checksums_valid(f)
    q = msg(f)
    assert q.family == 4 and q.version == 3 and q.src == V4("10.0.0.1")
    assert q.group == (V4(group) if group else None)
    assert q.sources == tuple(sorted({V4(s) for s in sources}))
    assert q.max_resp == pytest.approx(exp_resp) and q.qqi == exp_qqi
    assert q.s_flag is s_flag and q.qrv == (qrv if qrv <= 7 else 0)
    r = ryu_decode(f)
    assert r["ipv4"].ttl == 1 and r["ipv4"].option == b"\x94\x04\x00\x00"
    assert r["ipv4"].dst == (group or "224.0.0.1")
    assert r["igmpv3_query"].srcs == list(sources) and r["igmpv3_query"].s_flg == int(s_flag)
    assert decode_igmp_code(r["igmpv3_query"].maxresp) == round(exp_resp * 10)


def test_query_builder_argument_errors():
    with pytest.raises(ValueError):
        build_igmp_query(1, MAC, "10.0.0.1", "239.1.1.1")
    with pytest.raises(ValueError):
        build_igmp_query(2, MAC, "10.0.0.1", "239.1.1.1", ["10.0.0.5"])
    with pytest.raises(ValueError):
        build_igmp_query(3, MAC, "10.0.0.1", None, ["10.0.0.5"])
    with pytest.raises(ValueError):
        build_igmp_query(2, MAC, "10.0.0.1", max_resp=0.0)  # would read as IGMPv1
    with pytest.raises(ValueError):
        build_igmp_query(3, MAC, "10.0.0.1", max_resp=-1.0)
    with pytest.raises(ValueError):
        build_igmp_query(4, MAC, "10.0.0.1")
    with pytest.raises(ValueError):
        build_igmp_query(2, "02:00:00", "10.0.0.1")
    with pytest.raises(ValueError):
        build_igmp_query(2, MAC, "fe80::1")
    with pytest.raises(ValueError):
        build_mld_query(1, MAC, "fe80::1", "ff05::1", ["2001:db8::1"])
    with pytest.raises(ValueError):
        build_mld_query(2, MAC, "fe80::1", qqi=float("nan"))
    with pytest.raises(ValueError):
        build_mld_query(2, MAC, "fe80::1", vlan=4096)


# ---------------------------------------------------------------------------
# IGMP reports and leaves
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_igmpv1_v2_report(version):
    f = build_igmp_report(version, MAC, HOST4, "239.1.2.3")
    assert checksums_valid(f)
    assert msg(f) == Report(4, version, V4(HOST4), (GroupRecord(R.MODE_IS_EXCLUDE, V4("239.1.2.3"), ()),))
    r = ryu_decode(f)
    assert r["igmp"].msgtype == (0x12 if version == 1 else 0x16)
    assert r["ipv4"].dst == "239.1.2.3" and r["ipv4"].ttl == 1
    assert (r["ipv4"].option is not None) is (version == 2)


def test_igmpv2_leave():
    f = build_igmp_report(2, MAC, HOST4, "239.1.2.3", leave=True)
    assert checksums_valid(f)
    assert msg(f) == Leave(4, 2, V4(HOST4), V4("239.1.2.3"))
    r = ryu_decode(f)
    assert r["igmp"].msgtype == 0x17 and r["ipv4"].dst == "224.0.0.2"
    assert r["ethernet"].dst == "01:00:5e:00:00:02"


def test_report_from_unspecified_source_is_accepted():
    # RFC 4541 §2.1.1: proxy-reporting switches send reports from 0.0.0.0
    assert msg(build_igmp_report(2, MAC, "0.0.0.0", "239.1.1.1")).src == V4("0.0.0.0")
    assert msg(build_igmp_report(3, MAC, "0.0.0.0", records=[(2, "239.1.1.1", ())])).src == V4("0.0.0.0")
    assert msg(build_mld_report(2, MAC, "::", records=[(2, "ff05::1", ())])).src == V6("::")
    assert msg(build_mld_report(1, MAC, "::", "ff05::1", done=True)) == Leave(6, 1, V6("::"), V6("ff05::1"))


ALL_V4_RECORDS = [
    (1, "239.0.0.1", ["10.1.1.2", "10.1.1.1"]),
    (2, "239.0.0.2", []),
    (3, "239.0.0.3", ["10.1.1.3"]),
    (4, "239.0.0.4", ["10.1.1.4", "10.1.1.5", "10.1.1.4"]),
    (5, "232.0.0.5", ["192.0.2.1"], b"AUX!"),
    (6, "232.0.0.6", ["192.0.2.1", "192.0.2.2"], b"aux data 8 bytes"[:8]),
]


def expected_records(records, cls=V4):
    out = []
    for rtype, g, srcs, *_ in records:
        out.append(GroupRecord(RecordType(rtype), cls(g), tuple(sorted({cls(s) for s in srcs}))))
    return tuple(out)


def test_igmpv3_report_all_record_types_and_aux():
    f = build_igmp_report(3, MAC, HOST4, records=ALL_V4_RECORDS)
    assert checksums_valid(f)
    rep = msg(f)
    assert rep == Report(4, 3, V4(HOST4), expected_records(ALL_V4_RECORDS))
    r = ryu_decode(f)
    assert r["ipv4"].dst == "224.0.0.22" and r["ipv4"].option == b"\x94\x04\x00\x00"
    groups = r["igmpv3_report"].records
    assert [(g.type_, g.address, g.srcs, g.aux_len) for g in groups] == [
        (t, g, list(s), len(rest[0]) // 4 if rest else 0) for t, g, s, *rest in ALL_V4_RECORDS
    ]


def test_igmpv3_report_built_by_ryu():
    recs = [
        igmp.igmpv3_report_group(type_=t, address=g, srcs=list(s), aux=rest[0] if rest else None)
        for t, g, s, *rest in ALL_V4_RECORDS
    ]
    f = ryu_ipv4_frame(igmp.igmpv3_report(records=recs))
    assert msg(f) == Report(4, 3, V4(HOST4), expected_records(ALL_V4_RECORDS))
    # and without the Router Alert option
    f = ryu_ipv4_frame(igmp.igmpv3_report(records=recs), router_alert=False)
    assert msg(f).records == expected_records(ALL_V4_RECORDS)


def test_igmp_v1_v2_built_by_ryu():
    rep = ryu_ipv4_frame(igmp.igmp(msgtype=0x16, address="239.9.9.9"), dst="239.9.9.9")
    assert msg(rep) == Report(4, 2, V4(HOST4), (GroupRecord(R.MODE_IS_EXCLUDE, V4("239.9.9.9"), ()),))
    rep1 = ryu_ipv4_frame(igmp.igmp(msgtype=0x12, address="239.9.9.9"), dst="239.9.9.9", router_alert=False)
    assert msg(rep1).version == 1
    lv = ryu_ipv4_frame(igmp.igmp(msgtype=0x17, address="239.9.9.9"), dst="224.0.0.2")
    assert msg(lv) == Leave(4, 2, V4(HOST4), V4("239.9.9.9"))
    q2 = ryu_ipv4_frame(igmp.igmp(msgtype=0x11, maxresp=100, address="0.0.0.0"), src="10.0.0.1", dst="224.0.0.1")
    assert msg(q2) == Query(4, 2, V4("10.0.0.1"), None, (), 10.0)
    q1 = ryu_ipv4_frame(igmp.igmp(msgtype=0x11, maxresp=0), src="10.0.0.1", dst="224.0.0.1", router_alert=False)
    assert msg(q1).version == 1


def test_igmpv3_query_built_by_ryu():
    q = igmp.igmpv3_query(maxresp=0x8F, address="239.1.1.1", s_flg=1, qrv=5, qqic=0x90, srcs=["10.9.9.9", "10.1.1.1"])
    got = msg(ryu_ipv4_frame(q, src="10.0.0.1", dst="239.1.1.1"))
    assert got == Query(4, 3, V4("10.0.0.1"), V4("239.1.1.1"), (V4("10.1.1.1"), V4("10.9.9.9")), 24.8, True, 5, 256.0)


def test_igmpv3_report_zero_records():
    assert msg(build_igmp_report(3, MAC, HOST4, records=[])) == Report(4, 3, V4(HOST4), ())


def test_igmpv3_link_local_records_are_skipped_not_fatal():
    recs = [(2, "224.0.0.251", []), (4, "239.1.1.1", ["10.0.0.7"]), (2, "224.0.0.252", [])]
    rep = msg(build_igmp_report(3, MAC, HOST4, records=recs))
    assert rep.records == (GroupRecord(R.CHANGE_TO_EXCLUDE, V4("239.1.1.1"), (V4("10.0.0.7"),)),)
    only_ll = build_igmp_report(3, MAC, HOST4, records=[(2, "224.0.0.251", []), (2, "224.0.0.5", [])])
    assert reason(only_ll) == DropReason.LINK_LOCAL_GROUP


def test_additional_data_after_records_is_covered_by_checksum_then_ignored():
    # RFC 3376 §4.2.11 / §4.1.10
    for f in (
        build_igmp_report(3, MAC, HOST4, records=[(1, "239.1.1.1", ["10.0.0.7"])]),
        build_igmp_query(3, MAC, "10.0.0.1", "239.1.1.1", ["10.0.0.7"]),
        build_mld_report(2, MAC, HOST6, records=[(1, "ff05::1", ["2001:db8::7"])]),
        build_mld_query(2, MAC, "fe80::1", "ff05::1", ["2001:db8::7"]),
    ):
        ip, l4, end, fam, _ = layers(f)
        extra = b"\xde\xad\xbe\xef"
        grown = bytearray(f + extra)
        if fam == 4:
            struct.pack_into("!H", grown, ip + 2, end - ip + 4)
        else:
            struct.pack_into("!H", grown, ip + 4, end - ip - 40 + 4)
        assert reason(refresh(grown, upper=False)) == DropReason.BAD_CHECKSUM
        assert msg(refresh(grown)) == msg(f)


def test_ethernet_padding_is_ignored():
    for f in (build_igmp_report(2, MAC, HOST4, "239.1.1.1"), build_igmp_query(1, MAC, "10.0.0.1")):
        padded = f + b"\xaa" * (60 - len(f))
        assert msg(padded) == msg(f)


# ---------------------------------------------------------------------------
# MLD
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("group", [None, "ff05::1:3"])
def test_mldv1_query(group):
    f = build_mld_query(1, MAC, "fe80::1", group, max_resp=2.5)
    assert checksums_valid(f)
    assert msg(f) == Query(6, 1, V6("fe80::1"), V6(group) if group else None, (), 2.5)
    r = ryu_decode(f)
    dst = group or "ff02::1"
    assert r["ipv6"].hop_limit == 1 and r["ipv6"].dst == dst and r["ipv6"].nxt == 0
    opts = r["ipv6"].ext_hdrs[0].data
    assert (opts[0].type_, opts[0].data) == (5, b"\0\0")  # Router Alert, value 0 (MLD)
    assert r["icmpv6"].type_ == 130 and r["mld"].maxresp == 2500 and len(r["icmpv6"]) == 24
    assert r["ethernet"].dst == multicast_mac(dst)


@pytest.mark.parametrize(
    "group,sources,max_resp,qqi,s_flag,qrv,exp_resp,exp_qqi",
    [
        (None, (), 10.0, 125.0, False, 2, 10.0, 125.0),
        ("ff3e::8000:1", ("2001:db8::2", "2001:db8::1", "2001:db8::2"), 1.0, 60.0, True, 7, 1.0, 60.0),
        (None, (), 32.768, 128.0, False, 2, 32.768, 128.0),  # first float code 0x8000
        (None, (), 40.0, 300.0, False, 2, 40.0, 304.0),
        (None, (), 100.001, 300.0, False, 2, 100.0, 304.0),  # 100001 ms rounds down
        (None, (), 9000.0, 1.0, False, 2, MLD_CODE_MAX / 1000, 1.0),  # clamped
    ],
)
def test_mldv2_query(group, sources, max_resp, qqi, s_flag, qrv, exp_resp, exp_qqi):
    f = build_mld_query(2, MAC, "fe80::1", group, sources, max_resp, s_flag, qrv, qqi)
    assert checksums_valid(f)
    q = msg(f)
    assert (q.family, q.version, q.src) == (6, 2, V6("fe80::1"))
    assert q.group == (V6(group) if group else None)
    assert q.sources == tuple(sorted({V6(s) for s in sources}))
    assert q.max_resp == pytest.approx(exp_resp) and q.qqi == exp_qqi
    assert q.s_flag is s_flag and q.qrv == qrv
    r = ryu_decode(f)
    assert r["ipv6"].hop_limit == 1 and r["ipv6"].dst == (group or "ff02::1")
    assert r["mldv2_query"].srcs == list(sources) and r["mldv2_query"].s_flg == int(s_flag)


def test_mld_v1_report_and_done():
    f = build_mld_report(1, MAC, HOST6, "ff05::1:3")
    assert checksums_valid(f)
    assert msg(f) == Report(6, 1, V6(HOST6), (GroupRecord(R.MODE_IS_EXCLUDE, V6("ff05::1:3"), ()),))
    assert ryu_decode(f)["ipv6"].dst == "ff05::1:3"
    d = build_mld_report(1, MAC, HOST6, "ff05::1:3", done=True)
    assert checksums_valid(d)
    assert msg(d) == Leave(6, 1, V6(HOST6), V6("ff05::1:3"))
    r = ryu_decode(d)
    assert r["ipv6"].dst == "ff02::2" and r["icmpv6"].type_ == 132 and r["ethernet"].dst == "33:33:00:00:00:02"


ALL_V6_RECORDS = [
    (1, "ff05::1", ["2001:db8::2", "2001:db8::1"]),
    (2, "ff0e::2", []),
    (3, "ff3e::8000:3", ["2001:db8::3"]),
    (4, "ff15::4", ["2001:db8::4", "2001:db8::5", "2001:db8::4"]),
    (5, "ff08::5", ["fe80::9"], b"AUX!"),
    (6, "ff05::6", ["2001:db8::1", "2001:db8::2"], b"12345678"),
]


def test_mldv2_report_all_record_types_and_aux():
    f = build_mld_report(2, MAC, HOST6, records=ALL_V6_RECORDS)
    assert checksums_valid(f)
    assert msg(f) == Report(6, 2, V6(HOST6), expected_records(ALL_V6_RECORDS, V6))
    r = ryu_decode(f)
    assert r["ipv6"].dst == "ff02::16" and r["ipv6"].hop_limit == 1
    assert [(g.type_, g.address, g.srcs) for g in r["mldv2_report"].records] == [
        (t, g, list(s)) for t, g, s, *_ in ALL_V6_RECORDS
    ]


def test_mld_built_by_ryu():
    def report():  # fresh objects: ryu stores the computed checksum on them
        recs = [
            icmpv6.mldv2_report_group(type_=t, address=g, srcs=list(s), aux=rest[0] if rest else None)
            for t, g, s, *rest in ALL_V6_RECORDS
        ]
        return icmpv6.icmpv6(type_=143, data=icmpv6.mldv2_report(records=recs))

    for hbh in (True, False):
        assert msg(ryu_ipv6_frame(report(), hbh=hbh)) == Report(6, 2, V6(HOST6), expected_records(ALL_V6_RECORDS, V6))
    v1 = icmpv6.icmpv6(type_=131, data=icmpv6.mld(address="ff05::7"))
    assert msg(ryu_ipv6_frame(v1, dst="ff05::7")).records[0].group == V6("ff05::7")
    done = icmpv6.icmpv6(type_=132, data=icmpv6.mld(address="ff05::7"))
    assert msg(ryu_ipv6_frame(done, dst="ff02::2")) == Leave(6, 1, V6(HOST6), V6("ff05::7"))
    q1 = icmpv6.icmpv6(type_=130, data=icmpv6.mld(maxresp=1234, address="::"))
    assert msg(ryu_ipv6_frame(q1, src="fe80::1", dst="ff02::1")) == Query(6, 1, V6("fe80::1"), None, (), 1.234)
    q2 = icmpv6.icmpv6(
        type_=130,
        data=icmpv6.mldv2_query(maxresp=0x8001, address="ff05::7", s_flg=1, qrv=3, qqic=0x81, srcs=["2001:db8::1"]),
    )
    got = msg(ryu_ipv6_frame(q2, src="fe80::1", dst="ff05::7"))
    assert got == Query(6, 2, V6("fe80::1"), V6("ff05::7"), (V6("2001:db8::1"),), 32.776, True, 3, 136.0)


def test_icmpv6_pseudo_header_uses_upper_layer_next_header():
    # ryu 4.34 puts the hop-by-hop type (0) into the pseudo-header; such a checksum is
    # wrong and must be rejected (RFC 8200 §8.1).
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst="33:33:00:00:00:16", src=MAC, ethertype=0x86DD))
    hbh = ipv6.hop_opts(nxt=58, data=[ipv6.option(5, 2, b"\0\0"), ipv6.option(1, 0, None)])
    p.add_protocol(ipv6.ipv6(nxt=0, hop_limit=1, src=HOST6, dst="ff02::16", ext_hdrs=[hbh]))
    p.add_protocol(icmpv6.icmpv6(type_=131, data=icmpv6.mld(address="ff05::1")))
    p.serialize()
    assert reason(bytes(p.data)) == DropReason.BAD_CHECKSUM
    assert isinstance(parse_frame(refresh(bytes(p.data))), Parsed)


def test_mldv2_link_local_records_are_skipped_not_fatal():
    # Hosts put solicited-node groups next to real ones in one report.
    recs = [(4, "ff02::1:ff00:2", []), (4, "ff05::1", []), (4, "ff02::fb", []), (4, "ff01::9", [])]
    assert msg(build_mld_report(2, MAC, HOST6, records=recs)).records == (
        GroupRecord(R.CHANGE_TO_EXCLUDE, V6("ff05::1"), ()),
    )
    only = build_mld_report(2, MAC, HOST6, records=[(4, "ff02::1:ff00:2", []), (4, "ff01::1", [])])
    assert reason(only) == DropReason.LINK_LOCAL_GROUP
    flagged = build_mld_report(2, MAC, HOST6, records=[(4, "ff12::1", [])])
    assert msg(flagged).records == (GroupRecord(R.CHANGE_TO_EXCLUDE, V6("ff12::1"), ()),)


def test_ipv6_extension_chain_is_walked():
    # hop-by-hop, destination options, routing (segments left 0), then ICMPv6
    base = build_mld_report(2, MAC, HOST6, records=[(2, "ff05::1", [])])
    ip, l4, end, _, _ = layers(base)
    dstopts = bytes([43, 0, 1, 4, 0, 0, 0, 0])  # next: routing; PadN
    routing = bytes([58, 0, 0, 0, 0, 0, 0, 0])  # type 0, segments left 0
    b = bytearray(base[: ip + 40]) + bytes([60]) + base[ip + 41 : l4] + dstopts + routing + base[l4:]
    struct.pack_into("!H", b, ip + 4, end - ip - 40 + 16)
    f = refresh(b)
    assert msg(f) == msg(base)
    # segments left != 0: not for us
    b2 = bytearray(f)
    b2[l4 + 8 + 3] = 1
    assert reason(refresh(b2)) == DropReason.BAD_IP_HEADER


def test_pim_hello():
    assert msg(build_pim_hello(MAC, "10.0.0.1")) == PimHello(4, V4("10.0.0.1"))
    f6 = build_pim_hello(MAC, "fe80::1")
    assert checksums_valid(f6)
    assert msg(f6) == PimHello(6, V6("fe80::1"))
    r = ryu_decode(build_pim_hello(MAC, "10.0.0.1"))
    assert r["ipv4"].proto == 103 and r["ipv4"].dst == "224.0.0.13" and r["ipv4"].ttl == 1


# ---------------------------------------------------------------------------
# L2 context
# ---------------------------------------------------------------------------


def test_frame_context_and_vlan():
    f = build_igmp_report(2, "02:AA:bb:cc:dd:ee", HOST4, "239.1.1.1", vlan=100)
    r = parse_frame(f)
    assert r.frame.eth_src == "02:aa:bb:cc:dd:ee" and r.frame.eth_dst == "01:00:5e:01:01:01"
    assert r.frame.vlan == 100
    assert parse_frame(build_igmp_report(2, MAC, HOST4, "239.1.1.1")).frame.vlan is None
    # priority bits are not part of the VLAN id; VID 0 is a priority tag only
    b = bytearray(f)
    struct.pack_into("!H", b, 14, (5 << 13) | 100)
    assert parse_frame(bytes(b)).frame.vlan == 100
    struct.pack_into("!H", b, 14, 5 << 13)
    assert parse_frame(bytes(b)).frame.vlan is None
    # ryu-built VLAN frame
    rf = ryu_ipv4_frame(igmp.igmp(msgtype=0x16, address="239.9.9.9"), dst="239.9.9.9", vlan_id=42)
    got = parse_frame(rf)
    assert got.frame.vlan == 42 and got.message.records[0].group == V4("239.9.9.9")
    m6 = parse_frame(build_mld_report(2, MAC, HOST6, records=[(2, "ff05::1", [])], vlan=4094))
    assert m6.frame.vlan == 4094 and m6.message.family == 6


def test_bytes_like_inputs():
    f = build_igmp_report(2, MAC, HOST4, "239.1.1.1")
    assert parse_frame(bytearray(f)) == parse_frame(f) == parse_frame(memoryview(f))


def test_duplicate_sources_are_deduplicated_and_sorted():
    srcs = ["10.0.0.9", "10.0.0.1", "10.0.0.9", "10.0.0.5", "10.0.0.1"]
    rec = msg(build_igmp_report(3, MAC, HOST4, records=[(1, "239.1.1.1", srcs)])).records[0]
    assert rec.sources == (V4("10.0.0.1"), V4("10.0.0.5"), V4("10.0.0.9"))
    srcs6 = ["2001:db8::9", "2001:db8::1", "2001:db8::9"]
    rec6 = msg(build_mld_report(2, MAC, HOST6, records=[(1, "ff05::1", srcs6)])).records[0]
    assert rec6.sources == (V6("2001:db8::1"), V6("2001:db8::9"))


# ---------------------------------------------------------------------------
# Every drop reason, one defect at a time
# ---------------------------------------------------------------------------

V3REP = build_igmp_report(3, MAC, HOST4, records=[(1, "239.1.1.1", ["10.0.0.7"]), (2, "239.1.1.2", [])])
V2REP = build_igmp_report(2, MAC, HOST4, "239.1.1.1")
V3Q = build_igmp_query(3, MAC, "10.0.0.1", "239.1.1.1", ["10.0.0.7"])
M2REP = build_mld_report(2, MAC, HOST6, records=[(1, "ff05::1", ["2001:db8::7"]), (2, "ff05::2", [])])
M1REP = build_mld_report(1, MAC, HOST6, "ff05::1")
M2Q = build_mld_query(2, MAC, "fe80::1", "ff05::1", ["2001:db8::7"])
IP4 = 14  # IPv4 header offset in our frames
IG = 14 + 24  # IGMP offset (20-byte header + Router Alert)
IP6 = 14
ICMP6 = 14 + 40 + 8  # after the hop-by-hop header


def ipv4_other_proto(proto: int) -> bytes:
    f = bytearray(V2REP)
    f[IP4 + 9] = proto
    return refresh(f, upper=False)


def ipv6_next_header(nh: int) -> bytes:
    b = bytearray(M1REP)
    b[IP6 + 40] = nh  # the hop-by-hop header's Next Header
    return bytes(b)


def unchecked(frame: bytes) -> bytes:
    """Frame with its IPv4 header checksum fixed but the upper-layer one untouched."""
    return refresh(frame, upper=False)


def mld_from(src: str, t="report") -> bytes:
    if t == "query":
        return build_mld_query(2, MAC, src)
    return build_mld_report(2, MAC, src, records=[(2, "ff05::1", [])])


def with_mac_src(frame: bytes, mac: bytes) -> bytes:
    return frame[:6] + mac + frame[12:]


ARP = bytes.fromhex("ffffffffffff020000000001" "0806" "0001080006040001") + bytes(20)
IPV6_UDP = bytes.fromhex("3333000000fb020000000001" "86dd" "6000000000081101") + bytes(32) + bytes(8)

DROP_CASES = [
    # truncation: frames shorter than their headers / length fields
    ("empty", b"", DropReason.TRUNCATED),
    ("eth", V2REP[:13], DropReason.TRUNCATED),
    ("vlan tag", build_igmp_report(2, MAC, HOST4, "239.1.1.1", vlan=5)[:16], DropReason.TRUNCATED),
    ("ipv4 header", V2REP[: IP4 + 19], DropReason.TRUNCATED),
    ("ipv4 options", V2REP[: IP4 + 22], DropReason.TRUNCATED),
    ("igmp", V2REP[:-1], DropReason.TRUNCATED),
    ("v3 record", V3REP[:-3], DropReason.TRUNCATED),
    ("ipv6 header", M1REP[: IP6 + 39], DropReason.TRUNCATED),
    ("ipv6 payload", M2REP[:-1], DropReason.TRUNCATED),
    # not ours
    ("arp", ARP, DropReason.NOT_IGMP_OR_MLD),
    ("udp4", ipv4_other_proto(17), DropReason.NOT_IGMP_OR_MLD),
    ("udp6", IPV6_UDP, DropReason.NOT_IGMP_OR_MLD),
    ("no next header", ipv6_next_header(59), DropReason.NOT_IGMP_OR_MLD),
    ("icmpv6 echo", patch(M1REP, ICMP6, "!B", 128), DropReason.NOT_IGMP_OR_MLD),
    ("icmpv6 neighbor solicit", patch(M1REP, ICMP6, "!B", 135), DropReason.NOT_IGMP_OR_MLD),
    ("pim join", patch(build_pim_hello(MAC, "10.0.0.1"), IG - 4, "!B", 0x23), DropReason.NOT_IGMP_OR_MLD),
    (
        "qinq",
        build_igmp_report(2, MAC, HOST4, "239.1.1.1", vlan=5)[:16] + b"\x81\x00" + V2REP[12:],
        DropReason.NOT_IGMP_OR_MLD,
    ),
    # IP header
    ("ip version", patch(V2REP, IP4, "!B", 0x66), DropReason.BAD_IP_HEADER),
    ("ihl < 5", patch(V2REP, IP4, "!B", 0x44, fix=False), DropReason.BAD_IP_HEADER),
    ("total < ihl", patch(V2REP, IP4 + 2, "!H", 20), DropReason.BAD_IP_HEADER),
    ("ipv4 more fragments", patch(V2REP, IP4 + 6, "!H", 0x2000), DropReason.BAD_IP_HEADER),
    ("ipv4 fragment offset", patch(V2REP, IP4 + 6, "!H", 0x0001), DropReason.BAD_IP_HEADER),
    ("ipv6 fragment header", ipv6_next_header(44), DropReason.BAD_IP_HEADER),
    ("hop-by-hop not first", ipv6_next_header(0), DropReason.BAD_IP_HEADER),
    ("ipv6 version", patch(M1REP, IP6, "!B", 0x40), DropReason.BAD_IP_HEADER),
    # checksums
    ("ip checksum", patch(V2REP, IP4 + 10, "!H", 0x1234, fix=False), DropReason.BAD_IP_CHECKSUM),
    ("igmp checksum", patch(V3REP, IG + 2, "!H", 0x1234, fix=False), DropReason.BAD_CHECKSUM),
    ("igmp body changed", unchecked(patch(V2REP, IG + 7, "!B", 9, fix=False)), DropReason.BAD_CHECKSUM),
    ("icmpv6 checksum", patch(M2REP, ICMP6 + 2, "!H", 0x1234, fix=False), DropReason.BAD_CHECKSUM),
    ("icmpv6 pseudo-header", patch(M1REP, IP6 + 8 + 15, "!B", 9, fix=False), DropReason.BAD_CHECKSUM),
    ("pim checksum", patch(build_pim_hello(MAC, "fe80::1"), ICMP6 - 8 + 2, "!H", 1, fix=False), DropReason.BAD_CHECKSUM),
    # lengths
    ("igmp 6 bytes", patch(V2REP, IP4 + 2, "!H", 24 + 6), DropReason.BAD_LENGTH),
    ("igmp query 10 bytes", patch(V3Q, IP4 + 2, "!H", 24 + 10), DropReason.BAD_LENGTH),
    ("mld query 26 bytes", patch(M2Q, IP6 + 4, "!H", 8 + 26), DropReason.BAD_LENGTH),
    ("mld report 20 bytes", patch(M1REP, IP6 + 4, "!H", 8 + 20), DropReason.BAD_LENGTH),
    ("mldv2 report 6 bytes", patch(M2REP, IP6 + 4, "!H", 8 + 6), DropReason.BAD_LENGTH),
    ("hop-by-hop past buffer end", patch(M1REP, IP6 + 4, "!H", 0, fix=False)[: IP6 + 40], DropReason.BAD_LENGTH),
    ("hop-by-hop past payload", patch(M1REP, IP6 + 41, "!B", 9, fix=False), DropReason.BAD_LENGTH),
    ("igmp aux past end", patch(V3REP, IG + 8 + 1, "!B", 200), DropReason.BAD_LENGTH),
    ("mld aux past end", patch(M2REP, ICMP6 + 8 + 1, "!B", 200), DropReason.BAD_LENGTH),
    ("pim 2 bytes", patch(build_pim_hello(MAC, "10.0.0.1"), IP4 + 2, "!H", 22), DropReason.BAD_LENGTH),
    # counts
    ("igmp record count", patch(V3REP, IG + 6, "!H", 3), DropReason.BAD_RECORD_COUNT),
    ("igmp record count max", patch(V3REP, IG + 6, "!H", 0xFFFF), DropReason.BAD_RECORD_COUNT),
    ("mld record count", patch(M2REP, ICMP6 + 6, "!H", 3), DropReason.BAD_RECORD_COUNT),
    ("igmp source count", patch(V3REP, IG + 8 + 2, "!H", 4), DropReason.BAD_SOURCE_COUNT),
    ("igmp source count max", patch(V3REP, IG + 8 + 2, "!H", 0xFFFF), DropReason.BAD_SOURCE_COUNT),
    ("mld source count", patch(M2REP, ICMP6 + 8 + 2, "!H", 3), DropReason.BAD_SOURCE_COUNT),
    ("igmp query source count", patch(V3Q, IG + 10, "!H", 2), DropReason.BAD_SOURCE_COUNT),
    ("mld query source count", patch(M2Q, ICMP6 + 26, "!H", 2), DropReason.BAD_SOURCE_COUNT),
    ("general query with sources", patch(V3Q, IG + 4, "!I", 0), DropReason.BAD_SOURCE_COUNT),
    # record types
    ("igmp record type 7", patch(V3REP, IG + 8 + 12, "!B", 7), DropReason.BAD_RECORD_TYPE),
    ("igmp record type 0", patch(V3REP, IG + 8, "!B", 0), DropReason.BAD_RECORD_TYPE),
    ("mld record type 9", patch(M2REP, ICMP6 + 8 + 36, "!B", 9), DropReason.BAD_RECORD_TYPE),
    ("igmp type 0x13", patch(V2REP, IG, "!B", 0x13), DropReason.UNKNOWN_TYPE),
    ("igmp type 0x1e", patch(V2REP, IG, "!B", 0x1E), DropReason.UNKNOWN_TYPE),
    # groups
    ("v2 report unicast group", build_igmp_report(2, MAC, HOST4, "10.1.1.1"), DropReason.NOT_MULTICAST_GROUP),
    ("leave unicast group", build_igmp_report(2, MAC, HOST4, "0.0.0.0", leave=True), DropReason.NOT_MULTICAST_GROUP),
    ("v3 record unicast group", patch(V3REP, IG + 12, "!4s", bytes([10, 1, 1, 1])), DropReason.NOT_MULTICAST_GROUP),
    ("igmp query unicast group", patch(V3Q, IG + 4, "!4s", bytes([10, 1, 1, 1])), DropReason.NOT_MULTICAST_GROUP),
    ("mld report unicast group", build_mld_report(1, MAC, HOST6, "2001:db8::1"), DropReason.NOT_MULTICAST_GROUP),
    ("mldv2 record unicast group", patch(M2REP, ICMP6 + 12, "!B", 0x20), DropReason.NOT_MULTICAST_GROUP),
    ("mld query unicast group", patch(M2Q, ICMP6 + 8, "!B", 0x20), DropReason.NOT_MULTICAST_GROUP),
    ("v2 report link-local", build_igmp_report(2, MAC, HOST4, "224.0.0.251"), DropReason.LINK_LOCAL_GROUP),
    ("v1 report link-local", build_igmp_report(1, MAC, HOST4, "224.0.0.1"), DropReason.LINK_LOCAL_GROUP),
    ("leave link-local", build_igmp_report(2, MAC, HOST4, "224.0.0.5", leave=True), DropReason.LINK_LOCAL_GROUP),
    ("mld report ff02::fb", build_mld_report(1, MAC, HOST6, "ff02::fb"), DropReason.LINK_LOCAL_GROUP),
    ("mld report ff02::1", build_mld_report(1, MAC, HOST6, "ff02::1"), DropReason.LINK_LOCAL_GROUP),
    ("mld done ff01::1", build_mld_report(1, MAC, HOST6, "ff01::1", done=True), DropReason.LINK_LOCAL_GROUP),
    ("mldv2 all link-local", build_mld_report(2, MAC, HOST6, records=[(2, "ff02::2", [])]), DropReason.LINK_LOCAL_GROUP),
    # source addresses
    (
        "v3 source 0.0.0.0",
        build_igmp_report(3, MAC, HOST4, records=[(1, "239.1.1.1", ["0.0.0.0"])]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    (
        "v3 source multicast",
        build_igmp_report(3, MAC, HOST4, records=[(1, "239.1.1.1", ["10.0.0.1", "239.1.1.1"])]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    (
        "v3 source broadcast",
        build_igmp_report(3, MAC, HOST4, records=[(6, "239.1.1.1", ["255.255.255.255"])]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    (
        "v3 source in a link-local record",
        build_igmp_report(3, MAC, HOST4, records=[(1, "224.0.0.9", ["0.0.0.0"])]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    (
        "igmp query source",
        build_igmp_query(3, MAC, "10.0.0.1", "239.1.1.1", ["224.0.0.1"]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    ("igmp ip source multicast", build_igmp_report(2, MAC, "239.0.0.1", "239.1.1.1"), DropReason.BAD_SOURCE_ADDRESS),
    ("igmp ip source broadcast", build_igmp_report(2, MAC, "255.255.255.255", "239.1.1.1"), DropReason.BAD_SOURCE_ADDRESS),
    (
        "mld source ::",
        build_mld_report(2, MAC, HOST6, records=[(1, "ff05::1", ["::"])]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    (
        "mld source multicast",
        build_mld_report(2, MAC, HOST6, records=[(1, "ff05::1", ["2001:db8::1", "ff05::9"])]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    (
        "mld query source multicast",
        build_mld_query(2, MAC, "fe80::1", "ff05::1", ["ff0e::1"]),
        DropReason.BAD_SOURCE_ADDRESS,
    ),
    ("ethernet source multicast", with_mac_src(V2REP, bytes.fromhex("030000000001")), DropReason.BAD_SOURCE_ADDRESS),
    # MLD IPv6 rules (RFC 3810 §5)
    ("hop limit 2", build_mld_report(1, MAC, HOST6, "ff05::1", hop_limit=2), DropReason.BAD_HOP_LIMIT),
    ("hop limit 255", build_mld_report(2, MAC, HOST6, records=[], hop_limit=255), DropReason.BAD_HOP_LIMIT),
    ("hop limit 0", build_mld_report(1, MAC, HOST6, "ff05::1", done=True, hop_limit=0), DropReason.BAD_HOP_LIMIT),
    ("mld report global source", mld_from("2001:db8::1"), DropReason.NOT_LINK_LOCAL_SOURCE),
    ("mld report fec0 source", mld_from("fec0::1"), DropReason.NOT_LINK_LOCAL_SOURCE),
    ("mld query from ::", mld_from("::", "query"), DropReason.NOT_LINK_LOCAL_SOURCE),
    ("mld query global source", mld_from("2001:db8::1", "query"), DropReason.NOT_LINK_LOCAL_SOURCE),
]

NOT_FROM_PARSER = {
    DropReason.RATE_LIMITED,
    DropReason.LIMIT_GROUPS,
    DropReason.LIMIT_SOURCES,
    DropReason.PARSER_ERROR,
}


@pytest.mark.parametrize("name,frame,expected", DROP_CASES, ids=[c[0] for c in DROP_CASES])
def test_drop_reason(name, frame, expected):
    got = parse_frame(frame)
    assert isinstance(got, Drop), got
    assert got.reason is expected, got


def test_every_parser_drop_reason_is_covered():
    assert {c[2] for c in DROP_CASES} == set(DropReason) - NOT_FROM_PARSER


def test_drop_cases_differ_from_a_valid_frame_only_by_their_defect():
    # The base frames used for surgery are themselves valid, so each case above fails
    # for its own defect and not for an inherited one.
    for f in (V3REP, V2REP, V3Q, M2REP, M1REP, M2Q):
        assert isinstance(parse_frame(f), Parsed)
        assert checksums_valid(f)


VALID_FRAMES = [
    build_igmp_query(1, MAC, "10.0.0.1"),
    build_igmp_query(2, MAC, "10.0.0.1", "239.1.1.1"),
    V3Q,
    build_igmp_report(1, MAC, HOST4, "239.1.1.1"),
    V2REP,
    build_igmp_report(2, MAC, HOST4, "239.1.1.1", leave=True),
    V3REP,
    build_mld_query(1, MAC, "fe80::1"),
    M2Q,
    M1REP,
    build_mld_report(1, MAC, HOST6, "ff05::1", done=True),
    M2REP,
    build_pim_hello(MAC, "10.0.0.1"),
    build_pim_hello(MAC, "fe80::1"),
    build_igmp_report(3, MAC, HOST4, records=ALL_V4_RECORDS, vlan=7),
]


@pytest.mark.parametrize("frame", VALID_FRAMES, ids=range(len(VALID_FRAMES)))
def test_every_proper_prefix_is_truncated(frame):
    assert isinstance(parse_frame(frame), Parsed)
    for cut in range(len(frame)):
        got = parse_frame(frame[:cut])
        assert isinstance(got, Drop) and got.reason is DropReason.TRUNCATED, (cut, got)


def test_router_alert_is_optional_on_receive():
    assert isinstance(parse_frame(build_igmp_report(3, MAC, HOST4, records=[], router_alert=False)), Parsed)
    assert isinstance(parse_frame(build_mld_report(1, MAC, HOST6, "ff05::1", router_alert=False)), Parsed)
