"""Compile `ofmodel` changes into Ryu OpenFlow 1.3 messages (the one place that does).

Only the ofproto parser is used here (no controller, no datapath logic), so the
compilation itself can be unit-tested by serialising messages against a stub
datapath.
"""
from __future__ import annotations

import functools
import struct

from ryu.ofproto import ofproto_common
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from mcast_sdn.ofmodel import (
    COOKIE_MASK_ALL,
    COOKIE_PREFIX,
    Barrier,
    Bundle,
    Change,
    DeleteAllOurs,
    FlowAdd,
    FlowDelete,
    FlowEntry,
    GroupAdd,
    GroupDelete,
    GroupEntry,
    GroupModify,
    MeterAdd,
    MeterDelete,
    MeterEntry,
    MeterModify,
    Output,
    PacketOut,
    PopVlan,
    PushVlan,
    ToController,
    ToGroup,
)


def _action(a):
    if isinstance(a, Output):
        return parser.OFPActionOutput(a.port, a.max_len or 0)
    if isinstance(a, ToController):
        return parser.OFPActionOutput(ofp.OFPP_CONTROLLER, a.max_len)
    if isinstance(a, ToGroup):
        return parser.OFPActionGroup(a.group_id)
    if isinstance(a, PushVlan):
        raise TypeError("PushVlan compiles to two actions (see _actions)")
    if isinstance(a, PopVlan):
        return parser.OFPActionPopVlan()
    raise TypeError(f"unknown action {a!r}")


def _actions(actions) -> list:
    """Model actions -> Ryu actions (a PushVlan is push_vlan + set_field vlan_vid)."""
    res = []
    for a in actions:
        if isinstance(a, PushVlan):
            res.append(parser.OFPActionPushVlan(0x8100))
            res.append(parser.OFPActionSetField(vlan_vid=(a.vid | ofp.OFPVID_PRESENT)))
        else:
            res.append(_action(a))
    return res


def _match(entry: FlowEntry):
    return _match_of(entry.match)


@functools.lru_cache(maxsize=65536)
def _match_of(m: tuple):
    """OFPMatch objects are built once per distinct match (building one costs ~50 µs in
    Ryu, mostly address parsing); they are only read when a message is serialised."""
    return parser.OFPMatch(**dict(m))


def _instructions(entry: FlowEntry):
    inst = []
    if entry.meter is not None:
        inst.append(parser.OFPInstructionMeter(entry.meter, ofp.OFPIT_METER))
    if entry.actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, _actions(entry.actions)))
    if entry.goto is not None:
        inst.append(parser.OFPInstructionGotoTable(entry.goto))
    return inst


def flow_add(dp, entry: FlowEntry):
    return parser.OFPFlowMod(
        datapath=dp,
        cookie=entry.cookie,
        table_id=entry.table,
        command=ofp.OFPFC_ADD,
        idle_timeout=entry.idle_timeout,
        hard_timeout=entry.hard_timeout,
        priority=entry.priority,
        buffer_id=ofp.OFP_NO_BUFFER,
        flags=0,
        match=_match(entry),
        instructions=_instructions(entry),
    )


def flow_delete(dp, entry: FlowEntry):
    return parser.OFPFlowMod(
        datapath=dp,
        cookie=entry.cookie,
        cookie_mask=0xFFFFFFFFFFFFFFFF,
        table_id=entry.table,
        command=ofp.OFPFC_DELETE_STRICT,
        priority=entry.priority,
        out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY,
        match=_match(entry),
    )


def _buckets(entry: GroupEntry):
    return [parser.OFPBucket(weight=0, watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY, actions=_actions(b)) for b in entry.buckets]


def group_mod(dp, entry: GroupEntry, command: int):
    gtype = {"all": ofp.OFPGT_ALL, "ff": ofp.OFPGT_FF, "select": ofp.OFPGT_SELECT}[entry.type]
    return parser.OFPGroupMod(dp, command, gtype, entry.group_id, _buckets(entry))


# ---------------------------------------------------------------- bundles (ONF extension 230)

BUNDLE_FLAGS = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
_BUNDLE_INNER = (FlowAdd, FlowDelete, GroupAdd, GroupModify, GroupDelete)


def next_bundle_id(dp) -> int:
    """A fresh bundle id for this connection.

    Why on the datapath object: bundle ids only have to be unique among the bundles open
    on one OpenFlow connection, and a reconnected switch is a new Datapath object, so a
    counter kept on it is exactly as long-lived as the ids it must keep apart.
    """
    n = (getattr(dp, "mcast_bundle_seq", 0) + 1) & 0xFFFFFFFF
    dp.mcast_bundle_seq = n
    return n


