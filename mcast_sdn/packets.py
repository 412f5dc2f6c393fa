"""Turn punted IGMP/MLD/PIM frames into typed records, and build the frames we send.

Why a hand-written struct parser instead of `ryu.lib.packet`:

* Every byte here comes from an untrusted host. `ryu.lib.packet` validates by
  `assert` (gone under ``python -O``), raises assorted exceptions on short input, checks
  no checksums, and happily returns half-parsed objects. The controller must instead
  answer *every* frame with either a well-formed message or a counted reason.
* Speed: reports arrive in bursts (every host answers every general query), and the
  controller is single-threaded. Slicing ints out of a `bytes` object is several times
  faster than building ryu's object tree.

`ryu.lib.packet` is still used by the tests, as an independent encoder and decoder to
check this module against.

Parsing contract (`parse_frame`): never raises; returns `Parsed(message, Frame)` or
`Drop(reason, detail)`. How lengths are classified:

* ``TRUNCATED``: the buffer is shorter than a header or than a length field says
  (Ethernet, 802.1Q, IP header, IPv4 Total Length, IPv6 Payload Length). This is what a
  switch that cuts PacketIns at ``miss_send_len`` produces.
* ``BAD_LENGTH``: the length fields are self-consistent with the buffer but wrong for
  the content (an IGMP message of 6 bytes, a 10-byte IGMP query, an extension header
  running past the IPv6 payload).
* ``BAD_RECORD_COUNT`` / ``BAD_SOURCE_COUNT``: the count fields promise more than the
  message length holds. Bytes *after* the last record (or after a query's sources) are
  covered by the checksum and otherwise ignored, as RFC 3376 §4.1.10/§4.2.11 require
  ("Additional Data"); Ethernet padding after the IP packet is likewise ignored.

Report groups in the link-local range (224.0.0.0/24, ff01::/16, ff02::/16) are never
snooped: RFC 4541 §2.1.2 says such traffic is flooded, and the classify table floods
exactly these ranges (`is_link_local_group` is the shared definition). A v1/v2
report or leave for one is dropped (``LINK_LOCAL_GROUP``). In an IGMPv3/MLDv2 report
such records are *skipped* rather than failing the whole report, because ordinary hosts
put them next to real groups (Linux reports 224.0.0.251 for mDNS and every solicited-
node group ff02::1:ffXX:XXXX in the same MLDv2 report as its real groups); dropping the
packet would lose those hosts' real memberships. Only when every record was link-local
is the report dropped with ``LINK_LOCAL_GROUP``. Records that are *malformed* (unknown
record type, non-multicast group, non-unicast source) fail the whole report.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import Iterable, Sequence, Union

from .messages import (
    Drop,
    DropReason,
    Frame,
    GroupRecord,
    IPAddress,
    Leave,
    Parsed,
    PimHello,
    Query,
    RecordType,
    Report,
)

__all__ = [
    "parse_frame",
    "build_igmp_query",
    "build_igmp_report",
    "build_mld_query",
    "build_mld_report",
    "build_pim_hello",
    "multicast_mac",
    "is_link_local_group",
    "inet_checksum",
    "encode_igmp_code",
    "decode_igmp_code",
    "encode_mld_code",
    "decode_mld_code",
    "IGMP_CODE_MAX",
    "MLD_CODE_MAX",
]

AddressLike = Union[str, int, bytes, IPAddress]

_IPv4 = ipaddress.IPv4Address
_IPv6 = ipaddress.IPv6Address

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_IPV6 = 0x86DD
ETH_TYPE_8021Q = 0x8100

IPPROTO_HOPOPTS = 0
IPPROTO_IGMP = 2
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ICMPV6 = 58
IPPROTO_DSTOPTS = 60
IPPROTO_PIM = 103

IGMP_QUERY = 0x11
IGMP_V1_REPORT = 0x12
IGMP_V2_REPORT = 0x16
IGMP_V2_LEAVE = 0x17
IGMP_V3_REPORT = 0x22

MLD_QUERY = 130
MLD_V1_REPORT = 131
MLD_V1_DONE = 132
MLD_V2_REPORT = 143

# Largest value the floating-point codes can express, in their units
# (IGMP: tenths of a second / seconds; MLD Max Response Code: milliseconds).
IGMP_CODE_MAX = 0x1F << 10  # 31744: exp 7, mant 15
MLD_CODE_MAX = 0x1FFF << 10  # 8387584: exp 7, mant 0xfff

# Drop reasons bound once: attribute access on an Enum class is not free, and the
# parser's hot path is mostly these lookups.
_TRUNCATED = DropReason.TRUNCATED
_NOT_OURS = DropReason.NOT_IGMP_OR_MLD
_BAD_IP_HEADER = DropReason.BAD_IP_HEADER
_BAD_IP_CHECKSUM = DropReason.BAD_IP_CHECKSUM
_BAD_CHECKSUM = DropReason.BAD_CHECKSUM
_BAD_LENGTH = DropReason.BAD_LENGTH
_BAD_RECORD_COUNT = DropReason.BAD_RECORD_COUNT
_BAD_SOURCE_COUNT = DropReason.BAD_SOURCE_COUNT
_BAD_RECORD_TYPE = DropReason.BAD_RECORD_TYPE
_UNKNOWN_TYPE = DropReason.UNKNOWN_TYPE
_NOT_MULTICAST = DropReason.NOT_MULTICAST_GROUP
_LINK_LOCAL = DropReason.LINK_LOCAL_GROUP
_BAD_SOURCE = DropReason.BAD_SOURCE_ADDRESS
_BAD_HOP_LIMIT = DropReason.BAD_HOP_LIMIT
_NOT_LL_SOURCE = DropReason.NOT_LINK_LOCAL_SOURCE

# Index = wire value; avoids the (slow) Enum call per record.
_RTYPES = (None,) + tuple(RecordType(i) for i in range(1, 7))
_MODE_IS_EXCLUDE = RecordType.MODE_IS_EXCLUDE

_from_bytes = int.from_bytes


# ---------------------------------------------------------------------------
# Checksums and floating-point codes
# ---------------------------------------------------------------------------


def inet_checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum of `data` (the value to store in the checksum field).

    Computed as the big integer modulo 0xffff: since 2**16 == 1 (mod 0xffff), that equals
    the ones'-complement sum of the 16-bit words, and one C-level `int.from_bytes` is far
    faster than a Python loop over words.
    """
    x = _from_bytes(data, "big")
    if len(data) & 1:
        x <<= 8  # odd length: pad with a zero byte at the end
    r = x % 0xFFFF
    if r:
        return 0xFFFF - r
    # Sum is -0 (0xffff) for non-zero data, +0 only for all-zero data (RFC 1071).
    return 0 if x else 0xFFFF


