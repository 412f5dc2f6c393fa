"""Every row of RFC 3376 §6.4.1 and §6.4.2 (and RFC 3810 §7.4), for IGMPv3 and MLDv2.

Set-up used by every row (fake clock, default timers: GMI 260 s, LMQI 1 s, LMQC 2, LMQT 2 s):

* INCLUDE(A):   t=10 IS_IN(A)                      -> A timers at 270
* EXCLUDE(X,Y): t=10 IS_EX(Y), t=20 ALLOW(X)       -> group timer 270, X timers 280, Y zero

The record under test arrives at t=30, so in the expectations below:
GMI -> 290, "Group Timer" -> 270 (the group timer's value before the row's actions),
LMQT -> 32, and 0 is "timer zero" (an EXCLUDE-mode excluded source).

Source indices: INCLUDE rows use A={1,2}, B={2,3} (A*B={2}, A-B={1}, B-A={3}).
EXCLUDE rows use X={1,2}, Y={3,4}, A={2,3,5} (A*X={2}, X-A={1}, A*Y={3}, Y-A={4}, A-X-Y={5}).
"""
from __future__ import annotations

import ipaddress

import pytest

from mcast_sdn.config import MembershipConfig
from mcast_sdn.membership import EXCLUDE, INCLUDE
from mcast_sdn.membership_manager import MembershipManager
from mcast_sdn.messages import GroupRecord, Leave, RecordType, Report
from mcast_sdn.querier import NEVER

R = RecordType
IS_IN, IS_EX = R.MODE_IS_INCLUDE, R.MODE_IS_EXCLUDE
TO_IN, TO_EX = R.CHANGE_TO_INCLUDE, R.CHANGE_TO_EXCLUDE
ALLOW, BLOCK = R.ALLOW_NEW_SOURCES, R.BLOCK_OLD_SOURCES

DP, PORT = 1, 3

FAMILY = {
    4: {
        "group": ipaddress.ip_address("239.1.2.3"),
        "src": [None] + [ipaddress.ip_address(f"10.0.0.{i}") for i in range(1, 10)],
        "host": ipaddress.ip_address("10.0.0.100"),
        "version": 3,
    },
    6: {
        "group": ipaddress.ip_address("ff05::1:3"),
        "src": [None] + [ipaddress.ip_address(f"2001:db8::{i}") for i in range(1, 10)],
        "host": ipaddress.ip_address("fe80::100"),
        "version": 2,
    },
}


class Net:
    """A manager with one port, plus shorthands indexed by source number."""

    def __init__(self, family: int, **cfg):
        self.f = FAMILY[family]
        self.family = family
        self.group = self.f["group"]
        self.m = MembershipManager(MembershipConfig(**cfg))
        self.m.add_port(0.0, DP, PORT)

    def S(self, *idx):
        return tuple(sorted(self.f["src"][i] for i in idx))

    def report(self, t, rtype, *idx, version=None):
        rec = GroupRecord(rtype, self.group, self.S(*idx))
        msg = Report(self.family, version or self.f["version"], self.f["host"], (rec,))
        return self.m.handle(t, DP, PORT, msg)

    def leave(self, t):
        v = 2 if self.family == 4 else 1
        return self.m.handle(t, DP, PORT, Leave(self.family, v, self.f["host"], self.group))

    @property
    def gs(self):
        return self.m.group_record(DP, PORT, self.group)

    def timers(self):
        """{source index: deadline (0 for timer zero)} of the group record."""
        idx = {a: i for i, a in enumerate(self.f["src"]) if a is not None}
        return {idx[s]: (0 if r.expires == NEVER else r.expires) for s, r in self.gs.sources.items()}

    def specific(self, effects):
        """Group(-and-source)-specific queries as (source indices, S flag)."""
        idx = {a: i for i, a in enumerate(self.f["src"]) if a is not None}
        return [
            (tuple(idx[s] for s in q.sources), q.s_flag)
            for q in effects.queries
            if q.group == self.group
        ]


def include_A(family, **cfg):
    n = Net(family, **cfg)
    n.report(10.0, IS_IN, 1, 2)
    assert n.gs.mode == INCLUDE and n.timers() == {1: 270.0, 2: 270.0}
    return n


