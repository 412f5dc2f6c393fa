"""The switch graph as the controller believes it: switches, ports, links, edge ports.

Pure (no Ryu): the adapter feeds it switch/port/link events (from Ryu's LLDP
discovery) and the clock; it answers the questions forwarding needs:

* which ports face hosts (edge ports) and which face other switches;
* a loop-free spanning tree for flooding broadcast/unknown/link-local traffic;
* the next hop from every switch toward a given switch (shortest paths with a
  deterministic tie-break, cached until the topology changes).

Storm safety: a port is only trusted as an edge port after it has been up for
`settle` seconds without LLDP showing a switch behind it, and a port that ever
carried LLDP stays switch-facing until it goes down (a link that times out in LLDP
but still passes packets must not become a flooding edge port).
"""
from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from typing import Iterable

import networkx as nx

from mcast_sdn.ofmodel import OFPP_MAX

PortRef = tuple[int, int]  # (dpid, port_no)


@dataclass(slots=True)
class PortInfo:
    port_no: int
    up: bool = True
    since: float = 0.0  # when it (or its switch) came up: start of the settle window
    switch_facing: bool = False  # saw LLDP / was a link endpoint since it came up
    hw_addr: str = ""


@dataclass(slots=True)
class Link:
    a: PortRef
    b: PortRef
    weight: float = 1.0


