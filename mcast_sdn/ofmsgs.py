"""Compile `ofmodel` changes into Ryu OpenFlow 1.3 messages (the one place that does).

Only the ofproto parser is used here (no controller, no datapath logic), so the
compilation itself can be unit-tested by serialising messages against a stub
datapath.
"""
from __future__ import annotations

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from mcast_sdn.ofmodel import (
    COOKIE_MASK_ALL,
    COOKIE_PREFIX,
    Barrier,
    Change,
    DeleteAllOurs,
    FlowAdd,
    FlowDelete,
    FlowEntry,
    GroupAdd,
    GroupDelete,
    GroupEntry,
    GroupModify,
    Output,
    PacketOut,
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
    raise TypeError(f"unknown action {a!r}")


def _match(entry: FlowEntry):
    return parser.OFPMatch(**dict(entry.match))


def _instructions(entry: FlowEntry):
    inst = []
    if entry.meter is not None:
        inst.append(parser.OFPInstructionMeter(entry.meter, ofp.OFPIT_METER))
    if entry.actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [_action(a) for a in entry.actions]))
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
    return [parser.OFPBucket(weight=0, watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY, actions=[_action(a) for a in b]) for b in entry.buckets]


def group_mod(dp, entry: GroupEntry, command: int):
    gtype = {"all": ofp.OFPGT_ALL, "ff": ofp.OFPGT_FF, "select": ofp.OFPGT_SELECT}[entry.type]
    return parser.OFPGroupMod(dp, command, gtype, entry.group_id, _buckets(entry))


def compile_change(dp, c: Change) -> list:
    """One model change -> a list of Ryu messages bound to `dp`."""
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
