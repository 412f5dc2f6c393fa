"""Querier behaviour: startup and periodic General Queries, election, specific-query
retransmissions, router ports (learned, expiring, static), immediate leave. Fake clock."""
from __future__ import annotations

import ipaddress

import pytest

from mcast_sdn.config import MembershipConfig
from mcast_sdn.membership_manager import MembershipManager
from mcast_sdn.messages import GroupRecord, Leave, PimHello, Query, RecordType, Report
from mcast_sdn.querier import NEVER, RouterPortChanged, wins_election

ip = ipaddress.ip_address
R = RecordType
DP, PORT = 7, 2

F = {
    4: dict(group=ip("239.9.9.9"), host=ip("10.0.0.50"), lower=ip("10.0.0.1"), higher=ip("10.255.255.255"),
            unspec=ip("0.0.0.0"), own=ip("10.255.255.254"), s=[ip("192.0.2.1"), ip("192.0.2.2")],
            v=3, leave_v=2),
    6: dict(group=ip("ff05::9"), host=ip("fe80::50"), lower=ip("fe80::1"), higher=ip("fe80::ffff:ffff:ffff:ffff"),
            unspec=ip("::"), own=ip("fe80::ffff:ffff:ffff:fffe"), s=[ip("2001:db8::1"), ip("2001:db8::2")],
            v=2, leave_v=1),
}


def general(eff, family=None):
    return [q for q in eff.queries if q.group is None and (family is None or q.family == family)]


def specific(eff, family=None):
    return [q for q in eff.queries if q.group is not None and (family is None or q.family == family)]


def report(f, rtype, *sources, family=4, version=None, group=None):
    d = F[family]
    rec = GroupRecord(rtype, group or d["group"], tuple(sorted(sources)))
    return Report(family, version or d["v"], d["host"], (rec,))


def query(family, src, group=None, sources=(), max_resp=10.0, s_flag=False, version=None, qrv=None, qqi=None):
    v = version or F[family]["v"]
    return Query(family, v, src, group, tuple(sources), max_resp, s_flag, qrv, qqi)


def run_until(m, end):
    """Tick at every deadline up to `end`; return [(time, effects)]."""
    out = []
    while True:
        d = m.next_deadline()
        if d is None or d > end:
            return out
        out.append((d, m.tick(d)))


# ---- General Queries ---------------------------------------------------------------------------
@pytest.mark.parametrize("family", [4, 6])
def test_startup_queries_then_query_interval(family):
    m = MembershipManager()
    eff = m.add_port(100.0, DP, PORT)
    (q0,) = general(eff, family)
    assert (q0.dpid, q0.port, q0.version, q0.max_resp, q0.qrv, q0.qqi, q0.s_flag) == (
        DP, PORT, F[family]["v"], 10.0, 2, 125.0, False)
    times = [t for t, e in run_until(m, 100.0 + 31.25 + 3 * 125 + 1) if general(e, family)]
    # Startup Query Count 2, Startup Query Interval 125/4 = 31.25 s, then every 125 s.
    assert times == [131.25, 256.25, 381.25, 506.25]
    assert general(m.tick(506.25 + 124.999), family) == []


def test_startup_count_and_interval_configurable():
    m = MembershipManager(MembershipConfig(startup_query_count=4, startup_query_interval=5.0, query_interval=60.0))
    m.add_port(0.0, DP, PORT)
    times = [t for t, e in run_until(m, 200.0) if general(e, 4)]
    assert times == [5.0, 10.0, 15.0, 75.0, 135.0, 195.0]


def test_add_port_is_idempotent_and_late_tick_does_not_burst():
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    assert m.add_port(1.0, DP, PORT).queries == []
    # The adapter stalled for 1000 s: one query per family, not a burst of catch-up queries.
    eff = m.tick(1000.0)
    assert len(general(eff, 4)) == 1 and len(general(eff, 6)) == 1
    assert m.next_deadline() == 1125.0


