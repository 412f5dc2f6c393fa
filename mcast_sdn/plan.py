"""Transient-safe ordering of multicast tree changes (make-before-break at every step).

Pure. The core knows, per switch, what it holds (`installed`) and what it wants (the
multicast table); a plain diff says *what* to send. This module says *in which order*,
so that at every intermediate state (any subset of the switches of a stage done, any
prefix of one switch's list) a member whose delivery is not affected by the change gets
every packet exactly once, nobody outside the old or new member set gets any, and no
copy loops.

Why this is needed: entries are RPF-checked (they match the port a stream must arrive
on), so a tree change is a set of per-switch "accept" and "send" changes. Installed in
the wrong order, a switch receives a stream before its entry exists (loss), or accepts
it on two ports at once (duplicates).

The plan, per stream (source S of group G, walked through the old and the new tables):

* PREP   entries of switches that join S's tree (nobody sends them S yet) and new ALL
         groups: inert, any order.
* GROW   (same stage) switches that keep their upstream port but change their downstream
         set send to the union of old and new ports: new branches start receiving
         (switches that will change their upstream port still drop those copies: no entry
         for it yet).
* FLIP   switches whose upstream port changes (a new source's first hop: from "to the
         controller" to its tree; a reroute's merge point) swap the old entry for the new
         one in one atomic bundle, still sending to old and new downstream ports; in
         order from the source down the *new* tree, so a switch flips only when its new
         upstream already carries S.
* SHRINK downstream sets become the new ones; entries of switches that left the tree
         and groups nothing uses any more are deleted.

Every stage is confirmed by barriers before the next one is sent (the adapter does it).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from mcast_sdn.ofmodel import (
    TABLE_MCAST,
    Bundle,
    FlowAdd,
    FlowDelete,
    FlowEntry,
    GroupAdd,
    GroupDelete,
    GroupEntry,
    GroupModify,
    COOKIE_MCAST as _MCAST_COOKIE,
    Output,
    PopVlan,
    PushVlan,
    SwitchState,
    ToGroup,
)

# stages of the core's `Out` used by the plan (stage 0 holds non-tree changes)
STAGE_PREP = 1
# grow shares prepare's stage: a branch that starts receiving before the switches below it
# are prepared only feeds switches that drop it (no entry yet) and that nobody else feeds
# (they join the tree), so nothing is lost that was delivered before; swaps, which do need
# those entries, come a stage later. One barrier round trip less on every reroute.
STAGE_GROW = STAGE_PREP
STAGE_FLIP0 = 3  # + flip level
STAGE_VPUSH = 500  # versioned streams: the first hop starts tagging
STAGE_VCHANGE = 600  # ... untagged entries become the new tree (after a drain pause)
STAGE_VUNPUSH = 700  # ... the first hop stops tagging
STAGE_SHRINK = 1000  # (after a drain pause when streams were versioned)
DRAIN_SECONDS = 0.1  # packets in flight and the datapath's cached flows catch up meanwhile
VERSION_VID = 4000  # VLAN id that marks "new tree" on fabric links during a move
PRIO_VERSION = 305  # tagged entries: above the untagged (S,G) entries (300)

# temporary ALL groups (union of old and new ports) live in their own id range
TMP_GID_BASE = 0x7F000000
TMP_GID_SPAN = 0x00100000

Entry = tuple  # (match, priority, outs: frozenset[int], hard_timeout)


def group_of_match(m: tuple):
    for k, v in m:
        if k in ("ipv4_dst", "ipv6_dst"):
            return ipaddress.ip_address(v)
    return None


@dataclass(slots=True)
class Walk:
    """How one source's packets cross the network under one set of tables."""

    accept: dict = field(default_factory=dict)  # dpid -> in_port the packet arrives on
    used: dict = field(default_factory=dict)  # dpid -> flow key that forwarded it (None: dropped/punted)
    parent: dict = field(default_factory=dict)  # dpid -> upstream dpid (None for the first hop)


