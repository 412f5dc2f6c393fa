"""Membership settings: RFC 3376 §8 / RFC 3810 §9 timers, querier identity, per-port policy.

Why a module of its own: the REST layer, a config file and the tests all build the same
`MembershipConfig`, and the state machines read it without caring where it came from.
Config (what the operator asked for) is kept apart from state (what the network told us),
so a config object is frozen and can be shared by every port.

Three values may be left as ``None`` meaning "derive from the others", exactly as the
RFCs define their defaults:

* ``last_member_query_count``  -> Robustness Variable          (RFC 3376 §8.9, RFC 3810 §9.9)
* ``startup_query_interval``   -> Query Interval / 4           (RFC 3376 §8.6, RFC 3810 §9.6)
* ``startup_query_count``      -> Robustness Variable          (RFC 3376 §8.7, RFC 3810 §9.7)

The derived intervals live on `Timers` (``config.timers``), which is also what a port uses
when it adopts a foreign querier's QRV/QQI (RFC 3376 §4.1.6/§4.1.7): keeping "derive"
explicit there means an adopted robustness also moves the derived counts, as the RFC wants.

Querier source addresses (documented choice):

* ``querier_ipv4`` defaults to ``10.255.255.254``. A General Query needs a real source
  address: querier election (RFC 3376 §6.6.2) compares it, and RFC 4541 §2.1.1(4) says
  queries from 0.0.0.0 must not take part in the election, so a 0.0.0.0 querier could
  never be told apart from a proxy. The top of 10/8 is chosen so that a real multicast
  router numbered in 10/8 (the usual lab plan) wins the election and we defer to it.
  ``"0.0.0.0"`` is accepted and means "proxy querier": defer to any querier with a
  non-zero source (the Linux bridge behaviour).
* ``querier_ipv6`` defaults to ``fe80::ffff:ffff:ffff:fffe``: MLD queries must come from a
  link-local source (RFC 3810 §5.1.14) and this high interface id loses the election
  (RFC 3810 §7.6.2, lowest address wins) to practically any real router.
* ``querier_mac`` defaults to ``02:00:00:00:00:fe`` (locally administered, unicast).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

PortKey = tuple[int, int]  # (dpid, port)

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


@dataclass(frozen=True, slots=True)
class Timers:
    """The timer values in effect on one port and family (RFC 3376 §8, RFC 3810 §9).

    ``*_override`` fields hold an explicitly configured value or None ("derive").
    All derived values are properties so that `adopt` re-derives them.
    """

    robustness: int = 2
    query_interval: float = 125.0
    query_response_interval: float = 10.0
    last_member_query_interval: float = 1.0
    lmqc_override: int | None = None
    startup_interval_override: float | None = None
    startup_count_override: int | None = None

    @property
    def last_member_query_count(self) -> int:
        """LMQC, default RV (RFC 3376 §8.9)."""
        return self.lmqc_override if self.lmqc_override is not None else self.robustness

    @property
    def startup_query_interval(self) -> float:
        """Default QI/4 (RFC 3376 §8.6)."""
        if self.startup_interval_override is not None:
            return self.startup_interval_override
        return self.query_interval / 4

    @property
    def startup_query_count(self) -> int:
        """Default RV (RFC 3376 §8.7)."""
        if self.startup_count_override is not None:
            return self.startup_count_override
        return self.robustness

    @property
    def group_membership_interval(self) -> float:
        """GMI = RV*QI + QRI (RFC 3376 §8.4; MALI in RFC 3810 §9.4)."""
        return self.robustness * self.query_interval + self.query_response_interval

    @property
    def other_querier_present_interval(self) -> float:
        """RV*QI + QRI/2 (RFC 3376 §8.5, RFC 3810 §9.5)."""
        return self.robustness * self.query_interval + self.query_response_interval / 2

    @property
    def older_host_present_interval(self) -> float:
        """RV*QI + QRI (RFC 3376 §8.13, RFC 3810 §9.13)."""
        return self.robustness * self.query_interval + self.query_response_interval

    @property
    def last_member_query_time(self) -> float:
        """LMQT = LMQI * LMQC (RFC 3376 §8.10, RFC 3810 §9.10)."""
        return self.last_member_query_interval * self.last_member_query_count

    # Short aliases used on hot paths.
    gmi = group_membership_interval
    lmqt = last_member_query_time
    lmqi = last_member_query_interval
    lmqc = last_member_query_count

    def adopt(self, qrv: int | None, qqi: float | None) -> "Timers":
        """Timers after adopting a querier's QRV/QQI; zero or None keeps ours (RFC 3376 §4.1.6-7)."""
        rv = qrv if qrv else self.robustness
        qi = qqi if qqi else self.query_interval
        if rv == self.robustness and qi == self.query_interval:
            return self
        return dataclasses.replace(self, robustness=rv, query_interval=float(qi))


