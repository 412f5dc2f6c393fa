"""Membership manager: older-version compatibility, limits, the query API, effects, time
handling, config. RFC 3376 §7.3.2 / RFC 3810 §8.3.2 for compatibility modes. Fake clock."""
from __future__ import annotations

import ipaddress
import json

import pytest

from mcast_sdn.config import MembershipConfig, Timers
from mcast_sdn.membership import EXCLUDE, INCLUDE, Interest, InterestChanged
from mcast_sdn.membership_manager import Effects, MembershipManager
from mcast_sdn.messages import Drop, DropReason, GroupRecord, Leave, RecordType, Report
from mcast_sdn.querier import NEVER, SendQuery

ip = ipaddress.ip_address
R = RecordType
DP, PORT = 1, 4
G4, G6 = ip("239.1.1.1"), ip("ff0e::1")
S4 = [ip(f"198.51.100.{i}") for i in range(1, 11)]
S6 = [ip(f"2001:db8::{i}") for i in range(1, 11)]
H4, H6 = ip("10.0.0.2"), ip("fe80::2")


def rep(rtype, *sources, group=G4, version=3):
    fam = group.version
    return Report(fam, version, H4 if fam == 4 else H6, (GroupRecord(rtype, group, tuple(sorted(sources))),))


def v1(group=G4):
    return Report(4, 1, H4, (GroupRecord(R.MODE_IS_EXCLUDE, group),))


def v2(group=G4):
    return Report(4, 2, H4, (GroupRecord(R.MODE_IS_EXCLUDE, group),))


def mld1(group=G6):
    return Report(6, 1, H6, (GroupRecord(R.MODE_IS_EXCLUDE, group),))


def leave(group=G4):
    return Leave(4, 2, H4, group) if group.version == 4 else Leave(6, 1, H6, group)


def mgr(**cfg):
    m = MembershipManager(MembershipConfig(**cfg))
    m.add_port(0.0, DP, PORT)
    return m


def gsq(eff):
    return [q for q in eff.queries if q.group is not None]


# ---- compatibility modes ------------------------------------------------------------------------
def test_v1_host_present_leave_ignored():
    m = mgr()
    m.handle(1.0, DP, PORT, v1())
    assert m.group_record(DP, PORT, G4).compat_version(1.0) == 1
    eff = m.handle(2.0, DP, PORT, leave())
    assert gsq(eff) == [] and m.interest(DP, PORT)[G4] == Interest(EXCLUDE, frozenset())
    assert m.counters()["ignored.leave_igmpv1_mode"] == 1


def test_v1_mode_ignores_to_in_block_and_exclude_sources():
    m = mgr()
    m.handle(1.0, DP, PORT, v1())
    assert gsq(m.handle(2.0, DP, PORT, rep(R.CHANGE_TO_INCLUDE))) == []
    assert gsq(m.handle(3.0, DP, PORT, rep(R.BLOCK_OLD_SOURCES, S4[0]))) == []
    m.handle(4.0, DP, PORT, rep(R.CHANGE_TO_EXCLUDE, S4[0]))
    m.handle(5.0, DP, PORT, rep(R.MODE_IS_EXCLUDE, S4[1]))
    assert m.interest(DP, PORT)[G4] == Interest(EXCLUDE, frozenset())
    c = m.counters()
    assert c["ignored.compat_to_in_ignored"] == 1 and c["ignored.compat_block_ignored"] == 1
    assert c["ignored.compat_sources_ignored"] == 2


def test_v2_host_present():
    m = mgr()
    m.handle(1.0, DP, PORT, v2())
    gs = m.group_record(DP, PORT, G4)
    assert gs.compat_version(1.0) == 2 and gs.older_v2_until == 261.0
    # BLOCK ignored; TO_EX(x) is TO_EX({}); IS_EX(x) is IS_EX({}).
    assert gsq(m.handle(2.0, DP, PORT, rep(R.BLOCK_OLD_SOURCES, S4[0]))) == []
    m.handle(3.0, DP, PORT, rep(R.CHANGE_TO_EXCLUDE, S4[0], S4[1]))
    m.handle(4.0, DP, PORT, rep(R.MODE_IS_EXCLUDE, S4[2]))
    assert m.interest(DP, PORT)[G4] == Interest(EXCLUDE, frozenset())
    assert gs.excluded() == set()
    # A v2 leave is TO_IN({}): Q(G), and the group goes after LMQT without an answer.
    eff = m.handle(10.0, DP, PORT, leave())
    (q,) = gsq(eff)
    assert (q.group, q.sources, q.version) == (G4, (), 3)
    m.tick(11.999)
    assert m.interest(DP, PORT)
    m.tick(12.0)
    assert m.interest(DP, PORT) == {}