def exclude_XY(family, **cfg):
    n = Net(family, **cfg)
    n.report(10.0, IS_EX, 3, 4)
    n.report(20.0, ALLOW, 1, 2)
    assert n.gs.mode == EXCLUDE and n.gs.group_timer == 270.0
    assert n.timers() == {1: 280.0, 2: 280.0, 3: 0, 4: 0}
    return n


# (row, initial state, record, record sources,
#  expected mode, expected timers, expected group timer, expected queries at t=30)
ROWS = [
    # ---- RFC 3376 §6.4.1: current-state records ----------------------------------------
    # INCLUDE(A) IS_IN(B) -> INCLUDE(A+B); (B)=GMI
    ("6.4.1 INCLUDE(A)+IS_IN(B)", include_A, IS_IN, (2, 3), INCLUDE, {1: 270, 2: 290, 3: 290}, None, []),
    # INCLUDE(A) IS_EX(B) -> EXCLUDE(A*B,B-A); (B-A)=0; Delete(A-B); Group Timer=GMI
    ("6.4.1 INCLUDE(A)+IS_EX(B)", include_A, IS_EX, (2, 3), EXCLUDE, {2: 270, 3: 0}, 290, []),
    # EXCLUDE(X,Y) IS_IN(A) -> EXCLUDE(X+A,Y-A); (A)=GMI
    ("6.4.1 EXCLUDE(X,Y)+IS_IN(A)", exclude_XY, IS_IN, (2, 3, 5), EXCLUDE,
     {1: 280, 2: 290, 3: 290, 4: 0, 5: 290}, 270, []),
    # EXCLUDE(X,Y) IS_EX(A) -> EXCLUDE(A-Y,Y*A); (A-X-Y)=GMI; Delete(X-A); Delete(Y-A); GT=GMI
    ("6.4.1 EXCLUDE(X,Y)+IS_EX(A)", exclude_XY, IS_EX, (2, 3, 5), EXCLUDE, {2: 280, 3: 0, 5: 290}, 290, []),
    # ---- RFC 3376 §6.4.2: filter-mode-change and source-list-change records ------------
    # INCLUDE(A) ALLOW(B) -> INCLUDE(A+B); (B)=GMI
    ("6.4.2 INCLUDE(A)+ALLOW(B)", include_A, ALLOW, (2, 3), INCLUDE, {1: 270, 2: 290, 3: 290}, None, []),
    # INCLUDE(A) BLOCK(B) -> INCLUDE(A); Send Q(G,A*B)
    ("6.4.2 INCLUDE(A)+BLOCK(B)", include_A, BLOCK, (2, 3), INCLUDE, {1: 270, 2: 32}, None, [((2,), False)]),
    # INCLUDE(A) TO_EX(B) -> EXCLUDE(A*B,B-A); (B-A)=0; Delete(A-B); Send Q(G,A*B); GT=GMI
    ("6.4.2 INCLUDE(A)+TO_EX(B)", include_A, TO_EX, (2, 3), EXCLUDE, {2: 32, 3: 0}, 290, [((2,), False)]),
    # INCLUDE(A) TO_IN(B) -> INCLUDE(A+B); (B)=GMI; Send Q(G,A-B)
    ("6.4.2 INCLUDE(A)+TO_IN(B)", include_A, TO_IN, (2, 3), INCLUDE, {1: 32, 2: 290, 3: 290}, None,
     [((1,), False)]),
    # EXCLUDE(X,Y) ALLOW(A) -> EXCLUDE(X+A,Y-A); (A)=GMI
    ("6.4.2 EXCLUDE(X,Y)+ALLOW(A)", exclude_XY, ALLOW, (2, 3, 5), EXCLUDE,
     {1: 280, 2: 290, 3: 290, 4: 0, 5: 290}, 270, []),
    # EXCLUDE(X,Y) BLOCK(A) -> EXCLUDE(X+(A-Y),Y); (A-X-Y)=Group Timer; Send Q(G,A-Y)
    ("6.4.2 EXCLUDE(X,Y)+BLOCK(A)", exclude_XY, BLOCK, (2, 3, 5), EXCLUDE,
     {1: 280, 2: 32, 3: 0, 4: 0, 5: 32}, 270, [((2, 5), False)]),
    # EXCLUDE(X,Y) TO_EX(A) -> EXCLUDE(A-Y,Y*A); (A-X-Y)=Group Timer; Delete(X-A); Delete(Y-A);
    #                          Send Q(G,A-Y); Group Timer=GMI
    ("6.4.2 EXCLUDE(X,Y)+TO_EX(A)", exclude_XY, TO_EX, (2, 3, 5), EXCLUDE, {2: 32, 3: 0, 5: 32}, 290,
     [((2, 5), False)]),
    # EXCLUDE(X,Y) TO_IN(A) -> EXCLUDE(X+A,Y-A); (A)=GMI; Send Q(G,X-A); Send Q(G)
    ("6.4.2 EXCLUDE(X,Y)+TO_IN(A)", exclude_XY, TO_IN, (2, 3, 5), EXCLUDE,
     {1: 32, 2: 290, 3: 290, 4: 0, 5: 290}, 32, [((), False), ((1,), False)]),
]


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_table_row(family, row):
    _, initial, rtype, srcs, mode, timers, group_timer, queries = row
    n = initial(family)
    eff = n.report(30.0, rtype, *srcs)
    gs = n.gs
    assert gs.mode == mode
    assert n.timers() == timers
    assert gs.group_timer == group_timer
    assert n.specific(eff) == queries
    for q in eff.queries:
        assert q.family == family and q.max_resp == 1.0 and q.version == n.f["version"]