@pytest.mark.parametrize(
    "cfg,family,version,max_resp,qrv",
    [
        (dict(igmp_version=2), 4, 2, 10.0, None),
        (dict(igmp_version=1), 4, 1, 0.0, None),  # RFC 3376 §7.3.1: IGMPv1 Max Resp 0
        (dict(mld_version=1), 6, 1, 10.0, None),
        (dict(robustness=9), 4, 3, 10.0, 0),  # RFC 3376 §4.1.6: QRV 0 when RV > 7
    ],
)
def test_query_version_fields(cfg, family, version, max_resp, qrv):
    m = MembershipManager(MembershipConfig(**cfg))
    (q,) = general(m.add_port(0.0, DP, PORT), family)
    assert (q.version, q.max_resp, q.qrv) == (version, max_resp, qrv)
    if version < F[family]["v"]:
        assert q.qqi is None


def test_querier_disabled_sends_nothing():
    m = MembershipManager(MembershipConfig(querier_enabled=False))
    assert m.add_port(0.0, DP, PORT).queries == []
    m.handle(1.0, DP, PORT, report(None, R.CHANGE_TO_EXCLUDE))
    eff = m.handle(2.0, DP, PORT, Leave(4, 2, F[4]["host"], F[4]["group"]))
    assert eff.queries == []
    # Still tracks membership; with no querier a leave lowers nothing: the GMI applies.
    assert m.tick(260.999).queries == [] and m.interest(DP, PORT)
    m.tick(261.0)
    assert m.interest(DP, PORT) == {}
    assert m.tick(10_000.0).queries == [] and "tx.query.general" not in m.counters()


# ---- Election ----------------------------------------------------------------------------------
def test_wins_election():
    assert wins_election(ip("10.0.0.1"), ip("10.0.0.2"))
    assert not wins_election(ip("10.0.0.3"), ip("10.0.0.2"))
    assert not wins_election(ip("10.0.0.2"), ip("10.0.0.2"))
    assert not wins_election(ip("0.0.0.0"), ip("10.0.0.2"))  # RFC 4541 §2.1.1(4)
    assert wins_election(ip("10.9.9.9"), ip("0.0.0.0"))  # we are a proxy querier
    assert wins_election(ip("9.255.255.255"), ip("10.0.0.0"))  # numeric, not textual
    assert wins_election(ip("fe80::1"), ip("fe80::2"))


@pytest.mark.parametrize("family", [4, 6])
def test_lower_querier_wins_until_other_querier_present_interval(family):
    d = F[family]
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(10.0, DP, PORT, query(family, d["lower"]))
    q = m.querier(DP, PORT, family)
    assert not q.is_querier and q.other_querier_addr == d["lower"]
    other = 6 if family == 4 else 4
    assert m.querier(DP, PORT, other).is_querier  # election is per family
    # The startup query at 31.25 and the ones after are not sent while another querier is present.
    quiet = [t for t, e in run_until(m, 264.999) if general(e, family)]
    assert quiet == []
    # Other Querier Present Interval 255 s after the last lower query: we query again at once.
    eff = m.tick(265.0)
    assert len(general(eff, family)) == 1 and m.querier(DP, PORT, family).is_querier
    assert m.next_deadline() is not None
    times = [t for t, e in run_until(m, 391.0) if general(e, family)]
    assert times == [390.0]
    assert m.counters()["querier.lost_election"] == 1


@pytest.mark.parametrize("family", [4, 6])
def test_other_querier_timer_refreshed_by_each_query(family):
    d = F[family]
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(10.0, DP, PORT, query(family, d["lower"]))
    m.handle(135.0, DP, PORT, query(family, d["lower"]))
    m.tick(389.999)
    assert not m.querier(DP, PORT, family).is_querier
    m.tick(390.0)
    assert m.querier(DP, PORT, family).is_querier


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("who", ["higher", "unspec", "own"])
def test_queries_that_do_not_win(family, who):
    d = F[family]
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    eff = m.handle(10.0, DP, PORT, query(family, d[who]))
    assert m.querier(DP, PORT, family).is_querier
    times = [t for t, e in run_until(m, 40.0) if general(e, family)]
    assert times == [31.25]
    # Router port: only a query with a non-zero source that is not our own.
    assert (eff.router_port_changes == [RouterPortChanged(DP, PORT, True)]) == (who == "higher")


def test_proxy_querier_defers_to_any_real_querier():
    m = MembershipManager(MembershipConfig(querier_ipv4="0.0.0.0"))
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, query(4, ip("223.255.255.1")))
    assert not m.querier(DP, PORT, 4).is_querier


