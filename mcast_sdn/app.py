"""The Ryu adapter: the only module that imports ryu.controller / ryu.base.

Launch:  ryu-manager mcast_sdn.app   (link discovery is switched on by this module)
   or:   mcast-sdn [ryu-manager options]

Every handler does the same four things: read the clock, translate the Ryu event
into plain values, call the core, and send the changes the core returns. No
decisions are made here. Settings come from the JSON file named by the
MCAST_SDN_CONFIG environment variable (see `mcast_sdn.settings`).
"""
from __future__ import annotations

import logging
import time

from mcast_sdn import compat

compat.install()  # before ryu.app.wsgi is imported (harmless if already done)

from ryu import cfg  # noqa: E402
from ryu.app.ofctl import api as ofctl_api  # noqa: E402  (loads ryu.app.ofctl.service: switch read-back)
from ryu.app.wsgi import WSGIApplication  # noqa: E402
from ryu.base import app_manager  # noqa: E402
from ryu.controller import ofp_event  # noqa: E402
from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls  # noqa: E402
from ryu.lib import hub  # noqa: E402
from ryu.ofproto import ofproto_v1_3  # noqa: E402
from ryu.topology import event as topo_event  # noqa: E402

from mcast_sdn import ofmsgs, rest, settings  # noqa: E402
from mcast_sdn.core import Core, Out  # noqa: E402
from mcast_sdn.ofmodel import COOKIE_MASK_ALL, COOKIE_PREFIX  # noqa: E402

LOG = logging.getLogger("mcast_sdn")

# Topology discovery is not optional for us: without LLDP every port would look like
# a host port and looped topologies would storm. Turn Ryu's discovery on.
from ryu.topology import switches as _switches  # noqa: E402,F401  (registers --observe-links)

cfg.CONF.set_override("observe_links", True)
app_manager.require_app("ryu.topology.switches", api_style=True)

READBACK_TIMEOUT = 5.0  # seconds for a switch to answer flow/group stats
BARRIER_TIMEOUT = 3.0  # seconds to wait for switches to confirm a stage before sending the next (a loaded OVS can be slow)
TICK = 0.25  # seconds between core ticks (timers are deadlines in the core; this is only the poll)
SEND_QUEUE_MAX = 20000  # changes waiting for one switch at which its queue counts as full (see Sender)
AUDIT_RETRIES = 5  # attempts of an immediate audit (after a dropped queue or a failed bundle)