class _Index:
    """One group's entries on one switch, indexed by ingress port."""

    __slots__ = ("by_port",)

    def __init__(self, entries) -> None:
        by_port: dict = {}
        for m, prio, outs, _hard in entries:
            md = dict(m)
            src = md.get("ipv4_src") or md.get("ipv6_src")
            by_port.setdefault(md.get("in_port"), []).append((prio, ipaddress.ip_address(src) if src else None, outs, (TABLE_MCAST, prio, m)))
        for lst in by_port.values():
            lst.sort(key=lambda e: -e[0])
        self.by_port = by_port

    def lookup(self, in_port: int, src):
        best = None
        for cand in (self.by_port.get(in_port, ()), self.by_port.get(None, ())):
            for prio, s, outs, key in cand:
                if s is None or s == src:
                    if best is None or prio > best[0]:
                        best = (prio, outs, key)
                    break
        return best


def walk(tables: dict[int, list], links: dict, root: int, port: int, src, limit: int = 100000) -> Walk:
    """Walk a packet of `src` entering `root` on `port` through per-switch group entries."""
    idx = {d: _Index(e) for d, e in tables.items()}
    w = Walk()
    todo = [(root, port, None)]
    n = 0
    while todo:
        d, p, par = todo.pop()
        n += 1
        if n > limit or d in w.accept:
            continue  # a second copy (a bug elsewhere): the plan uses the first
        w.accept[d] = p
        w.parent[d] = par
        ix = idx.get(d)
        hit = ix.lookup(p, src) if ix is not None else None
        w.used[d] = hit[2] if hit else None
        if not hit:
            continue
        for q in sorted(hit[1]):
            if q == p:
                continue
            peer = links.get((d, q))
            if peer is not None:
                todo.append((peer[0], peer[1], d))
    return w


@dataclass
class GroupChange:
    """What the planner needs of one recomputed group: its entries before and after, per
    switch, and the sources (SourceInfo: addr, dpid, port) whose packets to walk."""

    old: dict[int, list]
    new: dict[int, list]
    sources: list


def _outs(f: FlowEntry | None, groups: dict) -> frozenset:
    if f is None:
        return frozenset()
    res = set()
    for a in f.actions:
        if isinstance(a, ToGroup):
            g = groups.get(a.group_id)
            if g is not None:
                res.update(x.port for b in g.buckets for x in b if isinstance(x, Output))
        elif isinstance(a, Output):
            res.add(a.port)
    return frozenset(res)