# Follow-up of each row that sends queries: the retransmission LMQI later, and the state at LMQT
# when nobody answers (RFC 3376 §6.6.3: LMQC transmissions every LMQI, then the timers run out).
FOLLOW_UP = {
    # row: (queries at t=31, state at t=32 as (mode, timer dict, group timer) or None if deleted)
    "6.4.2 INCLUDE(A)+BLOCK(B)": ([((2,), False)], (INCLUDE, {1: 270}, None)),
    "6.4.2 INCLUDE(A)+TO_EX(B)": ([((2,), False)], (EXCLUDE, {2: 0, 3: 0}, 290)),
    "6.4.2 INCLUDE(A)+TO_IN(B)": ([((1,), False)], (INCLUDE, {2: 290, 3: 290}, None)),
    "6.4.2 EXCLUDE(X,Y)+BLOCK(A)": ([((2, 5), False)], (EXCLUDE, {1: 280, 2: 0, 3: 0, 4: 0, 5: 0}, 270)),
    "6.4.2 EXCLUDE(X,Y)+TO_EX(A)": ([((2, 5), False)], (EXCLUDE, {2: 0, 3: 0, 5: 0}, 290)),
    # §6.5: the group timer runs out at 32: INCLUDE with the sources whose timers run (2,3,5).
    "6.4.2 EXCLUDE(X,Y)+TO_IN(A)": ([((), False), ((1,), False)], (INCLUDE, {2: 290, 3: 290, 5: 290}, None)),
}


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("name", sorted(FOLLOW_UP))
def test_query_rows_retransmit_then_expire_at_lmqt(family, name):
    row = next(r for r in ROWS if r[0] == name)
    _, initial, rtype, srcs, *_ = row
    again, final = FOLLOW_UP[name]
    n = initial(family)
    n.report(30.0, rtype, *srcs)
    assert n.m.next_deadline() == 31.0
    assert n.specific(n.m.tick(30.999)) == []
    assert n.specific(n.m.tick(31.0)) == again
    # Nothing more is sent: LMQC (2) transmissions in all.
    eff = n.m.tick(31.999)
    assert n.specific(eff) == []
    before = n.timers()
    n.m.tick(32.0)
    mode, timers, gt = final
    assert n.gs.mode == mode
    assert n.timers() == timers, f"before expiry: {before}"
    assert n.gs.group_timer == gt
    assert n.specific(n.m.tick(40.0)) == []


@pytest.mark.parametrize("family", [4, 6])
def test_s_flag_set_on_retransmission_when_source_was_refreshed(family):
    """§6.6.3.2: sources whose timers are now > LMQT go in a query with S set."""
    n = include_A(family)
    n.report(30.0, BLOCK, 2)
    n.report(30.5, IS_IN, 2)  # the host still wants source 2: timer back to GMI
    assert n.timers()[2] == 290.5
    eff = n.m.tick(31.0)
    assert n.specific(eff) == [((2,), True)]
    n.m.tick(40.0)
    assert n.timers() == {1: 270, 2: 290.5}  # S set: the timer was not lowered


@pytest.mark.parametrize("family", [4, 6])
def test_gs_query_splits_by_timer(family):
    """§6.6.3.2: one query with S set (timers > LMQT) and one with S clear, in the same round."""
    n = include_A(family)
    n.report(30.0, BLOCK, 1, 2)
    n.report(30.5, IS_IN, 2)
    assert n.specific(n.m.tick(31.0)) == [((2,), True), ((1,), False)]