def _sum_ok(x: int) -> bool:
    """True if `x` (the data, checksum field included, as one integer) sums to -0."""
    return x % 0xFFFF == 0 and x != 0


def _checksum_ok(data: bytes) -> bool:
    x = _from_bytes(data, "big")
    if len(data) & 1:
        x <<= 8
    return _sum_ok(x)


def decode_igmp_code(code: int) -> int:
    """Value of an IGMPv3 Max Resp Code or QQIC (RFC 3376 §4.1.1, §4.1.7).

    Below 128 the code is the value; from 128 on it is ``1 exp(3) mant(4)`` meaning
    ``(mant | 0x10) << (exp + 3)``. Units are the field's: tenths of a second for Max
    Resp Code, seconds for QQIC. MLDv2's QQIC uses the same format (RFC 3810 §5.1.9).
    """
    if not 0 <= code <= 0xFF:
        raise ValueError(f"8-bit code out of range: {code!r}")
    if code < 0x80:
        return code
    return ((code & 0x0F) | 0x10) << (((code >> 4) & 0x07) + 3)


def encode_igmp_code(value: int, *, round_up: bool = False) -> int:
    """8-bit code for `value` (in the field's units); inverse of `decode_igmp_code`.

    Values below 128 and every value a code can express are encoded exactly. Others are
    rounded down by default (a Max Resp Code must not promise hosts more time than the
    querier will wait) or up with ``round_up=True`` (for QQIC, where advertising a
    longer interval keeps other routers from expiring state early). Values above
    `IGMP_CODE_MAX` are clamped to the largest code.
    """
    value = int(value)
    if value < 0:
        raise ValueError(f"negative value: {value}")
    if value < 0x80:
        return value
    if value >= IGMP_CODE_MAX:
        return 0xFF
    exp = value.bit_length() - 8  # value in [2**(exp+7), 2**(exp+8))
    mant = value >> (exp + 3)  # in [16, 32)
    if round_up and (mant << (exp + 3)) != value:
        mant += 1
        if mant == 0x20:
            mant, exp = 0x10, exp + 1  # cannot pass exp 7: value < IGMP_CODE_MAX
    return 0x80 | (exp << 4) | (mant & 0x0F)


def decode_mld_code(code: int) -> int:
    """Milliseconds of an MLDv2 Maximum Response Code (RFC 3810 §5.1.3).

    Below 32768 the code is the value; from 32768 on it is ``1 exp(3) mant(12)`` meaning
    ``(mant | 0x1000) << (exp + 3)``. MLDv1's Maximum Response Delay is plain
    milliseconds and does not use this.
    """
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"16-bit code out of range: {code!r}")
    if code < 0x8000:
        return code
    return ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 0x07) + 3)


def encode_mld_code(value: int, *, round_up: bool = False) -> int:
    """16-bit MLDv2 Maximum Response Code for `value` ms; see `encode_igmp_code`."""
    value = int(value)
    if value < 0:
        raise ValueError(f"negative value: {value}")
    if value < 0x8000:
        return value
    if value >= MLD_CODE_MAX:
        return 0xFFFF
    exp = value.bit_length() - 16
    mant = value >> (exp + 3)  # in [0x1000, 0x2000)
    if round_up and (mant << (exp + 3)) != value:
        mant += 1
        if mant == 0x2000:
            mant, exp = 0x1000, exp + 1
    return 0x8000 | (exp << 12) | (mant & 0x0FFF)


# ---------------------------------------------------------------------------
# Address helpers
# ---------------------------------------------------------------------------


def is_link_local_group(addr: AddressLike) -> bool:
    """True for groups that are flooded, never snooped (RFC 4541 §2.1.2, §3).

    IPv4: 224.0.0.0/24. IPv6: ff01::/16 (interface-local) and ff02::/16 (link-local).
    This must stay a subset of what the data plane floods: a group the parser refuses
    to track but the pipeline sends to the multicast table would be black-holed. That
    is why link-scope groups with flag bits (ff12::/16, ff32::/16) are *not* included:
    the pipeline matches ff02::/16 and ff01::/16 literally, so those are tracked like
    any other group (harmless: the whole fabric is one link). Non-multicast: False.
    """
    a = ipaddress.ip_address(addr)
    if a.version == 4:
        return (int(a) >> 8) == 0xE00000
    b = a.packed
    return b[0] == 0xFF and 0 < b[1] < 3


def multicast_mac(addr: AddressLike) -> str:
    """Ethernet address a multicast group maps to.

    IPv4 (RFC 1112 §6.4): 01:00:5e + low 23 bits. IPv6 (RFC 2464 §7): 33:33 + low
    32 bits. Works for any address; only meaningful for multicast ones.
    """
    a = ipaddress.ip_address(addr)
    b = a.packed
    if a.version == 4:
        mac = bytes((0x01, 0x00, 0x5E, b[1] & 0x7F, b[2], b[3]))
    else:
        mac = b"\x33\x33" + b[12:16]
    return mac.hex(":")


