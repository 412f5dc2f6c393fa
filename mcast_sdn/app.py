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


class McastSdn(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = settings.load()
        self.core = Core(self.settings.core, self.settings.membership, self.settings.trees)
        self.dps: dict[int, object] = {}
        self._outq = hub.Queue()
        self._barriers: dict[tuple[int, int], object] = {}
        self._sender = hub.spawn(self._send_loop)
        self._ticker = hub.spawn(self._tick_loop)
        self._auditor = hub.spawn(self._audit_loop)
        rest.attach(kwargs["wsgi"], self)  # the REST API (mcast_sdn/rest.py) + start-up static joins
        LOG.info("mcast-sdn started (settle=%.1fs)", self.settings.core.settle)

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def now() -> float:
        return time.monotonic()

    def send(self, out: Out) -> None:
        """Queue the core's changes; one sender green thread transmits them in order."""
        if out:
            self._outq.put(out)

    def _send_loop(self):
        while True:
            out = self._outq.get()
            if isinstance(out, hub.Event):  # a marker: everything before it has been written
                out.set()
                continue
            try:
                self._transmit(out)
            except Exception:  # a bug must not stop the sender
                LOG.exception("sending changes failed")

    def _transmit(self, out: Out) -> None:
        """Send stage by stage; before each next stage, wait until every switch of the
        previous one confirmed it (barrier reply, or BARRIER_TIMEOUT), so a packet never
        reaches a switch whose part of a tree is not installed yet."""
        stages = out.stages()
        for i, stage in enumerate(stages):
            self._send_stage(stage)
            if i + 1 < len(stages):
                self._confirm(stage)

    def _confirm(self, stage) -> None:
        waits = []
        for dpid in stage:
            dp = self.dps.get(dpid)
            if dp is None:
                continue
            req = dp.ofproto_parser.OFPBarrierRequest(dp)
            dp.set_xid(req)
            ev = hub.Event()
            self._barriers[(dpid, req.xid)] = ev
            waits.append(((dpid, req.xid), ev))
            dp.send_msg(req)
        for key, ev in waits:
            if not ev.wait(timeout=BARRIER_TIMEOUT):
                self.core.counters["barrier_timeout"] += 1
            self._barriers.pop(key, None)

    def _send_stage(self, by_dpid) -> None:
        for dpid, changes in by_dpid.items():
            dp = self.dps.get(dpid)
            if dp is None:
                continue
            for c in changes:
                for msg in ofmsgs.compile_change(dp, c):
                    dp.send_msg(msg)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        e = self._barriers.get((ev.msg.datapath.id, ev.msg.xid))
        if e is not None:
            e.set()

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

    def _after_queue(self) -> None:
        """Wait until everything queued before now has been written to the switches, so
        that a read-back requested next reflects it (OpenFlow keeps per-connection order)."""
        ev = hub.Event()
        self._outq.put(ev)
        ev.wait(timeout=5.0)

    def _readback(self, dpid: int) -> None:
        self._after_queue()
        flows, groups, meters = self._read_model(dpid)
        self.send(self.core.adopt(self.now(), dpid, flows, groups, meters))

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
                self._after_queue()
                token = self.core.audit_token(dpid)
                flows, groups, meters = self._read_model(dpid)
                self.send(self.core.audit(self.now(), dpid, token, flows, groups, meters))
            except Exception:  # a bug must not stop the audits
                LOG.exception("audit of %016x failed", dpid)

    @set_ev_cls(topo_event.EventSwitchLeave)
    def _switch_leave(self, ev):
        dpid = ev.switch.dp.id
        LOG.info("switch %016x left", dpid)
        self.dps.pop(dpid, None)
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
