"""The querier of one (switch, port, family): General Queries, querier election, router ports.

Pure code: the clock comes in as ``t``/``now``, deadlines are stored as data, and the
output is a list of `SendQuery` records. `mcast_sdn.membership_manager` owns the deadline
heap and calls `PortQuerier.process` when `PortQuerier.next_deadline` is due.

RFC behaviour implemented here, and the choices made where the RFCs leave room:

* Startup (RFC 3376 §8.6-8.7, RFC 3810 §9.6-9.7): at port-up, [Startup Query Count]
  General Queries [Startup Query Interval] apart, then one every [Query Interval].
* Querier election (RFC 3376 §6.6.2, RFC 3810 §7.6.2): a query whose source is lower than
  ours makes us a non-querier on that port until [Other Querier Present Interval] passes
  without one. Queries from higher addresses, from ourselves, and from the unspecified
  address (proxy queries, RFC 4541 §2.1.1(4)) do not count. When the timer expires we send
  one General Query at once and then resume every [Query Interval] (the RFC says only
  "begin sending General Queries"; one at once re-learns members quickly).
  A non-querier adopts the elected querier's QRV and QQI (RFC 3376 §4.1.6-4.1.7,
  RFC 3810 §5.1.9/5.1.11) and returns to the configured values when it becomes querier.
* Query version (RFC 3376 §7.3.1): the version is the configured one. The RFC makes the
  use of an older version an administrative decision and wants only a warning when an
  older-version query is heard; older *hosts* answer newer queries in their own version
  (RFC 3376 §7.2.1, RFC 3810 §8.2.1), and per-group compatibility is handled by the
  membership state. So the query version is never lowered automatically; older queriers
  are recorded (`older_querier_version`) and counted by the manager.
  IGMPv1 queries carry Max Resp 0 (RFC 3376 §7.3.1); IGMPv2/MLDv1 queries carry no
  source list, S flag, QRV or QQIC, so a group-and-source query degrades to a
  group-specific one, and in IGMPv1 mode no specific queries exist at all.
* Router ports (RFC 4541 §2.1.1(1)): a port on which a query with a non-zero source, or a
  PIM Hello, arrived is a router port for ``router_port_timeout`` (default: Other Querier
  Present Interval) or ``pim_hello_holdtime`` (default 105 s, RFC 7761 §4.11); ports in
  ``static_router_ports`` always are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import MembershipConfig, Timers
from .messages import IPAddress, Query

NEVER = -math.inf  # a timer that is not running (or, for a source, "timer is zero")

# Outcomes of `PortQuerier.on_query`.
QUERY_OWN = "own"  # our own query, looped back: ignore entirely
QUERY_ELECTED = "elected"  # from a lower address: that router is the querier
QUERY_IGNORED = "ignored"  # higher address or unspecified source: no effect on election


@dataclass(frozen=True, slots=True)
class SendQuery:
    """Send this query out of (dpid, port).

    group None is a General Query. max_resp in seconds. qrv/qqi are set only for
    IGMPv3/MLDv2. The IP/MAC source is the config's ``querier_ipv4``/``querier_ipv6``/
    ``querier_mac``.
    """

    dpid: int
    port: int
    family: int
    version: int
    group: IPAddress | None
    sources: tuple[IPAddress, ...] = ()
    max_resp: float = 10.0
    s_flag: bool = False
    qrv: int | None = None
    qqi: float | None = None

    @property
    def kind(self) -> str:
        """'general', 'group' or 'group_source' (for counters and logs)."""
        if self.group is None:
            return "general"
        return "group_source" if self.sources else "group"


@dataclass(frozen=True, slots=True)
class RouterPortChanged:
    """(dpid, port) became (is_router True) or stopped being (False) a multicast-router port."""

    dpid: int
    port: int
    is_router: bool


def wins_election(other: IPAddress, own: IPAddress) -> bool:
    """True if a query from `other` takes the querier role from `own` (lowest address wins).

    The unspecified address never wins (RFC 4541 §2.1.1(4): proxy queries don't count);
    if our own address is unspecified we are a proxy querier and any real querier wins.
    """
    if other.is_unspecified or other.version != own.version:
        return False
    if own.is_unspecified:
        return True
    return int(other) < int(own)


@dataclass(slots=True, eq=False)
class PortQuerier:
    """Querier state of one (dpid, port, family). Mutable; owned by the manager."""

    dpid: int
    port: int
    family: int
    config: MembershipConfig
    timers: Timers
    version: int
    other_querier_until: float = NEVER
    other_querier_addr: IPAddress | None = None
    next_general: float | None = None
    startup_remaining: int = 0
    query_router_until: float = NEVER
    pim_router_until: float = NEVER
    older_querier_version: int | None = None
    older_querier_addr: IPAddress | None = None
    # Heap bookkeeping (see MembershipManager): time of our live heap entry, and liveness.
    scheduled: float | None = None
    alive: bool = True

    @classmethod
    def create(cls, dpid: int, port: int, family: int, config: MembershipConfig) -> "PortQuerier":
        return cls(dpid, port, family, config, config.timers, config.query_version(family))

    # ---- status -------------------------------------------------------------------------
    @property
    def own_address(self) -> IPAddress:
        return self.config.querier_address(self.family)

    @property
    def is_querier(self) -> bool:
        """True while we are the elected querier on this port (RFC 3376 §6.6.2)."""
        return self.config.querier_enabled and self.other_querier_until == NEVER

    @property
    def sends_specific_queries(self) -> bool:
        """Whether the "Send Q(G)" / "Send Q(G,X)" table actions apply here.

        Only the querier sends them (RFC 3376 §6.6.3); a non-querier lowers its timers when
        it *receives* the querier's specific queries instead (§6.6.1). IGMPv1 has no
        group-specific query, so in IGMPv1 mode the actions are skipped and state ages out.
        """
        return self.is_querier and not (self.family == 4 and self.version == 1)

    @property
    def carries_sources(self) -> bool:
        """IGMPv3 / MLDv2 queries carry source lists and the S flag."""
        return self.version >= (3 if self.family == 4 else 2)

    def is_router(self, t: float) -> bool:
        """Learned router port for this family (static ports are the manager's business)."""
        return self.query_router_until > t or self.pim_router_until > t

    def next_deadline(self) -> float | None:
        best = math.inf
        for d in (self.other_querier_until, self.query_router_until, self.pim_router_until):
            if d != NEVER and d < best:
                best = d
        if self.next_general is not None and self.next_general < best:
            best = self.next_general
        return None if best == math.inf else best

    # ---- events -------------------------------------------------------------------------
    def start(self, t: float) -> None:
        """Port up: [Startup Query Count] queries [Startup Query Interval] apart (RFC 3376 §8.6-8.7)."""
        if self.config.querier_enabled:
            self.startup_remaining = self.timers.startup_query_count
            self.next_general = t

    def on_query(self, t: float, q: Query) -> str:
        """Election and router-port learning for a received query. Returns QUERY_*."""
        src = q.src
        if src == self.own_address:
            return QUERY_OWN
        if not src.is_unspecified:
            # RFC 4541 §2.1.1(1): queries with a non-zero source mark a router port.
            self.query_router_until = max(self.query_router_until, t + self.config.effective_router_port_timeout)
        if q.version < self.version:
            # RFC 3376 §7.3.1: an older-version querier is an administrative problem: warn.
            self.older_querier_version = q.version
            self.older_querier_addr = src
        if not wins_election(src, self.own_address):
            return QUERY_IGNORED
        # RFC 3376 §4.1.6/§4.1.7: adopt the querier's QRV and QQI (zero means "keep ours").
        if q.qrv or q.qqi:
            self.timers = self.timers.adopt(q.qrv, q.qqi)
        self.other_querier_until = t + self.timers.other_querier_present_interval
        self.other_querier_addr = src
        self.next_general = None
        self.startup_remaining = 0
        return QUERY_ELECTED

    def on_pim_hello(self, t: float) -> None:
        self.pim_router_until = max(self.pim_router_until, t + self.config.pim_hello_holdtime)

    def process(self, t: float, now: float, out: list[SendQuery]) -> None:
        """Run everything due at or before `t` (t <= now; `now` avoids bursts after a stall)."""
        if self.other_querier_until != NEVER and self.other_querier_until <= t:
            # RFC 3376 §6.6.2: no query from a lower address for OQPI: we are querier again.
            self.other_querier_until = NEVER
            self.other_querier_addr = None
            self.timers = self.config.timers
            if self.config.querier_enabled:
                self.next_general = t
        if self.query_router_until != NEVER and self.query_router_until <= t:
            self.query_router_until = NEVER
        if self.pim_router_until != NEVER and self.pim_router_until <= t:
            self.pim_router_until = NEVER
        if self.next_general is not None and self.next_general <= t:
            if self.is_querier:
                out.append(self.general_query())
            if self.startup_remaining > 0:
                self.startup_remaining -= 1
            interval = (
                self.timers.startup_query_interval if self.startup_remaining > 0 else self.timers.query_interval
            )
            nxt = t + interval
            if nxt <= now:  # we were called late: don't fire a burst of catch-up queries
                nxt = now + interval
            self.next_general = nxt if self.is_querier else None

    # ---- query builders -----------------------------------------------------------------
    def general_query(self) -> SendQuery:
        """A General Query in the configured version (RFC 3376 §4.1, §7.3.1)."""
        if self.family == 4 and self.version == 1:
            max_resp = 0.0  # RFC 3376 §7.3.1: IGMPv1 queries have Max Resp Time 0
        else:
            max_resp = self.timers.query_response_interval
        qrv, qqi = self._qrv_qqi()
        return SendQuery(self.dpid, self.port, self.family, self.version, None, (), max_resp, False, qrv, qqi)

    def specific_query(self, group: IPAddress, sources: tuple[IPAddress, ...], s_flag: bool) -> SendQuery:
        """Q(G) or Q(G,S) with Max Resp = LMQI (RFC 3376 §8.8). Older versions drop sources/S."""
        qrv, qqi = self._qrv_qqi()
        if not self.carries_sources:
            sources, s_flag = (), False
        return SendQuery(
            self.dpid, self.port, self.family, self.version, group, tuple(sources),
            self.timers.last_member_query_interval, s_flag, qrv, qqi,
        )

    def _qrv_qqi(self) -> tuple[int | None, float | None]:
        if not self.carries_sources:
            return None, None
        # RFC 3376 §4.1.6: QRV is 0 when the robustness variable exceeds 7.
        rv = self.timers.robustness
        return (rv if rv <= 7 else 0), self.timers.query_interval

    # ---- introspection ------------------------------------------------------------------
    def describe(self, now: float) -> dict:
        """JSON-serialisable status for REST."""

        def left(d: float | None) -> float | None:
            return None if d is None or d == NEVER else max(0.0, d - now)

        return {
            "querier": self.is_querier,
            "version": self.version,
            "own_address": str(self.own_address),
            "other_querier": None if self.other_querier_addr is None else str(self.other_querier_addr),
            "other_querier_expires_in": left(self.other_querier_until),
            "next_general_query_in": left(self.next_general),
            "startup_queries_left": self.startup_remaining,
            "router_port": self.is_router(now),
            "query_router_expires_in": left(self.query_router_until),
            "pim_router_expires_in": left(self.pim_router_until),
            "older_querier_version": self.older_querier_version,
            "older_querier": None if self.older_querier_addr is None else str(self.older_querier_addr),
            "robustness": self.timers.robustness,
            "query_interval": self.timers.query_interval,
        }