def _mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def _v4(addr: AddressLike) -> bytes:
    return _IPv4(addr if isinstance(addr, (int, bytes)) else str(addr)).packed


def _v6(addr: AddressLike) -> bytes:
    return _IPv6(addr if isinstance(addr, (int, bytes)) else str(addr)).packed


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


def parse_frame(data: bytes) -> Parsed | Drop:
    """Parse one Ethernet frame punted in a PacketIn (at most one 802.1Q tag).

    Never raises. Returns `Parsed` for a valid IGMP (v1/v2/v3), MLD (v1/v2) or PIM hello
    message, else a `Drop` whose reason the caller counts. The catch-all turns a parser
    bug into ``PARSER_ERROR`` rather than killing the controller's event loop; the fuzz
    tests assert that it never fires.
    """
    try:
        if type(data) is not bytes:
            data = bytes(data)
        return _parse(data)
    except Exception as exc:  # pragma: no cover - safety net, asserted unused by fuzzing
        return Drop(DropReason.PARSER_ERROR, f"{type(exc).__name__}: {exc}")


def _parse(d: bytes) -> Parsed | Drop:
    n = len(d)
    if n < 14:
        return Drop(_TRUNCATED, f"ethernet header: {n} bytes")
    ethertype = (d[12] << 8) | d[13]
    off = 14
    vlan = None
    if ethertype == ETH_TYPE_8021Q:
        if n < 18:
            return Drop(_TRUNCATED, "802.1Q tag")
        # VID 0 is a priority tag only: the frame belongs to the port's native VLAN.
        vlan = (((d[14] & 0x0F) << 8) | d[15]) or None
        ethertype = (d[16] << 8) | d[17]
        off = 18
    if ethertype == ETH_TYPE_IPV4:
        msg = _parse_ipv4(d, off, n)
    elif ethertype == ETH_TYPE_IPV6:
        msg = _parse_ipv6(d, off, n)
    else:
        return Drop(_NOT_OURS, f"ethertype 0x{ethertype:04x}")
    if msg.__class__ is Drop:
        return msg
    if d[6] & 1:
        # A group-bit source MAC is invalid on the wire; learning it as a host would
        # point multicast state at a multicast address.
        return Drop(_BAD_SOURCE, "multicast Ethernet source")
    return Parsed(msg, Frame(d[6:12].hex(":"), d[0:6].hex(":"), vlan))


def _parse_ipv4(d: bytes, off: int, n: int):
    if n - off < 20:
        return Drop(_TRUNCATED, "IPv4 header")
    vihl = d[off]
    if vihl >> 4 != 4:
        return Drop(_BAD_IP_HEADER, f"IP version {vihl >> 4} in IPv4 ethertype")
    proto = d[off + 9]
    if proto != IPPROTO_IGMP and proto != IPPROTO_PIM:
        # Checked before lengths and checksum: punted data traffic is common and is
        # none of our business however it is damaged.
        return Drop(_NOT_OURS, f"IPv4 protocol {proto}")
    hl = (vihl & 0x0F) << 2
    if hl < 20:
        return Drop(_BAD_IP_HEADER, f"IHL {hl >> 2}")
    if n - off < hl:
        return Drop(_TRUNCATED, "IPv4 options")
    total = (d[off + 2] << 8) | d[off + 3]
    if total < hl:
        return Drop(_BAD_IP_HEADER, f"total length {total} < header length {hl}")
    if n - off < total:
        return Drop(_TRUNCATED, f"IPv4 total length {total}, have {n - off}")
    if not _sum_ok(_from_bytes(d[off : off + hl], "big")):
        return Drop(_BAD_IP_CHECKSUM, "")
    if ((d[off + 6] << 8) | d[off + 7]) & 0x3FFF:
        # IGMP/PIM hellos are never fragmented; a fragment cannot be checked or parsed.
        return Drop(_BAD_IP_HEADER, "IPv4 fragment")
    src = _from_bytes(d[off + 12 : off + 16], "big")
    start = off + hl
    end = off + total
    if proto == IPPROTO_PIM:
        return _parse_pim(d, start, end, 4, _IPv4(src), 0)
    return _parse_igmp(d, start, end, src)


def _v4_group_error(g: int) -> Drop | None:
    """Reason a v1/v2/v3 report or leave group is unusable, else None."""
    if g >> 28 != 0xE:
        return Drop(_NOT_MULTICAST, str(_IPv4(g)))
    if g >> 8 == 0xE00000:
        return Drop(_LINK_LOCAL, str(_IPv4(g)))
    return None


def _v4_sources(d: bytes, p: int, count: int):
    """Sorted, de-duplicated IPv4 sources at d[p:], or a Drop if one is not unicast.

    Unicast here means not 0.0.0.0 and below 224.0.0.0: multicast, class E (reserved)
    and the limited broadcast address can never send multicast traffic.
    """
    if not count:
        return ()
    ints = set(struct.unpack_from(f"!{count}I", d, p))
    lo = min(ints)
    hi = max(ints)
    if lo == 0 or hi >= 0xE0000000:
        bad = lo if lo == 0 else hi
        return Drop(_BAD_SOURCE, f"source {_IPv4(bad)}")
    return tuple(map(_IPv4, sorted(ints)))