def test_non_querier_adopts_qrv_qqi_and_reverts():
    """RFC 3376 §4.1.6-4.1.7: non-queriers use the querier's QRV and QQI."""
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(10.0, DP, PORT, query(4, F[4]["lower"], qrv=3, qqi=60.0))
    q = m.querier(DP, PORT, 4)
    assert q.timers.robustness == 3 and q.timers.group_membership_interval == 190.0
    assert q.timers.last_member_query_count == 3  # derived from RV
    assert q.other_querier_until == 10.0 + 3 * 60 + 5
    m.handle(20.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE))
    assert m.group_record(DP, PORT, F[4]["group"]).group_timer == 210.0
    m.tick(195.0)
    assert m.querier(DP, PORT, 4).is_querier and m.querier(DP, PORT, 4).timers == m.config.timers


@pytest.mark.parametrize("family", [4, 6])
def test_non_querier_sends_no_specific_queries_but_lowers_on_querier_query(family):
    """§6.6.3: only the querier sends Q(G); §6.6.1: others lower timers when they hear it."""
    d = F[family]
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, query(family, d["lower"]))
    m.handle(2.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE, family=family))
    eff = m.handle(50.0, DP, PORT, Leave(family, d["leave_v"], d["host"], d["group"]))
    assert specific(eff) == []
    gs = m.group_record(DP, PORT, d["group"])
    assert gs.group_timer == 262.0  # not lowered by our own (unsent) query
    # The querier's Q(G) with S set does not lower timers ...
    m.handle(50.1, DP, PORT, query(family, d["lower"], group=d["group"], max_resp=1.0, s_flag=True))
    assert gs.group_timer == 262.0
    # ... with S clear it does: LMQT = Max Resp (the querier's LMQI) * LMQC.
    m.handle(50.5, DP, PORT, query(family, d["lower"], group=d["group"], max_resp=1.0))
    assert gs.group_timer == 52.5
    assert specific(m.tick(52.4)) == []
    eff = m.tick(52.5)
    assert m.interest(DP, PORT) == {} and eff.changes[-1].after is None


@pytest.mark.parametrize("family", [4, 6])
def test_non_querier_lowers_source_timers_on_group_and_source_query(family):
    d = F[family]
    s1, s2 = d["s"]
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, query(family, d["lower"]))
    m.handle(2.0, DP, PORT, report(None, R.MODE_IS_INCLUDE, s1, s2, family=family))
    m.handle(10.0, DP, PORT, query(family, d["lower"], group=d["group"], sources=(s1,), max_resp=1.0))
    gs = m.group_record(DP, PORT, d["group"])
    assert gs.sources[s1].expires == 12.0 and gs.sources[s2].expires == 262.0
    m.tick(12.0)
    assert set(gs.sources) == {s2}


def test_higher_querier_group_query_does_not_lower_timers():
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(2.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE))
    m.handle(3.0, DP, PORT, query(4, F[4]["higher"], group=F[4]["group"], max_resp=1.0))
    assert m.group_record(DP, PORT, F[4]["group"]).group_timer == 262.0


def test_older_version_querier_is_counted_not_followed():
    """RFC 3376 §7.3.1: using an older version is administrative; hearing one is a warning."""
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, query(4, F[4]["higher"], version=2))
    assert m.counters()["warn.older_version_query"] == 1
    assert m.querier(DP, PORT, 4).older_querier_version == 2
    (q,) = general(m.tick(31.25), 4)
    assert q.version == 3


# ---- Specific-query retransmissions -------------------------------------------------------------
@pytest.mark.parametrize("family", [4, 6])
def test_group_specific_query_count_and_spacing(family):
    d = F[family]
    m = MembershipManager(MembershipConfig(last_member_query_count=3, last_member_query_interval=0.5))
    m.add_port(0.0, DP, PORT)
    m.handle(40.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE, family=family))
    eff = m.handle(50.0, DP, PORT, Leave(family, d["leave_v"], d["host"], d["group"]))
    sent = [(50.0, q) for q in specific(eff)]
    for t, e in run_until(m, 60.0):
        sent += [(t, q) for q in specific(e)]
    assert [t for t, _ in sent] == [50.0, 50.5, 51.0]
    assert all(q.group == d["group"] and q.max_resp == 0.5 and not q.s_flag for _, q in sent)
    assert m.interest(DP, PORT) == {}
    assert m.counters()["tx.query.group"] == 3


