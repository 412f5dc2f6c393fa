"""Resilience of the core: read-back adoption on reconnect and after a controller restart,
periodic audits that repair drift, link failures that reroute, switches that come back."""
from __future__ import annotations

import ipaddress

from mcast_sdn import topofile
from mcast_sdn.core import Core, CoreConfig, Out
from mcast_sdn.fakedp import FakeNetwork, connect, spec_ports
from mcast_sdn.messages import GroupRecord, RecordType, Report
from mcast_sdn.ofmodel import (
    COOKIE_MISS,
    COOKIE_SRCDISC,
    TABLE_MCAST,
    FlowAdd,
    FlowDelete,
    GroupDelete,
    GroupModify,
    SwitchState,
    diff,
)

from .test_forwarding_props import udp_frame

GROUP = "239.30.0.1"


ports_of = spec_ports


def boot(spec, now=0.0, readback=None, **cfg) -> tuple[Core, Out]:
    """Connect every switch; readback: dpid -> SwitchState the switch already holds."""
    core = Core(CoreConfig(settle=0.0, **cfg))
    out = connect(core, spec, now, readback=readback is not None)
    if readback is not None:
        for d, st in readback.items():
            out.extend(core.adopt(now, d, list(st.flows.values()), list(st.groups.values())))
    out.extend(core.tick(now + 0.1))
    return core, out


def learn_hosts(core, spec, now):
    for h in spec.hosts:
        frame = b"\xff" * 6 + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28
        core.packet_in(now, spec.dpid(h.switch), h.port, COOKIE_MISS, frame)


def join(core, spec, h, now, group=GROUP):
    rec = GroupRecord(RecordType.CHANGE_TO_EXCLUDE, ipaddress.ip_address(group), ())
    msg = Report(4, 3, ipaddress.ip_address(h.ip.split("/")[0]), (rec,))
    eff = core.members.handle(now, spec.dpid(h.switch), h.port, msg)
    out = Out()
    return core._finish(now, out, set(), core._effects(now, eff, out))


def deliveries(core, spec, sender, group=GROUP):
    net = FakeNetwork(core.installed, core.topo.link_ports())
    pkt = {"eth_src": sender.mac, "eth_dst": "01:00:5e:1e:00:01", "eth_type": 0x0800,
           "ipv4_src": sender.ip.split("/")[0], "ipv4_dst": group}
    return net.inject(spec.dpid(sender.switch), sender.port, pkt)


def mcast_changes(out: Out, held: dict | None = None):
    """Changes that could disturb a stream: tree entries of the multicast table changed or
    removed, groups re-bucketed or removed (with `held`: only entries the switches held)."""
    res = []
    for d in {d for st in out.stages() for d in st}:
        for c in out.all_changes(d):
            if isinstance(c, (FlowAdd, FlowDelete)) and c.entry.table == TABLE_MCAST and c.entry.priority >= 200:
                if held is None or c.entry.key in held[d].flows:
                    res.append((d, c))
            elif isinstance(c, (GroupModify, GroupDelete)):
                gid = c.entry.group_id if isinstance(c, GroupModify) else c.group_id
                if held is None or gid in held[d].groups:
                    res.append((d, c))
    return res


def running(spec):
    core, _ = boot(spec)
    learn_hosts(core, spec, 1.0)
    for h in spec.hosts[1:]:
        join(core, spec, h, 1.0)
    core.packet_in(1.0, spec.dpid(spec.hosts[0].switch), spec.hosts[0].port, COOKIE_SRCDISC, udp_frame(spec.hosts[0], GROUP))
    return core


def test_controller_restart_adopts_trees_without_touching_them():
    spec = topofile.fat_tree(4)
    old = running(spec)
    want = {(spec.dpid(h.switch), h.port): 1 for h in spec.hosts[1:]}
    assert dict(deliveries(old, spec, spec.hosts[0]).delivered) == want
    held = {d: st.copy() for d, st in old.installed.items()}  # what the switches keep (fail_mode secure)

    core, out = boot(spec, now=100.0, readback=held)
    assert not mcast_changes(out), "adoption must not touch the multicast table"
    assert core.counters["source_adopted"] == 1
    # traffic keeps flowing on the adopted entries while membership is rebuilt
    assert dict(deliveries(core, spec, spec.hosts[0]).delivered) == want
    t = 101.0
    learn_hosts(core, spec, t)
    total = Out()
    for h in spec.hosts[1:]:  # hosts answer the startup queries one by one
        total.extend(join(core, spec, h, t))
        assert dict(deliveries(core, spec, spec.hosts[0]).delivered) == want, "members lost traffic during the rebuild"
    total.extend(core.tick(core.grace_until + 0.1))
    bad = mcast_changes(total, held)
    assert not bad, f"rebuilt trees should equal the adopted ones: {bad[:3]}"
    assert dict(deliveries(core, spec, spec.hosts[0]).delivered) == want
    for d in core.installed:
        assert diff(core.desired(t, d), core.installed[d]) == []
    assert {d: st.groups for d, st in core.installed.items()} == {d: st.groups for d, st in held.items()}