def _parse_igmp(d: bytes, start: int, end: int, src: int):
    length = end - start
    if length < 8:
        return Drop(_BAD_LENGTH, f"IGMP message of {length} bytes")
    if not _checksum_ok(d[start:end]):
        return Drop(_BAD_CHECKSUM, "IGMP")
    if src >= 0xE0000000:
        # 0.0.0.0 is fine (RFC 4541 §2.1.1: proxy-reporting switches use it); a
        # multicast, class E or broadcast sender is not a host or router.
        return Drop(_BAD_SOURCE, f"IPv4 source {_IPv4(src)}")
    t = d[start]
    if t == IGMP_V3_REPORT:
        return _parse_igmpv3_report(d, start, end, src)
    if t == IGMP_V2_REPORT or t == IGMP_V1_REPORT or t == IGMP_V2_LEAVE:
        g = _from_bytes(d[start + 4 : start + 8], "big")
        err = _v4_group_error(g)
        if err is not None:
            return err
        if t == IGMP_V2_LEAVE:
            return Leave(4, 2, _IPv4(src), _IPv4(g))
        return Report(
            4,
            2 if t == IGMP_V2_REPORT else 1,
            _IPv4(src),
            (GroupRecord(_MODE_IS_EXCLUDE, _IPv4(g), ()),),
        )
    if t == IGMP_QUERY:
        return _parse_igmp_query(d, start, length, src)
    return Drop(_UNKNOWN_TYPE, f"IGMP type 0x{t:02x}")


def _parse_igmp_query(d: bytes, start: int, length: int, src: int):
    code = d[start + 1]
    if length == 8 and code == 0:
        # IGMPv1 (RFC 3376 §7.1): the group field is unused; hosts wait up to 10 s.
        return Query(4, 1, _IPv4(src), None, (), 10.0)
    g = _from_bytes(d[start + 4 : start + 8], "big")
    if g and g >> 28 != 0xE:
        return Drop(_NOT_MULTICAST, f"query group {_IPv4(g)}")
    group = _IPv4(g) if g else None
    if length == 8:
        return Query(4, 2, _IPv4(src), group, (), code / 10)
    if length < 12:
        # RFC 3376 §7.1: a query of 9-11 bytes matches no version; ignore it.
        return Drop(_BAD_LENGTH, f"IGMP query of {length} bytes")
    flags = d[start + 8]
    qqic = d[start + 9]
    ns = (d[start + 10] << 8) | d[start + 11]
    if 12 + 4 * ns > length:
        return Drop(_BAD_SOURCE_COUNT, f"{ns} sources in a {length}-byte query")
    if ns and not g:
        return Drop(_BAD_SOURCE_COUNT, "general query with sources")
    sources = _v4_sources(d, start + 12, ns)
    if sources.__class__ is Drop:
        return sources
    return Query(
        4,
        3,
        _IPv4(src),
        group,
        sources,
        decode_igmp_code(code) / 10,
        bool(flags & 0x08),
        flags & 0x07,
        float(decode_igmp_code(qqic)),
    )


def _parse_igmpv3_report(d: bytes, start: int, end: int, src: int):
    nrec = (d[start + 6] << 8) | d[start + 7]
    p = start + 8
    records = []
    skipped = 0
    for i in range(nrec):
        if end - p < 8:
            return Drop(_BAD_RECORD_COUNT, f"record {i + 1} of {nrec} does not fit")
        rtype = d[p]
        aux = d[p + 1] << 2
        ns = (d[p + 2] << 8) | d[p + 3]
        g = _from_bytes(d[p + 4 : p + 8], "big")
        p += 8
        if end - p < 4 * ns:
            return Drop(_BAD_SOURCE_COUNT, f"record {i + 1}: {ns} sources do not fit")
        if end - p - 4 * ns < aux:
            return Drop(_BAD_LENGTH, f"record {i + 1}: aux data does not fit")
        if not 1 <= rtype <= 6:
            return Drop(_BAD_RECORD_TYPE, f"record type {rtype}")
        if g >> 28 != 0xE:
            return Drop(_NOT_MULTICAST, f"record group {_IPv4(g)}")
        sources = _v4_sources(d, p, ns)
        if sources.__class__ is Drop:
            return sources
        p += 4 * ns + aux
        if g >> 8 == 0xE00000:
            skipped += 1
            continue
        records.append(GroupRecord(_RTYPES[rtype], _IPv4(g), sources))
    if skipped and not records:
        return Drop(_LINK_LOCAL, f"all {skipped} records link-local")
    return Report(4, 3, _IPv4(src), tuple(records))


def _parse_pim(d: bytes, p: int, end: int, family: int, src: IPAddress, pseudo: int):
    """PIM hello (RFC 7761 §4.9.2): only marks the port as a router port."""
    if end - p < 4:
        return Drop(_BAD_LENGTH, f"PIM message of {end - p} bytes")
    if d[p] != 0x20:  # version 2, type 0 (Hello)
        return Drop(_NOT_OURS, f"PIM version {d[p] >> 4} type {d[p] & 0x0F}")
    x = _from_bytes(d[p:end], "big")
    if (end - p) & 1:
        x <<= 8
    if not _sum_ok(x + pseudo):
        return Drop(_BAD_CHECKSUM, "PIM")
    return PimHello(family, src)