def compile_bundle(dp, b: Bundle, bundles: bool = True) -> list:
    """A Bundle as OPEN (atomic + ordered), one ADD per inner message, COMMIT.

    Empty: nothing. One change, or `bundles=False` (a switch that rejected bundles): the
    inner messages as plain messages, in order (not atomic, but what we sent before
    bundles existed). Barriers inside a bundle are dropped: an ordered bundle keeps
    the order anyway, and OpenFlow does not allow a barrier in a bundle.
    """
    inner = []
    for c in b.changes:
        if isinstance(c, Barrier):
            continue
        if not isinstance(c, _BUNDLE_INNER):
            raise TypeError(f"{type(c).__name__} cannot go in a bundle")
        inner.extend(compile_change(dp, c))
    if len(inner) <= 1 or not bundles:
        return inner
    bid = next_bundle_id(dp)
    return (
        [parser.ONFBundleCtrlMsg(dp, bid, ofp.ONF_BCT_OPEN_REQUEST, BUNDLE_FLAGS, [])]
        + [parser.ONFBundleAddMsg(dp, bid, BUNDLE_FLAGS, m, []) for m in inner]
        + [parser.ONFBundleCtrlMsg(dp, bid, ofp.ONF_BCT_COMMIT_REQUEST, BUNDLE_FLAGS, [])]
    )


def bundle_error_info(data: bytes):
    """From the data of an OFPT_ERROR (the start of the offending message): `(kind,
    bundle_id)` if that message was one of our bundle messages, kind being "open",
    "commit", "close", "discard" or "add"; else None. Stateless, so nothing has to be
    remembered per sent bundle."""
    hdr = ofp.OFP_EXPERIMENTER_HEADER_SIZE  # ofp_header + experimenter id + exp_type
    if len(data) < hdr + 4 or data[1] != ofp.OFPT_EXPERIMENTER:
        return None
    experimenter, exp_type = struct.unpack_from("!II", data, ofp.OFP_HEADER_SIZE)
    if experimenter != ofproto_common.ONF_EXPERIMENTER_ID:
        return None
    (bid,) = struct.unpack_from("!I", data, hdr)
    if exp_type == ofp.ONF_ET_BUNDLE_ADD_MESSAGE:
        return ("add", bid)
    if exp_type == ofp.ONF_ET_BUNDLE_CONTROL and len(data) >= hdr + 6:
        (ctype,) = struct.unpack_from("!H", data, hdr + 4)
        kind = {ofp.ONF_BCT_OPEN_REQUEST: "open", ofp.ONF_BCT_COMMIT_REQUEST: "commit",
                ofp.ONF_BCT_CLOSE_REQUEST: "close", ofp.ONF_BCT_DISCARD_REQUEST: "discard"}.get(ctype, "control")
        return (kind, bid)
    return None


def compile_change(dp, c: Change, bundles: bool = True) -> list:
    """One model change -> a list of Ryu messages bound to `dp`.

    `bundles=False` sends a Bundle's changes as plain messages (see `compile_bundle`)."""
    if isinstance(c, Bundle):
        return compile_bundle(dp, c, bundles)
    if isinstance(c, FlowAdd):
        return [flow_add(dp, c.entry)]
    if isinstance(c, FlowDelete):
        return [flow_delete(dp, c.entry)]
    if isinstance(c, GroupAdd):
        return [group_mod(dp, c.entry, ofp.OFPGC_ADD)]
    if isinstance(c, GroupModify):
        return [group_mod(dp, c.entry, ofp.OFPGC_MODIFY)]
    if isinstance(c, GroupDelete):
        return [parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_ALL, c.group_id, [])]
    if isinstance(c, (MeterAdd, MeterModify)):
        m = c.entry
        cmd = ofp.OFPMC_ADD if isinstance(c, MeterAdd) else ofp.OFPMC_MODIFY
        bands = [parser.OFPMeterBandDrop(rate=m.rate_pps, burst_size=m.burst)]
        return [parser.OFPMeterMod(dp, command=cmd, flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST, meter_id=m.meter_id, bands=bands)]
    if isinstance(c, MeterDelete):
        return [parser.OFPMeterMod(dp, command=ofp.OFPMC_DELETE, flags=0, meter_id=c.meter_id, bands=[])]
    if isinstance(c, Barrier):
        return [parser.OFPBarrierRequest(dp)]
    if isinstance(c, DeleteAllOurs):
        return [
            parser.OFPFlowMod(
                datapath=dp,
                cookie=COOKIE_PREFIX,
                cookie_mask=COOKIE_MASK_ALL,
                table_id=ofp.OFPTT_ALL,
                command=ofp.OFPFC_DELETE,
                out_port=ofp.OFPP_ANY,
                out_group=ofp.OFPG_ANY,
                match=parser.OFPMatch(),
            ),
            parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_ALL, ofp.OFPG_ALL, []),
            parser.OFPMeterMod(dp, command=ofp.OFPMC_DELETE, flags=0, meter_id=ofp.OFPM_ALL, bands=[]),
            parser.OFPBarrierRequest(dp),
        ]
    if isinstance(c, PacketOut):
        return [
            parser.OFPPacketOut(
                datapath=dp,
                buffer_id=ofp.OFP_NO_BUFFER,
                in_port=c.in_port,
                actions=[_action(a) for a in c.actions],
                data=c.data,
            )
        ]
    raise TypeError(f"unknown change {c!r}")