def test_v1_beats_v2_and_compat_returns_to_v3_after_older_host_present_interval():
    m = mgr()
    m.handle(0.0, DP, PORT, v2())
    m.handle(100.0, DP, PORT, v1())
    gs = m.group_record(DP, PORT, G4)
    assert gs.compat_version(100.0) == 1
    m.handle(200.0, DP, PORT, rep(R.MODE_IS_EXCLUDE))  # a v3 member keeps the group alive
    m.tick(259.999)
    assert gs.compat_version(259.999) == 1 and gs.older_v2_until == 260.0
    m.tick(260.0)
    assert gs.older_v2_until == NEVER and gs.compat_version(260.0) == 1
    m.tick(359.999)
    assert gs.compat_version(359.999) == 1
    m.tick(360.0)
    assert gs.compat_version(360.0) == 3 and gs.older_v1_until == NEVER
    # Back in IGMPv3 mode: BLOCK is processed again.
    m.handle(361.0, DP, PORT, rep(R.ALLOW_NEW_SOURCES, S4[0]))
    eff = m.handle(362.0, DP, PORT, rep(R.BLOCK_OLD_SOURCES, S4[0]))
    assert [(q.sources, q.s_flag) for q in gsq(eff)] == [((S4[0],), False)]


def test_v2_timer_refreshed_by_each_v2_report():
    m = mgr()
    m.handle(0.0, DP, PORT, v2())
    m.handle(125.0, DP, PORT, v2())
    gs = m.group_record(DP, PORT, G4)
    m.tick(300.0)
    assert gs.compat_version(300.0) == 2
    m.tick(385.0)
    assert gs.compat_version(385.0) == 3


def test_mldv1_compat():
    m = mgr()
    m.handle(1.0, DP, PORT, mld1())
    gs = m.group_record(DP, PORT, G6)
    assert gs.compat_version(1.0) == 1 and gs.older_v1_until == 261.0
    assert gsq(m.handle(2.0, DP, PORT, rep(R.BLOCK_OLD_SOURCES, S6[0], group=G6, version=2))) == []
    m.handle(3.0, DP, PORT, rep(R.CHANGE_TO_EXCLUDE, S6[0], group=G6, version=2))
    assert gs.excluded() == set()
    # MLDv1 Done is TO_IN({}) (there is no "ignore leaves" mode in MLD).
    (q,) = gsq(m.handle(4.0, DP, PORT, leave(G6)))
    assert (q.family, q.group, q.version) == (6, G6, 2)
    m.tick(6.0)
    assert m.interest(DP, PORT) == {}


def test_mldv1_compat_expires():
    m = mgr()
    m.handle(0.0, DP, PORT, mld1())
    m.handle(200.0, DP, PORT, rep(R.MODE_IS_EXCLUDE, group=G6, version=2))
    gs = m.group_record(DP, PORT, G6)
    m.tick(260.0)
    assert gs.compat_version(260.0) == 2
    # Source lists count again: TO_EX({s}) keeps s (asked about with Q(G,s)), then excludes it.
    eff = m.handle(261.0, DP, PORT, rep(R.CHANGE_TO_EXCLUDE, S6[0], group=G6, version=2))
    assert [q.sources for q in gsq(eff)] == [(S6[0],)]
    m.tick(263.0)
    assert m.interest(DP, PORT)[G6] == Interest(EXCLUDE, frozenset({S6[0]}))