class Planner:
    """Splits the tree changes of one batch into staged, transient-safe lists."""

    def __init__(self, links: dict, changes: dict, tmp_seq: dict, writable=None) -> None:
        self.links = links
        self.changes = changes  # group -> GroupChange
        self.tmp_seq = tmp_seq  # dpid -> counter (owned by the caller, persists)
        self.writable = writable or (lambda d: True)  # can changes be sent to this switch now?
        self._walks: dict = {}
        self.flips: dict[int, dict] = {}  # dpid -> stream (group, source) -> changes swapped atomically
        self.versioned: dict = {}  # stream -> (source, new Walk, new tables): moved with a version tag
        self.vchanges: dict[int, list] = {}  # dpid -> untagged changes of versioned streams
        self._taken: dict[int, set] = {}  # dpid -> group ids in use or handed out in this batch

    def walks(self, grp):
        """group -> [(source, old Walk, new Walk)] (computed once per batch)."""
        res = self._walks.get(grp)
        if res is None:
            gc = self.changes.get(grp)
            res = []
            if gc is not None:
                for s in gc.sources:
                    wo = walk(gc.old, self.links, s.dpid, s.port, s.addr)
                    _add_orphans(wo, gc.old, s.addr)
                    wn = walk(gc.new, self.links, s.dpid, s.port, s.addr)
                    res.append((s, wo, wn))
                    if self._needs_version(s, wo, wn):
                        self.versioned[(grp, s.addr)] = (s, wn, gc.new)
            self._walks[grp] = res
        return res

    def _needs_version(self, s, wo: Walk, wn: Walk) -> bool:
        """A live stream whose branch into some switch moves while the old one still
        carries it (a reroute of a working path, not of a failed one): swapping that
        switch's upstream, even atomically, races with the copies in flight on both paths
        (and OVS revalidates its datapath cache flow by flow), so the stream is moved with
        a version tag instead (see `versioned_lists`)."""
        if wo.used.get(s.dpid) is None or wn.used.get(s.dpid) is None:
            return False  # not forwarded before (a new source) or after: nothing in flight to race
        moved = any(d != s.dpid and wo.parent.get(d) is not None and wo.used.get(d) is not None
                    and d in wn.accept and wn.accept[d] != wo.accept[d] for d in wo.accept)
        return moved and all(self.writable(d) for d in wn.accept)

    def _tmp_gid(self, dpid: int, taken) -> int:
        while True:
            n = self.tmp_seq.get(dpid, 0)
            self.tmp_seq[dpid] = n + 1
            gid = TMP_GID_BASE + n % TMP_GID_SPAN
            if gid not in taken:
                return gid

    def _via_union(self, dpid: int, taken: set, f_n: FlowEntry, union, prep_g, shrink, final_g) -> FlowEntry:
        """`f_n` pointing at a temporary group of the `union` ports (added in prepare);
        in shrink the flow takes its final group and the temporary one is deleted."""
        tmp = self._tmp_gid(dpid, taken)
        taken.add(tmp)
        prep_g.append(GroupAdd(GroupEntry(tmp, tuple((Output(p),) for p in sorted(union)))))
        shrink.append(FlowAdd(f_n))
        final_g.append(GroupDelete(tmp))
        return _with_group(f_n, tmp)

    def plan_switch(self, dpid: int, inst: SwitchState, want: SwitchState, keys, gids) -> dict[str, list]:
        """Phases for one switch: {'prep', 'grow', 'shrink'} -> changes; the atomic swaps
        go to `self.flips[dpid]` (ordered by `flip_levels`)."""
        prep_g: list = []
        prep: list = []
        grow: list = []
        flip: list = []
        flip_del: list = []
        shrink: list = []
        final_f: list = []
        final_g: list = []
        taken = self._taken.setdefault(dpid, set())
        taken |= set(inst.groups) | set(want.groups)
        for gid in sorted(gids):
            g, have = want.groups.get(gid), inst.groups.get(gid)
            if g is None:
                if have is not None:
                    final_g.append(GroupDelete(gid))
            elif have is None:
                prep_g.append(GroupAdd(g))
            elif have != g:
                flip.append(GroupModify(g))  # not produced by the tree compiler; kept atomic
        for key in sorted(keys, key=repr):
            f_o, f_n = inst.flows.get(key), want.flows.get(key)
            if f_o == f_n:
                continue
            if key[0] != TABLE_MCAST:
                if f_n is None:
                    final_f.append(FlowDelete(f_o))
                else:
                    flip.append(FlowAdd(f_n))
                continue
            grp = group_of_match(key[2])
            md = dict(key[2])
            in_port = md.get("in_port")
            ksrc = md.get("ipv4_src") or md.get("ipv6_src")
            ksrc = ipaddress.ip_address(ksrc) if ksrc else None
            self.walks(grp)
            if (grp, ksrc) in self.versioned:
                # moved with a version tag: no untagged packet of it is in flight when these go
                self.vchanges.setdefault(dpid, []).append(FlowAdd(f_n) if f_n is not None else FlowDelete(f_o))
                continue
            users_old, users_new, live_old = [], [], False
            old_keys = set()
            reached_old_new = False  # a user of the new entry already reached this switch before
            keeps = False  # a user of the old entry still reaches this switch after
            for s, wo, wn in self.walks(grp):
                if wo.used.get(dpid) == key:
                    users_old.append(s)
                    if dpid in wn.accept:
                        keeps = True
                if wn.used.get(dpid) == key:
                    users_new.append(s)
                    if dpid in wo.accept:
                        reached_old_new = True
                        ok = wo.used.get(dpid)
                        if ok is not None:
                            old_keys.add(ok)
                if wo.accept.get(dpid) == in_port and (ksrc is None or ksrc == s.addr):
                    live_old = True  # the entry would catch packets that arrive today
            if f_o is None:  # a new entry
                if reached_old_new or live_old:
                    outs = _outs(f_n, want.groups)
                    union = outs
                    if f_n.priority != _PRIO_NEG:
                        for ok in old_keys:
                            union = union | _outs(inst.flows.get(ok), inst.groups)
                    if union != outs:
                        via = self._via_union(dpid, taken, f_n, union, prep_g, shrink, final_g)
                        flip.append(FlowAdd(via))
                    else:
                        flip.append(FlowAdd(f_n))
                else:
                    prep.append(FlowAdd(f_n))
            elif f_n is None:  # an entry that goes
                if users_old and keeps:
                    flip_del.append(FlowDelete(f_o))
                else:
                    final_f.append(FlowDelete(f_o))
            else:  # same match, other actions
                if not (users_old or users_new or live_old):
                    prep.append(FlowAdd(f_n))
                    continue
                o, n = _outs(f_o, inst.groups), _outs(f_n, want.groups)
                union = o | n
                if union == n:
                    grow.append(FlowAdd(f_n))
                elif union == o:
                    shrink.append(FlowAdd(f_n))
                else:
                    grow.append(FlowAdd(self._via_union(dpid, taken, f_n, union, prep_g, shrink, final_g)))
        # the swap is split by stream: each stream's entries flip in its own order (two
        # streams may need two switches in opposite orders), each part atomic
        by_stream: dict = {}
        for c in flip + flip_del:
            by_stream.setdefault(_stream_of(c), []).append(c)
        self.flips[dpid] = by_stream
        return {"prep": prep_g + prep, "grow": grow, "shrink": shrink + final_f + final_g}

    def versioned_lists(self, inst_of) -> dict[int, dict[str, list]]:
        """Per switch, the tagged detour of the versioned streams (two-phase update):

        * `vprep`  (prepare stage) entries for the new tree that match the version tag
                   (RPF-checked, higher priority), groups that keep the tag on fabric
                   links and pop it on host ports: inert, no packet carries the tag yet;
        * `vpush`  (its own stage) the first hop's entry that tags and sends along the new
                   tree, above the untagged one: from this packet on, every packet takes
                   the new tree from end to end; untagged ones in flight finish the old;
        * `vchg`   (after a drain pause) the untagged entries become the new tree: no
                   untagged packet of the stream is in flight any more;
        * `vunpush` the first hop drops the tagging entry: packets go untagged on the
                   new tree; tagged ones in flight finish on the tagged entries;
        * `vclean` (after a drain pause) tagged entries and groups are deleted.
        Each packet thus crosses one tree, old or new, from end to end."""
        res: dict[int, dict[str, list]] = {}

        def lists(d):
            return res.setdefault(d, {"vprep": [], "vpush": [], "vchg": [], "vunpush": [], "vclean": []})

        for (grp, addr), (s, wn, tables) in sorted(self.versioned.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
            idx = {d: _Index(e) for d, e in tables.items()}
            for d, b in sorted(wn.accept.items()):
                key = wn.used.get(d)
                if key is None or d not in idx:
                    continue
                hit = idx[d].lookup(b, addr)
                outs = sorted(hit[1]) if hit else []
                root = d == s.dpid
                buckets = []
                for q in outs:
                    if q == b:
                        continue
                    link = (d, q) in self.links
                    if root:
                        buckets.append((PushVlan(VERSION_VID), Output(q)) if link else (Output(q),))
                    else:
                        buckets.append((Output(q),) if link else (PopVlan(), Output(q)))
                inst = inst_of(d)
                taken = self._taken.setdefault(d, set())
                if inst is not None:
                    taken |= set(inst.groups)
                gid = self._tmp_gid(d, taken)
                taken.add(gid)
                grp_entry = GroupEntry(gid, tuple(buckets))
                m = key[2] if root else tuple(sorted(dict(key[2], vlan_vid=VERSION_VID | 0x1000).items()))
                f = FlowEntry(TABLE_MCAST, PRIO_VERSION, m, (ToGroup(gid),), cookie=_MCAST_COOKIE)
                L = lists(d)
                L["vprep"].append(GroupAdd(grp_entry))
                if root:
                    L["vpush"].append(FlowAdd(f))
                    L["vunpush"].append(FlowDelete(f))
                else:
                    L["vprep"].append(FlowAdd(f))
                    L["vclean"].append(FlowDelete(f))
                L["vclean"].append(GroupDelete(gid))
        for d, ch in self.vchanges.items():
            lists(d)["vchg"].extend(ch)
        return res

    def flip_levels(self) -> dict[tuple, int]:
        """Order of the atomic swaps, per (switch, stream): after every switch above it on
        that stream's new tree that swaps entries of that stream too (its new upstream
        must already carry the stream). Changes of no one stream (None) go first."""
        flips = self.flips
        parent_of: dict = {}
        for grp in list(self._walks):
            for so, _wo, wn in self._walks[grp]:
                parent_of[(grp, so.addr)] = wn.parent
        level: dict[tuple, int] = {}
        for stream in {st for f in flips.values() for st in f}:
            if stream is None:
                for d, f in flips.items():
                    if None in f:
                        level[(d, None)] = 0
                continue
            parent = parent_of.get(stream, {})
            nodes = [d for d, f in flips.items() if stream in f]
            memo: dict[int, int] = {}

            def depth(d: int) -> int:  # flipping ancestors of d on this stream's tree
                if d in memo:
                    return memo[d]
                memo[d] = 0  # guards against a malformed (cyclic) parent map
                p, seen, n = parent.get(d), {d}, 0
                while p is not None and p not in seen:
                    seen.add(p)
                    if stream in flips.get(p, ()):
                        n = depth(p) + 1
                        break
                    p = parent.get(p)
                memo[d] = n
                return n

            for d in nodes:
                level[(d, stream)] = depth(d) + 1
        return level


def _add_orphans(w: Walk, tables: dict, src) -> None:
    """Switches that hold an entry for `src` although the walk does not reach them (a
    link on the way went down) count as reached on that entry's port: their entry still
    accepts the stream if a new branch feeds it, so replacing it must be an atomic swap
    like any change of upstream, or the switch would accept the stream twice."""
    for d, entries in tables.items():
        if d in w.accept:
            continue
        for m, prio, _outs, _hard in sorted(entries, key=lambda e: -e[1]):
            md = dict(m)
            s = md.get("ipv4_src") or md.get("ipv6_src")
            if s and ipaddress.ip_address(s) == src and "in_port" in md:
                w.accept[d] = md["in_port"]
                w.used[d] = (TABLE_MCAST, prio, m)
                w.parent[d] = None
                break


def _stream_of(c):
    if isinstance(c, (FlowAdd, FlowDelete)) and c.entry.table == TABLE_MCAST:
        md = dict(c.entry.match)
        src = md.get("ipv4_src") or md.get("ipv6_src")
        if src:
            return (group_of_match(c.entry.match), ipaddress.ip_address(src))
    return None


_PRIO_NEG = 310  # forwarding.PRIO_NEG (not imported: forwarding imports nothing of ours but trees)


def _with_group(f: FlowEntry, gid: int) -> FlowEntry:
    return FlowEntry(f.table, f.priority, f.match, (ToGroup(gid),), f.goto, f.cookie, f.idle_timeout, f.hard_timeout, f.meter)