def _parse_ipv6(d: bytes, off: int, n: int):
    if n - off < 40:
        return Drop(_TRUNCATED, "IPv6 header")
    if d[off] >> 4 != 6:
        return Drop(_BAD_IP_HEADER, f"IP version {d[off] >> 4} in IPv6 ethertype")
    nh = d[off + 6]
    if nh not in _V6_INTERESTING:
        return Drop(_NOT_OURS, f"next header {nh}")
    plen = (d[off + 4] << 8) | d[off + 5]
    end = off + 40 + plen
    if end > n:
        return Drop(_TRUNCATED, f"IPv6 payload length {plen}, have {n - off - 40}")
    p = off + 40
    # Walk the extension-header chain (RFC 8200 §4). Each header is at least 8 bytes,
    # so the loop is bounded by the payload length.
    while nh != IPPROTO_ICMPV6 and nh != IPPROTO_PIM:
        if nh == IPPROTO_HOPOPTS:
            if p != off + 40:
                return Drop(_BAD_IP_HEADER, "hop-by-hop header not first")
        elif nh == IPPROTO_FRAGMENT:
            # MLD messages are never fragmented; a fragment cannot be checked.
            return Drop(_BAD_IP_HEADER, "IPv6 fragment header")
        elif nh != IPPROTO_ROUTING and nh != IPPROTO_DSTOPTS:
            return Drop(_NOT_OURS, f"next header {nh}")
        if end - p < 8:
            return Drop(_BAD_LENGTH, f"extension header {nh} past payload")
        hlen = (d[p + 1] + 1) << 3
        if end - p < hlen:
            return Drop(_BAD_LENGTH, f"extension header {nh} past payload")
        if nh == IPPROTO_ROUTING and d[p + 3]:
            # Segments Left != 0: we are not the final destination, and the checksum
            # pseudo-header would use an address from the routing header.
            return Drop(_BAD_IP_HEADER, "routing header with segments left")
        nh = d[p]
        p += hlen
    ulen = end - p
    # Pseudo-header (RFC 8200 §8.1) folded the same way as the data: each part is a
    # whole number of 16-bit words, so their integers can simply be added.
    pseudo = _from_bytes(d[off + 8 : off + 40], "big") + ulen + nh
    if nh == IPPROTO_PIM:
        return _parse_pim(d, p, end, 6, _IPv6(d[off + 8 : off + 24]), pseudo)

    if ulen < 4:
        return Drop(_BAD_LENGTH, f"ICMPv6 message of {ulen} bytes")
    t = d[p]
    if t != MLD_V2_REPORT and t != MLD_QUERY and t != MLD_V1_REPORT and t != MLD_V1_DONE:
        return Drop(_NOT_OURS, f"ICMPv6 type {t}")
    x = _from_bytes(d[p:end], "big")
    if ulen & 1:
        x <<= 8
    if not _sum_ok(x + pseudo):
        return Drop(_BAD_CHECKSUM, "ICMPv6")
    # RFC 3810 §5: hop limit 1 and a link-local source, or :: for listener messages
    # sent before the host has an address (RFC 3590). Queries need a real address.
    if d[off + 7] != 1:
        return Drop(_BAD_HOP_LIMIT, f"hop limit {d[off + 7]}")
    s0 = d[off + 8]
    if not (s0 == 0xFE and (d[off + 9] & 0xC0) == 0x80):
        if t == MLD_QUERY or d[off + 8 : off + 24] != _V6_UNSPECIFIED:
            return Drop(_NOT_LL_SOURCE, str(_IPv6(d[off + 8 : off + 24])))
    src = _IPv6(d[off + 8 : off + 24])

    if t == MLD_V2_REPORT:
        return _parse_mldv2_report(d, p, end, src)
    if ulen < 24:
        return Drop(_BAD_LENGTH, f"MLD message of {ulen} bytes")
    gb = d[p + 8 : p + 24]
    if t == MLD_QUERY:
        return _parse_mld_query(d, p, ulen, src, gb)
    err = _v6_group_error(gb)
    if err is not None:
        return err
    if t == MLD_V1_REPORT:
        return Report(6, 1, src, (GroupRecord(_MODE_IS_EXCLUDE, _IPv6(gb), ()),))
    return Leave(6, 1, src, _IPv6(gb))


_V6_INTERESTING = frozenset(
    (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_ICMPV6, IPPROTO_PIM)
)
_V6_UNSPECIFIED = bytes(16)


def _v6_group_error(gb: bytes) -> Drop | None:
    if gb[0] != 0xFF:
        return Drop(_NOT_MULTICAST, str(_IPv6(gb)))
    if 0 < gb[1] < 3:  # ff01::/16, ff02::/16
        return Drop(_LINK_LOCAL, str(_IPv6(gb)))
    return None


def _v6_sources(d: bytes, p: int, count: int):
    """Sorted, de-duplicated IPv6 sources at d[p:], or a Drop if one is :: or multicast."""
    if not count:
        return ()
    ints = {_from_bytes(d[q : q + 16], "big") for q in range(p, p + 16 * count, 16)}
    for s in ints:
        if s == 0 or s >> 120 == 0xFF:
            return Drop(_BAD_SOURCE, f"source {_IPv6(s)}")
    return tuple(map(_IPv6, sorted(ints)))


def _parse_mld_query(d: bytes, p: int, ulen: int, src: IPAddress, gb: bytes):
    if gb[0] != 0xFF and gb != _V6_UNSPECIFIED:
        return Drop(_NOT_MULTICAST, f"query group {_IPv6(gb)}")
    group = _IPv6(gb) if gb[0] else None
    code = (d[p + 4] << 8) | d[p + 5]
    if ulen == 24:
        return Query(6, 1, src, group, (), code / 1000)
    if ulen < 28:
        # RFC 3810 §8.1: 24 bytes is MLDv1, 28 or more MLDv2, anything else ignored.
        return Drop(_BAD_LENGTH, f"MLD query of {ulen} bytes")
    flags = d[p + 24]
    qqic = d[p + 25]
    ns = (d[p + 26] << 8) | d[p + 27]
    if 28 + 16 * ns > ulen:
        return Drop(_BAD_SOURCE_COUNT, f"{ns} sources in a {ulen}-byte query")
    if ns and group is None:
        return Drop(_BAD_SOURCE_COUNT, "general query with sources")
    sources = _v6_sources(d, p + 28, ns)
    if sources.__class__ is Drop:
        return sources
    return Query(
        6,
        2,
        src,
        group,
        sources,
        decode_mld_code(code) / 1000,
        bool(flags & 0x08),
        flags & 0x07,
        float(decode_igmp_code(qqic)),
    )


