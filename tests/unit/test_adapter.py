"""The adapter's sending side, without a switch: ONF bundles compiled by ofmsgs, and
app.Sender (per-switch writers, staged dispatch, barriers, overflow, bundle errors)
driven with stub datapaths under eventlet green threads."""
from __future__ import annotations

import struct
import time
from types import SimpleNamespace

import pytest
from ryu.lib import hub
from ryu.ofproto import ofproto_parser as ofp_parser_mod, ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from mcast_sdn import app, ofmsgs
from mcast_sdn.core import Out
from mcast_sdn.ofmodel import (
    TABLE_MCAST,
    Barrier,
    Bundle,
    COOKIE_MCAST,
    FlowAdd,
    FlowDelete,
    FlowEntry,
    GroupAdd,
    GroupDelete,
    GroupEntry,
    GroupModify,
    MeterAdd,
    MeterEntry,
    Output,
    ToGroup,
    match,
)


def flow(n: int, gid: int | None = None) -> FlowEntry:
    acts = (ToGroup(gid),) if gid is not None else (Output(1),)
    return FlowEntry(TABLE_MCAST, 300, match(in_port=3, eth_type=0x0800, ipv4_dst=f"239.1.1.{n}"), acts, None, COOKIE_MCAST)


GROUP = GroupEntry(7, ((Output(1),), (Output(2),)))


class StubDP:
    """Enough of a Ryu Datapath: xids, serialisation of what is sent, a gate that blocks
    send_msg (a switch that stopped reading), and optional automatic barrier replies."""

    ofproto = ofp
    ofproto_parser = parser

    def __init__(self, dpid: int = 1, sender=None, auto_barrier: bool = True):
        self.id = dpid
        self.xid = 0
        self.sent: list = []
        self.gate = None
        self.sender = sender
        self.auto_barrier = auto_barrier

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg):
        if msg.xid is None:
            self.set_xid(msg)
        while self.gate is not None and not self.gate.is_set():
            self.gate.wait()
        msg.serialize()
        self.sent.append(msg)
        if self.auto_barrier and self.sender is not None and isinstance(msg, parser.OFPBarrierRequest):
            hub.spawn(self.sender.barrier_reply, self, msg.xid)

    def reply_barriers(self):
        for m in self.sent:
            if isinstance(m, parser.OFPBarrierRequest):
                self.sender.barrier_reply(self, m.xid)

    def kinds(self) -> list[str]:
        return [_kind(m) for m in self.sent]


def _kind(m) -> str:
    if isinstance(m, parser.ONFBundleCtrlMsg):
        return {ofp.ONF_BCT_OPEN_REQUEST: "open", ofp.ONF_BCT_COMMIT_REQUEST: "commit"}[m.type]
    if isinstance(m, parser.ONFBundleAddMsg):
        return "add"
    if isinstance(m, parser.OFPBarrierRequest):
        return "barrier"
    if isinstance(m, parser.OFPFlowMod):
        return "flow"
    if isinstance(m, parser.OFPGroupMod):
        return "group"
    return type(m).__name__