class _Writer:
    """One switch's send queue and the green thread that writes it to the switch.

    Why one per switch: Ryu's `Datapath.send_msg` blocks once 16 messages wait for the
    socket, so a switch that stops reading (overloaded, hung) blocks whoever writes to it.
    With one writer per switch only that switch's writer waits; the dispatcher only puts
    items on queues and never blocks on a switch.

    Items, in order: ("c", [changes]) one stage of one Out, compiled here at write time, so
    a switch found not to support bundles gets plain messages from then on; ("b", event) a
    barrier request whose reply sets `event`; ("m", event) a marker set once everything
    before it was handed to the connection (OpenFlow keeps per-connection order);
    ("stop", None).
    """

    def __init__(self, sender: "Sender", dp):
        self.sender = sender
        self.dp = dp
        self.q = hub.Queue()  # bounded by `put` (SEND_QUEUE_MAX changes), never by blocking
        self.changes = 0  # changes waiting in `q`
        self.lagging = False  # missed a barrier deadline; not waited for until it answers the latest barrier
        self.barriers: dict[int, object] = {}  # xid -> event, in send order
        self.last_barrier: int | None = None  # xid of the latest barrier sent
        self.thread = hub.spawn(self._run)

    def put(self, kind: str, x) -> bool:
        """Queue an item; False if the queue was full and it was dropped with everything queued.

        Full means SEND_QUEUE_MAX changes are still waiting *before* this list: a list is
        never refused for its own size, so one big Out (a whole switch reinstalled) goes
        through on a switch that keeps up; only a switch that falls behind by more than
        the bound loses its queue."""
        if kind == "c":
            if self.changes >= SEND_QUEUE_MAX:
                self.sender.overflow(self, len(x))
                return False
            self.changes += len(x)
        self.q.put((kind, x))
        return True

    def drain(self) -> int:
        """Drop everything queued: markers and barrier waiters are released (a dropped
        item will never be written, nobody should wait for it). Returns changes dropped."""
        n = 0
        while True:
            try:
                kind, x = self.q.get_nowait()
            except hub.QueueEmpty:
                break
            if kind == "c":
                n += len(x)
            elif x is not None:
                x.set()
        self.changes = 0
        return n

    def stop(self) -> None:
        """The switch left or reconnected: drop the queue, release every waiter, end the thread."""
        self.drain()
        for ev in self.barriers.values():
            ev.set()
        self.barriers.clear()
        self.q.put(("stop", None))

    def barrier_reply(self, xid: int) -> None:
        """Replies come in send order, so one reply confirms every barrier sent before it."""
        if xid not in self.barriers:
            return
        for k in list(self.barriers):
            self.barriers.pop(k).set()
            if k == xid:
                break
        if xid == self.last_barrier and self.lagging:
            self.lagging = False
            LOG.info("switch %016x caught up (answered its latest barrier)", self.dp.id)

    def _run(self) -> None:
        dp = self.dp
        while True:
            kind, x = self.q.get()
            try:
                if kind == "c":
                    self.changes -= len(x)
                    for c in x:
                        msgs = ofmsgs.compile_change(dp, c, bundles=dp.id not in self.sender.no_bundles)
                        if msgs and isinstance(msgs[0], dp.ofproto_parser.ONFBundleCtrlMsg):
                            self.sender.counters["bundle_sent"] += 1
                        for msg in msgs:
                            dp.send_msg(msg)
                elif kind == "b":
                    req = dp.ofproto_parser.OFPBarrierRequest(dp)
                    dp.set_xid(req)
                    self.barriers[req.xid] = x
                    self.last_barrier = req.xid
                    dp.send_msg(req)
                elif kind == "m":
                    x.set()
                else:
                    return
            except Exception:  # a bug (or a dying connection) must not stop this switch's writer
                LOG.exception("sending to %016x failed", dp.id)


class _Marker:
    """`after_queue`'s request: set `dispatched` when the dispatcher reaches it, with one
    event per writer in `written`, set when that writer reaches it."""

    def __init__(self, dpid):
        self.dpid = dpid
        self.dispatched = hub.Event()
        self.written: list = []