def test_restart_grace_end_removes_what_nobody_wants():
    spec = topofile.linear(3)
    old = running(spec)
    held = {d: st.copy() for d, st in old.installed.items()}
    core, _ = boot(spec, now=50.0, readback=held)
    # nobody re-joins: after the grace the adopted trees go away
    out = core.tick(core.grace_until + 0.1)
    assert any(isinstance(c, (FlowDelete, GroupDelete)) for d in out.by_dpid for c in out.all_changes(d))
    assert not deliveries(core, spec, spec.hosts[0]).delivered


def test_reconnect_with_entries_kept_sends_nothing_and_with_entries_lost_reinstalls():
    spec = topofile.ring(4)
    core = running(spec)
    core.tick(core.grace_until + 1)  # long after start: no grace
    now = core.grace_until + 2 if core.grace_until else 200.0
    d = spec.dpid("s2")
    kept = core.installed[d].copy()
    ports = [(p, True, "") for p in ports_of(spec)[d]]
    core.switch_leave(now, d)
    core.switch_enter(now + 1, d, ports, readback=True)
    for l in spec.links:
        if d in (spec.dpid(l.a), spec.dpid(l.b)):
            core.link_add(now + 1, (spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port))
    out = core.adopt(now + 1, d, list(kept.flows.values()), list(kept.groups.values()))
    assert not out.all_changes(d), f"switch kept its entries: nothing to send, got {out.all_changes(d)[:3]}"
    assert core.installed[d].flows == kept.flows
    # the switch restarted and lost everything: all of it comes back, nothing duplicated
    core.switch_leave(now + 2, d)
    core.switch_enter(now + 3, d, ports, readback=True)
    for l in spec.links:
        if d in (spec.dpid(l.a), spec.dpid(l.b)):
            core.link_add(now + 3, (spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port))
    out = core.adopt(now + 3, d, [], [])
    adds = [c for c in out.all_changes(d) if isinstance(c, FlowAdd)]
    assert len(adds) == len(kept.flows) and {c.entry.key for c in adds} == set(kept.flows)
    want = {(spec.dpid(h.switch), h.port): 1 for h in spec.hosts[1:]}
    assert dict(deliveries(core, spec, spec.hosts[0]).delivered) == want


def test_failed_readback_starts_clean():
    spec = topofile.linear(2)
    core, out = boot(spec, readback={})
    core2 = Core(CoreConfig(settle=0.0))
    core2.switch_enter(0.0, 1, [(1, True, ""), (2, True, "")], readback=True)
    out = core2.adopt(0.0, 1, None, None)
    assert type(out.by_dpid[1][0]).__name__ == "DeleteAllOurs"
    assert core2.counters["readback_failed"] == 1


def test_audit_repairs_drift_and_ignores_stale_readbacks():
    spec = topofile.linear(3)
    core = running(spec)
    d = spec.dpid("s2")
    good = core.installed[d].copy()
    drifted = SwitchState({k: f for k, f in good.flows.items() if f.table != TABLE_MCAST}, dict(good.groups))
    token = core.audit_token(d)
    out = core.audit(10.0, d, token, list(drifted.flows.values()), list(drifted.groups.values()))
    readd = {c.entry.key for c in out.all_changes(d) if isinstance(c, FlowAdd)}
    assert readd == set(good.flows) - set(drifted.flows)
    assert core.counters["audit_repairs"] == 1
    assert core.installed[d].flows == good.flows
    # identical read-back: nothing
    assert not core.audit(11.0, d, core.audit_token(d), list(good.flows.values()), list(good.groups.values()))
    # a read-back requested before we changed the switch is not trusted
    token = core.audit_token(d)
    join(core, spec, spec.hosts[1], 12.0, group="239.30.0.9")
    core.packet_in(12.0, 1, spec.hosts[0].port, COOKIE_SRCDISC, udp_frame(spec.hosts[0], "239.30.0.9"))
    assert not core.audit(12.0, d, token, list(drifted.flows.values()), list(drifted.groups.values()))
    assert core.counters["audit_skipped_busy"] == 1


def test_link_failure_reroutes_trees_on_a_ring():
    spec = topofile.ring(4)
    core = running(spec)
    want = {(spec.dpid(h.switch), h.port): 1 for h in spec.hosts[1:]}
    res = deliveries(core, spec, spec.hosts[0])
    used = next(iter(res.link_copies))
    peer = core.topo.link_ports()[used]
    core.link_delete(5.0, used, peer)
    core.port_update(5.0, used[0], used[1], False)
    res = deliveries(core, spec, spec.hosts[0])
    assert dict(res.delivered) == want and res.max_link_stress() == 1
    assert used not in res.link_copies