def test_v3_leave_message_without_older_host_is_to_in():
    m = mgr()
    m.handle(1.0, DP, PORT, rep(R.MODE_IS_INCLUDE, S4[0]))
    (q,) = gsq(m.handle(2.0, DP, PORT, leave()))
    assert q.sources == (S4[0],)


def test_leave_for_unknown_group():
    m = mgr()
    assert m.handle(1.0, DP, PORT, leave()).changes == []
    assert m.counters()["ignored.leave_unknown_group"] == 1


# ---- limits ---------------------------------------------------------------------------------------
def test_max_groups_per_port():
    m = mgr(max_groups_per_port=2)
    groups = [ip(f"239.0.0.{i}") for i in range(1, 4)]
    for i, g in enumerate(groups):
        m.handle(1.0 + i, DP, PORT, rep(R.MODE_IS_EXCLUDE, group=g))
    assert set(m.interest(DP, PORT)) == set(groups[:2])
    assert m.counters()["drop.limit_groups"] == 1
    # Records that would create nothing are not refused (and not counted).
    m.handle(5.0, DP, PORT, rep(R.BLOCK_OLD_SOURCES, S4[0], group=groups[2]))
    m.handle(5.0, DP, PORT, rep(R.CHANGE_TO_INCLUDE, group=groups[2]))
    assert m.counters()["drop.limit_groups"] == 1
    # Another port has its own budget.
    m.handle(6.0, DP, PORT + 1, rep(R.MODE_IS_EXCLUDE, group=groups[2]))
    assert set(m.interest(DP, PORT + 1)) == {groups[2]}
    # Room again after a group goes.
    m.handle(10.0, DP, PORT, leave(groups[0]))
    m.tick(12.0)
    m.handle(13.0, DP, PORT, rep(R.MODE_IS_EXCLUDE, group=groups[2]))
    assert set(m.interest(DP, PORT)) == set(groups[1:])


def test_max_sources_per_group():
    m = mgr(max_sources_per_group=3)
    m.handle(1.0, DP, PORT, rep(R.MODE_IS_INCLUDE, *S4[:5]))
    gs = m.group_record(DP, PORT, G4)
    assert set(gs.sources) == set(S4[:3])
    m.handle(2.0, DP, PORT, rep(R.ALLOW_NEW_SOURCES, S4[0], S4[6]))  # S4[0] refreshed, S4[6] no room
    assert set(gs.sources) == set(S4[:3]) and gs.sources[S4[0]].expires == 262.0
    m.handle(3.0, DP, PORT, rep(R.CHANGE_TO_EXCLUDE, *S4[4:9]))  # excluded list cut to 3
    assert gs.mode == EXCLUDE and set(gs.sources) == set(S4[4:7])
    m.handle(4.0, DP, PORT, rep(R.BLOCK_OLD_SOURCES, S4[9]))  # would add a 4th record
    assert len(gs.sources) == 3
    assert m.counters()["drop.limit_sources"] == 4


def test_zero_sources_allowed_means_any_source_only():
    m = mgr(max_sources_per_group=0)
    m.handle(1.0, DP, PORT, rep(R.MODE_IS_INCLUDE, S4[0]))
    assert m.interest(DP, PORT) == {}
    m.handle(2.0, DP, PORT, rep(R.MODE_IS_EXCLUDE, S4[0]))
    assert m.interest(DP, PORT)[G4] == Interest(EXCLUDE, frozenset())


# ---- API --------------------------------------------------------------------------------------------
def test_interest_groups_ports_for():
    m = mgr()
    m.handle(1.0, DP, PORT, rep(R.MODE_IS_INCLUDE, S4[0]))
    m.handle(1.0, DP, 5, rep(R.MODE_IS_EXCLUDE, S4[0]))  # port 5 auto-created
    m.handle(1.0, 2, 1, rep(R.MODE_IS_EXCLUDE))
    assert m.groups() == {
        G4: {(DP, PORT): Interest(INCLUDE, frozenset({S4[0]})), (DP, 5): Interest(EXCLUDE, frozenset({S4[0]})),
             (2, 1): Interest(EXCLUDE, frozenset())}}
    assert m.ports_for(G4, S4[0]) == {(DP, PORT), (2, 1)}
    assert m.ports_for(G4, S4[1]) == {(DP, 5), (2, 1)}
    assert m.ports_for(G4) == {(DP, PORT), (DP, 5), (2, 1)}
    assert m.ports_for(G6, S6[0]) == set()
    assert m.ports() == [(DP, PORT), (DP, 5), (2, 1)]
    assert m.interest(9, 9) == {}