@pytest.mark.parametrize("family", [4, 6])
def test_s_flag_on_group_query_when_group_timer_refreshed(family):
    """§6.6.3.1: a Q(G) retransmission sets S when the group timer is larger than LMQT."""
    n = exclude_XY(family)
    n.report(30.0, TO_IN)  # leave: Q(G) and Q(G,X)
    n.report(30.5, IS_EX, 3, 4)  # a remaining member answers: group timer = GMI
    eff = n.m.tick(31.0)
    qs = n.specific(eff)
    # Q(G) with S set; the Q(G,S) with S set may be suppressed when sent with a Q(G).
    assert ((), True) in qs
    n.m.tick(32.0)
    assert n.gs is not None and n.gs.mode == EXCLUDE and n.gs.group_timer == 290.5


@pytest.mark.parametrize("family", [4, 6])
def test_group_membership_interval_expiry_exact(family):
    """GMI 260 s: a member that stops reporting is present at 259.999 and gone at 260."""
    n = Net(family)
    n.report(0.0, IS_EX)
    assert n.m.next_deadline() is not None
    n.m.tick(259.999)
    assert n.gs is not None and n.m.interest(DP, PORT)
    eff = n.m.tick(260.0)
    assert n.gs is None and n.m.interest(DP, PORT) == {}
    assert [(c.before.mode, c.after) for c in eff.changes] == [(EXCLUDE, None)]


@pytest.mark.parametrize("family", [4, 6])
def test_include_source_expiry_exact(family):
    n = Net(family)
    n.report(0.0, IS_IN, 1, 2)
    n.report(100.0, IS_IN, 2)
    n.m.tick(259.999)
    assert set(n.timers()) == {1, 2}
    n.m.tick(260.0)
    assert n.timers() == {2: 360.0}
    n.m.tick(360.0)
    assert n.gs is None


@pytest.mark.parametrize("family", [4, 6])
def test_leave_without_answer_expires_after_lmqt(family):
    n = Net(family)
    n.report(0.0, IS_EX)
    eff = n.leave(100.0)
    assert n.specific(eff) == [((), False)]
    assert n.gs.group_timer == 102.0
    assert n.specific(n.m.tick(101.0)) == [((), False)]
    n.m.tick(101.999)
    assert n.gs is not None
    eff = n.m.tick(102.0)
    assert n.gs is None and eff.changes[-1].after is None


@pytest.mark.parametrize("family", [4, 6])
def test_section_6_5_exclude_to_include_on_group_timer_expiry(family):
    """§6.5: EXCLUDE -> INCLUDE with the sources whose timers are > 0; the zero ones go."""
    n = Net(family)
    n.report(0.0, IS_EX, 3)  # EXCLUDE({}, {3}), group timer 260
    n.report(100.0, ALLOW, 1)  # X = {1} until 360
    assert n.m.interest(DP, PORT)[n.group].mode == EXCLUDE
    eff = n.m.tick(260.0)
    assert n.gs.mode == INCLUDE and n.timers() == {1: 360.0}
    (change,) = eff.changes
    assert change.before.mode == EXCLUDE and change.before.sources == frozenset(n.S(3))
    assert change.after.mode == INCLUDE and change.after.sources == frozenset(n.S(1))
    n.m.tick(360.0)
    assert n.gs is None


@pytest.mark.parametrize("family", [4, 6])
def test_exclude_source_timer_expiry_moves_source_to_excluded(family):
    """§6.2.2: in EXCLUDE mode a source whose timer expires stops being forwarded but stays."""
    n = Net(family)
    n.report(0.0, ALLOW, 1)  # INCLUDE({1}) until 260
    n.report(50.0, IS_EX, 1)  # EXCLUDE(A*B={1}, B-A={}), source 1 keeps its timer (260)
    assert n.m.interest(DP, PORT)[n.group].sources == frozenset()
    n.m.tick(260.0)
    assert n.timers() == {1: 0}
    assert n.m.interest(DP, PORT)[n.group].sources == frozenset(n.S(1))
    assert n.m.ports_for(n.group, n.S(1)[0]) == set()
    assert n.m.ports_for(n.group, n.S(2)[0]) == {(DP, PORT)}
