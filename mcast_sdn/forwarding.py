"""Compile multicast distribution trees into per-switch OpenFlow 1.3 entries.

Pure. Inputs: the switch graph (with ports on its edges), who wants what (the
membership interest per host port), router ports, and the active sources of each
group with their attachment point. Output: per switch, the multicast-table flows and
the ALL groups they point at, as `ofmodel` values.

Per-source trees (`spt`, `steiner`): for each (S,G) a tree rooted at the source's
switch. At every switch of the tree one flow matches the expected ingress port (RPF
check: a copy arriving anywhere else matches nothing and is dropped, never
replicated), the source and the group, and points at a group whose buckets are the
downstream ports: child tree links plus local ports whose interest admits S
(IGMPv3/MLDv2 INCLUDE/EXCLUDE honoured per port) plus router ports.

Shared trees (`shared`): one tree per group rooted at a rendezvous point (configured
per range, else the graph centre). Every known source's packets follow that tree
outward from the source's switch, through RPF-checked (S,G) entries (see `_shared`
for why not bidirectional (*,G) entries).

Groups are shared on a switch by all flows with the same bucket set; ids come from a
per-switch allocator (smallest free id). A changed bucket set gets a new id (the flow is
re-pointed, then the old group deleted), never an OFPGC_MODIFY of the old one, which
would change every flow still pointing at it before they move.
"""
from __future__ import annotations

import heapq
import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import networkx as nx

from mcast_sdn import trees
from mcast_sdn.ofmodel import (
    COOKIE_MCAST,
    TABLE_MCAST,
    FlowEntry,
    GroupEntry,
    Output,
    SwitchState,
    ToGroup,
    match,
)

PRIO_SG = 300  # (S,G) source-tree entries and shared-tree source overrides
PRIO_STAR_G = 200  # (*,G) entries of earlier versions (found on switches after an upgrade)
PRIO_NEG = 310  # negative cache (nobody wants it): above everything for that (S,G)

PortKey = tuple[int, int]
SSM_V4 = ipaddress.ip_network("232.0.0.0/8")
SSM_V6 = ipaddress.ip_network("ff30::/12")


def is_ssm(group) -> bool:
    g = ipaddress.ip_address(group)
    return g in (SSM_V4 if g.version == 4 else SSM_V6)


@dataclass(frozen=True, slots=True)
class RangePolicy:
    """Tree mode (and rendezvous point for shared trees) for a range of groups."""

    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network
    mode: str  # spt | shared | steiner
    rp: int | None = None  # dpid of the rendezvous point/core; None = graph centre

    @classmethod
    def from_dict(cls, d: dict) -> "RangePolicy":
        if not isinstance(d, dict):
            raise ValueError("tree policy: expected an object")
        try:
            prefix = ipaddress.ip_network(d["prefix"], strict=False)
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"tree policy: bad prefix {d.get('prefix')!r}") from e
        if not prefix.is_multicast:
            raise ValueError(f"tree policy: {prefix} is not a multicast range")
        mode = d.get("mode", "spt")
        if mode not in ("spt", "shared", "steiner"):
            raise ValueError(f"tree policy: unknown mode {mode!r} (spt, shared, steiner)")
        rp = d.get("rp")
        if rp is not None and (not isinstance(rp, int) or isinstance(rp, bool) or rp <= 0):
            raise ValueError("tree policy: rp must be a dpid (positive integer)")
        if rp is not None and mode != "shared":
            raise ValueError("tree policy: rp only applies to shared trees")
        return cls(prefix, mode, rp)

    def to_dict(self) -> dict:
        return {"prefix": str(self.prefix), "mode": self.mode, "rp": self.rp}


@dataclass
class TreeConfig:
    """Which tree for which groups. SSM ranges always use source trees (spt)."""

    policies: tuple[RangePolicy, ...] = ()
    default_mode: str = "spt"
    negative_cache_seconds: float = 10.0

    def mode_for(self, group) -> tuple[str, int | None]:
        g = ipaddress.ip_address(group)
        if is_ssm(g):
            # SSM has no shared trees by definition (RFC 4607); steiner is allowed per range
            for p in self.policies:
                if g.version == p.prefix.version and g in p.prefix and p.mode == "steiner":
                    return "steiner", None
            return "spt", None
        best = None
        for p in self.policies:
            if g.version == p.prefix.version and g in p.prefix:
                if best is None or p.prefix.prefixlen > best.prefix.prefixlen:
                    best = p
        if best is None:
            return self.default_mode, None
        return best.mode, best.rp