def test_interest_wants():
    assert Interest(INCLUDE, frozenset({S4[0]})).wants(S4[0])
    assert not Interest(INCLUDE, frozenset({S4[0]})).wants(S4[1])
    assert not Interest(EXCLUDE, frozenset({S4[0]})).wants(S4[0])
    assert Interest(EXCLUDE, frozenset()).wants(None)


def test_remove_port_and_switch_emit_changes_to_none():
    m = mgr()
    m.handle(1.0, DP, PORT, rep(R.MODE_IS_EXCLUDE))
    m.handle(1.0, DP, PORT, rep(R.MODE_IS_INCLUDE, S6[0], group=G6, version=2))
    m.handle(1.0, DP, 5, rep(R.MODE_IS_EXCLUDE))
    m.handle(1.0, 2, 5, rep(R.MODE_IS_EXCLUDE))
    eff = m.remove_port(2.0, DP, PORT)
    assert [(c.group, c.after) for c in eff.changes] == [(G4, None), (G6, None)]
    assert m.port_state(DP, PORT) is None and m.interest(DP, PORT) == {}
    eff = m.remove_switch(3.0, DP)
    assert [(c.dpid, c.port, c.after) for c in eff.changes] == [(DP, 5, None)]
    assert m.groups() == {G4: {(2, 5): Interest(EXCLUDE, frozenset())}}
    assert m.remove_port(4.0, DP, 77) == Effects()
    # State of removed ports never fires again.
    assert all(c.dpid == 2 for c in m.tick(1000.0).changes)


def test_port_state_and_snapshot_json():
    m = mgr()
    m.handle(1.0, DP, PORT, v2())
    m.handle(2.0, DP, PORT, rep(R.ALLOW_NEW_SOURCES, S4[0]))
    m.handle(3.0, DP, PORT, rep(R.MODE_IS_INCLUDE, S6[0], group=G6, version=2))
    m.tick(11.0)
    st = m.port_state(DP, PORT)
    g = st["groups"]["239.1.1.1"]
    assert g["mode"] == "exclude" and g["group_timer"] == 250.0 and g["compat_mode"] == "igmpv2"
    assert g["sources"]["198.51.100.1"]["timer"] == 251.0
    assert g["interest"] == {"mode": "exclude", "sources": []}
    assert st["groups"]["ff0e::1"]["mode"] == "include"
    assert st["queriers"]["ipv4"]["querier"] is True
    assert st["queriers"]["ipv4"]["next_general_query_in"] == pytest.approx(20.25)
    snap = m.snapshot()
    json.dumps(snap)
    assert snap["groups"]["239.1.1.1"] == [{"dpid": DP, "port": PORT, "mode": "exclude", "sources": []}]
    assert snap["counters"]["rx.igmpv2.report"] == 1


def test_counters():
    m = mgr()
    m.handle(1.0, DP, PORT, v1())
    m.handle(1.0, DP, PORT, v2())
    m.handle(1.0, DP, PORT, rep(R.ALLOW_NEW_SOURCES, S4[0]))
    m.handle(1.0, DP, PORT, mld1())
    m.handle(1.0, DP, PORT, leave(G6))
    m.handle(1.0, DP, PORT, Drop(DropReason.BAD_CHECKSUM))
    m.count_drop(DropReason.RATE_LIMITED)
    c = m.counters()
    assert c["rx.igmpv1.report"] == c["rx.igmpv2.report"] == c["rx.igmpv3.report"] == 1
    assert c["rx.mldv1.report"] == c["rx.mldv1.done"] == 1
    assert c["rx.record.allow_new_sources"] == 1
    assert c["drop.bad_checksum"] == c["drop.rate_limited"] == 1
    assert c["tx.query.general"] == 2 and c["tx.query.group"] == 1