def _parse_mldv2_report(d: bytes, p: int, end: int, src: IPAddress):
    if end - p < 8:
        return Drop(_BAD_LENGTH, f"MLDv2 report of {end - p} bytes")
    nrec = (d[p + 6] << 8) | d[p + 7]
    p += 8
    records = []
    skipped = 0
    for i in range(nrec):
        if end - p < 20:
            return Drop(_BAD_RECORD_COUNT, f"record {i + 1} of {nrec} does not fit")
        rtype = d[p]
        aux = d[p + 1] << 2
        ns = (d[p + 2] << 8) | d[p + 3]
        gb = d[p + 4 : p + 20]
        p += 20
        if end - p < 16 * ns:
            return Drop(_BAD_SOURCE_COUNT, f"record {i + 1}: {ns} sources do not fit")
        if end - p - 16 * ns < aux:
            return Drop(_BAD_LENGTH, f"record {i + 1}: aux data does not fit")
        if not 1 <= rtype <= 6:
            return Drop(_BAD_RECORD_TYPE, f"record type {rtype}")
        if gb[0] != 0xFF:
            return Drop(_NOT_MULTICAST, f"record group {_IPv6(gb)}")
        sources = _v6_sources(d, p, ns)
        if sources.__class__ is Drop:
            return sources
        p += 16 * ns + aux
        if 0 < gb[1] < 3:  # ff01::/16, ff02::/16
            skipped += 1
            continue
        records.append(GroupRecord(_RTYPES[rtype], _IPv6(gb), sources))
    if skipped and not records:
        return Drop(_LINK_LOCAL, f"all {skipped} records link-local")
    return Report(6, 2, src, tuple(records))


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------
#
# Builders encode what they are given: they do not check that groups are multicast or
# sources unicast, so tests and benchmarks can produce invalid packets with correct
# checksums. They raise ValueError only for values that cannot be encoded at all.

_ROUTER_ALERT_V4 = b"\x94\x04\x00\x00"  # RFC 2113: type 148, length 4, value 0
# RFC 2711 Router Alert (type 5, len 2, value 0 = MLD) + PadN(0) to fill 8 bytes.
_HBH_ROUTER_ALERT = b"\x05\x02\x00\x00\x01\x00"

_V4_ALL_SYSTEMS = _IPv4("224.0.0.1").packed
_V4_ALL_ROUTERS = _IPv4("224.0.0.2").packed
_V4_IGMPV3_ROUTERS = _IPv4("224.0.0.22").packed
_V4_ALL_PIM_ROUTERS = _IPv4("224.0.0.13").packed
_V6_ALL_NODES = _IPv6("ff02::1").packed
_V6_ALL_ROUTERS = _IPv6("ff02::2").packed
_V6_MLDV2_ROUTERS = _IPv6("ff02::16").packed
_V6_ALL_PIM_ROUTERS = _IPv6("ff02::d").packed

RecordLike = Union[GroupRecord, tuple]


def _ethernet(src_mac: str, dst_ip: bytes, ethertype: int, vlan: int | None) -> bytes:
    """Ethernet (+ optional 802.1Q) header addressed to the MAC `dst_ip` maps to."""
    if len(dst_ip) == 4:
        dst = bytes((0x01, 0x00, 0x5E, dst_ip[1] & 0x7F, dst_ip[2], dst_ip[3]))
    else:
        dst = b"\x33\x33" + dst_ip[12:16]
    hdr = dst + _mac_bytes(src_mac)
    if vlan is not None:
        if not 0 <= vlan <= 0xFFF:
            raise ValueError(f"VLAN id out of range: {vlan}")
        hdr += struct.pack("!HH", ETH_TYPE_8021Q, vlan)
    return hdr + struct.pack("!H", ethertype)


def _ipv4_frame(
    src_mac: str,
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes,
    *,
    ttl: int = 1,
    router_alert: bool = True,
    vlan: int | None = None,
) -> bytes:
    opts = _ROUTER_ALERT_V4 if router_alert else b""
    hl = 20 + len(opts)
    hdr = bytearray(
        # TOS 0xc0 (Internetwork Control), as RFC 3376 §4 asks for IGMP.
        struct.pack("!BBHHHBBH4s4s", 0x40 | (hl >> 2), 0xC0, hl + len(payload), 0, 0, ttl, proto, 0, src, dst)
        + opts
    )
    struct.pack_into("!H", hdr, 10, inet_checksum(hdr))
    return _ethernet(src_mac, dst, ETH_TYPE_IPV4, vlan) + bytes(hdr) + payload


def _with_checksum(msg: bytearray, pos: int, pseudo: bytes = b"") -> bytes:
    struct.pack_into("!H", msg, pos, 0)
    struct.pack_into("!H", msg, pos, inet_checksum(pseudo + bytes(msg)))
    return bytes(msg)


def _ipv6_frame(
    src_mac: str,
    src: bytes,
    dst: bytes,
    nh: int,
    payload: bytearray,
    csum_pos: int,
    *,
    hop_limit: int = 1,
    router_alert: bool = True,
    vlan: int | None = None,
) -> bytes:
    pseudo = src + dst + struct.pack("!IxxxB", len(payload), nh)
    body = _with_checksum(payload, csum_pos, pseudo)
    ext = bytes((nh, 0)) + _HBH_ROUTER_ALERT if router_alert else b""
    hdr = struct.pack(
        "!IHBB16s16s", 0x60000000, len(ext) + len(body), IPPROTO_HOPOPTS if router_alert else nh, hop_limit, src, dst
    )
    return _ethernet(src_mac, dst, ETH_TYPE_IPV6, vlan) + hdr + ext + body


def _tenths(seconds: float) -> int:
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(f"invalid time: {seconds!r}")
    return round(seconds * 10)