def test_repeated_leave_does_not_restart_a_running_sequence():
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE))
    leave = Leave(4, 2, F[4]["host"], F[4]["group"])
    assert len(specific(m.handle(10.0, DP, PORT, leave))) == 1
    assert specific(m.handle(10.5, DP, PORT, leave)) == []
    assert len(specific(m.tick(11.0))) == 1
    m.tick(12.0)
    assert m.interest(DP, PORT) == {}


def test_igmpv2_querier_degrades_group_and_source_query_to_group_query():
    m = MembershipManager(MembershipConfig(igmp_version=2))
    m.add_port(0.0, DP, PORT)
    s1, s2 = F[4]["s"]
    m.handle(1.0, DP, PORT, report(None, R.MODE_IS_INCLUDE, s1, s2))
    eff = m.handle(2.0, DP, PORT, report(None, R.BLOCK_OLD_SOURCES, s1))
    (q,) = specific(eff)
    assert (q.version, q.group, q.sources, q.s_flag, q.qrv) == (2, F[4]["group"], (), False, None)


def test_igmpv1_router_ignores_leaves_and_sends_no_specific_queries():
    m = MembershipManager(MembershipConfig(igmp_version=1))
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE, version=1))
    eff = m.handle(2.0, DP, PORT, Leave(4, 2, F[4]["host"], F[4]["group"]))
    assert specific(eff) == [] and m.counters()["ignored.leave_igmpv1_mode"] == 1
    m.tick(260.999)
    assert m.interest(DP, PORT)
    m.tick(261.0)
    assert m.interest(DP, PORT) == {}


def test_specific_queries_stop_when_we_lose_the_election():
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE))
    assert len(specific(m.handle(10.0, DP, PORT, Leave(4, 2, F[4]["host"], F[4]["group"])))) == 1
    m.handle(10.2, DP, PORT, query(4, F[4]["lower"]))
    assert specific(m.tick(11.0)) == []
    m.tick(12.0)  # our lowered timer still runs out
    assert m.interest(DP, PORT) == {}


# ---- Router ports ---------------------------------------------------------------------------------
@pytest.mark.parametrize("family", [4, 6])
def test_router_port_learned_from_query_and_expires(family):
    m = MembershipManager()
    eff = m.handle(5.0, DP, PORT, query(family, F[family]["higher"]))
    assert eff.router_port_changes == [RouterPortChanged(DP, PORT, True)]
    assert m.router_ports() == {(DP, PORT)} and m.router_ports(family) == {(DP, PORT)}
    assert m.router_ports(10 - family) == set()
    m.handle(100.0, DP, PORT, query(family, F[family]["higher"]))
    assert m.tick(354.999).router_port_changes == []
    assert m.tick(355.0).router_port_changes == [RouterPortChanged(DP, PORT, False)]
    assert m.router_ports() == set()


def test_router_port_from_pim_hello_holdtime():
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    eff = m.handle(1.0, DP, PORT, PimHello(4, ip("10.0.0.9")))
    assert eff.router_port_changes == [RouterPortChanged(DP, PORT, True)]
    assert m.tick(105.999).router_port_changes == []
    assert m.tick(106.0).router_port_changes == [RouterPortChanged(DP, PORT, False)]


def test_router_port_timeout_configurable_and_union_of_reasons():
    m = MembershipManager(MembershipConfig(router_port_timeout=30.0))
    m.handle(0.0, DP, PORT, query(4, F[4]["higher"]))
    m.handle(10.0, DP, PORT, PimHello(6, ip("fe80::9")))
    assert m.tick(30.0).router_port_changes == []  # still a router port through PIM (until 115)
    assert m.router_ports(4) == set() and m.router_ports(6) == {(DP, PORT)}
    assert m.tick(115.0).router_port_changes == [RouterPortChanged(DP, PORT, False)]