def until(cond, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        hub.sleep(0.005)
    return cond()


def send_all(dp, msgs):
    for m in msgs:
        dp.send_msg(m)


# ====================================================================== ofmsgs: bundles

def test_bundle_compiles_to_open_adds_commit_atomic_ordered_and_serialises():
    dp = StubDP()
    b = Bundle((GroupAdd(GROUP), FlowAdd(flow(1, gid=7)), FlowDelete(flow(2)), GroupModify(GROUP), GroupDelete(9)))
    msgs = ofmsgs.compile_change(dp, b)
    assert [_kind(m) for m in msgs] == ["open", "add", "add", "add", "add", "add", "commit"]
    bid = msgs[0].bundle_id
    assert all(m.bundle_id == bid for m in msgs)
    assert all(m.flags == ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED for m in msgs)
    send_all(dp, msgs)  # serialises each with its own xid
    # the inner messages are exactly the plain messages, in order, each with its ADD's xid
    plain = [m for c in b.changes for m in ofmsgs.compile_change(StubDP(), c)]
    for add, p in zip(msgs[1:-1], plain):
        p.set_xid(add.xid)
        p.serialize()
        assert bytes(add.buf[ofp.OFP_EXPERIMENTER_HEADER_SIZE + 8:]) == bytes(p.buf)
        assert struct.unpack_from(ofp.ONF_BUNDLE_ADD_MSG_PACK_STR, add.buf, ofp.OFP_EXPERIMENTER_HEADER_SIZE) == (bid, ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED)
    # OPEN and COMMIT parse back as ONF bundle control messages
    for m, typ in ((msgs[0], ofp.ONF_BCT_OPEN_REQUEST), (msgs[-1], ofp.ONF_BCT_COMMIT_REQUEST)):
        version, msg_type, msg_len, xid = ofp_parser_mod.header(bytes(m.buf))
        back = ofp_parser_mod.msg(dp, version, msg_type, msg_len, xid, bytes(m.buf))
        assert isinstance(back, parser.ONFBundleCtrlMsg)
        assert (back.bundle_id, back.type, back.flags, back.xid) == (bid, typ, ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED, m.xid)


def test_bundle_ids_unique_per_connection():
    dp, other = StubDP(), StubDP()
    b = Bundle((FlowAdd(flow(1)), FlowAdd(flow(2))))
    ids = [ofmsgs.compile_change(dp, b)[0].bundle_id for _ in range(3)]
    assert len(set(ids)) == 3
    assert ofmsgs.compile_change(other, b)[0].bundle_id == ids[0], "a new connection counts on its own"


def test_bundle_edge_cases():
    dp = StubDP()
    assert ofmsgs.compile_change(dp, Bundle(())) == []
    one = ofmsgs.compile_change(dp, Bundle((FlowAdd(flow(1)),)))
    assert [_kind(m) for m in one] == ["flow"], "a bundle of one change is the plain message"
    plain = ofmsgs.compile_change(dp, Bundle((GroupAdd(GROUP), FlowAdd(flow(1, gid=7)))), bundles=False)
    assert [_kind(m) for m in plain] == ["group", "flow"], "no bundles: inner messages in order"
    with_barrier = ofmsgs.compile_change(dp, Bundle((FlowAdd(flow(1)), Barrier(), FlowDelete(flow(2)))))
    assert [_kind(m) for m in with_barrier] == ["open", "add", "add", "commit"], "ordered bundle: barrier dropped"
    with pytest.raises(TypeError):
        ofmsgs.compile_change(dp, Bundle((FlowAdd(flow(1)), MeterAdd(MeterEntry(1, 10, 10)))))


def test_bundle_error_info_names_our_bundle_messages():
    dp = StubDP()
    msgs = ofmsgs.compile_change(dp, Bundle((FlowAdd(flow(1)), FlowAdd(flow(2)))))
    send_all(dp, msgs)
    bid = msgs[0].bundle_id
    # an OFPT_ERROR carries (at least) the first 64 bytes of the offending message
    assert [ofmsgs.bundle_error_info(bytes(m.buf[:64])) for m in msgs] == [("open", bid), ("add", bid), ("add", bid), ("commit", bid)]
    fm = ofmsgs.compile_change(dp, FlowAdd(flow(3)))[0]
    dp.send_msg(fm)
    assert ofmsgs.bundle_error_info(bytes(fm.buf[:64])) is None
    assert ofmsgs.bundle_error_info(b"") is None
    other = parser.OFPExperimenter(dp, experimenter=0x2320, exp_type=ofp.ONF_ET_BUNDLE_CONTROL, data=b"\0" * 8)
    dp.send_msg(other)
    assert ofmsgs.bundle_error_info(bytes(other.buf)) is None, "another experimenter's message"


# ====================================================================== Sender

@pytest.fixture
def sender():
    audits: list[int] = []
    dps: dict = {}

    class Counters(dict):
        def __missing__(self, k):
            return 0

    s = app.Sender(dps, Counters(), audits.append)
    s.audits = audits

    def add(dpid, **kw):
        dp = StubDP(dpid, s, **kw)
        dps[dpid] = dp
        return dp

    s.add = add
    yield s
    for dp in dps.values():
        if dp.gate is not None:
            dp.gate.set()
    for dpid in list(s.writers):
        s.remove(dpid)
    hub.kill(s.thread)
    hub.sleep(0)


def out_of(*stages) -> Out:
    o = Out()
    for k, st in enumerate(stages):
        for dpid, changes in st.items():
            o.add(dpid, changes, stage=k)
    return o


def test_sender_stages_in_order_with_barriers_and_fifo_across_outs(sender):
    d1, d2 = sender.add(1, auto_barrier=False), sender.add(2)
    sender.send(out_of({1: [FlowAdd(flow(1))]}, {2: [FlowAdd(flow(2))]}))
    sender.send(out_of({1: [FlowAdd(flow(3))], 2: [FlowAdd(flow(4))]}))
    assert until(lambda: d1.kinds() == ["flow", "barrier"])
    hub.sleep(0.1)
    assert d2.sent == [], "stage 1 waits for switch 1's barrier"
    d1.reply_barriers()
    assert until(lambda: len(d1.sent) == 3 and len(d2.sent) == 2)
    assert [m.match["ipv4_dst"] for m in d1.sent if _kind(m) == "flow"] == ["239.1.1.1", "239.1.1.3"]
    assert [m.match["ipv4_dst"] for m in d2.sent] == ["239.1.1.2", "239.1.1.4"]
    assert sender.counters["barrier_timeout"] == 0


def test_a_blocked_switch_does_not_stall_the_others(sender):
    d1, d2 = sender.add(1), sender.add(2)
    d1.gate = hub.Event()  # switch 1 stops reading: its send_msg blocks
    t0 = time.monotonic()
    for i in range(50):
        sender.send(out_of({1: [FlowAdd(flow(i % 200))], 2: [FlowAdd(flow(i % 200))]}))
    assert until(lambda: len(d2.sent) == 50, timeout=2.0)
    assert time.monotonic() - t0 < 1.0
    assert d1.sent == []
    assert sender.after_queue(1, timeout=0.2) is False, "switch 1's queue has not been written"
    assert sender.after_queue(2, timeout=1.0) is True
    d1.gate.set()
    assert sender.after_queue(1, timeout=2.0) is True
    assert len(d1.sent) == 50


def test_barrier_timeout_marks_lagging_and_later_stages_do_not_wait(sender, monkeypatch):
    monkeypatch.setattr(app, "BARRIER_TIMEOUT", 0.3)
    d1, d2 = sender.add(1, auto_barrier=False), sender.add(2)  # switch 1 never answers
    two_stages = out_of({1: [FlowAdd(flow(1))], 2: [FlowAdd(flow(1))]}, {2: [FlowAdd(flow(2))]})
    t0 = time.monotonic()
    sender.send(two_stages)
    assert until(lambda: len(d2.sent) == 3)  # flow, barrier, flow
    first = time.monotonic() - t0
    assert 0.25 <= first < 1.5
    assert sender.counters["barrier_timeout"] == 1
    assert sender.writers[1].lagging
    t0 = time.monotonic()
    sender.send(two_stages)
    assert until(lambda: len(d2.sent) == 6)
    assert time.monotonic() - t0 < 0.2, "a lagging switch is not waited for again"
    assert sender.counters["barrier_timeout"] == 1
    # it answers its latest barrier: caught up, waited for again
    d1.reply_barriers()
    assert not sender.writers[1].lagging
    t0 = time.monotonic()
    sender.send(two_stages)
    assert until(lambda: len(d2.sent) == 9)
    assert time.monotonic() - t0 >= 0.25
    assert sender.counters["barrier_timeout"] == 2


def test_only_the_stage_switches_are_waited_for(sender, monkeypatch):
    monkeypatch.setattr(app, "BARRIER_TIMEOUT", 0.5)
    d1, d2, d3 = sender.add(1, auto_barrier=False), sender.add(2), sender.add(3)
    t0 = time.monotonic()
    # switch 1 (silent) is in the last stage only: no barrier is sent to it, nobody waits
    sender.send(out_of({2: [FlowAdd(flow(1))]}, {3: [FlowAdd(flow(2))]}, {1: [FlowAdd(flow(3))]}))
    assert until(lambda: len(d1.sent) == 1)
    assert time.monotonic() - t0 < 0.3
    assert d1.kinds() == ["flow"] and d2.kinds() == ["flow", "barrier"] and d3.kinds() == ["flow", "barrier"]


def test_full_queue_is_dropped_counted_and_audited(sender, monkeypatch):
    monkeypatch.setattr(app, "SEND_QUEUE_MAX", 10)
    d1, d2 = sender.add(1), sender.add(2)
    big = [FlowAdd(flow(i)) for i in range(25)]
    sender.send(out_of({1: big, 2: big}))
    assert sender.after_queue(None, timeout=2.0), "one Out bigger than the bound passes on switches that keep up"
    assert len(d1.sent) == len(d2.sent) == 25 and sender.counters["send_queue_overflow"] == 0
    d1.gate = hub.Event()  # switch 1 stops reading
    for i in range(4):
        sender.send(out_of({1: big[:6], 2: big[:6]}))
    assert until(lambda: len(d2.sent) == 49)
    # switch 1: the first list is being written (blocked), 6 wait, 6 more (12 >= 10 waiting: full)
    assert sender.counters["send_queue_overflow"] == 1
    assert sender.counters["send_queue_dropped"] == 12 + 6
    assert sender.audits == [1]
    assert sender.writers[1].lagging, "a switch that overflowed is not waited for"
    d1.gate.set()
    assert sender.after_queue(1, timeout=2.0)
    assert len(d1.sent) == 25 + 6, "dropped changes are not sent"
    assert sender.counters["barrier_timeout"] == 0


def test_disconnect_stops_the_writer_and_releases_waiters(sender, monkeypatch):
    monkeypatch.setattr(app, "BARRIER_TIMEOUT", 5.0)
    d1, d2 = sender.add(1, auto_barrier=False), sender.add(2)
    sender.send(out_of({1: [FlowAdd(flow(1))]}, {2: [FlowAdd(flow(2))]}))
    assert until(lambda: d1.kinds() == ["flow", "barrier"])
    w = sender.writers[1]
    t0 = time.monotonic()
    del sender.dps[1]
    sender.remove(1)
    assert until(lambda: len(d2.sent) == 1, timeout=1.0), "the stage wait ends when the switch leaves"
    assert time.monotonic() - t0 < 1.0
    assert until(lambda: w.thread.dead)
    assert 1 not in sender.writers
    sender.send(out_of({1: [FlowAdd(flow(3))]}))
    assert sender.after_queue(None, timeout=1.0)
    assert len(d1.sent) == 2 and 1 not in sender.writers


def test_reconnect_gets_a_new_writer(sender):
    d1 = sender.add(1)
    sender.send(out_of({1: [FlowAdd(flow(1))]}))
    assert sender.after_queue(1)
    old = sender.writers[1]
    d1b = sender.add(1)  # same dpid, new connection
    sender.send(out_of({1: [FlowAdd(flow(2))]}))
    assert sender.after_queue(1)
    assert sender.writers[1] is not old and sender.writers[1].dp is d1b
    assert len(d1.sent) == 1 and len(d1b.sent) == 1
    assert until(lambda: old.thread.dead)


def _error(type_, code, offending, experimenter=False):
    return SimpleNamespace(type=ofp.OFPET_EXPERIMENTER if experimenter else type_, code=code, data=bytes(offending.buf[:64]))


def test_switch_rejecting_bundles_gets_plain_messages(sender):
    d1 = sender.add(1)
    bundle = Bundle((GroupAdd(GROUP), FlowAdd(flow(1, gid=7))))
    sender.send(out_of({1: [bundle]}))
    assert sender.after_queue(1)
    assert d1.kinds() == ["open", "add", "add", "commit"]
    # the switch answers OPEN, each ADD and COMMIT with "bad experimenter"
    for m in d1.sent:
        sender.error(d1, _error(ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXPERIMENTER, m))
    assert sender.counters["bundle_unsupported"] == 1
    assert sender.counters["bundle_error"] == 0
    assert sender.audits == [1, 1, 1, 1]  # the app runs one at a time per switch
    sender.send(out_of({1: [bundle]}))
    assert sender.after_queue(1)
    assert d1.kinds()[4:] == ["group", "flow"]


def test_failed_bundle_counted_once_logged_once_and_audited(sender, caplog):
    d1 = sender.add(1)
    bundle = Bundle((FlowAdd(flow(1)), FlowAdd(flow(2, gid=99))))
    sender.send(out_of({1: [bundle, bundle]}))
    assert sender.after_queue(1)
    opens = [i for i, k in enumerate(d1.kinds()) if k == "open"]
    assert len(opens) == 2 and d1.sent[opens[0]].bundle_id != d1.sent[opens[1]].bundle_id
    with caplog.at_level("WARNING", logger="mcast_sdn"):
        for start in opens:
            add, commit = d1.sent[start + 2], d1.sent[start + 3]
            # as OVS 3.1 answers: the failing message's error, then the commit's bundle error
            sender.error(d1, _error(ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_GROUP, add))
            sender.error(d1, _error(None, None, commit, experimenter=True))
    assert sender.counters["bundle_error"] == 2
    assert sender.counters["bundle_unsupported"] == 0
    assert 1 not in sender.no_bundles
    assert len([r for r in caplog.records if "bundle" in r.getMessage()]) == 1
    assert set(sender.audits) == {1}
    # errors about plain messages are not bundle errors (here: the inner FlowMod of an ADD)
    inner = bytes(d1.sent[1].buf[ofp.OFP_EXPERIMENTER_HEADER_SIZE + 8:])
    sender.error(d1, SimpleNamespace(type=ofp.OFPET_FLOW_MOD_FAILED, code=0, data=inner))
    assert sender.counters["bundle_error"] == 2


def test_error_on_open_that_is_a_bundle_error_is_not_unsupported(sender):
    d1 = sender.add(1)
    sender.send(out_of({1: [Bundle((FlowAdd(flow(1)), FlowAdd(flow(2))))]}))
    assert sender.after_queue(1)
    sender.error(d1, _error(None, None, d1.sent[0], experimenter=True))
    assert sender.counters["bundle_unsupported"] == 0 and sender.counters["bundle_error"] == 1
    assert 1 not in sender.no_bundles


def test_vlan_version_tag_actions_compile_and_read_back():
    """Push (with its VLAN id) and pop survive compile -> switch -> read-back unchanged."""
    from ryu.ofproto import ofproto_v1_3_parser as p

    from mcast_sdn import ofmsgs
    from mcast_sdn.ofmodel import GroupAdd, GroupEntry, Output, PopVlan, PushVlan

    class DP:
        ofproto = ofmsgs.ofp
        ofproto_parser = ofmsgs.parser

        def set_xid(self, m):
            m.xid = 1

    g = GroupEntry(9, ((Output(1),), (PushVlan(4000), Output(2)), (PopVlan(), Output(3))))
    (msg,) = ofmsgs.compile_change(DP(), GroupAdd(g))
    msg.serialize()
    acts = msg.buckets[1].actions
    assert isinstance(acts[0], p.OFPActionPushVlan) and acts[1].key == "vlan_vid" and acts[1].value == 4000 | 0x1000
    assert ofmsgs.group_from_desc(p.OFPGroupDescStats(type_=0, group_id=9, buckets=msg.buckets)) == g