class Sender:
    """Sends the core's Outs: in order, stage by stage, one writer per switch.

    Why: the core's model of what each switch holds assumes every change reaches the
    switch in the order the core produced it, across Outs (per-switch FIFO); and within an
    Out a stage may only go out when the switches of the previous stage confirmed theirs
    (barrier), so packets never enter a part of a tree that is not installed yet.

    One dispatcher green thread takes Outs in order and puts each stage's changes on the
    writers of its switches (`_Writer`), then waits for a barrier reply from each switch of
    that stage only, with one shared deadline of BARRIER_TIMEOUT. A switch that misses it
    is marked lagging (counter barrier_timeout) and is not waited for again until it
    answers its latest barrier, so a dead or slow switch delays the others once, not on
    every stage. Its own changes still queue in order behind its writer.

    A writer's queue is bounded (SEND_QUEUE_MAX changes waiting). When full, everything
    queued for that switch is dropped (counter send_queue_overflow) rather than growing
    without limit, and the switch counts as lagging; the core then believes the switch
    holds entries it does not, so an immediate read-back audit of the switch is requested
    (`audit_soon`), which repairs the drift.

    Bundles (ofmodel.Bundle) go out as ONF bundles; a switch that answers a bundle OPEN
    with an error other than a bundle error does not support them (counter
    bundle_unsupported) and gets plain messages from then on. A failed bundle (counter
    bundle_error, logged once per switch) left the switch without changes the core
    counted as installed, so it is audited too.

    `dps` is the app's live dict dpid -> Datapath; `counters` the core's counters.
    """

    def __init__(self, dps: dict, counters, audit_soon, confirmed=None):
        self.dps = dps
        self.counters = counters
        self.audit_soon = audit_soon
        self.confirmed = confirmed  # called with an Out's `confirms` once all its stages went out
        self.writers: dict[int, _Writer] = {}
        self.no_bundles: set[int] = set()  # switches that rejected a bundle OPEN (kept across reconnects)
        self._bundle_err_last: dict[int, tuple] = {}  # dpid -> (datapath, bundle id) of the last counted bundle error
        self._bundle_err_logged: set[int] = set()
        self._outq = hub.Queue()
        self.thread = hub.spawn(self._loop)

    def send(self, out: Out) -> None:
        if out:
            self._outq.put(out)

    # ---------------------------------------------------------------- writers
    def writer(self, dpid: int) -> _Writer | None:
        """The writer of the switch's current connection (made on first use, replaced
        when the switch reconnected); None if the switch is not connected."""
        dp = self.dps.get(dpid)
        w = self.writers.get(dpid)
        if w is not None and w.dp is dp:
            return w
        if w is not None:
            self.remove(dpid)
        if dp is None:
            return None
        w = self.writers[dpid] = _Writer(self, dp)
        return w

    def remove(self, dpid: int) -> None:
        """Switch gone (or reconnected): stop its writer; queued changes are discarded."""
        w = self.writers.pop(dpid, None)
        if w is not None:
            w.stop()

    def overflow(self, w: _Writer, refused: int) -> None:
        n = w.drain()
        self.counters["send_queue_overflow"] += 1
        self.counters["send_queue_dropped"] += n + refused
        w.lagging = True  # it is not keeping up: do not hold the other switches back for it
        LOG.warning("switch %016x: send queue full (%d changes), dropped; auditing it", w.dp.id, n)
        self.audit_soon(w.dp.id)

    # ---------------------------------------------------------------- dispatcher
    def _loop(self) -> None:
        while True:
            item = self._outq.get()
            try:
                if isinstance(item, _Marker):
                    self._dispatch_marker(item)
                else:
                    self._transmit(item)
            except Exception:  # a bug must not stop the sender
                LOG.exception("sending changes failed")
            hub.sleep(0)  # let the writers run between Outs: a backlog of Outs must not fill a healthy switch's queue

    def _transmit(self, out: Out) -> None:
        stages = out.timed_stages()
        for i, (pause, stage) in enumerate(stages):
            last = i + 1 == len(stages)
            if pause > 0:
                hub.sleep(pause)  # in-flight packets drain before the next stage (see plan.py)
            waits = []
            for dpid, changes in stage.items():
                w = self.writer(dpid)
                if w is None:
                    continue
                w.put("c", changes)
                if not last:
                    ev = hub.Event()
                    if w.put("b", ev) and not w.lagging:
                        waits.append((w, ev))
            if waits:
                self._confirm(waits)
        if out.confirms and self.confirmed is not None:
            # every stage but the last was confirmed and the last is queued behind them:
            # what comes next for these switches is ordered after this Out
            self.confirmed(out.confirms)

    def _confirm(self, waits) -> None:
        """Wait for the barrier replies of one stage, up to one shared BARRIER_TIMEOUT."""
        deadline = time.monotonic() + BARRIER_TIMEOUT
        for w, ev in waits:
            if ev.wait(timeout=max(0.001, deadline - time.monotonic())):
                continue
            if w.lagging or self.writers.get(w.dp.id) is not w:
                continue
            w.lagging = True
            self.counters["barrier_timeout"] += 1
            LOG.warning("switch %016x did not confirm a stage within %.1fs: not waiting for it until it catches up", w.dp.id, BARRIER_TIMEOUT)

    def _dispatch_marker(self, m: _Marker) -> None:
        dpids = [m.dpid] if m.dpid is not None else list(self.writers)
        for dpid in dpids:
            w = self.writer(dpid)
            if w is not None:
                ev = hub.Event()
                w.put("m", ev)
                m.written.append(ev)
        m.dispatched.set()

    def after_queue(self, dpid: int | None = None, timeout: float = 5.0) -> bool:
        """Wait until everything sent before now has been written to switch `dpid` (all
        switches if None), so that a read-back requested next reflects it (OpenFlow keeps
        per-connection order). False on timeout."""
        deadline = time.monotonic() + timeout
        m = _Marker(dpid)
        self._outq.put(m)
        if not m.dispatched.wait(timeout=timeout):
            return False
        return all(ev.wait(timeout=max(0.001, deadline - time.monotonic())) for ev in m.written)

    # ---------------------------------------------------------------- switch replies
    def barrier_reply(self, dp, xid: int) -> None:
        w = self.writers.get(dp.id)
        if w is not None and w.dp is dp:
            w.barrier_reply(xid)

    def error(self, dp, msg) -> None:
        """An OFPT_ERROR from a switch: act on those caused by our bundle messages."""
        info = ofmsgs.bundle_error_info(bytes(msg.data or b""))
        if info is None:
            return
        kind, bid = info
        dpid = dp.id
        bundle_err = msg.type == dp.ofproto.OFPET_EXPERIMENTER  # an ONF bundle error: bundles are supported
        if kind == "open" and not bundle_err:
            if dpid not in self.no_bundles:
                self.no_bundles.add(dpid)
                self.counters["bundle_unsupported"] += 1
                LOG.warning("switch %016x rejects OpenFlow bundles (error type %d code %s): sending plain messages from now on",
                            dpid, msg.type, msg.code)
            self._bundle_err_last[dpid] = (dp, bid)
        elif self._bundle_err_last.get(dpid) != (dp, bid) and not (dpid in self.no_bundles and not bundle_err):
            # one failed bundle may produce several errors (the failing message, then the commit);
            # ids count per connection, hence the datapath in the key
            self._bundle_err_last[dpid] = (dp, bid)
            self.counters["bundle_error"] += 1
            if dpid not in self._bundle_err_logged:
                self._bundle_err_logged.add(dpid)
                LOG.warning("switch %016x: bundle %d failed (%s: error type %d code %s); auditing it (logged once per switch)",
                            dpid, bid, kind, msg.type, msg.code)
        self.audit_soon(dpid)