def test_unknown_message_type_rejected():
    with pytest.raises(TypeError):
        mgr().handle(1.0, DP, PORT, "hello")


def test_effects_extend_and_bool():
    a, b = Effects(), Effects()
    assert not a
    b.queries.append(SendQuery(1, 1, 4, 3, None))
    b.changes.append(InterestChanged(1, 1, G4, None, Interest(EXCLUDE)))
    assert a.extend(b) is a and a and len(a.queries) == 1 and len(a.changes) == 1


def test_interest_changes_only_on_real_change():
    m = mgr()
    assert len(m.handle(1.0, DP, PORT, rep(R.MODE_IS_EXCLUDE)).changes) == 1
    assert m.handle(2.0, DP, PORT, rep(R.MODE_IS_EXCLUDE)).changes == []  # refresh only
    assert m.handle(3.0, DP, PORT, rep(R.ALLOW_NEW_SOURCES, S4[0])).changes == []  # X grows: same forwarding
    # TO_EX({1}) in EXCLUDE({0},{}): EXCLUDE({1},{}) with source 1 queried; nothing excluded yet.
    assert m.handle(4.0, DP, PORT, rep(R.CHANGE_TO_EXCLUDE, S4[1])).changes == []
    assert m.tick(5.0).changes == []
    (c,) = m.tick(6.0).changes  # nobody wants source 1: now it is excluded
    assert (c.before, c.after) == (Interest(EXCLUDE, frozenset()), Interest(EXCLUDE, frozenset({S4[1]})))


# ---- time -------------------------------------------------------------------------------------------
def test_tick_is_cheap_when_nothing_is_due():
    m = MembershipManager()
    for p in range(50):
        m.add_port(0.0, DP, p)
        for i in range(40):
            m.handle(0.0, DP, p, rep(R.MODE_IS_EXCLUDE, group=ip(f"239.2.{p}.{i}")))
    m.tick(0.0)
    before = m.wakeups
    for k in range(1, 100):
        assert m.tick(k * 0.25) == Effects()
    assert m.wakeups == before  # no owner was looked at
    assert m.next_deadline() == 31.25
    # At the deadline only the due owners (100 queriers) wake, not the 2000 groups.
    m.tick(31.25)
    assert m.wakeups - before == 100


def test_refreshing_timers_does_not_grow_the_heap_unboundedly():
    m = MembershipManager()
    m.add_port(0.0, DP, PORT)
    for k in range(5000):
        m.handle(k * 0.1, DP, PORT, rep(R.MODE_IS_EXCLUDE, S4[k % 10]))
    assert len(m._heap) < 2000


def test_late_tick_processes_in_deadline_order():
    """A tick long after several deadlines yields the transitions in time order."""
    m = mgr()
    m.handle(0.0, DP, PORT, rep(R.MODE_IS_EXCLUDE, S4[1]))  # EXCLUDE({}, {1}), group timer 260
    m.handle(100.0, DP, PORT, rep(R.ALLOW_NEW_SOURCES, S4[0]))  # X={0} until 360
    eff = m.tick(1000.0)
    assert [(c.before.mode if c.before else None, c.after.mode if c.after else None) for c in eff.changes] == [
        (EXCLUDE, INCLUDE), (INCLUDE, None)]


def test_next_deadline_exact_after_refresh():
    m = MembershipManager(MembershipConfig(querier_enabled=False))
    m.handle(0.0, DP, PORT, rep(R.MODE_IS_EXCLUDE))
    assert m.next_deadline() == 260.0
    m.handle(100.0, DP, PORT, rep(R.MODE_IS_EXCLUDE))
    assert m.next_deadline() == 360.0
    assert m.tick(300.0) == Effects()


def test_clock_going_backwards_is_clamped():
    m = mgr()
    m.handle(100.0, DP, PORT, rep(R.MODE_IS_EXCLUDE))
    m.handle(50.0, DP, PORT, rep(R.MODE_IS_EXCLUDE))
    assert m.group_record(DP, PORT, G4).group_timer == 360.0
    assert m.now == 100.0