def test_switch_away_keeps_forwarding_then_is_forgotten():
    """A switch whose control channel drops keeps its place in the trees (fail_mode secure:
    it still forwards); only after the group membership interval is it forgotten."""
    spec = topofile.linear(3)
    core = running(spec)
    want = {(spec.dpid(h.switch), h.port): 1 for h in spec.hosts[1:]}
    d = spec.dpid("s3")
    out = core.switch_leave(10.0, d)
    assert not out
    # discovery loses its links: ignored while the switch is only unreachable for us
    l = [l for l in spec.links if "s3" in (l.a, l.b)][0]
    assert not core.link_delete(10.0, (spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port))
    assert dict(deliveries(core, spec, spec.hosts[0]).delivered) == want
    assert any(k[0] == d for k in core.members.ports())
    core.tick(10.0 + core.members.config.group_membership_interval + 1)
    assert not any(k[0] == d for k in core.members.ports())
    assert core.counters["switch_forgotten"] == 1
    assert d not in core.installed


def test_new_tree_is_sent_downstream_first_and_the_first_packet_last():
    """A new source on a line of 4: s2..s4 get their entries in a stage before the first
    hop's (s1) entry, which has a stage of its own; the re-injected first packet comes last."""
    spec = topofile.linear(4)
    core, _ = boot(spec)
    learn_hosts(core, spec, 1.0)
    join(core, spec, spec.hosts[3], 1.0)
    out = core.packet_in(1.0, 1, spec.hosts[0].port, COOKIE_SRCDISC, udp_frame(spec.hosts[0], GROUP))
    stages = out.stages()
    flow_stage = {}
    for i, st in enumerate(stages):
        for d, ch in st.items():
            if any(type(c).__name__ == "FlowAdd" for c in ch):
                flow_stage.setdefault(d, i)
    assert set(flow_stage) == {1, 2, 3, 4}, flow_stage
    assert all(flow_stage[d] < flow_stage[1] for d in (2, 3, 4)), flow_stage
    assert list(stages[flow_stage[1]]) == [1]
    # the re-injected packet is the very last change (merged into the first hop's batch:
    # one switch applies one connection's messages in order)
    assert list(stages[-1]) == [1] and type(stages[-1][1][-1]).__name__ == "PacketOut"
    assert sum(type(c).__name__ == "PacketOut" for st in stages for ch in st.values() for c in ch) == 1


def test_group_id_released_while_switch_is_away_is_not_reused_before_its_delete_is_sent():
    """An id freed on a switch that is away is not handed to another bucket set until the
    switch got the delete (else a flow still pointing at it there would change meaning)."""
    spec = topofile.linear(3)
    core = running(spec)  # h2 on s2 and h3 on s3 are members; h1 on s1 sends
    d = spec.dpid("s2")
    mt = core.mtables[d]
    before = dict(mt.gid_of)
    assert before
    core.switch_leave(5.0, d)
    # h3 leaves (s2's bucket set changes: its old group id is released), then another group
    # needs a new bucket set on s2
    rec = GroupRecord(RecordType.CHANGE_TO_INCLUDE, ipaddress.ip_address(GROUP), ())
    h3 = spec.hosts[2]
    core.members.handle(5.0, spec.dpid(h3.switch), h3.port, Report(4, 3, ipaddress.ip_address(h3.ip.split("/")[0]), (rec,)))
    core.tick(9.0)  # last-member query time over: pruned
    join(core, spec, spec.hosts[2], 9.5, group="239.30.0.2")
    core.packet_in(9.5, 1, spec.hosts[0].port, COOKIE_SRCDISC, udp_frame(spec.hosts[0], "239.30.0.2"))
    freed = set(before.values()) - set(mt.gid_of.values())
    assert freed, "the leave released a group id on s2"
    reused = {gid for outs, gid in mt.gid_of.items() if gid in freed and before.get(outs) != gid}
    assert not reused, f"ids {reused} reused on s2 before their delete reached it"


def test_punted_packet_of_a_switch_awaiting_read_back_is_not_bounced():
    """A source's packet from a switch whose read-back is pending: nothing is installed
    there, so re-injecting it would only bring it back; it is dropped and counted."""
    spec = topofile.linear(2)
    core = running(spec)
    d = spec.dpid("s1")
    core.switch_leave(5.0, d)
    core.switch_enter(6.0, d, [(p, True, "") for p in ports_of(spec)[d]], readback=True)
    out = core.packet_in(6.0, d, spec.hosts[0].port, COOKIE_SRCDISC, udp_frame(spec.hosts[0], "239.30.0.9"))
    assert not any(type(c).__name__ == "PacketOut" for st in out.stages() for ch in st.values() for c in ch)
    assert core.counters["drop_source_no_entry"] == 1