def _millis(seconds: float) -> int:
    if not seconds >= 0:
        raise ValueError(f"invalid time: {seconds!r}")
    return round(seconds * 1000)


def _qqic(qqi: float) -> int:
    if not qqi >= 0:
        raise ValueError(f"invalid qqi: {qqi!r}")
    return encode_igmp_code(round(qqi), round_up=True)


def _qrv_byte(s_flag: bool, qrv: int) -> int:
    if qrv < 0:
        raise ValueError(f"negative QRV: {qrv}")
    if qrv > 7:
        qrv = 0  # RFC 3376 §4.1.6 / RFC 3810 §5.1.8: QRV above 7 is sent as 0
    return (0x08 if s_flag else 0) | qrv


def _check_query_args(version: int, versions: tuple, group, sources, last: int) -> None:
    if version not in versions:
        raise ValueError(f"unsupported query version {version}")
    if sources and version != last:
        raise ValueError(f"version {version} queries carry no sources")
    if sources and group is None:
        raise ValueError("a query with sources needs a group")


def build_igmp_query(
    version: int,
    src_mac: str,
    src_ip: AddressLike,
    group: AddressLike | None = None,
    sources: Sequence[AddressLike] = (),
    max_resp: float = 10.0,
    s_flag: bool = False,
    qrv: int = 2,
    qqi: float = 125.0,
    *,
    vlan: int | None = None,
) -> bytes:
    """Ethernet frame carrying an IGMP v1, v2 or v3 Membership Query.

    General query (group None) goes to 224.0.0.1, a group(-and-source)-specific one to
    the group; TTL 1, TOS 0xc0, Router Alert for v2/v3 (RFC 2236 §2, RFC 3376 §4).
    v1 queries are general only and always say Max Resp Code 0. `max_resp` and `qqi`
    are seconds: v2 sends max_resp in tenths (0.1 .. 25.5 s, larger clamped); v3 uses
    the RFC 3376 float codes, rounding max_resp down and qqi up when not exact.
    `vlan` adds an 802.1Q tag. Raises ValueError for values that cannot be encoded.
    """
    _check_query_args(version, (1, 2, 3), group, sources, 3)
    src = _v4(src_ip)
    gb = _v4(group) if group is not None else bytes(4)
    if version == 1:
        if group is not None:
            raise ValueError("IGMPv1 queries are general queries")
        msg = bytearray(struct.pack("!BBH4s", IGMP_QUERY, 0, 0, gb))
    elif version == 2:
        tenths = _tenths(max_resp)
        if tenths < 1:
            raise ValueError("IGMPv2 max_resp must be at least 0.1 s (0 means IGMPv1)")
        msg = bytearray(struct.pack("!BBH4s", IGMP_QUERY, min(tenths, 0xFF), 0, gb))
    else:
        srcs = b"".join(_v4(s) for s in sources)
        msg = bytearray(
            struct.pack(
                "!BBH4sBBH",
                IGMP_QUERY,
                encode_igmp_code(_tenths(max_resp)),
                0,
                gb,
                _qrv_byte(s_flag, qrv),
                _qqic(qqi),
                len(sources),
            )
            + srcs
        )
    dst = gb if group is not None else _V4_ALL_SYSTEMS
    return _ipv4_frame(
        src_mac, src, dst, IPPROTO_IGMP, _with_checksum(msg, 2), router_alert=version >= 2, vlan=vlan
    )


def _record_fields(rec: RecordLike):
    """(rtype, group, sources, aux) of a GroupRecord or a plain tuple.

    Tuples ``(rtype, group, sources[, aux_bytes])`` let tests use record types outside
    RecordType and attach auxiliary data, which GroupRecord cannot express.
    """
    if isinstance(rec, GroupRecord):
        return int(rec.rtype), rec.group, rec.sources, b""
    rtype, group, sources, *rest = rec
    aux = bytes(rest[0]) if rest else b""
    if len(aux) % 4 or len(aux) > 255 * 4:
        raise ValueError("aux data must be a multiple of 4 bytes, at most 1020")
    return int(rtype), group, sources, aux