def _port_set(value: Any, name: str) -> frozenset[PortKey]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name}: expected a list of [dpid, port] pairs, got {value!r}")
    out = set()
    for item in value:
        if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) != 2:
            raise ValueError(f"{name}: expected [dpid, port] pairs, got {item!r}")
        dpid, port = item
        for what, v in (("dpid", dpid), ("port", port)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: {what} must be a non-negative integer, got {v!r}")
        out.add((dpid, port))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """Settings for membership tracking and the querier. Defaults are the RFC defaults.

    Times are seconds (float). Construct directly, or with `from_dict` from JSON/YAML
    (validated either way: bad values raise ValueError naming the field).
    """

    robustness: int = 2
    query_interval: float = 125.0
    query_response_interval: float = 10.0
    last_member_query_interval: float = 1.0
    last_member_query_count: int | None = None
    startup_query_interval: float | None = None
    startup_query_count: int | None = None
    igmp_version: int = 3  # highest IGMP version the querier speaks (1, 2, 3)
    mld_version: int = 2  # highest MLD version the querier speaks (1, 2)
    querier_enabled: bool = True  # False: pure snooping, never send queries (non-querier everywhere)
    max_groups_per_port: int = 1024
    max_sources_per_group: int = 256
    immediate_leave_ports: frozenset[PortKey] = frozenset()
    static_router_ports: frozenset[PortKey] = frozenset()
    router_port_timeout: float | None = None  # None: Other Querier Present Interval
    pim_hello_holdtime: float = 105.0  # RFC 7761 §4.11 Default_Hello_Holdtime = 3.5 * 30 s
    querier_ipv4: str = "10.255.255.254"
    querier_ipv6: str = "fe80::ffff:ffff:ffff:fffe"
    querier_mac: str = "02:00:00:00:00:fe"
    _timers: Timers = field(init=False, repr=False, compare=False)
    _addr4: ipaddress.IPv4Address = field(init=False, repr=False, compare=False)
    _addr6: ipaddress.IPv6Address = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def integer(name: str, lo: int, hi: int | None = None, optional: bool = False) -> None:
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{name}: expected an integer, got {v!r}")
            if v < lo or (hi is not None and v > hi):
                rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
                raise ValueError(f"{name}: must be {rng}, got {v}")

        def seconds(name: str, optional: bool = False, zero_ok: bool = False) -> None:
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name}: expected a number of seconds, got {v!r}")
            if v < 0 or (v == 0 and not zero_ok):
                raise ValueError(f"{name}: must be {'>= 0' if zero_ok else '> 0'}, got {v}")
            object.__setattr__(self, name, float(v))

        integer("robustness", 1)
        seconds("query_interval")
        seconds("query_response_interval")
        seconds("last_member_query_interval")
        integer("last_member_query_count", 1, optional=True)
        seconds("startup_query_interval", optional=True)
        integer("startup_query_count", 1, optional=True)
        integer("igmp_version", 1, 3)
        integer("mld_version", 1, 2)
        integer("max_groups_per_port", 1)
        integer("max_sources_per_group", 0)
        seconds("router_port_timeout", optional=True)
        seconds("pim_hello_holdtime")
        if not isinstance(self.querier_enabled, bool):
            raise ValueError(f"querier_enabled: expected a boolean, got {self.querier_enabled!r}")
        # RFC 3376 §8.3 / RFC 3810 §9.3: QRI must be less than QI.
        if self.query_response_interval >= self.query_interval:
            raise ValueError(
                "query_response_interval must be less than query_interval "
                f"({self.query_response_interval} >= {self.query_interval})"
            )
        # IGMPv2 Max Resp Time is in 1/10 s in one octet (RFC 2236 §2.2).
        if self.igmp_version == 2:
            for name in ("query_response_interval", "last_member_query_interval"):
                if getattr(self, name) > 25.5:
                    raise ValueError(f"{name}: IGMPv2 cannot encode more than 25.5 s")
        object.__setattr__(
            self, "immediate_leave_ports", _port_set(self.immediate_leave_ports, "immediate_leave_ports")
        )
        object.__setattr__(
            self, "static_router_ports", _port_set(self.static_router_ports, "static_router_ports")
        )
        try:
            a4 = ipaddress.IPv4Address(self.querier_ipv4)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"querier_ipv4: not an IPv4 address: {self.querier_ipv4!r}") from exc
        if a4.is_multicast or a4 == ipaddress.IPv4Address("255.255.255.255"):
            raise ValueError(f"querier_ipv4: must be a unicast address (or 0.0.0.0), got {a4}")
        try:
            a6 = ipaddress.IPv6Address(self.querier_ipv6)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"querier_ipv6: not an IPv6 address: {self.querier_ipv6!r}") from exc
        if not a6.is_link_local:
            raise ValueError(f"querier_ipv6: MLD queries need a link-local source (RFC 3810 §5.1.14), got {a6}")
        if not isinstance(self.querier_mac, str) or not _MAC_RE.match(self.querier_mac):
            raise ValueError(f"querier_mac: expected aa:bb:cc:dd:ee:ff, got {self.querier_mac!r}")
        if int(self.querier_mac[:2], 16) & 1:
            raise ValueError(f"querier_mac: must be a unicast MAC, got {self.querier_mac}")
        object.__setattr__(self, "querier_ipv4", str(a4))
        object.__setattr__(self, "querier_ipv6", str(a6))
        object.__setattr__(self, "querier_mac", self.querier_mac.lower())
        object.__setattr__(self, "_addr4", a4)
        object.__setattr__(self, "_addr6", a6)
        object.__setattr__(
            self,
            "_timers",
            Timers(
                robustness=self.robustness,
                query_interval=self.query_interval,
                query_response_interval=self.query_response_interval,
                last_member_query_interval=self.last_member_query_interval,
                lmqc_override=self.last_member_query_count,
                startup_interval_override=self.startup_query_interval,
                startup_count_override=self.startup_query_count,
            ),
        )

    # ---- derived values (RFC 3376 §8 / RFC 3810 §9) -------------------------------------
    @property
    def timers(self) -> Timers:
        """The configured timers with every derived value resolved."""
        return self._timers

    @property
    def group_membership_interval(self) -> float:
        return self._timers.group_membership_interval

    @property
    def other_querier_present_interval(self) -> float:
        return self._timers.other_querier_present_interval

    @property
    def older_host_present_interval(self) -> float:
        return self._timers.older_host_present_interval

    @property
    def last_member_query_time(self) -> float:
        return self._timers.last_member_query_time

    @property
    def effective_router_port_timeout(self) -> float:
        """How long a query makes a port a router port (default: Other Querier Present Interval)."""
        if self.router_port_timeout is not None:
            return self.router_port_timeout
        return self._timers.other_querier_present_interval

    def querier_address(self, family: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Our source address for queries of `family` (4 or 6)."""
        return self._addr4 if family == 4 else self._addr6

    def query_version(self, family: int) -> int:
        return self.igmp_version if family == 4 else self.mld_version

    # ---- (de)serialisation ----------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "MembershipConfig":
        """Build from a JSON/YAML mapping. Unknown keys and bad values raise ValueError.

        Missing keys take the defaults; ``None`` means "derive" where the field allows it.
        Port sets are lists of ``[dpid, port]`` pairs.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"membership config must be a mapping, got {type(data).__name__}")
        names = cls.field_names()
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown membership config keys: {', '.join(map(str, unknown))}")
        kwargs = dict(data)
        for name in ("immediate_leave_ports", "static_router_ports"):
            if name in kwargs:
                kwargs[name] = _port_set(kwargs[name], name)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; `from_dict(to_dict())` round-trips."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            v = getattr(self, name)
            if isinstance(v, frozenset):
                v = [list(p) for p in sorted(v)]
            out[name] = v
        return out

    def with_changes(self, **changes: Any) -> "MembershipConfig":
        """A copy with some fields changed (validated; derived values re-derived)."""
        d = self.to_dict()
        d.update(changes)
        return self.from_dict(d)