@dataclass(frozen=True, slots=True)
class SourceInfo:
    addr: object  # IPv4Address | IPv6Address
    dpid: int
    port: int


@dataclass(slots=True)
class GroupRoute:
    """The computed forwarding of one group: entries per switch plus the tree(s) for views."""

    group: object
    mode: str
    entries: dict[int, list[tuple[tuple, int, frozenset[int], int]]] = field(default_factory=dict)
    # ^ dpid -> [(match, priority, out_ports, hard_timeout)]
    trees: dict[object, list[tuple[int, int, int, int]]] = field(default_factory=dict)
    # ^ source (or "*") -> edges [(parent dpid, parent port, child dpid, child port)]
    root: int | None = None


def _addr_fields(group, source=None) -> dict:
    g = ipaddress.ip_address(group)
    if g.version == 4:
        d = {"eth_type": 0x0800, "ipv4_dst": str(g)}
        if source is not None:
            d["ipv4_src"] = str(source)
    else:
        d = {"eth_type": 0x86DD, "ipv6_dst": str(g)}
        if source is not None:
            d["ipv6_src"] = str(source)
    return d


def _edge_list(g: nx.Graph, parent: dict) -> list[tuple[int, int, int, int]]:
    out = []
    for child, par in parent.items():
        if par is None:
            continue
        ports = g.edges[par, child]["ports"]
        out.append((par, ports[par], child, ports[child]))
    return sorted(out)


def compute_group(
    group,
    graph: nx.Graph,
    members: dict[PortKey, object],
    router_ports: Iterable[PortKey],
    sources: Iterable[SourceInfo],
    config: TreeConfig,
    cache: trees.PathCache | None = None,
    center: int | None = None,
    incremental: dict | None = None,
    previous: GroupRoute | None = None,
) -> GroupRoute:
    """Forwarding of one group. `members`: port -> Interest (with .wants(source)).

    `incremental`: a dict owned by the caller that keeps one `trees.IncrementalTree` per
    (group, source) for steiner mode, so joins graft and leaves prune instead of
    recomputing (the caller drops it on topology change and repairs it periodically).

    `previous`: the group's route before this change. Shortest-path and shared trees
    keep its links where an equal-cost choice allows (`trees.spt_keeping`): a branch
    that still works is not moved, because a move is the one change whose copies in
    flight race at the merge point.
    """
    mode, rp = config.mode_for(group)
    route = GroupRoute(group, mode)
    routers = {rp_ for rp_ in router_ports}
    srcs = sorted(sources, key=lambda s: (str(s.addr), s.dpid, s.port))
    if mode == "shared" and srcs or mode == "shared" and members:
        _shared(route, group, graph, members, routers, srcs, rp, cache, center, previous)
    else:
        for s in srcs:
            _source_tree(route, group, graph, members, routers, s, mode, cache, config, incremental, previous)
    return route


def _kept_links(previous: GroupRoute | None, key, root: int | None = None) -> set:
    """Links of `previous`'s tree `key` (a source, or "*" with the same root)."""
    if previous is None or (root is not None and previous.root != root):
        return set()
    return {frozenset((a, b)) for a, _ap, b, _bp in previous.trees.get(key, ())}


def _steiner_incremental(incremental: dict, key, graph, source: int, terminals: list[int], cache) -> nx.Graph:
    inc = incremental.get(key)
    if inc is None or inc.root != source:
        inc = trees.IncrementalTree(graph, "steiner", source=source, terminals=[t for t in terminals if t != source], cache=cache)
        incremental[key] = inc
    else:
        want = set(terminals) - {source}
        have = set(inc.terminals) - {source}
        for t in sorted(have - want):
            inc.prune(t)
        for t in sorted(want - have):
            inc.graft(t)
    return inc.to_graph()


