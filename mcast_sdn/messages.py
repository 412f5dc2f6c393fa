"""Typed records for IGMP and MLD messages, shared by the parser and the state machines.

Why a module of its own: the parser (`packets.py`) turns untrusted bytes into these
records, and the router-side state machine (`membership.py`) and querier
(`querier.py`) consume them. Keeping the contract here lets both sides be written and
tested without each other, and keeps `ryu.lib.packet` objects out of the core.

Addresses are `ipaddress.IPv4Address` / `IPv6Address` objects (hashable, ordered,
family-aware). IGMP and MLD share one vocabulary: an MLDv1 Report is a version-1
"listener" report of family 6, and so on; `family` says which protocol it was.
"""
from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class RecordType(enum.IntEnum):
    """IGMPv3 / MLDv2 group record types (RFC 3376 §4.2.12, RFC 3810 §5.2.12)."""

    MODE_IS_INCLUDE = 1
    MODE_IS_EXCLUDE = 2
    CHANGE_TO_INCLUDE = 3
    CHANGE_TO_EXCLUDE = 4
    ALLOW_NEW_SOURCES = 5
    BLOCK_OLD_SOURCES = 6


class DropReason(str, enum.Enum):
    """Why a punted packet did not become state. Counters are keyed by these."""

    TRUNCATED = "truncated"
    NOT_IGMP_OR_MLD = "not_igmp_or_mld"
    BAD_IP_HEADER = "bad_ip_header"
    BAD_IP_CHECKSUM = "bad_ip_checksum"
    BAD_CHECKSUM = "bad_checksum"
    BAD_LENGTH = "bad_length"
    BAD_RECORD_COUNT = "bad_record_count"
    BAD_SOURCE_COUNT = "bad_source_count"
    BAD_RECORD_TYPE = "bad_record_type"
    UNKNOWN_TYPE = "unknown_type"
    NOT_MULTICAST_GROUP = "not_multicast_group"
    LINK_LOCAL_GROUP = "link_local_group"
    BAD_SOURCE_ADDRESS = "bad_source_address"
    BAD_HOP_LIMIT = "bad_hop_limit"
    NOT_LINK_LOCAL_SOURCE = "not_link_local_source"
    RATE_LIMITED = "rate_limited"
    LIMIT_GROUPS = "limit_groups"
    LIMIT_SOURCES = "limit_sources"
    PARSER_ERROR = "parser_error"


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One group record of an IGMPv3/MLDv2 report (sources as a sorted tuple, no duplicates)."""

    rtype: RecordType
    group: IPAddress
    sources: tuple[IPAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """A membership report.

    version: 1, 2 or 3 for IGMP; 1 or 2 for MLD (family 6).
    For IGMPv1/v2 and MLDv1 a report is expressed as one record
    MODE_IS_EXCLUDE{} (RFC 3376 §7.3.2 treats it that way), so consumers handle one shape.
    """

    family: int  # 4 or 6
    version: int
    src: IPAddress  # IP source of the report (0.0.0.0 / :: accepted)
    records: tuple[GroupRecord, ...]


@dataclass(frozen=True, slots=True)
class Leave:
    """IGMPv2 Leave Group or MLDv1 Done."""

    family: int
    version: int  # 2 for IGMPv2 leave, 1 for MLDv1 done
    src: IPAddress
    group: IPAddress


@dataclass(frozen=True, slots=True)
class Query:
    """A membership query seen on a port (from a router, or another querier).

    group is None for a General Query. max_resp is in seconds (float).
    qrv / qqic (seconds) are present for v3/MLDv2 queries, else None.
    """

    family: int
    version: int  # IGMP 1/2/3, MLD 1/2
    src: IPAddress
    group: IPAddress | None
    sources: tuple[IPAddress, ...] = ()
    max_resp: float = 10.0
    s_flag: bool = False
    qrv: int | None = None
    qqi: float | None = None


@dataclass(frozen=True, slots=True)
class PimHello:
    """A PIM hello (IPv4 proto 103 / IPv6 next header 103 to ALL-PIM-ROUTERS): marks a router port."""

    family: int
    src: IPAddress


@dataclass(frozen=True, slots=True)
class Drop:
    """A packet that did not parse into state, with the reason (for counters)."""

    reason: DropReason
    detail: str = ""


Message = Union[Report, Leave, Query, PimHello]


@dataclass(frozen=True, slots=True)
class Frame:
    """L2 context of a parsed message: who sent it (used for host learning)."""

    eth_src: str
    eth_dst: str
    vlan: int | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """Result of parsing one punted frame: a message plus its L2 context."""

    message: Message
    frame: Frame = field(default_factory=lambda: Frame("", ""))