# ---- config -------------------------------------------------------------------------------------------
def test_config_defaults_and_derived():
    c = MembershipConfig()
    assert c.group_membership_interval == 260.0
    assert c.other_querier_present_interval == 255.0
    assert c.older_host_present_interval == 260.0
    assert c.last_member_query_time == 2.0
    t = c.timers
    assert (t.startup_query_interval, t.startup_query_count, t.last_member_query_count) == (31.25, 2, 2)
    c3 = c.with_changes(robustness=3, query_interval=100)
    assert c3.timers.last_member_query_count == 3 and c3.timers.startup_query_interval == 25.0
    assert c3.group_membership_interval == 310.0
    assert MembershipConfig(last_member_query_count=5).last_member_query_time == 5.0
    assert Timers().adopt(0, None) == Timers()


def test_config_from_dict_round_trip():
    d = {"robustness": 3, "immediate_leave_ports": [[1, 2], [3, 4]], "static_router_ports": [],
         "querier_ipv4": "192.0.2.1", "last_member_query_count": None}
    c = MembershipConfig.from_dict(d)
    assert c.immediate_leave_ports == frozenset({(1, 2), (3, 4)})
    assert MembershipConfig.from_dict(c.to_dict()) == c
    json.dumps(c.to_dict())
    assert MembershipConfig.from_dict(None) == MembershipConfig()


@pytest.mark.parametrize(
    "bad,msg",
    [
        ({"robustness": 0}, "robustness"),
        ({"robustness": "2"}, "robustness"),
        ({"robustness": True}, "robustness"),
        ({"query_interval": -1}, "query_interval"),
        ({"query_interval": float("nan")}, "query_interval"),
        ({"query_response_interval": 200}, "less than query_interval"),
        ({"igmp_version": 4}, "igmp_version"),
        ({"mld_version": 3}, "mld_version"),
        ({"igmp_version": 2, "query_response_interval": 30}, "IGMPv2"),
        ({"max_groups_per_port": 0}, "max_groups_per_port"),
        ({"immediate_leave_ports": [[1]]}, "immediate_leave_ports"),
        ({"immediate_leave_ports": "1,2"}, "immediate_leave_ports"),
        ({"static_router_ports": [[1, -2]]}, "static_router_ports"),
        ({"querier_ipv4": "fe80::1"}, "querier_ipv4"),
        ({"querier_ipv4": "224.0.0.1"}, "querier_ipv4"),
        ({"querier_ipv6": "2001:db8::1"}, "link-local"),
        ({"querier_mac": "01:00:5e:00:00:01"}, "unicast"),
        ({"querier_mac": "zz"}, "querier_mac"),
        ({"querier_enabled": "yes"}, "querier_enabled"),
        ({"bogus": 1}, "unknown"),
    ],
)
def test_config_validation(bad, msg):
    with pytest.raises(ValueError, match=msg):
        MembershipConfig.from_dict(bad)


def test_config_from_dict_rejects_non_mapping():
    with pytest.raises(ValueError):
        MembershipConfig.from_dict([1, 2])


def test_heap_compaction_keeps_behaviour():
    """Deleted groups leave stale heap entries behind; compaction drops them."""
    m = MembershipManager(MembershipConfig(immediate_leave_ports=frozenset({(DP, PORT)})))
    m.add_port(0.0, DP, PORT)
    m.handle(0.5, DP, PORT, rep(R.MODE_IS_EXCLUDE, group=G6, version=2))  # one group that stays
    for k in range(3000):
        m.handle(1.0, DP, PORT, rep(R.MODE_IS_EXCLUDE))  # a new record, a heap entry at 261
        m.handle(1.0, DP, PORT, leave())  # immediate leave: the record is gone, its entry stale
        assert len(m._heap) <= 2 * 3 + 1024 + 1
    assert m.interest(DP, PORT) == {G6: Interest(EXCLUDE, frozenset())}
    assert m.next_deadline() == 31.25
    eff = m.tick(300.0)
    assert [(c.group, c.after) for c in eff.changes] == [(G6, None)]


def test_reexports_from_membership_module():
    from mcast_sdn import membership

    assert membership.MembershipManager is MembershipManager and membership.Effects is Effects