def _component(graph: nx.Graph, node) -> set:
    """Connected component of `node`, cached on the graph object (the core builds a new
    graph per topology version, so the cache never goes stale)."""
    comps = graph.graph.get("_components")
    if comps is None:
        comps = {}
        for c in nx.connected_components(graph):
            frozen = frozenset(c)
            for n in c:
                comps[n] = frozen
        graph.graph["_components"] = comps
    return comps.get(node, frozenset((node,)))


def _wanting(members, routers, source) -> set[PortKey]:
    want = {k for k, interest in members.items() if interest.wants(source)}
    return want | routers


def _source_tree(route, group, graph, members, routers, s: SourceInfo, mode, cache, config, incremental=None, previous=None) -> None:
    want = _wanting(members, routers, s.addr) - {(s.dpid, s.port)}
    m = match(in_port=s.port, **_addr_fields(group, s.addr))
    if s.dpid not in graph:
        return
    comp = _component(graph, s.dpid)
    want = {k for k in want if k[0] in comp}
    if not want:
        # negative cache: drop at the first hop, re-evaluated when a member appears
        route.entries.setdefault(s.dpid, []).append((m, PRIO_NEG, frozenset(), int(config.negative_cache_seconds)))
        route.trees[s.addr] = []
        return
    terminals = sorted({d for d, _ in want} | {s.dpid})
    if mode == "steiner" and incremental is not None:
        t = _steiner_incremental(incremental, (group, s.addr), graph, s.dpid, terminals, cache)
    elif mode == "steiner" and len(terminals) > 2:
        t = trees.steiner_tree(graph, terminals, root=s.dpid, cache=cache)
    else:
        keep = _kept_links(previous, s.addr)
        if keep and previous.mode == mode:
            t = trees.spt_keeping(graph, s.dpid, terminals, keep)
        else:
            t = trees.spt(graph, s.dpid, terminals, cache=cache)
    t.add_node(s.dpid)
    parent = trees.tree_parent_map(t, s.dpid)
    children: dict[int, list[int]] = {}
    for c, p in parent.items():
        if p is not None:
            children.setdefault(p, []).append(c)
    local: dict[int, set[int]] = {}
    for d, p in want:
        local.setdefault(d, set()).add(p)
    for node, par in parent.items():
        in_port = s.port if par is None else graph.edges[node, par]["ports"][node]
        outs = {graph.edges[node, c]["ports"][node] for c in children.get(node, ())} | local.get(node, set())
        outs.discard(in_port)
        mm = m if par is None else match(in_port=in_port, **_addr_fields(group, s.addr))
        route.entries.setdefault(node, []).append((mm, PRIO_SG, frozenset(outs), 0))
    route.trees[s.addr] = _edge_list(graph, parent)


def _shared(route, group, graph, members, routers, srcs, rp, cache, center, previous=None) -> None:
    """One tree for the whole group, rooted at the RP; each known source's packets follow
    it outward from the source's switch, with RPF-checked (S,G) entries.

    Why per-source entries on a shared tree, not (*,G) entries on every tree port:
    bidirectional (*,G) entries accept a group's packets on every tree port, so while a
    tree changes (new RP, link change, mode change) the links of the old and the new tree
    together can close a cycle that such entries flood around, and no per-switch order
    avoids it. RPF-checked entries make every change of a shared tree a per-source tree
    change that `plan` installs without loss or duplicates. The cost is one entry per
    (source, tree switch) instead of one per (tree port, switch); sources the controller
    has not learned are punted at their first hop in either design. Ports whose filter
    admits a source get it, the tree's links carry every source (RP semantics).
    """
    src_ports = {(s.dpid, s.port) for s in srcs if s.dpid in graph}
    member_switches = {d for d, _ in members} | {d for d, _ in routers} | {d for d, _ in src_ports}
    member_switches &= set(graph.nodes)
    if not member_switches:
        return
    root = rp if rp is not None and rp in graph else center
    if root is None or root not in graph:
        root = trees.choose_center(graph, cache=cache)
    comp = _component(graph, root)
    terminals = sorted(member_switches & comp)
    keep = _kept_links(previous, "*", root)
    if keep and previous.mode == "shared":
        t = trees.spt_keeping(graph, root, terminals, keep)
    else:
        t = trees.shared_tree(graph, root, terminals, cache=cache)
    t.add_node(root)
    route.root = root
    route.trees["*"] = _edge_list(graph, trees.tree_parent_map(t, root))
    for s in srcs:
        if s.dpid not in t:
            continue
        want = {k for k in _wanting(members, routers, s.addr) if k[0] in t} - {(s.dpid, s.port)}
        local: dict[int, set[int]] = {}
        for d, p in want:
            local.setdefault(d, set()).add(p)
        parent = trees.tree_parent_map(t, s.dpid)
        children: dict[int, list[int]] = {}
        for c, par in parent.items():
            if par is not None:
                children.setdefault(par, []).append(c)
        for node, par in parent.items():
            in_port = s.port if par is None else graph.edges[node, par]["ports"][node]
            outs = {graph.edges[node, c]["ports"][node] for c in children.get(node, ())} | local.get(node, set())
            outs.discard(in_port)
            route.entries.setdefault(node, []).append((match(in_port=in_port, **_addr_fields(group, s.addr)), PRIO_SG, frozenset(outs), 0))