def build_igmp_report(
    version: int,
    src_mac: str,
    src_ip: AddressLike,
    group: AddressLike | None = None,
    records: Iterable[RecordLike] = (),
    *,
    leave: bool = False,
    vlan: int | None = None,
    ttl: int = 1,
    router_alert: bool | None = None,
    dst: AddressLike | None = None,
) -> bytes:
    """Ethernet frame carrying an IGMP report or leave, as a host would send it.

    * v1 / v2 report: pass `group`; sent to the group.
    * v2 leave: ``version=2, leave=True`` and `group`; sent to 224.0.0.2.
    * v3 report: pass `records` (GroupRecord or ``(rtype, group, sources[, aux])``);
      sent to 224.0.0.22. Sources are encoded in the order given, duplicates kept.

    Router Alert defaults to on for v2/v3 (off for v1, which predates it); `ttl`,
    `router_alert` and `dst` can be overridden to build unusual packets.
    """
    src = _v4(src_ip)
    if version in (1, 2):
        if group is None or records:
            raise ValueError(f"IGMPv{version} reports carry exactly one group")
        if leave and version != 2:
            raise ValueError("only IGMPv2 has a Leave message")
        gb = _v4(group)
        mtype = IGMP_V2_LEAVE if leave else (IGMP_V2_REPORT if version == 2 else IGMP_V1_REPORT)
        msg = bytearray(struct.pack("!BBH4s", mtype, 0, 0, gb))
        default_dst = _V4_ALL_ROUTERS if leave else gb
    elif version == 3:
        if group is not None or leave:
            raise ValueError("IGMPv3 reports use records (and have no leave)")
        body = bytearray()
        count = 0
        for rec in records:
            rtype, g, srcs, aux = _record_fields(rec)
            body += struct.pack("!BBH4s", rtype, len(aux) // 4, len(srcs), _v4(g))
            body += b"".join(_v4(s) for s in srcs) + aux
            count += 1
        msg = bytearray(struct.pack("!BxHxxH", IGMP_V3_REPORT, 0, count)) + body
        default_dst = _V4_IGMPV3_ROUTERS
    else:
        raise ValueError(f"unsupported IGMP version {version}")
    return _ipv4_frame(
        src_mac,
        src,
        _v4(dst) if dst is not None else default_dst,
        IPPROTO_IGMP,
        _with_checksum(msg, 2),
        ttl=ttl,
        router_alert=version >= 2 if router_alert is None else router_alert,
        vlan=vlan,
    )


def build_mld_query(
    version: int,
    src_mac: str,
    src_ip: AddressLike,
    group: AddressLike | None = None,
    sources: Sequence[AddressLike] = (),
    max_resp: float = 10.0,
    s_flag: bool = False,
    qrv: int = 2,
    qqi: float = 125.0,
    *,
    vlan: int | None = None,
) -> bytes:
    """Ethernet frame carrying an MLDv1 (24-byte) or MLDv2 (RFC 3810 §5.1) query.

    Hop limit 1, Hop-by-Hop header with Router Alert (value 0) + PadN, sent to ff02::1
    (general) or the group (specific). `src_ip` should be the querier's link-local
    address: receivers drop queries from anything else. `max_resp` (seconds) goes out
    in milliseconds: plain 16-bit for MLDv1 (clamped at 65.535 s), the RFC 3810 float
    code for MLDv2 (rounded down); `qqi` uses the 8-bit code, rounded up.
    """
    _check_query_args(version, (1, 2), group, sources, 2)
    src = _v6(src_ip)
    gb = _v6(group) if group is not None else bytes(16)
    ms = _millis(max_resp)
    if version == 1:
        msg = bytearray(struct.pack("!BBHHH16s", MLD_QUERY, 0, 0, min(ms, 0xFFFF), 0, gb))
    else:
        msg = bytearray(
            struct.pack(
                "!BBHHH16sBBH",
                MLD_QUERY,
                0,
                0,
                encode_mld_code(ms),
                0,
                gb,
                _qrv_byte(s_flag, qrv),
                _qqic(qqi),
                len(sources),
            )
            + b"".join(_v6(s) for s in sources)
        )
    dst = gb if group is not None else _V6_ALL_NODES
    return _ipv6_frame(src_mac, src, dst, IPPROTO_ICMPV6, msg, 2, vlan=vlan)


def build_mld_report(
    version: int,
    src_mac: str,
    src_ip: AddressLike,
    group: AddressLike | None = None,
    records: Iterable[RecordLike] = (),
    *,
    done: bool = False,
    vlan: int | None = None,
    hop_limit: int = 1,
    router_alert: bool = True,
    dst: AddressLike | None = None,
) -> bytes:
    """Ethernet frame carrying an MLD listener report or done, as a host would send it.

    * MLDv1 report: ``version=1`` and `group`; sent to the group.
    * MLDv1 done: ``version=1, done=True`` and `group`; sent to ff02::2.
    * MLDv2 report: ``version=2`` and `records` (as for `build_igmp_report`); sent to
      ff02::16.

    Always with a Hop-by-Hop Router Alert unless ``router_alert=False``; `hop_limit`
    and `dst` can be overridden to build invalid packets.
    """
    src = _v6(src_ip)
    if version == 1:
        if group is None or records:
            raise ValueError("MLDv1 reports carry exactly one group")
        gb = _v6(group)
        msg = bytearray(struct.pack("!BBHHH16s", MLD_V1_DONE if done else MLD_V1_REPORT, 0, 0, 0, 0, gb))
        default_dst = _V6_ALL_ROUTERS if done else gb
    elif version == 2:
        if group is not None or done:
            raise ValueError("MLDv2 reports use records (and have no done)")
        body = bytearray()
        count = 0
        for rec in records:
            rtype, g, srcs, aux = _record_fields(rec)
            body += struct.pack("!BBH16s", rtype, len(aux) // 4, len(srcs), _v6(g))
            body += b"".join(_v6(s) for s in srcs) + aux
            count += 1
        msg = bytearray(struct.pack("!BBHHH", MLD_V2_REPORT, 0, 0, 0, count)) + body
        default_dst = _V6_MLDV2_ROUTERS
    else:
        raise ValueError(f"unsupported MLD version {version}")
    return _ipv6_frame(
        src_mac,
        src,
        _v6(dst) if dst is not None else default_dst,
        IPPROTO_ICMPV6,
        msg,
        2,
        hop_limit=hop_limit,
        router_alert=router_alert,
        vlan=vlan,
    )


def build_pim_hello(src_mac: str, src_ip: AddressLike, holdtime: int = 105, *, vlan: int | None = None) -> bytes:
    """Ethernet frame carrying a PIMv2 Hello with a Holdtime option (RFC 7761 §4.9.2).

    IPv4 or IPv6 by the family of `src_ip`; sent to ALL-PIM-ROUTERS with TTL/hop limit 1.
    Used by tests and benchmarks to mark router ports.
    """
    a = ipaddress.ip_address(src_ip)
    msg = bytearray(struct.pack("!BBHHHH", 0x20, 0, 0, 1, 2, holdtime))
    if a.version == 4:
        return _ipv4_frame(
            src_mac, a.packed, _V4_ALL_PIM_ROUTERS, IPPROTO_PIM, _with_checksum(msg, 2), router_alert=False, vlan=vlan
        )
    return _ipv6_frame(src_mac, a.packed, _V6_ALL_PIM_ROUTERS, IPPROTO_PIM, msg, 2, router_alert=False, vlan=vlan)
