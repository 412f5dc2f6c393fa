"""Router-side membership state of one (switch, port, group): RFC 3376 §6 and RFC 3810 §7.

This is the per-group state machine; `mcast_sdn.membership_manager.MembershipManager`
is the facade the Ryu adapter uses (it is re-exported here as ``MembershipManager`` /
``Effects`` for convenience).

Each group record holds (RFC 3376 §6.2, RFC 3810 §7.2):

* filter mode INCLUDE or EXCLUDE, and a group timer (EXCLUDE only: in INCLUDE mode the
  group timer has no meaning, §6.2.1, so it is None);
* source records with absolute deadlines. In INCLUDE mode every source has a running
  timer. In EXCLUDE mode a source is either "requested" (X: timer running, forwarded)
  or "excluded" (Y: timer zero, not forwarded), §6.2.2. Timer zero is stored as `NEVER`;
* older-version host present timers (RFC 3376 §7.3.2 IGMPv1/IGMPv2, RFC 3810 §8.3.2
  MLDv1) that put the group in a compatibility mode;
* pending group-specific / group-and-source-specific query retransmissions (§6.6.3).

Reports are applied with the §6.4.1 (current state: IS_IN, IS_EX) and §6.4.2 (filter-mode
change and source-list change: TO_IN, TO_EX, ALLOW, BLOCK) tables, literally; the table
row is quoted next to each branch of `GroupState.apply`. Expiry (§6.2.2, §6.5) happens in
`GroupState.process`, which the manager calls when `GroupState.next_deadline` is due.

Pure code: no clock is read; ``t`` is passed in and every deadline is data.

Forwarding interest (§6.3): INCLUDE -> forward exactly the listed sources;
EXCLUDE -> forward every source except those whose timer is zero (Y). Sources in X
(running timers) are still forwarded in EXCLUDE mode.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from .config import Timers
from .messages import IPAddress, RecordType
from .querier import NEVER, PortQuerier, SendQuery

if TYPE_CHECKING:  # pragma: no cover
    from .membership_manager import Effects, MembershipManager  # noqa: F401

INCLUDE = "include"
EXCLUDE = "exclude"


class FilterMode(str, enum.Enum):
    """Router filter mode of a group record (RFC 3376 §6.2.1)."""

    INCLUDE = INCLUDE
    EXCLUDE = EXCLUDE


@dataclass(frozen=True, slots=True)
class Interest:
    """What a port wants of a group (RFC 3376 §6.3).

    mode 'include': forward only `sources`. mode 'exclude': forward every source except
    `sources`. Exclude with an empty set is "(*,G)": everything.
    """

    mode: str
    sources: frozenset = frozenset()

    def wants(self, source: IPAddress | None) -> bool:
        """Does this interest take traffic from `source`? (None: "any source at all")."""
        if source is None:
            return self.mode == EXCLUDE or bool(self.sources)
        if self.mode == INCLUDE:
            return source in self.sources
        return source not in self.sources

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "sources": [str(s) for s in sorted(self.sources)]}


@dataclass(frozen=True, slots=True)
class InterestChanged:
    """The forwarding interest of (dpid, port) in `group` changed (None: no interest)."""

    dpid: int
    port: int
    group: IPAddress
    before: Interest | None
    after: Interest | None


@dataclass(slots=True)
class SourceRecord:
    """One source of a group record: its timer (absolute; NEVER = zero) and §6.6.3.2 retransmissions."""

    expires: float
    retransmit: int = 0


@dataclass(slots=True)
class ActionContext:
    """What the table actions need to know about the port (built by the manager per event).

    may_query: we are the querier and can send specific queries here (RFC 3376 §6.6.3).
    immediate: the port is configured for immediate leave: a "Send Q" action expires the
    queried state at once instead of querying (the port is known to have one host).
    """

    t: float
    timers: Timers
    may_query: bool
    immediate: bool


# Native (newest) protocol version per family: IGMPv3, MLDv2.
NATIVE_VERSION = {4: 3, 6: 2}

# Notes returned by `translate_for_compat`, used as counter names by the manager.
COMPAT_BLOCK_IGNORED = "compat_block_ignored"
COMPAT_TO_IN_IGNORED = "compat_to_in_ignored"
COMPAT_SOURCES_IGNORED = "compat_sources_ignored"


def translate_for_compat(
    family: int, compat: int, rtype: RecordType, sources: tuple
) -> tuple[RecordType | None, tuple, str | None]:
    """Rewrite a record for the group's compatibility mode (RFC 3376 §7.3.2, RFC 3810 §8.3.2).

    Returns (record type or None to ignore, sources, note for counters or None).

    * Older (v1/v2, MLDv1) mode: BLOCK is ignored; TO_EX(x) is TO_EX({}).
      IS_EX(x) is also treated as IS_EX({}). The RFCs list only BLOCK and TO_EX, but the
      reason is the same: an older host in the group receives every source, so no source
      may be excluded for the port while it is present (otherwise an exclusion learned from
      a v3 host would cut the older host off until its next report).
    * IGMPv1 mode additionally ignores TO_IN() (and the manager ignores IGMPv2 Leaves).
    """
    if compat >= NATIVE_VERSION[family]:
        return rtype, sources, None
    if rtype == RecordType.BLOCK_OLD_SOURCES:
        return None, (), COMPAT_BLOCK_IGNORED
    if rtype == RecordType.CHANGE_TO_INCLUDE and family == 4 and compat == 1:
        return None, (), COMPAT_TO_IN_IGNORED
    if rtype in (RecordType.CHANGE_TO_EXCLUDE, RecordType.MODE_IS_EXCLUDE) and sources:
        return rtype, (), COMPAT_SOURCES_IGNORED
    return rtype, sources, None


@dataclass(slots=True, eq=False)
class GroupState:
    """Router-side state of one (dpid, port, group). Mutated only through its methods."""

    dpid: int
    port: int
    group: IPAddress
    family: int
    mode: str = INCLUDE
    group_timer: float | None = None
    sources: dict[IPAddress, SourceRecord] = field(default_factory=dict)
    older_v1_until: float = NEVER  # IGMPv1 Host Present (IGMP) / MLDv1 Host Present (MLD)
    older_v2_until: float = NEVER  # IGMPv2 Host Present (IGMP only)
    gsq_retransmit: int = 0  # Q(G) transmissions still to send (§6.6.3.1)
    gsq_next: float | None = None
    gssq_next: float | None = None  # next Q(G,S) transmission (§6.6.3.2)
    interest: Interest | None = None  # last reported forwarding interest
    scheduled: float | None = None  # heap bookkeeping (manager)
    alive: bool = True

    # ---- views --------------------------------------------------------------------------
    def compat_version(self, t: float) -> int:
        """Group compatibility mode (RFC 3376 §7.3.2, RFC 3810 §8.3.2): oldest host present."""
        if self.older_v1_until > t:
            return 1
        if self.family == 4 and self.older_v2_until > t:
            return 2
        return NATIVE_VERSION[self.family]

    def requested(self) -> set:
        """X: in EXCLUDE mode, sources with running timers (all sources in INCLUDE)."""
        return {s for s, r in self.sources.items() if r.expires != NEVER}

    def excluded(self) -> set:
        """Y: in EXCLUDE mode, sources whose timer is zero."""
        return {s for s, r in self.sources.items() if r.expires == NEVER}

    def is_empty(self) -> bool:
        """INCLUDE with no sources: the record must not exist (RFC 3376 §6.2.2, §6.5)."""
        return self.mode == INCLUDE and not self.sources

    def forwarding_interest(self) -> Interest | None:
        """RFC 3376 §6.3: what to forward to this port for this group."""
        if self.mode == INCLUDE:
            return Interest(INCLUDE, frozenset(self.sources)) if self.sources else None
        return Interest(EXCLUDE, frozenset(s for s, r in self.sources.items() if r.expires == NEVER))

    def next_deadline(self) -> float | None:
        best = float("inf")
        if self.mode == EXCLUDE and self.group_timer is not None:
            best = self.group_timer
        for r in self.sources.values():
            if r.expires != NEVER and r.expires < best:
                best = r.expires
        for d in (self.older_v1_until, self.older_v2_until):
            if d != NEVER and d < best:
                best = d
        for d in (self.gsq_next, self.gssq_next):
            if d is not None and d < best:
                best = d
        return None if best == float("inf") else best

    # ---- inputs -------------------------------------------------------------------------
    def note_older_host(self, t: float, version: int, interval: float) -> None:
        """An older-version report arrived: (re)start its Host Present timer (RFC 3376 §7.3.2)."""
        if version == 1:
            self.older_v1_until = max(self.older_v1_until, t + interval)
        elif self.family == 4 and version == 2:
            self.older_v2_until = max(self.older_v2_until, t + interval)

    def apply(self, rtype: RecordType, sources: Iterable[IPAddress], ctx: ActionContext) -> None:
        """Apply one group record per the RFC 3376 §6.4.1 / §6.4.2 tables (RFC 3810 §7.4)."""
        t = ctx.t
        gmi = t + ctx.timers.group_membership_interval
        B = list(dict.fromkeys(sources))  # ordered, no duplicates
        Bset = set(B)
        srcs = self.sources
        R = RecordType
        if self.mode == INCLUDE:
            if rtype in (R.MODE_IS_INCLUDE, R.ALLOW_NEW_SOURCES):
                # INCLUDE(A) IS_IN(B) / ALLOW(B) -> INCLUDE(A+B); (B)=GMI
                self._set_timers(B, gmi)
            elif rtype == R.CHANGE_TO_INCLUDE:
                # INCLUDE(A) TO_IN(B) -> INCLUDE(A+B); (B)=GMI; Send Q(G,A-B)
                a_minus_b = [a for a in srcs if a not in Bset]
                self._set_timers(B, gmi)
                self._send_q_gs(a_minus_b, ctx)
            elif rtype == R.BLOCK_OLD_SOURCES:
                # INCLUDE(A) BLOCK(B) -> INCLUDE(A); Send Q(G,A*B)
                self._send_q_gs([b for b in B if b in srcs], ctx)
            elif rtype in (R.MODE_IS_EXCLUDE, R.CHANGE_TO_EXCLUDE):
                # INCLUDE(A) IS_EX(B) -> EXCLUDE(A*B,B-A); (B-A)=0; Delete(A-B); Group Timer=GMI
                # INCLUDE(A) TO_EX(B) -> same, plus Send Q(G,A*B)
                a_and_b = [b for b in B if b in srcs]
                self.sources = {b: srcs.get(b) or SourceRecord(NEVER) for b in B}
                self.mode = EXCLUDE
                self.group_timer = gmi
                if rtype == R.CHANGE_TO_EXCLUDE:
                    self._send_q_gs(a_and_b, ctx)
            else:  # pragma: no cover - RecordType is closed
                raise ValueError(f"unknown record type {rtype!r}")
            return
        # EXCLUDE(X,Y): X = running timers, Y = timer zero.
        if rtype in (R.MODE_IS_INCLUDE, R.ALLOW_NEW_SOURCES):
            # EXCLUDE(X,Y) IS_IN(A) / ALLOW(A) -> EXCLUDE(X+A,Y-A); (A)=GMI
            self._set_timers(B, gmi)
        elif rtype == R.CHANGE_TO_INCLUDE:
            # EXCLUDE(X,Y) TO_IN(A) -> EXCLUDE(X+A,Y-A); (A)=GMI; Send Q(G,X-A); Send Q(G)
            x_minus_a = [x for x, r in srcs.items() if r.expires != NEVER and x not in Bset]
            self._set_timers(B, gmi)
            self._send_q_gs(x_minus_a, ctx)
            self._send_q_g(ctx)
        elif rtype == R.BLOCK_OLD_SOURCES:
            # EXCLUDE(X,Y) BLOCK(A) -> EXCLUDE(X+(A-Y),Y); (A-X-Y)=Group Timer; Send Q(G,A-Y)
            for a in B:
                if a not in srcs:
                    srcs[a] = SourceRecord(self.group_timer)
            self._send_q_gs([a for a in B if srcs[a].expires != NEVER], ctx)
        elif rtype in (R.MODE_IS_EXCLUDE, R.CHANGE_TO_EXCLUDE):
            # EXCLUDE(X,Y) IS_EX(A) -> EXCLUDE(A-Y,Y*A); (A-X-Y)=GMI; Delete(X-A); Delete(Y-A);
            #                          Group Timer=GMI
            # EXCLUDE(X,Y) TO_EX(A) -> EXCLUDE(A-Y,Y*A); (A-X-Y)=Group Timer; Delete(X-A);
            #                          Delete(Y-A); Send Q(G,A-Y); Group Timer=GMI
            new_timer = gmi if rtype == R.MODE_IS_EXCLUDE else self.group_timer
            self.sources = {a: srcs.get(a) or SourceRecord(new_timer) for a in B}
            if rtype == R.CHANGE_TO_EXCLUDE:
                self._send_q_gs([a for a in B if self.sources[a].expires != NEVER], ctx)
            self.group_timer = gmi
        else:  # pragma: no cover
            raise ValueError(f"unknown record type {rtype!r}")

    def lower_on_query(self, t: float, sources: tuple, lmqt: float) -> None:
        """RFC 3376 §6.6.1: a received Q(G) / Q(G,A) with S clear lowers timers to LMQT.

        Q(G): group timer lowered (EXCLUDE only: INCLUDE has no group timer).
        Q(G,A): timers of the sources in A we have (running ones) lowered.
        """
        d = t + lmqt
        if not sources:
            if self.mode == EXCLUDE and self.group_timer is not None and self.group_timer > d:
                self.group_timer = d
            return
        for s in sources:
            r = self.sources.get(s)
            if r is not None and r.expires != NEVER and r.expires > d:
                r.expires = d

    # ---- actions ------------------------------------------------------------------------
    def _set_timers(self, srcs: Iterable[IPAddress], deadline: float) -> None:
        """"(B)=GMI": create or refresh the records (a Y source becomes an X source)."""
        for s in srcs:
            r = self.sources.get(s)
            if r is None:
                self.sources[s] = SourceRecord(deadline)
            else:
                r.expires = deadline

    def _send_q_g(self, ctx: ActionContext) -> None:
        """Table action "Send Q(G)" (RFC 3376 §6.6.3.1).

        Lower the group timer to LMQT and schedule LMQC transmissions LMQI apart (the first
        now). If the group timer is already at or below LMQT and a sequence is running, it
        is left alone (mirrors the per-source rule of §6.6.3.2; avoids a query per leave).
        """
        if ctx.immediate:
            self.group_timer = ctx.t  # expire now: the port has a single host
            return
        if not ctx.may_query:
            return  # a non-querier waits for the querier's Q(G) (§6.6.1)
        d = ctx.t + ctx.timers.last_member_query_time
        if self.group_timer is not None and self.group_timer <= d and self.gsq_retransmit > 0:
            return
        if self.group_timer is None or self.group_timer > d:
            self.group_timer = d
        self.gsq_retransmit = ctx.timers.last_member_query_count
        self.gsq_next = ctx.t

    def _send_q_gs(self, srcs: list, ctx: ActionContext) -> None:
        """Table action "Send Q(G,X)" (RFC 3376 §6.6.3.2).

        For each source in X whose timer is larger than LMQT: set its retransmissions to
        LMQC and lower its timer to LMQT. Then send now and LMQC-1 times more, LMQI apart.
        """
        if not srcs:
            return
        t = ctx.t
        if ctx.immediate:
            for s in srcs:
                r = self.sources[s]
                if r.expires != NEVER:
                    r.expires = t
            return
        if not ctx.may_query:
            return
        d = t + ctx.timers.last_member_query_time
        lmqc = ctx.timers.last_member_query_count
        armed = False
        for s in srcs:
            r = self.sources[s]
            if r.expires != NEVER and r.expires > d:
                r.expires = d
                r.retransmit = lmqc
                armed = True
        if armed:
            self.gssq_next = t

    # ---- time ---------------------------------------------------------------------------
    def process(self, t: float, q: PortQuerier, out: list[SendQuery]) -> None:
        """Run everything due at or before `t`: expiries (§6.2.2, §6.5) then due queries (§6.6.3)."""
        if self.older_v1_until != NEVER and self.older_v1_until <= t:
            self.older_v1_until = NEVER
        if self.older_v2_until != NEVER and self.older_v2_until <= t:
            self.older_v2_until = NEVER
        srcs = self.sources
        include = self.mode == INCLUDE
        for s in [s for s, r in srcs.items() if r.expires != NEVER and r.expires <= t]:
            if include:
                # §6.2.2: INCLUDE mode: stop forwarding and delete the source record.
                del srcs[s]
            else:
                # §6.2.2: EXCLUDE mode: the source is now excluded (Y), kept until §6.5.
                r = srcs[s]
                r.expires = NEVER
                r.retransmit = 0
        if not include and self.group_timer is not None and self.group_timer <= t:
            # §6.5: group timer expired in EXCLUDE: switch to INCLUDE with the sources whose
            # timers are running; delete the ones at zero. No sources left: delete the record.
            self.sources = {s: r for s, r in srcs.items() if r.expires != NEVER}
            self.mode = INCLUDE
            self.group_timer = None
            self.gsq_retransmit = 0
            self.gsq_next = None
        if self.is_empty():
            self.gsq_retransmit = 0
            self.gsq_next = self.gssq_next = None
            return
        timers = q.timers
        sent_group = False
        if self.gsq_next is not None and self.gsq_next <= t:
            if self.mode == EXCLUDE and self.gsq_retransmit > 0 and q.sends_specific_queries:
                d = t + timers.last_member_query_time
                # §6.6.3.1: S set when the group timer is larger than LMQT.
                s_flag = self.group_timer > d
                out.append(q.specific_query(self.group, (), s_flag))
                sent_group = True
                self.gsq_retransmit -= 1
                self.gsq_next = t + timers.last_member_query_interval if self.gsq_retransmit > 0 else None
            else:
                self.gsq_retransmit = 0
                self.gsq_next = None
        if self.gssq_next is not None and self.gssq_next <= t:
            pending = [(s, r) for s, r in self.sources.items() if r.retransmit > 0]
            if pending and q.sends_specific_queries:
                d = t + timers.last_member_query_time
                if q.carries_sources:
                    # §6.6.3.2: one query with S set for sources whose timers are > LMQT,
                    # one with S clear for the rest; an empty one is not sent. The S-set one
                    # may be suppressed when a Q(G) goes out at the same time.
                    hi = sorted(s for s, r in pending if r.expires > d)
                    lo = sorted(s for s, r in pending if r.expires <= d)
                    if hi and not sent_group:
                        out.append(q.specific_query(self.group, tuple(hi), True))
                    if lo:
                        out.append(q.specific_query(self.group, tuple(lo), False))
                elif not sent_group:
                    # IGMPv2 / MLDv1 querier: no source lists; ask about the group.
                    out.append(q.specific_query(self.group, (), False))
                more = False
                for _, r in pending:
                    r.retransmit -= 1
                    more = more or r.retransmit > 0
                self.gssq_next = t + timers.last_member_query_interval if more else None
            else:
                for _, r in pending:
                    r.retransmit = 0
                self.gssq_next = None

    # ---- introspection ------------------------------------------------------------------
    def describe(self, now: float) -> dict[str, Any]:
        """JSON-serialisable status for REST (times are seconds remaining)."""

        def left(d: float | None) -> float | None:
            return None if d is None or d == NEVER else max(0.0, d - now)

        compat = self.compat_version(now)
        proto = "igmp" if self.family == 4 else "mld"
        return {
            "group": str(self.group),
            "family": self.family,
            "mode": self.mode,
            "group_timer": left(self.group_timer) if self.mode == EXCLUDE else None,
            "compat_mode": f"{proto}v{compat}",
            "older_host_timers": {
                f"{proto}v1": left(self.older_v1_until),
                **({"igmpv2": left(self.older_v2_until)} if self.family == 4 else {}),
            },
            "sources": {
                str(s): {"timer": 0.0 if r.expires == NEVER else left(r.expires), "retransmit": r.retransmit}
                for s, r in sorted(self.sources.items())
            },
            "pending_group_queries": self.gsq_retransmit,
            "interest": None if self.interest is None else self.interest.to_dict(),
        }


def __getattr__(name: str):  # pragma: no cover - convenience re-export without an import cycle
    if name in ("MembershipManager", "Effects", "ForwardToRouter"):
        from . import membership_manager

        return getattr(membership_manager, name)
    raise AttributeError(name)