class McastSdn(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = settings.load()
        self.core = Core(self.settings.core, self.settings.membership, self.settings.trees)
        self.dps: dict[int, object] = {}
        self.sender = Sender(self.dps, self.core.counters, self._audit_soon, lambda tokens: self.core.confirmed(self.now(), tokens))
        self._audits_pending: set[int] = set()
        self._ticker = hub.spawn(self._tick_loop)
        self._auditor = hub.spawn(self._audit_loop)
        rest.attach(kwargs["wsgi"], self)  # the REST API (mcast_sdn/rest.py) + start-up static joins
        LOG.info("mcast-sdn started (settle=%.1fs)", self.settings.core.settle)

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def now() -> float:
        return time.monotonic()

    def send(self, out: Out) -> None:
        """Queue the core's changes; `Sender` transmits them in order, stage by stage."""
        self.sender.send(out)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        self.sender.barrier_reply(ev.msg.datapath, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev):
        self.sender.error(ev.msg.datapath, ev.msg)

    def read_switch(self, dpid: int, timeout: float = 5.0) -> dict:
        """Read back what switch `dpid` holds: flows of our cookie prefix and all groups.

        For REST `?verify=1`. Blocks only the calling green thread. KeyError if the switch
        is not connected, TimeoutError if it does not answer within `timeout` seconds.
        Returns {"flows": [OFPFlowStats], "groups": [OFPGroupDescStats]}.
        """
        dp = self.dps.get(dpid)
        if dp is None:
            raise KeyError(dpid)
        p, o = dp.ofproto_parser, dp.ofproto
        flows_req = p.OFPFlowStatsRequest(dp, 0, o.OFPTT_ALL, o.OFPP_ANY, o.OFPG_ANY, COOKIE_PREFIX, COOKIE_MASK_ALL, p.OFPMatch())
        with hub.Timeout(timeout, TimeoutError):
            flows = ofctl_api.send_msg(self, flows_req, reply_cls=p.OFPFlowStatsReply, reply_multi=True)
            groups = ofctl_api.send_msg(self, p.OFPGroupDescStatsRequest(dp, 0), reply_cls=p.OFPGroupDescStatsReply, reply_multi=True)
            meters = ()
            if self.core.meter_ok.get(dpid):
                meters = ofctl_api.send_msg(self, p.OFPMeterConfigStatsRequest(dp, 0, o.OFPM_ALL), reply_cls=p.OFPMeterConfigStatsReply, reply_multi=True)
        return {"flows": [s for r in flows or () for s in r.body], "groups": [g for r in groups or () for g in r.body],
                "meters": [m for r in meters or () for m in r.body]}

    def _tick_loop(self):
        while True:
            hub.sleep(TICK)
            try:
                self.send(self.core.tick(self.now()))
            except Exception:  # a bug must not stop the clock
                LOG.exception("tick failed")

    # ------------------------------------------------------------------ switches and ports
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        # Ask OVS to send whole packets to the controller (we use OFPCML_NO_BUFFER anyway).
        dp = ev.msg.datapath
        dp.send_msg(dp.ofproto_parser.OFPSetConfig(dp, dp.ofproto.OFPC_FRAG_NORMAL, 0xFFFF))
        # do its meters drop by packet rate? (then IGMP/MLD punts are metered per host port)
        dp.send_msg(dp.ofproto_parser.OFPMeterFeaturesStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPMeterFeaturesStatsReply, MAIN_DISPATCHER)
    def _meter_features(self, ev):
        dp = ev.msg.datapath
        o = dp.ofproto
        ok = False
        for f in ev.msg.body:
            ok = f.max_meter > 0 and bool(f.band_types & (1 << o.OFPMBT_DROP)) and bool(f.capabilities & o.OFPMF_PKTPS)
        LOG.info("switch %016x meters: %s", dp.id, "usable" if ok else "not usable")
        self.send(self.core.set_meter_support(self.now(), dp.id, ok))

    @set_ev_cls(topo_event.EventSwitchEnter)
    def _switch_enter(self, ev):
        sw = ev.switch
        dp = sw.dp
        self.dps[dp.id] = dp
        ports = [(p.port_no, p.is_live(), p.hw_addr) for p in sw.ports]
        LOG.info("switch %016x connected with %d ports", dp.id, len(ports))
        # nothing is sent to it until we know what it holds (adopt: no blind teardown)
        self.send(self.core.switch_enter(self.now(), dp.id, ports, readback=True))
        hub.spawn(self._readback, dp.id)

    @set_ev_cls(topo_event.EventSwitchReconnected)
    def _switch_reconnected(self, ev):
        sw = ev.switch
        dp = sw.dp
        LOG.info("switch %016x reconnected", dp.id)
        self.send(self.core.switch_leave(self.now(), dp.id))
        self.sender.remove(dp.id)  # what was queued for the old connection is void (the switch is read back)
        self.dps[dp.id] = dp
        ports = [(p.port_no, p.is_live(), p.hw_addr) for p in sw.ports]
        self.send(self.core.switch_enter(self.now(), dp.id, ports, readback=True))
        hub.spawn(self._readback, dp.id)

    def _read_model(self, dpid: int):
        """Read back a switch and convert it to model entries; (None, None) on failure."""
        try:
            rb = self.read_switch(dpid, timeout=READBACK_TIMEOUT)
        except Exception as e:  # timeout, disconnect, switch error: the caller falls back
            LOG.warning("read-back of %016x failed: %s", dpid, e)
            return None, None, None
        LOG.debug("read-back of %016x: %d flows, %d groups, %d meters", dpid, len(rb["flows"]), len(rb["groups"]), len(rb.get("meters", ())))
        flows, groups, bad = ofmsgs.readback_to_model(rb["flows"], rb["groups"])
        meters = []
        for m in rb.get("meters", ()):
            try:
                meters.append(ofmsgs.meter_from_config(m))
            except (ValueError, AttributeError):
                bad += 1
        if bad:
            self.core.counters["readback_unparsed"] += bad
        return flows, groups, meters

    def _after_queue(self, dpid: int | None = None) -> None:
        """Wait until everything queued before now has been written to switch `dpid` (all
        switches if None), so that a read-back requested next reflects it."""
        self.sender.after_queue(dpid, timeout=5.0)

    def _readback(self, dpid: int) -> None:
        self._after_queue(dpid)
        flows, groups, meters = self._read_model(dpid)
        self.send(self.core.adopt(self.now(), dpid, flows, groups, meters))

    def _audit(self, dpid: int) -> bool:
        """One read-back audit of a switch. False if it could not judge: the read-back
        failed, or changes went to the switch meanwhile (the core then skips it)."""
        self._after_queue(dpid)
        token = self.core.audit_token(dpid)
        flows, groups, meters = self._read_model(dpid)
        judged = flows is not None and self.core.audit_token(dpid) == token
        self.send(self.core.audit(self.now(), dpid, token, flows, groups, meters))
        return judged

    def _audit_soon(self, dpid: int) -> None:
        """Audit a switch now (not at its turn): changes the core counts as installed were
        dropped (full send queue) or refused (failed bundle). A few attempts, one at a time
        per switch; if none can judge, the periodic audit will."""
        if dpid in self._audits_pending:
            return
        self._audits_pending.add(dpid)
        hub.spawn(self._audit_soon_run, dpid)

    def _audit_soon_run(self, dpid: int) -> None:
        try:
            for _ in range(AUDIT_RETRIES):
                if dpid not in self.dps or self._audit(dpid):
                    return
                hub.sleep(1.0)
        except Exception:  # a bug must not go unnoticed, nor leave the switch marked pending
            LOG.exception("immediate audit of %016x failed", dpid)
        finally:
            self._audits_pending.discard(dpid)

    def _audit_loop(self):
        """Low-rate audit: one switch at a time, each about every audit_interval seconds."""
        i = 0
        while True:
            n = max(1, len(self.dps))
            hub.sleep(max(0.2, self.settings.core.audit_interval / n))
            dpids = sorted(self.dps)
            if not dpids:
                continue
            dpid = dpids[i % len(dpids)]
            i += 1
            try:
                self._audit(dpid)
            except Exception:  # a bug must not stop the audits
                LOG.exception("audit of %016x failed", dpid)

    @set_ev_cls(topo_event.EventSwitchLeave)
    def _switch_leave(self, ev):
        dpid = ev.switch.dp.id
        LOG.info("switch %016x left", dpid)
        self.dps.pop(dpid, None)
        self.sender.remove(dpid)
        self.send(self.core.switch_leave(self.now(), dpid))

    @set_ev_cls([topo_event.EventPortAdd, topo_event.EventPortModify])
    def _port_update(self, ev):
        p = ev.port
        self.send(self.core.port_update(self.now(), p.dpid, p.port_no, p.is_live(), p.hw_addr))

    @set_ev_cls(topo_event.EventPortDelete)
    def _port_delete(self, ev):
        p = ev.port
        self.send(self.core.port_delete(self.now(), p.dpid, p.port_no))

    @set_ev_cls(topo_event.EventLinkAdd)
    def _link_add(self, ev):
        l = ev.link
        self.send(self.core.link_add(self.now(), (l.src.dpid, l.src.port_no), (l.dst.dpid, l.dst.port_no)))

    @set_ev_cls(topo_event.EventLinkDelete)
    def _link_delete(self, ev):
        l = ev.link
        self.send(self.core.link_delete(self.now(), (l.src.dpid, l.src.port_no), (l.dst.dpid, l.dst.port_no)))

    # ------------------------------------------------------------------ packets
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        if dp.id not in self.dps:
            self.dps[dp.id] = dp
        in_port = msg.match.get("in_port")
        if in_port is None:
            self.core.counters["drop_no_in_port"] += 1
            return
        self.send(self.core.packet_in(self.now(), dp.id, in_port, msg.cookie, msg.data))