@dataclass(slots=True)
class Topology:
    """Mutable topology state; `version` increases on every change that affects paths."""

    settle: float = 3.0
    switches: dict[int, dict[int, PortInfo]] = field(default_factory=dict)
    # directional sightings (LLDP is per direction); a link exists while either is seen
    _seen: dict[PortRef, PortRef] = field(default_factory=dict)
    weights: dict[frozenset, float] = field(default_factory=dict)
    version: int = 0
    _graph: nx.Graph | None = None
    _tree_ports: dict[int, frozenset[int]] | None = None
    _toward: dict[int, dict[int, int]] = field(default_factory=dict)
    _lp: dict[PortRef, PortRef] | None = None
    _deadlines: tuple | None = None

    # ---------------------------------------------------------------- events
    def add_switch(self, now: float, dpid: int, ports: Iterable[tuple[int, bool, str]] = ()) -> None:
        """A switch (re)connected. Ports it had before and still has, in the same state,
        keep what we learned about them (settled, switch-facing), so a reconnect does not
        send host ports back into their settle period."""
        old = self.switches.get(dpid, {})
        new: dict[int, PortInfo] = {}
        for port_no, up, hw in ports:
            if port_no > OFPP_MAX:
                continue
            prev = old.get(port_no)
            if prev is not None and prev.up == up:
                new[port_no] = prev
            else:
                new[port_no] = PortInfo(port_no, up, now, False, hw)
        self.switches[dpid] = new
        for ref in [a for a, b in self._seen.items() if (a[0] == dpid and a[1] not in new) or (b[0] == dpid and b[1] not in new)]:
            del self._seen[ref]
        self._changed()

    def remove_switch(self, dpid: int) -> None:
        if self.switches.pop(dpid, None) is None:
            return
        for a in [a for a, b in self._seen.items() if a[0] == dpid or b[0] == dpid]:
            del self._seen[a]
        self._changed()

    def port_update(self, now: float, dpid: int, port_no: int, up: bool, hw_addr: str = "") -> bool:
        """A port was added or changed state. Returns True when it matters for paths."""
        ports = self.switches.get(dpid)
        if ports is None or port_no > OFPP_MAX:
            return False
        info = ports.get(port_no)
        if info is None:
            ports[port_no] = PortInfo(port_no, up, now, False, hw_addr)
            self._changed()
            return True
        if info.up == up:
            return False
        info.up = up
        info.since = now
        info.switch_facing = False  # a new life for the port: re-learn what is behind it
        if not up:
            self._drop_links_at((dpid, port_no))
        self._changed()
        return True

    def port_delete(self, dpid: int, port_no: int) -> None:
        ports = self.switches.get(dpid)
        if ports is None or ports.pop(port_no, None) is None:
            return
        self._drop_links_at((dpid, port_no))
        self._changed()

    def link_add(self, src: PortRef, dst: PortRef) -> bool:
        """A link direction was seen (LLDP sent at src arrived at dst)."""
        for ref in (src, dst):
            ports = self.switches.get(ref[0])
            if ports is None or ref[1] not in ports:
                return False
        if self._seen.get(src) == dst:
            return False
        existed = self._peer(src) == dst
        self._seen[src] = dst
        for ref in (src, dst):
            self.switches[ref[0]][ref[1]].switch_facing = True
        if not existed:
            self._changed()
        return not existed

    def link_delete(self, src: PortRef, dst: PortRef) -> bool:
        if self._seen.get(src) != dst:
            return False
        del self._seen[src]
        if self._seen.get(dst) == src:
            # the other direction still works; keep the link but do not trust half links long.
            # Ryu deletes both directions on port-down, so this is the LLDP-timeout case:
            # be conservative and drop the link too (ports stay switch_facing, so no flood).
            del self._seen[dst]
        self._changed()
        return True

    def set_weight(self, a: int, b: int, weight: float) -> None:
        self.weights[frozenset((a, b))] = float(weight)
        self._changed()

    # ---------------------------------------------------------------- queries
    def _peer(self, ref: PortRef) -> PortRef | None:
        return self.link_ports().get(ref)

    def links(self) -> list[Link]:
        """Undirected links (each once), sorted."""
        out: dict[frozenset, Link] = {}
        for a, b in self._seen.items():
            key = frozenset((a, b))
            if key not in out:
                x, y = sorted((a, b))
                out[key] = Link(x, y, self.weights.get(frozenset((x[0], y[0])), 1.0))
        return sorted(out.values(), key=lambda l: (l.a, l.b))

    def link_ports(self) -> dict[PortRef, PortRef]:
        """Both directions of every link: port -> peer port."""
        if self._lp is None:
            res: dict[PortRef, PortRef] = {}
            for a, b in self._seen.items():
                res[a] = b
                res[b] = a
            self._lp = res
        return self._lp

    def is_up(self, dpid: int, port_no: int) -> bool:
        info = self.switches.get(dpid, {}).get(port_no)
        return bool(info and info.up)

    def port_kind(self, now: float, dpid: int, port_no: int) -> str:
        """'link', 'edge', 'pending' (not yet settled), 'dead' (switch-facing, no link) or 'down'."""
        info = self.switches.get(dpid, {}).get(port_no)
        if info is None or not info.up:
            return "down"
        if (dpid, port_no) in self.link_ports():
            return "link"
        if info.switch_facing:
            return "dead"
        if now - info.since < self.settle:
            return "pending"
        return "edge"

    def edge_ports(self, now: float, dpid: int) -> list[int]:
        lp = self.link_ports()
        res = []
        for p, info in self.switches.get(dpid, {}).items():
            if info.up and not info.switch_facing and (dpid, p) not in lp and now - info.since >= self.settle:
                res.append(p)
        return sorted(res)

    def next_settle_deadline(self, now: float) -> float | None:
        """Earliest time a pending port becomes an edge port (for the tick).

        Called after every event, so the deadlines are collected once per topology
        version (O(ports)) and then looked up by bisection (O(log ports))."""
        if self._deadlines is None or self._deadlines[0] != self.version:
            ds = sorted(
                info.since + self.settle
                for ports in self.switches.values()
                for info in ports.values()
                if info.up and not info.switch_facing
            )
            self._deadlines = (self.version, ds)
        ds = self._deadlines[1]
        i = bisect.bisect_right(ds, now)
        return ds[i] if i < len(ds) else None

    def graph(self) -> nx.Graph:
        """Switch graph: nodes dpids, edges with weight and ports {dpid: port}."""
        if self._graph is None:
            g = nx.Graph()
            g.add_nodes_from(sorted(self.switches))
            for l in self.links():
                (da, pa), (db, pb) = l.a, l.b
                if da == db:
                    continue  # a looped cable on one switch: never use it
                if g.has_edge(da, db):
                    # parallel links: keep the lowest port pair deterministically
                    continue
                g.add_edge(da, db, weight=l.weight, ports={da: pa, db: pb})
            self._graph = g
        return self._graph

    def tree_ports(self) -> dict[int, frozenset[int]]:
        """Per switch, the inter-switch ports on the flooding spanning tree.

        One tree per connected component, rooted at its smallest dpid, built as a
        shortest-path tree with deterministic tie-breaks, so it is stable across runs.
        """
        if self._tree_ports is None:
            g = self.graph()
            res: dict[int, set[int]] = {d: set() for d in g.nodes}
            seen: set[int] = set()
            for root in sorted(g.nodes):
                if root in seen:
                    continue
                _, pred = shortest_paths(g, root)
                seen.update(pred)
                for node, parent in pred.items():
                    if parent is None:
                        continue
                    ports = g.edges[node, parent]["ports"]
                    res[node].add(ports[node])
                    res[parent].add(ports[parent])
            self._tree_ports = {d: frozenset(p) for d, p in res.items()}
        return self._tree_ports

    def toward(self, dst: int) -> dict[int, int]:
        """For every switch connected to `dst`: the port of its next hop toward `dst`."""
        res = self._toward.get(dst)
        if res is None:
            g = self.graph()
            res = {}
            if dst in g:
                _, pred = shortest_paths(g, dst)
                for node, parent in pred.items():
                    if parent is not None:
                        res[node] = g.edges[node, parent]["ports"][node]
            self._toward[dst] = res
        return res

    def component(self, dpid: int) -> set[int]:
        g = self.graph()
        if dpid not in g:
            return set()
        return nx.node_connected_component(g, dpid)

    def _drop_links_at(self, ref: PortRef) -> None:
        for a in [a for a, b in self._seen.items() if a == ref or b == ref]:
            del self._seen[a]

    def _changed(self) -> None:
        self.version += 1
        self._graph = None
        self._lp = None
        self._tree_ports = None
        self._toward = {}


def shortest_paths(g: nx.Graph, root, weight: str = "weight"):
    """Dijkstra from `root` with a deterministic tie-break.

    Returns (dist, pred). Among equal-cost predecessors the smallest node wins, so the
    result does not depend on the order edges were added. O((V + E) log V).
    """
    dist = {root: 0.0}
    pred: dict = {root: None}
    done: set = set()
    heap = [(0.0, root)]
    adj = g.adj
    while heap:
        d, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        for v, data in adj[u].items():
            if v in done:
                continue
            nd = d + data.get(weight, 1.0)
            old = dist.get(v)
            if old is None or nd < old - 1e-12:
                dist[v] = nd
                pred[v] = u
                heapq.heappush(heap, (nd, v))
            elif abs(nd - old) <= 1e-12 and u < pred[v]:
                pred[v] = u
    return dist, pred