# ---------------------------------------------------------------- read-back: switch -> model

def _norm_value(name: str, v):
    """Canonical text of a match value, as the core writes it (so equality works)."""
    import ipaddress

    if isinstance(v, tuple):
        return tuple(_norm_value(name, x) for x in v)
    if name.startswith(("ipv4", "ipv6")) and isinstance(v, str):
        return str(ipaddress.ip_address(v))
    if name.startswith("eth_") and name != "eth_type" and isinstance(v, str):
        return v.lower()
    return v


def _action_from(a):
    if isinstance(a, parser.OFPActionOutput):
        if a.port == ofp.OFPP_CONTROLLER:
            return ToController(a.max_len)
        return Output(a.port)
    if isinstance(a, parser.OFPActionGroup):
        return ToGroup(a.group_id)
    if isinstance(a, parser.OFPActionPopVlan):
        return PopVlan()
    raise ValueError(f"unsupported action {a!r}")


def _actions_from(acts) -> list:
    """Ryu actions -> model actions (push_vlan followed by set_field vlan_vid -> PushVlan)."""
    res, pending = [], False
    for a in acts:
        if isinstance(a, parser.OFPActionPushVlan):
            pending = True
            continue
        if pending and isinstance(a, parser.OFPActionSetField) and a.key == "vlan_vid":
            res.append(PushVlan(int(a.value) & 0x0FFF))
            pending = False
            continue
        if pending:
            raise ValueError("push_vlan without a VLAN id")
        res.append(_action_from(a))
    if pending:
        raise ValueError("push_vlan without a VLAN id")
    return res


def flow_from_stats(st) -> FlowEntry:
    """One OFPFlowStats (as returned by a switch) as a model FlowEntry."""
    match = tuple(sorted((k, _norm_value(k, v)) for k, v in st.match.items()))
    actions: list = []
    goto = None
    meter = None
    for inst in st.instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            actions.extend(_actions_from(inst.actions))
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            goto = inst.table_id
        elif isinstance(inst, parser.OFPInstructionMeter):
            meter = inst.meter_id
    return FlowEntry(st.table_id, st.priority, match, tuple(actions), goto, st.cookie, st.idle_timeout, st.hard_timeout, meter)


def group_from_desc(desc) -> GroupEntry:
    gtype = {ofp.OFPGT_ALL: "all", ofp.OFPGT_FF: "ff", ofp.OFPGT_SELECT: "select"}.get(desc.type, str(desc.type))
    buckets = tuple(tuple(_actions_from(b.actions)) for b in desc.buckets)
    return GroupEntry(desc.group_id, buckets, gtype)


def readback_to_model(flows, groups) -> tuple[list[FlowEntry], list[GroupEntry], int]:
    """Convert read-back stats; entries we cannot represent are counted, not fatal."""
    out_f, out_g, bad = [], [], 0
    for st in flows:
        try:
            out_f.append(flow_from_stats(st))
        except (ValueError, AttributeError, TypeError):
            bad += 1
    for d in groups:
        try:
            out_g.append(group_from_desc(d))
        except (ValueError, AttributeError, TypeError):
            bad += 1
    return out_f, out_g, bad


def meter_from_config(cfg) -> MeterEntry:
    """One OFPMeterConfigStats as a model MeterEntry (single drop band, pkt/s)."""
    if len(cfg.bands) != 1:
        raise ValueError("meter with several bands")
    band = cfg.bands[0]
    return MeterEntry(cfg.meter_id, band.rate, band.burst_size)