def test_static_router_ports_and_report_forwarding():
    cfg = MembershipConfig(static_router_ports=frozenset({(1, 1)}))
    m = MembershipManager(cfg)
    assert m.router_ports() == {(1, 1)}
    assert m.add_port(0.0, 1, 1).router_port_changes == []  # static: never announced as a change
    m.handle(0.0, 2, 5, query(4, F[4]["higher"]))  # learned IPv4 router port (2, 5)
    rep = report(None, R.MODE_IS_EXCLUDE)
    eff = m.handle(1.0, 1, 9, rep)
    assert [(f.dpid, f.port, f.message, f.in_dpid, f.in_port) for f in eff.forward_to_routers] == [
        (1, 1, rep, 1, 9), (2, 5, rep, 1, 9)]
    # Not back out of the port it came in on; MLD goes only to static + IPv6 router ports.
    assert [(f.dpid, f.port) for f in m.handle(2.0, 2, 5, rep).forward_to_routers] == [(1, 1)]
    rep6 = report(None, R.MODE_IS_EXCLUDE, family=6)
    assert [(f.dpid, f.port) for f in m.handle(3.0, 1, 9, rep6).forward_to_routers] == [(1, 1)]
    leave = Leave(4, 2, F[4]["host"], F[4]["group"])
    assert len(m.handle(4.0, 1, 9, leave).forward_to_routers) == 2
    # Removing a static port changes nothing about its static status.
    assert m.remove_port(5.0, 1, 1).router_port_changes == []
    assert (1, 1) in m.router_ports()


def test_remove_port_announces_router_port_gone():
    m = MembershipManager()
    m.handle(0.0, DP, PORT, query(4, F[4]["higher"]))
    assert m.remove_port(1.0, DP, PORT).router_port_changes == [RouterPortChanged(DP, PORT, False)]
    assert m.router_ports() == set() and m.next_deadline() is None


# ---- Immediate leave ------------------------------------------------------------------------------
@pytest.mark.parametrize("family", [4, 6])
def test_immediate_leave_on_leave(family):
    d = F[family]
    m = MembershipManager(MembershipConfig(immediate_leave_ports=frozenset({(DP, PORT)})))
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE, family=family, version=d["leave_v"]))
    eff = m.handle(2.0, DP, PORT, Leave(family, d["leave_v"], d["host"], d["group"]))
    assert specific(eff) == []
    assert [c.after for c in eff.changes] == [None]
    assert m.group_record(DP, PORT, d["group"]) is None


@pytest.mark.parametrize("family", [4, 6])
def test_immediate_leave_on_v3_records(family):
    d = F[family]
    s1, s2 = d["s"]
    m = MembershipManager(MembershipConfig(immediate_leave_ports=frozenset({(DP, PORT)})))
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, report(None, R.MODE_IS_INCLUDE, s1, s2, family=family))
    eff = m.handle(2.0, DP, PORT, report(None, R.BLOCK_OLD_SOURCES, s1, family=family))
    assert specific(eff) == [] and m.interest(DP, PORT)[d["group"]].sources == frozenset({s2})
    # EXCLUDE + TO_IN(A): straight to INCLUDE(A).
    m.handle(3.0, DP, PORT, report(None, R.CHANGE_TO_EXCLUDE, family=family))
    eff = m.handle(4.0, DP, PORT, report(None, R.CHANGE_TO_INCLUDE, s1, family=family))
    assert specific(eff) == []
    i = m.interest(DP, PORT)[d["group"]]
    assert (i.mode, i.sources) == ("include", frozenset({s1}))
    eff = m.handle(5.0, DP, PORT, report(None, R.CHANGE_TO_INCLUDE, family=family))
    assert m.interest(DP, PORT) == {} and eff.changes[-1].after is None


def test_immediate_leave_is_per_port():
    m = MembershipManager(MembershipConfig(immediate_leave_ports=frozenset({(DP, 99)})))
    m.add_port(0.0, DP, PORT)
    m.handle(1.0, DP, PORT, report(None, R.MODE_IS_EXCLUDE))
    eff = m.handle(2.0, DP, PORT, Leave(4, 2, F[4]["host"], F[4]["group"]))
    assert len(specific(eff)) == 1 and m.interest(DP, PORT)


def test_querier_timers_never_below_now():
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    q = m.querier(DP, PORT, 4)
    for t, _ in run_until(m, 2000.0):
        assert q.next_general is None or q.next_general > t
        assert q.other_querier_until == NEVER
