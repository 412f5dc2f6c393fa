"""OpenFlow 1.3 entries as plain, hashable values: the language of the core.

Why: the decision core says *what* a switch should hold (flows and groups) without
importing Ryu's ofproto parser. One compile step in `ofmsgs.py` turns these values
into FlowMods/GroupMods; the fake data plane in the tests interprets the same
values. Equality and hashing are structural, so "desired == installed" is a plain
comparison and diffs are set operations.

Match fields use OpenFlow 1.3 OXM names as Ryu spells them (in_port, eth_type,
eth_src, eth_dst, ip_proto, ipv4_src, ipv4_dst, ipv6_src, ipv6_dst, icmpv6_type).
A masked field's value is a `(value, mask)` tuple.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Union

# ---- cookies: one per feature, all under a common prefix so that our entries can be
# found and removed by cookie mask without touching anyone else's (e.g. Ryu's LLDP flow).
COOKIE_PREFIX = 0x4D43 << 48  # "MC"
COOKIE_MASK_ALL = 0xFFFF << 48
COOKIE_MASK_FEATURE = 0xFFFFFF << 40


def cookie(feature: int) -> int:
    """The cookie of one feature (punt, learn, l2, flood, mcast, ...)."""
    return COOKIE_PREFIX | (feature & 0xFF) << 40


COOKIE_PUNT = cookie(1)
COOKIE_LEARN = cookie(2)
COOKIE_L2 = cookie(3)
COOKIE_FLOOD = cookie(4)
COOKIE_MCAST = cookie(5)
COOKIE_MISS = cookie(6)
COOKIE_SRCDISC = cookie(7)

COOKIE_NAMES = {
    COOKIE_PUNT: "punt",
    COOKIE_LEARN: "learn",
    COOKIE_L2: "l2",
    COOKIE_FLOOD: "flood",
    COOKIE_MCAST: "mcast",
    COOKIE_MISS: "miss",
    COOKIE_SRCDISC: "source-discovery",
}

# ---- tables
TABLE_INGRESS = 0  # punt IGMP/MLD/PIM, admit learned hosts, send unknown (port, MAC) to controller
TABLE_CLASSIFY = 1  # routable multicast -> TABLE_MCAST; link-local multicast and the rest -> TABLE_L2
TABLE_MCAST = 2  # multicast trees: RPF-checked (S,G)/(*,G) entries pointing at ALL groups
TABLE_L2 = 3  # unicast by destination MAC; flooding along the spanning tree

# ---- reserved port numbers (OpenFlow 1.3)
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_TABLE = 0xFFFFFFF9
OFPP_FLOOD = 0xFFFFFFFB
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_LOCAL = 0xFFFFFFFE
OFPP_MAX = 0xFFFFFF00
OFPCML_NO_BUFFER = 0xFFFF


@dataclass(frozen=True, slots=True)
class Output:
    port: int
    max_len: int = 0


@dataclass(frozen=True, slots=True)
class ToController:
    max_len: int = OFPCML_NO_BUFFER
    # reason a meter could be attached later; kept as data for the compiler
    meter: int | None = None


@dataclass(frozen=True, slots=True)
class ToGroup:
    group_id: int


@dataclass(frozen=True, slots=True)
class Meter:
    """OpenFlow 1.3 meter instruction on a flow (rate limiting)."""

    meter_id: int


@dataclass(frozen=True, slots=True)
class PushVlan:
    """Push an 802.1Q tag with VLAN id `vid` (used as a version tag on fabric links while a
    stream moves to a new tree: each packet then follows one tree from end to end)."""

    vid: int


@dataclass(frozen=True, slots=True)
class PopVlan:
    """Pop the outer 802.1Q tag (before a tagged copy leaves on a host port)."""


Action = Union[Output, ToController, ToGroup, PushVlan, PopVlan]


def match(**fields: Any) -> tuple[tuple[str, Any], ...]:
    """Canonical, hashable match: fields sorted by name."""
    return tuple(sorted(fields.items()))


@dataclass(frozen=True, slots=True)
class FlowEntry:
    """One flow entry. Identity (for diffs) is (table, priority, match)."""

    table: int
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[Action, ...] = ()
    goto: int | None = None
    cookie: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    meter: int | None = None

    @property
    def key(self) -> tuple[int, int, tuple]:
        return (self.table, self.priority, self.match)

    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)

    def describe(self) -> dict:
        """JSON-friendly view (for REST and logs)."""
        return {
            "table": self.table,
            "priority": self.priority,
            "match": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.match},
            "actions": [_describe_action(a) for a in self.actions],
            "goto": self.goto,
            "cookie": hex(self.cookie),
            "feature": COOKIE_NAMES.get(self.cookie & COOKIE_MASK_FEATURE, "other"),
        }


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """A group of type ALL: every bucket gets a copy (replication)."""

    group_id: int
    buckets: tuple[tuple[Action, ...], ...]
    type: str = "all"

    def describe(self) -> dict:
        return {
            "group_id": self.group_id,
            "type": self.type,
            "buckets": [[_describe_action(a) for a in b] for b in self.buckets],
        }


def _describe_action(a: Action) -> str:
    if isinstance(a, Output):
        return f"output:{a.port}"
    if isinstance(a, ToController):
        return "controller"
    if isinstance(a, ToGroup):
        return f"group:{a.group_id}"
    if isinstance(a, PushVlan):
        return f"push_vlan:{a.vid}"
    if isinstance(a, PopVlan):
        return "pop_vlan"
    return repr(a)


@dataclass(frozen=True, slots=True)
class MeterEntry:
    """An OpenFlow 1.3 meter with one drop band, in packets per second (rate limiting)."""

    meter_id: int
    rate_pps: int
    burst: int

    def describe(self) -> dict:
        return {"meter_id": self.meter_id, "rate_pps": self.rate_pps, "burst": self.burst}


# ---- changes: what the adapter must send, in order


@dataclass(frozen=True, slots=True)
class FlowAdd:
    entry: FlowEntry  # OFPFC_ADD replaces an entry with the same key (that is our "modify")


@dataclass(frozen=True, slots=True)
class FlowDelete:
    entry: FlowEntry  # OFPFC_DELETE_STRICT on (table, priority, match), our cookie


@dataclass(frozen=True, slots=True)
class GroupAdd:
    entry: GroupEntry


@dataclass(frozen=True, slots=True)
class GroupModify:
    entry: GroupEntry  # OFPGC_MODIFY: never delete+add (on OVS a group delete removes its flows)


@dataclass(frozen=True, slots=True)
class GroupDelete:
    group_id: int


@dataclass(frozen=True, slots=True)
class MeterAdd:
    entry: MeterEntry


@dataclass(frozen=True, slots=True)
class MeterModify:
    entry: MeterEntry


@dataclass(frozen=True, slots=True)
class MeterDelete:
    meter_id: int


@dataclass(frozen=True, slots=True)
class Barrier:
    pass


@dataclass(frozen=True, slots=True)
class Bundle:
    """Changes a switch must apply atomically: packets see all of them or none.

    Why: when a switch changes the port it accepts a stream on (its upstream moves), the
    new RPF entry and the removal of the old one must take effect together, or packets
    are duplicated (both accepted) or lost (neither). Sent as an OpenFlow 1.3 bundle
    (ONF extension 230, atomic + ordered; OVS versions its classifier, so lookups see
    the whole bundle or nothing). Holds flow and group changes only.
    """

    changes: tuple


@dataclass(frozen=True, slots=True)
class DeleteAllOurs:
    """Remove every flow carrying our cookie prefix and every group (fresh start)."""


@dataclass(frozen=True, slots=True)
class PacketOut:
    in_port: int
    actions: tuple[Action, ...]
    data: bytes


Change = Union[FlowAdd, FlowDelete, GroupAdd, GroupModify, GroupDelete, MeterAdd, MeterModify, MeterDelete, Barrier, Bundle, DeleteAllOurs, PacketOut]


@dataclass(slots=True)
class SwitchState:
    """Flows and groups of one switch, keyed for diffing."""

    flows: dict[tuple, FlowEntry] = field(default_factory=dict)
    groups: dict[int, GroupEntry] = field(default_factory=dict)
    meters: dict[int, MeterEntry] = field(default_factory=dict)

    def copy(self) -> "SwitchState":
        return SwitchState(dict(self.flows), dict(self.groups), dict(self.meters))


def diff(desired: SwitchState, installed: SwitchState) -> list[Change]:
    """Minimal ordered changes that turn `installed` into `desired` (make-before-break).

    Order: groups added/modified first (so flows never point at a missing group), then
    flows added or changed, a barrier, then obsolete flows removed, and groups no longer
    referenced removed last. Applying the result twice is a no-op the second time,
    because the diff of equal states is empty.
    """
    changes: list[Change] = []
    for mid, m in desired.meters.items():
        have_m = installed.meters.get(mid)
        if have_m is None:
            changes.append(MeterAdd(m))
        elif have_m != m:
            changes.append(MeterModify(m))
    for gid, g in desired.groups.items():
        have = installed.groups.get(gid)
        if have is None:
            changes.append(GroupAdd(g))
        elif have != g:
            changes.append(GroupModify(g))
    for key, f in desired.flows.items():
        if installed.flows.get(key) != f:
            changes.append(FlowAdd(f))
    removals: list[Change] = [FlowDelete(f) for k, f in installed.flows.items() if k not in desired.flows]
    removals += [GroupDelete(gid) for gid in installed.groups if gid not in desired.groups]
    removals += [MeterDelete(mid) for mid in installed.meters if mid not in desired.meters]
    if removals:
        if changes:
            changes.append(Barrier())
        changes.extend(removals)
    return changes


def diff_subset(desired: SwitchState, installed: SwitchState, flow_keys, group_ids) -> list[Change]:
    """`diff` restricted to the given flow keys and group ids (same ordering rules).

    Used when an event changed only a few known entries of a big table (one multicast
    group on a switch holding thousands): cost O(changed), not O(table).
    """
    adds: list[Change] = []
    removals: list[Change] = []
    for gid in sorted(group_ids):
        g = desired.groups.get(gid)
        have = installed.groups.get(gid)
        if g is None:
            if have is not None:
                removals.append(GroupDelete(gid))
        elif have is None:
            adds.append(GroupAdd(g))
        elif have != g:
            adds.append(GroupModify(g))
    flow_adds: list[Change] = []
    flow_dels: list[Change] = []
    for key in flow_keys:
        f = desired.flows.get(key)
        have = installed.flows.get(key)
        if f is None:
            if have is not None:
                flow_dels.append(FlowDelete(have))
        elif have != f:
            flow_adds.append(FlowAdd(f))
    changes = adds + flow_adds
    removals = flow_dels + removals
    if removals:
        if changes:
            changes.append(Barrier())
        changes.extend(removals)
    return changes


def apply(state: SwitchState, changes: Iterable[Change]) -> None:
    """Apply changes to a state as a switch would (used to track what is installed)."""
    for c in changes:
        if isinstance(c, Bundle):
            apply(state, c.changes)
        elif isinstance(c, FlowAdd):
            state.flows[c.entry.key] = c.entry
        elif isinstance(c, FlowDelete):
            state.flows.pop(c.entry.key, None)
        elif isinstance(c, (GroupAdd, GroupModify)):
            state.groups[c.entry.group_id] = c.entry
        elif isinstance(c, GroupDelete):
            state.groups.pop(c.group_id, None)
            # OVS semantics: deleting a group deletes the flows that point at it.
            for k in [k for k, f in state.flows.items() if any(isinstance(a, ToGroup) and a.group_id == c.group_id for a in f.actions)]:
                del state.flows[k]
        elif isinstance(c, (MeterAdd, MeterModify)):
            state.meters[c.entry.meter_id] = c.entry
        elif isinstance(c, MeterDelete):
            state.meters.pop(c.meter_id, None)
        elif isinstance(c, DeleteAllOurs):
            state.flows.clear()
            state.groups.clear()
            state.meters.clear()