class GroupAllocator:
    """Per-switch group ids keyed by bucket set: deterministic, smallest free id first."""

    def __init__(self) -> None:
        self.by_ports: dict[frozenset[int], int] = {}

    def assign(self, needed: dict[frozenset[int], list[tuple]], previous: dict[tuple, int]) -> dict[frozenset[int], int]:
        """Ids for the needed bucket sets.

        `needed`: bucket set -> flow keys using it; `previous`: flow key -> group id it
        used before. A set that had an id keeps it; a new set takes over the old id of
        one of its flows when no needed set keeps that id (GroupModify), else the
        smallest free id.
        """
        old = self.by_ports
        new: dict[frozenset[int], int] = {}
        for ports in needed:
            if ports in old:
                new[ports] = old[ports]
        used = set(new.values())
        free_old = {gid for ports, gid in old.items() if ports not in new}
        pending = [p for p in needed if p not in new]
        pending.sort(key=lambda p: tuple(sorted(p)))
        for ports in pending:
            gid = None
            for key in needed[ports]:
                cand = previous.get(key)
                if cand is not None and cand in free_old and cand not in used:
                    gid = cand
                    break
            if gid is None:
                gid = 1
                while gid in used or gid in free_old:
                    gid += 1
            used.add(gid)
            free_old.discard(gid)
            new[ports] = gid
        self.by_ports = new
        return new


def compile_switch(entries: list[tuple[tuple, int, frozenset[int], int]], alloc: GroupAllocator, installed: SwitchState | None) -> tuple[list[FlowEntry], list[GroupEntry]]:
    """Turn one switch's (match, priority, outs, hard_timeout) specs into flows and groups."""
    needed: dict[frozenset[int], list[tuple]] = {}
    keys = []
    for m, prio, outs, hard in entries:
        key = (TABLE_MCAST, prio, m)
        keys.append(key)
        if outs:
            needed.setdefault(outs, []).append(key)
    previous: dict[tuple, int] = {}
    if installed is not None:
        for key in keys:
            f = installed.flows.get(key)
            if f is not None:
                for a in f.actions:
                    if isinstance(a, ToGroup):
                        previous[key] = a.group_id
    ids = alloc.assign(needed, previous)
    flows = []
    for (m, prio, outs, hard) in entries:
        actions = (ToGroup(ids[outs]),) if outs else ()
        flows.append(FlowEntry(TABLE_MCAST, prio, m, actions, cookie=COOKIE_MCAST, hard_timeout=hard))
    groups = [GroupEntry(gid, tuple((Output(p),) for p in sorted(ports))) for ports, gid in ids.items()]
    return flows, groups


class McastTable:
    """One switch's multicast table, maintained incrementally group by group.

    `set_group(group, entries)` replaces the entries one group contributes to this
    switch and returns the flow keys and group ids whose desired value changed, so the
    core diffs only those (O(entries of the group), not O(entries of the switch)).

    Group ids: one OpenFlow group per distinct bucket set, reference-counted. A new
    bucket set takes the smallest free id. Ids released in a batch become reusable only after `commit()`, i.e. after
    their deletion has been sent, so an id is never repurposed while old flows still
    point at it.
    """

    def __init__(self) -> None:
        self.by_group: dict[object, list[tuple]] = {}
        self.flows: dict[tuple, FlowEntry] = {}
        self.groups: dict[int, GroupEntry] = {}
        self.refs: Counter = Counter()
        self.gid_of: dict[frozenset[int], int] = {}
        self.outs_of: dict[int, frozenset[int]] = {}
        self._free: list[int] = []
        self._released: list[int] = []
        self._next = 1
        self.held: set[int] = set()  # adopted from the switch after a restart: kept while unused

    def set_group(self, group, entries) -> tuple[set, set]:
        changed_keys: set = set()
        changed_gids: set = set()
        old = self.by_group.pop(group, [])
        new: dict[tuple, tuple] = {}
        for m, prio, outs, hard in entries:
            new[(TABLE_MCAST, prio, m)] = (m, prio, outs, hard)
        prev_gid: dict[tuple, int] = {}
        orphaned: set[int] = set()
        for m, prio, outs, hard in old:
            key = (TABLE_MCAST, prio, m)
            if outs:
                gid = self.gid_of[outs]
                prev_gid[key] = gid
                self.refs[outs] -= 1
                if self.refs[outs] == 0:
                    del self.refs[outs]
                    orphaned.add(gid)
            if key not in new:
                if self.flows.pop(key, None) is not None:
                    changed_keys.add(key)
        for key, (m, prio, outs, hard) in new.items():
            actions: tuple = ()
            if outs:
                gid = self.gid_of.get(outs)
                if gid is None:
                    # always a fresh id, never a re-bucketed old one: a modified group changes
                    # every flow that still points at it, at once, before those flows move
                    # (another source would briefly reach a port that filters it out). The
                    # flow moves to the new group atomically; the old one is deleted after.
                    gid = self._alloc()
                    self.gid_of[outs] = gid
                    self.outs_of[gid] = outs
                    self.groups[gid] = GroupEntry(gid, tuple((Output(p),) for p in sorted(outs)))
                    changed_gids.add(gid)
                else:
                    orphaned.discard(gid)  # wanted again (perhaps released above by this very group)
                self.refs[outs] += 1
                actions = (ToGroup(gid),)
            f = FlowEntry(TABLE_MCAST, prio, m, actions, cookie=COOKIE_MCAST, hard_timeout=hard)
            if self.flows.get(key) != f:
                self.flows[key] = f
                changed_keys.add(key)
        for gid in orphaned:
            if gid in self.held:
                continue  # adopted group: stays (unreferenced) until release_held()
            outs = self.outs_of.pop(gid)
            if self.gid_of.get(outs) == gid:
                del self.gid_of[outs]
            self.groups.pop(gid, None)
            changed_gids.add(gid)
            self._released.append(gid)
        if new:
            self.by_group[group] = list(new.values())
        return changed_keys, changed_gids

    def adopt(self, groups: dict[int, frozenset[int]]) -> None:
        """Take over groups a switch already holds (controller restart): rebuilt trees
        that need the same bucket set reuse the same id, so nothing changes on the switch."""
        for gid, outs in groups.items():
            if gid in self.outs_of or outs in self.gid_of:
                continue
            self.gid_of[outs] = gid
            self.outs_of[gid] = outs
            self.groups[gid] = GroupEntry(gid, tuple((Output(p),) for p in sorted(outs)))
            self.held.add(gid)
            self._next = max(self._next, gid + 1)

    def release_held(self) -> set[int]:
        """End of adoption: adopted groups nothing uses any more go away. Returns their ids."""
        gone = set()
        for gid in self.held:
            outs = self.outs_of.get(gid)
            if outs is not None and self.refs.get(outs, 0) == 0:
                del self.outs_of[gid]
                if self.gid_of.get(outs) == gid:
                    del self.gid_of[outs]
                self.groups.pop(gid, None)
                self._released.append(gid)
                gone.add(gid)
        self.held.clear()
        return gone

    def _alloc(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        gid = self._next
        self._next += 1
        return gid

    def commit(self) -> None:
        """The deletions of released ids were sent: the ids may be reused."""
        for gid in self._released:
            if gid not in self.groups:
                heapq.heappush(self._free, gid)
        self._released.clear()

    def reset(self) -> None:
        self.__init__()
