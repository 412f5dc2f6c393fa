"""Multicast distribution trees over the switch graph.

Pure functions over an undirected :class:`networkx.Graph` whose nodes are switch
ids (dpids) -- any hashable, mutually sortable nodes work.  Nothing here talks
to Ryu; the flow compiler turns the trees into OpenFlow group and flow entries.

Three kinds of tree
-------------------
``spt``  (source-specific, *S,G*)
    Shortest-path tree from the source to each receiver switch.  Every receiver
    gets the minimum-delay path; the tree is cheap to build (one cached
    Dijkstra per source) and to change incrementally.
``shared`` (*\\*,G*, rooted at a rendezvous point / centre)
    The shortest-path tree from the root (RP) to all member switches, sources
    included.  It is **bidirectional**: a source's first-hop switch sends the
    packet along every tree edge except the one it came in on, i.e. "up"
    towards the root region *and* down the other branches at the same time, and
    every switch replicates onto all its other tree edges.  One tree serves all
    sources of the group; no traffic is encapsulated to the RP.
``steiner``
    A low-cost tree connecting all terminals (source(s) plus receivers): the
    fewest/cheapest links for the group, at the price of longer paths than the
    SPT.  See :func:`steiner_tree` for the heuristics and their measured
    quality.

Conventions
-----------
* ``weight`` is an edge attribute name (a missing attribute counts as 1),
  ``None`` (every edge counts 1, i.e. hop count), or a callable
  ``weight(u, v, data) -> float | None`` where ``None`` hides the edge (as in
  networkx).  Negative weights raise :class:`ValueError`.
* Results are **new** :class:`networkx.Graph` objects that contain only the
  tree's nodes and edges; edge data dicts are shallow copies of ``G``'s.  The
  graph attribute dict holds ``root`` (the source / RP, or the smallest
  terminal of a source-less Steiner tree), ``terminals`` (a frozenset) and
  ``method``.  ``tree_parent_map(T)`` and ``tree_children(T)`` orient it.
* Terminals that cannot be reached raise :class:`networkx.NetworkXNoPath` (the
  message names them); nodes not in ``G`` raise :class:`networkx.NodeNotFound`.
  Nothing is silently dropped: a controller should decide what to do with
  unreachable receivers, not the tree code.
* Everything is deterministic: equal-cost choices are broken by node order,
  never by dict insertion order, so the same graph built in a different order
  gives the same tree, and trees of different groups from the same source are
  sub-trees of one shortest-path tree (they share links).

Caching
-------
:class:`PathCache` keeps one Dijkstra result (distance + predecessor arrays)
per source, computed on first use.  Pass it as ``cache=`` to every function;
call :meth:`PathCache.invalidate` whenever a link or weight changes (the cache
only notices node additions/removals by itself).

Performance (``bench/bench_trees.py``, pure Python, 1,000-node graphs)
----------------------------------------------------------------------
* 10,000 groups x 8 receivers with random sources: ``spt`` ~0.9-1.0 s
  including the ~1,000 Dijkstras of a cold cache, ~0.35 s warm; ``shared``
  ~0.2-0.3 s; ``steiner`` ~2.6-3 ms per group.
* :class:`IncrementalTree` (warm cache): ``spt`` graft/prune ~2 / ~1 us
  median, ``steiner`` graft 8-20 us.
* :func:`steiner_tree`: mean cost 1.004x the optimum (p95 1.025x); 2-3x
  faster than networkx's ``mehlhorn`` on Barabási–Albert graphs, 1.5-2.4x
  on Waxman graphs.

Algorithm choices, in short: SPTs come from one cached Dijkstra per source
(so all groups of a source share links); Steiner trees from the
shortest-path heuristic run as a single incremental Dijkstra, polished by a
local search (MST of the induced subgraph, key-path exchange, Steiner-vertex
insertion on small trees).
"""
from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from typing import Callable, Dict, FrozenSet, Hashable, Iterable, List, Optional, Tuple, Union

import networkx as nx

__all__ = [
    "ALGORITHMS",
    "IncrementalTree",
    "PathCache",
    "choose_center",
    "shared_tree",
    "spt_keeping",
    "spt",
    "steiner_tree",
    "tree",
    "tree_children",
    "tree_cost",
    "tree_parent_map",
]

Node = Hashable
Weight = Union[str, None, Callable[[Node, Node, dict], Optional[float]]]

_INF = math.inf
_heappush = heapq.heappush
_heappop = heapq.heappop


# --------------------------------------------------------------------------
# Weights and adjacency
# --------------------------------------------------------------------------

def _weight_function(weight: Weight) -> Callable[[Node, Node, dict], Optional[float]]:
    if callable(weight):
        return weight
    if weight is None:
        return lambda u, v, d: 1
    return lambda u, v, d: d.get(weight, 1)


def _check_graph(G) -> None:
    if G.is_directed():
        raise nx.NetworkXNotImplemented("multicast trees need an undirected graph")
    if G.is_multigraph():
        raise nx.NetworkXNotImplemented("multigraphs are not supported; collapse parallel links first")


def _check_nodes(G, nodes: Iterable[Node], what: str = "terminal") -> None:
    for v in nodes:
        if v not in G:
            raise nx.NodeNotFound(f"{what} {v!r} is not in the graph")


class _Adjacency(dict):
    """``node -> {neighbour: weight}``, built lazily from ``G`` on first access.

    Hidden edges (weight ``None``) are left out.  A miss costs ``O(d)`` for a
    node of degree ``d``; hits are a dict lookup.  Neighbour order follows
    ``G`` and therefore insertion order: every algorithm below must be (and
    is) insensitive to it -- Dijkstra variants settle nodes in
    ``(distance, node)`` order and every other choice sorts.
    """

    __slots__ = ("_gadj", "_weight", "_wf", "by_weight")

    def __init__(self, G, weight: Weight):
        super().__init__()
        self._gadj = G._adj
        self._weight = weight
        self._wf = None if isinstance(weight, str) else _weight_function(weight)
        #: ``node -> [(weight, nbr), ...]`` sorted, for searches with a bound.
        self.by_weight = _ByWeight(self)

    def __missing__(self, u):
        out = {}
        if self._wf is None:
            key = self._weight
            for v, d in self._gadj[u].items():
                w = d.get(key, 1)
                if w < 0:
                    raise ValueError(f"negative weight {w!r} on edge ({u!r}, {v!r})")
                out[v] = w
        else:
            wf = self._wf
            for v, d in self._gadj[u].items():
                w = wf(u, v, d)
                if w is None:
                    continue
                if w < 0:
                    raise ValueError(f"negative weight {w!r} on edge ({u!r}, {v!r})")
                out[v] = w
        self[u] = out
        return out


class _ByWeight(dict):
    """``node -> [(weight, nbr), ...]`` in increasing order, built lazily."""

    __slots__ = ("_adj",)

    def __init__(self, adj):
        super().__init__()
        self._adj = adj

    def __missing__(self, u):
        adj = self._adj
        nbrs = adj.get(u)
        if nbrs is None and adj._wf is None:  # read the attribute directly
            key = adj._weight
            out = sorted([(d.get(key, 1), v) for v, d in adj._gadj[u].items()])
            if out and out[0][0] < 0:
                raise ValueError(f"negative weight {out[0][0]!r} on edge ({u!r}, {out[0][1]!r})")
        else:
            out = sorted([(w, v) for v, w in adj[u].items()])
        self[u] = out
        return out


def _dijkstra_tree(adj: _Adjacency, source: Node, targets=None):
    """Dijkstra from ``source`` with smallest-predecessor tie-breaking.

    Stops once every node of ``targets`` (a set, or ``None`` for all) is
    settled.  Returns ``(dist, pred)`` dicts over the settled nodes
    (``pred[source]`` is absent).  Settling order is ``(distance, node)`` and
    among equal-cost predecessors of a node the smallest one wins, exactly as
    in :class:`PathCache`, so both give the same tree.
    """
    dist: Dict[Node, float] = {}
    seen = {source: 0}
    pred: Dict[Node, Node] = {}
    heap = [(0, source)]
    left = len(targets) if targets is not None else -1
    while heap:
        d, u = _heappop(heap)
        if u in dist:
            continue
        dist[u] = d
        if targets is not None and u in targets:
            left -= 1
            if left == 0:
                break
        for v, w in adj[u].items():
            nd = d + w
            sv = seen.get(v)
            if sv is None or nd < sv:
                seen[v] = nd
                pred[v] = u
                _heappush(heap, (nd, v))
            elif nd == sv and v not in dist and u < pred[v]:
                pred[v] = u
    for v in list(pred):
        if v not in dist:
            del pred[v]
    return dist, pred


# --------------------------------------------------------------------------
# Path cache
# --------------------------------------------------------------------------

class PathCache:
    """Per-source shortest-path results for one graph and one weight.

    Parameters
    ----------
    G : networkx.Graph
        The (undirected) topology.  It is read, never modified.
    weight : str, None or callable, default "weight"
        Edge weight, see the module conventions.  Functions called with
        ``cache=`` must use the same ``weight`` (checked).
    maxsize : int or None, default None
        Keep at most this many sources (least recently used are dropped).
        ``None`` keeps all: ``O(n)`` memory per source, ~16 MB for 1,000
        sources on a 1,000-node graph.

    Notes
    -----
    The first use compiles ``G`` into index arrays in ``O(n log n + m)``.  Each
    new source costs one Dijkstra, ``O(m + n log n)``, or one BFS, ``O(n + m)``,
    when every visible edge has the same positive weight; later look-ups are
    ``O(1)`` per node.  Ties are broken as in :func:`spt`: nodes are settled in
    ``(distance, node)`` order and among equal-cost predecessors the smallest
    node wins, so the cached tree of a source does not depend on insertion
    order.

    The cache does not watch ``G``.  Call :meth:`invalidate` after any change
    of links or weights.  As a safety net it recompiles by itself when the
    number of nodes changed.
    """

    def __init__(self, G: nx.Graph, weight: Weight = "weight", maxsize: Optional[int] = None):
        _check_graph(G)
        self.G = G
        self.weight = weight
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._results: "OrderedDict[Node, Tuple[list, list]]" = OrderedDict()
        self._nodes: Optional[List[Node]] = None
        self._index: Dict[Node, int] = {}
        self._iadj: List[List[Tuple[int, float]]] = []
        self._unit = False
        self._adjacency: Optional[_Adjacency] = None
        self._n_seen = -1

    # -- maintenance ---------------------------------------------------
    def invalidate(self) -> None:
        """Forget everything; the next use recompiles the graph.  ``O(1)``."""
        self._results.clear()
        self._nodes = None
        self._index = {}
        self._iadj = []
        self._adjacency = None
        self._n_seen = -1

    def __len__(self) -> int:
        return len(self._results)

    def __contains__(self, source: Node) -> bool:
        return source in self._results

    def _compile(self) -> None:
        G = self.G
        nodes = sorted(G)
        index = {v: i for i, v in enumerate(nodes)}
        wf = _weight_function(self.weight)
        iadj: List[List[Tuple[int, float]]] = []
        weights = set()
        for u in nodes:
            row = []
            for v, data in G._adj[u].items():
                w = wf(u, v, data)
                if w is None:
                    continue
                if w < 0:
                    raise ValueError(f"negative weight {w!r} on edge ({u!r}, {v!r})")
                row.append((index[v], w))
                if len(weights) < 2:
                    weights.add(w)
            iadj.append(row)
        self._nodes = nodes
        self._index = index
        self._iadj = iadj
        self._unit = len(weights) == 1 and next(iter(weights)) > 0
        self._n_seen = len(nodes)

    def _ready(self) -> None:
        if self._nodes is None or len(self.G) != self._n_seen:
            self.invalidate()
            self._compile()

    def _check(self, G, weight) -> None:
        if G is not self.G:
            raise ValueError("cache was built for a different graph")
        if weight is not self.weight and weight != self.weight:
            raise ValueError(f"cache was built with weight={self.weight!r}, not {weight!r}")

    def adjacency(self) -> _Adjacency:
        """Lazily compiled ``node -> {nbr: weight}`` map shared by the Steiner code."""
        self._ready()
        if self._adjacency is None:
            self._adjacency = _Adjacency(self.G, self.weight)
        return self._adjacency

    # -- single-source results ------------------------------------------
    def _sssp(self, source: Node) -> Tuple[list, list]:
        self._ready()
        res = self._results.get(source)
        if res is not None:
            self.hits += 1
            if self.maxsize is not None:
                self._results.move_to_end(source)
            return res
        if source not in self._index:
            raise nx.NodeNotFound(f"source {source!r} is not in the graph")
        self.misses += 1
        s = self._index[source]
        res = self._bfs(s) if self._unit else self._dijkstra(s)
        self._results[source] = res
        if self.maxsize is not None and len(self._results) > self.maxsize:
            self._results.popitem(last=False)
        return res

    def _dijkstra(self, s: int) -> Tuple[list, list]:
        adj = self._iadj
        n = len(adj)
        dist = [_INF] * n
        pred = [-1] * n
        done = [False] * n
        dist[s] = 0
        heap = [(0, s)]
        pop, push = _heappop, _heappush
        while heap:
            d, u = pop(heap)
            if done[u]:
                continue
            done[u] = True
            for v, w in adj[u]:
                nd = d + w
                dv = dist[v]
                if nd < dv:
                    dist[v] = nd
                    pred[v] = u
                    push(heap, (nd, v))
                elif nd == dv and u < pred[v] and not done[v]:
                    pred[v] = u
        return dist, pred

    def _bfs(self, s: int) -> Tuple[list, list]:
        # Unit weights: level by level, each level scanned in node order, so
        # the first discoverer of a node is its smallest predecessor -- the
        # same tree Dijkstra with the same tie-break would give.
        adj = self._iadj
        n = len(adj)
        w0 = adj[s][0][1] if adj[s] else 1
        dist = [_INF] * n
        pred = [-1] * n
        dist[s] = 0
        level = [s]
        d = 0
        while level:
            d += w0
            nxt = []
            for u in level:
                for v, _ in adj[u]:
                    if dist[v] == _INF:
                        dist[v] = d
                        pred[v] = u
                        nxt.append(v)
            nxt.sort()
            level = nxt
        return dist, pred

    def distance(self, source: Node, target: Node) -> float:
        """Shortest-path distance (``inf`` if unreachable).  ``O(1)`` when cached."""
        dist, _ = self._sssp(source)
        i = self._index.get(target)
        if i is None:
            raise nx.NodeNotFound(f"node {target!r} is not in the graph")
        return dist[i]

    def distances(self, source: Node) -> Dict[Node, float]:
        """``{node: distance}`` for the nodes reachable from ``source``.  ``O(n)``."""
        dist, _ = self._sssp(source)
        nodes = self._nodes
        return {nodes[i]: d for i, d in enumerate(dist) if d < _INF}

    def predecessors(self, source: Node) -> Dict[Node, Node]:
        """``{node: parent}`` of the cached shortest-path tree of ``source``.  ``O(n)``."""
        _, pred = self._sssp(source)
        nodes = self._nodes
        return {nodes[i]: nodes[p] for i, p in enumerate(pred) if p >= 0}

    def path(self, source: Node, target: Node) -> List[Node]:
        """The cached shortest path ``[source, ..., target]``.  ``O(path)``."""
        _, pred = self._sssp(source)
        nodes, index = self._nodes, self._index
        if target not in index:
            raise nx.NodeNotFound(f"node {target!r} is not in the graph")
        i, s = index[target], index[source]
        out = [target]
        while i != s:
            i = pred[i]
            if i < 0:
                raise nx.NetworkXNoPath(f"no path from {source!r} to {target!r}")
            out.append(nodes[i])
        out.reverse()
        return out


def _cache_for(G, weight, cache: Optional[PathCache]) -> Optional[PathCache]:
    if cache is not None:
        cache._check(G, weight)
    return cache


# --------------------------------------------------------------------------
# Building result graphs
# --------------------------------------------------------------------------

def _new_tree(G, edges: Iterable[Tuple[Node, Node]], nodes: Iterable[Node], root, terminals, method) -> nx.Graph:
    """A fresh ``nx.Graph`` of the tree with copied edge data.

    Filled through the adjacency dicts directly (what ``add_edges_from``
    does, minus its per-edge bookkeeping): 2.3x faster, which matters for
    10,000 trees.  The graph is brand new, so no cached views can be stale.
    """
    T = nx.Graph(root=root, terminals=frozenset(terminals), method=method)
    tadj = T._adj
    tnode = T._node
    for v in nodes:
        if v not in tadj:
            tadj[v] = {}
            tnode[v] = {}
    gadj = G._adj
    for u, v in edges:
        data = gadj[u][v].copy()
        nu = tadj.get(u)
        if nu is None:
            nu = tadj[u] = {}
            tnode[u] = {}
        nv = tadj.get(v)
        if nv is None:
            nv = tadj[v] = {}
            tnode[v] = {}
        nu[v] = data
        nv[u] = data
    return T


def _unreachable(what, nodes) -> nx.NetworkXNoPath:
    nodes = sorted(nodes)
    shown = ", ".join(map(repr, nodes[:10])) + (" ..." if len(nodes) > 10 else "")
    return nx.NetworkXNoPath(f"{len(nodes)} terminal(s) unreachable from {what}: {shown}")


def _spt_edges(G, source, terms, weight, cache) -> List[Tuple[Node, Node]]:
    """Edges ``(child, parent)`` of the union of the cached SPT paths."""
    edges: List[Tuple[Node, Node]] = []
    if cache is not None:
        _, pred = cache._sssp(source)
        index, nodes = cache._index, cache._nodes
        s = index[source]
        inside = {s}
        bad = []
        for t in terms:
            i = index.get(t)
            if i is None:
                raise nx.NodeNotFound(f"terminal {t!r} is not in the graph")
            if i in inside:
                continue
            if pred[i] < 0:
                bad.append(t)
                continue
            while i not in inside:
                inside.add(i)
                p = pred[i]
                edges.append((nodes[i], nodes[p]))
                i = p
        if bad:
            raise _unreachable(repr(source), bad)
        return edges
    _check_nodes(G, terms)
    targets = set(terms)
    targets.discard(source)
    if not targets:
        return edges
    dist, pred = _dijkstra_tree(_Adjacency(G, weight), source, targets)
    bad = [t for t in targets if t not in dist]
    if bad:
        raise _unreachable(repr(source), bad)
    inside = {source}
    for t in sorted(targets):
        x = t
        while x not in inside:
            inside.add(x)
            p = pred[x]
            edges.append((x, p))
            x = p
    return edges


# --------------------------------------------------------------------------
# Shortest-path and shared trees
# --------------------------------------------------------------------------

def spt(G: nx.Graph, source: Node, terminals: Iterable[Node], weight: Weight = "weight", *,
        cache: Optional[PathCache] = None) -> nx.Graph:
    """Shortest-path tree from ``source`` to ``terminals``.

    The union of the paths of ONE shortest-path tree of ``source`` (Dijkstra,
    nodes settled in ``(distance, node)`` order, smallest equal-cost
    predecessor wins), trimmed to the branches that lead to terminals.  Using
    one tree guarantees the union is a tree; the tie-break makes all groups of
    one source share links and makes unit-weight fat-tree / leaf-spine trees
    use the fewest links (all branches climb through the same lowest-numbered
    spine when the spines are numbered consistently).

    Parameters
    ----------
    G : networkx.Graph
        Undirected topology.
    source : node
        Root of the tree (the first-hop switch of the sender).
    terminals : iterable of nodes
        Receiver switches.  ``source`` may be among them; duplicates are fine.
    weight : str, None or callable, default "weight"
        See the module conventions.
    cache : PathCache, optional
        Cache for ``(G, weight)``; strongly recommended when building many
        trees.

    Returns
    -------
    networkx.Graph
        New graph of tree nodes and edges (``source`` is always a node; with no
        other terminal it is the only one).  ``T.graph`` has ``root=source``,
        ``terminals`` and ``method="spt"``.

    Raises
    ------
    networkx.NodeNotFound
        ``source`` or a terminal is not in ``G``.
    networkx.NetworkXNoPath
        Some terminal is unreachable from ``source``.

    Notes
    -----
    Complexity: with a warm cache ``O(|T|)`` for a tree of ``|T|`` nodes
    (walk predecessors until the tree is hit) plus building the result graph;
    cold, one Dijkstra ``O(m + n log n)`` (BFS ``O(n + m)`` for equal weights).
    Without a cache, a Dijkstra that stops once every terminal is settled.
    """
    _check_graph(G)
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} is not in the graph")
    cache = _cache_for(G, weight, cache)
    terms = sorted(set(terminals))
    edges = _spt_edges(G, source, terms, weight, cache)
    return _new_tree(G, edges, (source,), source, terms, "spt")


def spt_keeping(G: nx.Graph, source: Node, terminals: Iterable[Node], keep, weight: Weight = "weight") -> nx.Graph:
    """A shortest-path tree from ``source`` that, among equal-cost shortest paths,
    uses as few links outside ``keep`` (a set of ``frozenset({u, v})``) as possible.

    Why: when a tree is recomputed (a link came back, a member joined), a tree of the
    same cost that moves branches which still work buys nothing and costs a reroute,
    and a reroute is the one change no switch order makes hitless (the copies in
    flight on the old and the new path race at the merge point). Preferring the links
    already in use keeps working branches where they are; a strictly shorter path
    still wins, so the result is a shortest-path tree all the same. Joins graft onto
    the tree where an equal-cost choice allows, which also keeps trees small.

    Lexicographic Dijkstra on ``(distance, links outside keep, node)``: additive in
    both components, so the predecessors form one tree.
    """
    _check_graph(G)
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} is not in the graph")
    terms = sorted(set(terminals))
    adj = _Adjacency(G, weight)
    best: Dict[Node, tuple] = {source: (0.0, 0)}
    pred: Dict[Node, Node] = {}
    done: set = set()
    heap = [(0.0, 0, source)]
    while heap:
        d, k, u = _heappop(heap)
        if u in done:
            continue
        done.add(u)
        for v, w in adj[u].items():
            if v in done:
                continue
            cand = (round(d + w, 9), k + (0 if frozenset((u, v)) in keep else 1))
            cur = best.get(v)
            if cur is None or cand < cur or (cand == cur and u < pred[v]):
                best[v] = cand
                pred[v] = u
                _heappush(heap, (cand[0], cand[1], v))
    edges: List[Tuple[Node, Node]] = []
    inside = {source}
    for t in terms:
        if t not in G:
            raise nx.NodeNotFound(f"terminal {t!r} is not in the graph")
        if t not in done:
            raise nx.NetworkXNoPath(f"terminal {t!r} is not reachable from {source!r}")
        while t not in inside:
            inside.add(t)
            edges.append((t, pred[t]))
            t = pred[t]
    return _new_tree(G, edges, (source,), source, terms, "spt")


def shared_tree(G: nx.Graph, root: Node, terminals: Iterable[Node], weight: Weight = "weight", *,
                cache: Optional[PathCache] = None) -> nx.Graph:
    """Shared (\\*,G) tree: the shortest-path tree from the RP/centre ``root``.

    ``terminals`` are all member switches of the group -- receivers **and**
    sources.  The tree always contains ``root`` (even if it is not a member:
    it is the rendezvous point).

    The tree is used **bidirectionally**: a packet from a source's switch is
    forwarded on every tree edge except the one it arrived on, so it travels
    towards the root region and, at every branching switch on the way, also
    down the other branches.  Each receiver therefore gets exactly one copy
    and no packet has to be unicast to the RP first.

    Parameters
    ----------
    G, root, terminals, weight, cache
        As in :func:`spt`, with ``root`` in the role of the source.

    Returns
    -------
    networkx.Graph
        New tree graph, ``T.graph`` has ``root``, ``terminals`` and
        ``method="shared"``.

    Notes
    -----
    Complexity as :func:`spt`.  Choose ``root`` with :func:`choose_center` when
    no RP is configured.
    """
    _check_graph(G)
    if root not in G:
        raise nx.NodeNotFound(f"root {root!r} is not in the graph")
    cache = _cache_for(G, weight, cache)
    terms = sorted(set(terminals))
    edges = _spt_edges(G, root, terms, weight, cache)
    return _new_tree(G, edges, (root,), root, terms, "shared")


def choose_center(G: nx.Graph, weight: Weight = "weight", *, terminals: Optional[Iterable[Node]] = None,
                  cache: Optional[PathCache] = None) -> Node:
    """A deterministic graph centre, to use as the root of shared trees.

    Returns the node of minimum (weighted) eccentricity; ties go to the
    smallest node.  With ``terminals`` the eccentricity only counts distances
    to those nodes (a per-group centre: the node minimising the worst distance
    to any member).

    Parameters
    ----------
    G : networkx.Graph
    weight : str, None or callable, default "weight"
    terminals : iterable of nodes, optional
        Restrict the eccentricity to these targets.
    cache : PathCache, optional
        Re-uses (and fills) per-source results.

    Returns
    -------
    node

    Raises
    ------
    networkx.NetworkXPointlessConcept
        ``G`` has no nodes (or ``terminals`` is empty).
    networkx.NetworkXError
        No node reaches all targets (graph / terminals not connected).

    Notes
    -----
    Complexity: one Dijkstra per target, ``O(k (m + n log n))`` with ``k = n``
    without ``terminals``.  For the whole graph that is ~1 s for 1,000 nodes in
    pure Python, so compute it once per topology and keep it.
    """
    _check_graph(G)
    if len(G) == 0:
        raise nx.NetworkXPointlessConcept("the null graph has no centre")
    cache = _cache_for(G, weight, cache)
    if cache is None:
        cache = PathCache(G, weight)
    cache._ready()
    if terminals is None:
        targets = cache._nodes
    else:
        targets = sorted(set(terminals))
        if not targets:
            raise nx.NetworkXPointlessConcept("no terminals to centre on")
        _check_nodes(G, targets)
    n = len(cache._nodes)
    ecc = [0] * n
    for t in targets:
        dist, _ = cache._sssp(t)  # undirected: d(t, v) == d(v, t)
        for i, d in enumerate(dist):
            if d > ecc[i]:
                ecc[i] = d
    best = min(range(n), key=lambda i: (ecc[i], i))
    if ecc[best] == _INF:
        raise nx.NetworkXError("no node reaches every target: the graph is not connected")
    return cache._nodes[best]


# --------------------------------------------------------------------------
# Steiner trees
# --------------------------------------------------------------------------
# Internal representation: ``tadj`` = {node: {nbr: weight}} of the tree.

#: Vertex insertion is tried only on trees with at most this many nodes (it is
#: O(|T| log |T|) per candidate and rarely pays on large trees).
INSERT_LIMIT = 32

#: In trees with more nodes than this, key paths of a single edge are not
#: exchanged: there they succeed in ~3% of the attempts but take ~40% of the
#: local search; skipping them costs ~0.3% tree cost at 128 terminals on
#: 1,000-node graphs and saves 25-40% of the running time.
SINGLE_EDGE_LIMIT = 128


def _tree_cost(tadj) -> float:
    return sum(w for u, nbrs in tadj.items() for v, w in nbrs.items() if u < v)


def _add_edge(tadj, u, v, w) -> None:
    tadj.setdefault(u, {})[v] = w
    tadj.setdefault(v, {})[u] = w


def _prune_leaves(tadj, terms) -> float:
    """Remove non-terminal leaves repeatedly; returns the cost removed.  ``O(|T|)``."""
    removed = 0
    stack = [v for v, nb in tadj.items() if len(nb) <= 1 and v not in terms]
    while stack:
        v = stack.pop()
        nb = tadj.get(v)
        if nb is None or len(nb) > 1 or v in terms:
            continue
        del tadj[v]
        for u, w in nb.items():
            removed += w
            unb = tadj[u]
            del unb[v]
            if len(unb) <= 1 and u not in terms:
                stack.append(u)
    return removed


def _sph(adj: _Adjacency, terms: FrozenSet[Node], root: Node, bound: float = _INF):
    """Takahashi–Matsuyama shortest-path heuristic grown from ``root``.

    One Dijkstra from the growing tree: whenever the nearest unconnected
    terminal is popped, its path joins the tree and the new tree nodes are
    pushed with label 0 (labels only decrease, stale heap entries are
    skipped).  Returns ``(tadj, cost)``, or ``None`` as soon as the cost
    reaches ``bound``.  ``O(r (m + n log n))`` where ``r``, the number of times
    a node's label decreases, is 1.3-2 on 1,000-node graphs.

    With a string ``weight`` the edge attributes are read in place (no
    compiled adjacency is built: it would cost a third of the run).
    """
    key = adj._weight if adj._wf is None else None
    gadj = adj._gadj
    remaining = set(terms)
    remaining.discard(root)
    tadj = {root: {}}
    cost = 0
    dist = {root: 0}
    pred = {}
    heap = [(0, root)]
    pop, push = _heappop, _heappush
    while remaining:
        if not heap:
            raise _unreachable(repr(root), remaining)
        d, u = pop(heap)
        if d > dist[u]:
            continue
        if u in remaining:
            cost += d
            if cost >= bound:
                return None
            chain = []
            x = u
            while x not in tadj:
                chain.append(x)
                x = pred[x]
            for c in chain:
                tadj[c] = {}
            for c in chain:
                p = pred[c]
                w = adj[c][p]
                tadj[c][p] = w
                tadj[p][c] = w
                remaining.discard(c)
                dist[c] = 0
                push(heap, (0, c))
            continue
        if key is None:
            for v, w in adj[u].items():
                nd = d + w
                dv = dist.get(v)
                if dv is None or nd < dv:
                    dist[v] = nd
                    pred[v] = u
                    push(heap, (nd, v))
        else:
            for v, data in gadj[u].items():
                w = data.get(key, 1)
                if w < 0:
                    raise ValueError(f"negative weight {w!r} on edge ({u!r}, {v!r})")
                nd = d + w
                dv = dist.get(v)
                if dv is None or nd < dv:
                    dist[v] = nd
                    pred[v] = u
                    push(heap, (nd, v))
    return tadj, cost


def _mst_prune(adj: _Adjacency, tadj, terms):
    """MST of the subgraph induced by the tree's nodes, then leaf pruning.

    Never costlier than ``tadj`` (returned unchanged when the induced subgraph
    is the tree itself).  ``O(e log e)`` for the ``e`` induced edges.
    """
    edges = []
    for u in tadj:
        for v, w in adj[u].items():
            if v in tadj and u < v:
                edges.append((w, u, v))
    if len(edges) == len(tadj) - 1:
        return tadj
    edges.sort()
    parent = {v: v for v in tadj}
    new = {v: {} for v in tadj}
    need = len(tadj) - 1
    for w, u, v in edges:
        ru = u
        while parent[ru] != ru:
            parent[ru] = parent[parent[ru]]
            ru = parent[ru]
        rv = v
        while parent[rv] != rv:
            parent[rv] = parent[parent[rv]]
            rv = parent[rv]
        if ru == rv:
            continue
        parent[ru] = rv
        new[u][v] = w
        new[v][u] = w
        need -= 1
        if need == 0:
            break
    _prune_leaves(new, terms)
    return new


def _key_paths(tadj, terms):
    """Key paths: maximal paths whose inner nodes are non-terminals of degree 2.

    Returns ``[(cost, [a, ..., b]), ...]`` with ``a < b``.  ``O(|T|)``.
    """
    paths = []
    for a, nb in tadj.items():
        if a not in terms and len(nb) == 2:
            continue
        for b, w in nb.items():
            prev, x, cost = a, b, w
            path = [a]
            while x not in terms and len(tadj[x]) == 2:
                path.append(x)
                for y, wy in tadj[x].items():
                    if y != prev:
                        break
                prev, x = x, y
                cost += wy
            if a < x:
                path.append(x)
                paths.append((cost, path))
    return paths


def _is_segment(tadj, terms, path) -> bool:
    """Is ``path`` still a path of the tree whose inner nodes are free degree-2 nodes?"""
    for i in range(len(path) - 1):
        nb = tadj.get(path[i])
        if nb is None or path[i + 1] not in nb:
            return False
    for x in path[1:-1]:
        if x in terms or len(tadj[x]) != 2:
            return False
    return True


def _orient(tadj, root):
    """``(preorder, index in preorder, subtree sizes, parents)`` of the tree.  ``O(|T|)``."""
    order = []
    parent = {root: None}
    stack = [root]
    while stack:
        u = stack.pop()
        order.append(u)
        pu = parent[u]
        for v in tadj[u]:
            if v != pu:
                parent[v] = u
                stack.append(v)
    tin = {v: i for i, v in enumerate(order)}
    size = dict.fromkeys(order, 1)
    for v in reversed(order):
        pv = parent[v]
        if pv is not None:
            size[pv] += size[v]
    return order, tin, size, parent


def _smaller_half(tadj, path):
    """Node set of the smaller half left by removing ``path``: interleaved BFS."""
    a, b = path[0], path[-1]
    inner = set(path[1:-1])
    ban = {(a, path[1]), (b, path[-2])}
    seen = ({a}, {b})
    queues = ([a], [b])
    heads = [0, 0]
    while True:
        for k in (0, 1):
            q = queues[k]
            if heads[k] == len(q):
                return seen[k], inner
            x = q[heads[k]]
            heads[k] += 1
            s = seen[k]
            for y in tadj[x]:
                if y not in s and y not in inner and (x, y) not in ban and (y, x) not in ban:
                    s.add(y)
                    q.append(y)


def _exchange(adj: _Adjacency, tadj, terms, path, cost, orient) -> bool:
    """Try to replace the key path ``path`` (cost ``cost``) by a cheaper one.

    Removing the path splits the tree in two.  With a fresh orientation
    (``orient`` from :func:`_orient`) the halves are slices of the preorder:
    the subtree below the path and the rest; without one (the tree changed
    since), the smaller half is found by interleaved BFS.  A multi-source
    Dijkstra from the smaller half, bounded by ``cost`` (neighbour lists
    sorted by weight let it stop early), looks for the nearest node of the
    other half.  Applies the exchange in place and returns True when that
    saves anything.  ``O(smaller half + ball of radius cost)``.
    """
    if orient is not None:
        order, tin, size, parent = orient
        if parent.get(path[0]) == path[1]:
            low, top = path[0], path[-2]
        else:
            low, top = path[-1], path[1]
        # subtree(low) is the half below the path; subtree(top) adds its inner nodes.
        lo, hi = tin[low], tin[low] + size[low]
        tlo, thi = tin[top], tin[top] + size[top]
        if hi - lo <= len(order) - (thi - tlo):
            src = order[lo:hi]
            s_lo, s_hi, s_in = lo, hi, True
            o_lo, o_hi, o_in = tlo, thi, False
        else:
            src = order[:tlo] + order[thi:]
            s_lo, s_hi, s_in = tlo, thi, False
            o_lo, o_hi, o_in = lo, hi, True
    else:
        src, inner = _smaller_half(tadj, path)
    limit = cost - 1e-9 * max(1.0, abs(cost))
    dist = dict.fromkeys(src, 0)
    pred = {}
    sadj = adj.by_weight
    heap = [(0, x) for x in src if sadj[x] and sadj[x][0][0] < limit]
    heapq.heapify(heap)
    pop, push = _heappop, _heappush
    hit = None
    while heap:
        d, u = pop(heap)
        if d > dist[u]:
            continue
        if orient is not None:
            t = tin.get(u)
            if t is not None and (o_lo <= t < o_hi) == o_in:
                hit = u
                break
        elif u in tadj and u not in src and u not in inner:
            hit = u
            break
        room = limit - d
        for w, v in sadj[u]:
            if w >= room:
                break
            nd = d + w
            dv = dist.get(v)
            if dv is None or nd < dv:
                dist[v] = nd
                pred[v] = u
                push(heap, (nd, v))
    if hit is None:
        return False
    for j in range(len(path) - 1):
        u, v = path[j], path[j + 1]
        del tadj[u][v]
        del tadj[v][u]
    for x in path[1:-1]:
        del tadj[x]
    x = hit
    while True:
        if orient is not None:
            t = tin.get(x)
            if t is not None and (s_lo <= t < s_hi) == s_in:
                break
        elif x in src:
            break
        p = pred[x]
        _add_edge(tadj, x, p, adj[x][p])
        x = p
    _prune_leaves(tadj, terms)
    return True


def _key_path_exchange(adj: _Adjacency, tadj, terms, failed: set, max_rounds: int = 8) -> bool:
    """Key-path exchange over all key paths, costliest first, until stable.

    Each round orients the tree once; after the first successful exchange of
    a round the orientation is stale and the remaining attempts find their
    halves by BFS instead (re-orienting after every success costs more).  A
    path whose exchange failed is not retried while it stays the same node
    sequence (``failed`` is shared by the caller across rounds): retrying
    almost never pays and costs half the local search on large groups.
    """
    changed = False
    root = min(terms)
    for _ in range(max_rounds):
        improved = False
        paths = _key_paths(tadj, terms)
        if len(tadj) > SINGLE_EDGE_LIMIT:
            paths = [p for p in paths if len(p[1]) > 2]
        paths.sort(key=lambda p: -p[0])
        orient = _orient(tadj, root)
        for cost, path in paths:
            key = tuple(path)
            if key in failed:
                continue
            if improved and not _is_segment(tadj, terms, path):
                continue
            if _exchange(adj, tadj, terms, path, cost, orient):
                improved = True
                orient = None
            else:
                failed.add(key)
        if not improved:
            break
        changed = True
    return changed


def _vertex_insertion(adj: _Adjacency, tadj, terms):
    """Steiner-vertex insertion: add one outside node if the MST through it is cheaper.

    For every non-tree node ``v`` next to two or more tree nodes, Kruskal over
    the tree edges plus ``v``'s edges into the tree, then leaf pruning.  A
    cheap bound (the ``j - 1`` heaviest tree edges that ``j`` of ``v``'s
    cheapest edges could replace) skips hopeless candidates.  Returns the new
    tree on the first improvement, else ``None``.
    ``O(c |T| log |T|)`` for ``c`` candidates that pass the bound.
    """
    tree_edges = sorted((w, u, v) for u, nb in tadj.items() for v, w in nb.items() if u < v)
    heavy = sorted((e[0] for e in tree_edges), reverse=True)
    cost0 = sum(heavy)
    tol = 1e-9 * max(1.0, abs(cost0))
    cands: Dict[Node, list] = {}
    for x in tadj:
        for v, w in adj[x].items():
            if v not in tadj:
                cands.setdefault(v, []).append((w, v, x))
    for v in sorted(cands, key=lambda c: (-len(cands[c]), c)):
        es = cands[v]
        if len(es) < 2:
            break
        es.sort()
        gain, add, rem = -_INF, 0, 0
        for j, (w, _, _) in enumerate(es):
            add += w
            if j > 0:
                if j - 1 >= len(heavy):
                    break
                rem += heavy[j - 1]
            gain = max(gain, rem - add)
        if gain <= tol:
            continue
        edges = sorted(tree_edges + es)
        parent = {x: x for x in tadj}
        parent[v] = v
        new = {x: {} for x in parent}
        for w, a, b in edges:
            ra = a
            while parent[ra] != ra:
                parent[ra] = parent[parent[ra]]
                ra = parent[ra]
            rb = b
            while parent[rb] != rb:
                parent[rb] = parent[parent[rb]]
                rb = parent[rb]
            if ra != rb:
                parent[ra] = rb
                new[a][b] = w
                new[b][a] = w
        _prune_leaves(new, terms)
        if _tree_cost(new) < cost0 - tol:
            return new
    return None


def _local_search(adj: _Adjacency, tadj, terms):
    """MST+prune, key-path exchange, vertex insertion (small trees) until stable."""
    tadj = _mst_prune(adj, tadj, terms)
    failed: set = set()
    for _ in range(16):
        changed = _key_path_exchange(adj, tadj, terms, failed)
        if changed:
            new = _mst_prune(adj, tadj, terms)
            if new is not tadj:
                tadj = new
                continue
        if len(tadj) <= INSERT_LIMIT:
            new = _vertex_insertion(adj, tadj, terms)
            if new is not None:
                tadj = new
                continue
        break
    return tadj


def _spread(items: List[Node], count: int) -> List[Node]:
    """``count`` items evenly spread over the sorted list (deterministic)."""
    k = len(items)
    if count >= k:
        return list(items)
    return [items[(i * k) // count] for i in range(count)]


def _steiner_sph(adj: _Adjacency, terms: FrozenSet[Node], *, starts: Optional[int] = None,
                 improve: bool = True, **_):
    """Shortest-path heuristic from several roots; best tree after local search."""
    order = sorted(terms)
    k = len(order)
    if starts is None:
        starts = 1
    best, best_cost = None, _INF
    for r in _spread(order, max(1, starts)):
        res = _sph(adj, terms, r, bound=_INF if improve else best_cost)
        if res is None:
            continue
        tadj = res[0]
        if improve and k > 2:  # two terminals: the shortest path is optimal
            tadj = _local_search(adj, tadj, terms)
        c = _tree_cost(tadj)
        if c < best_cost:
            best, best_cost = tadj, c
    return best


def _steiner_kmb(adj: _Adjacency, terms: FrozenSet[Node], *, improve: bool = True, **_):
    """Kou–Markowsky–Berman: MST of the terminals' metric closure, expanded."""
    order = sorted(terms)
    targets = set(order)
    sp = {t: _dijkstra_tree(adj, t, targets) for t in order}
    for t in order:
        missing = targets - sp[t][0].keys()
        if missing:
            raise _unreachable(repr(t), missing)
    # Prim on the complete terminal graph (k^2).
    first = order[0]
    best = {t: (sp[first][0][t], first) for t in order[1:]}
    closure_edges = []
    while best:
        t = min(best, key=lambda x: (best[x][0], x))
        _, a = best.pop(t)
        closure_edges.append((a, t))
        dt = sp[t][0]
        for x, (c, _) in best.items():
            if dt[x] < c:
                best[x] = (dt[x], t)
    sub = {}
    for a, t in closure_edges:
        pred = sp[a][1]
        x = t
        while x != a:
            p = pred[x]
            _add_edge(sub, x, p, adj[x][p])
            x = p
    sub.setdefault(first, {})
    tadj = _mst_of(sub)
    _prune_leaves(tadj, terms)
    if improve:
        tadj = _local_search(adj, tadj, terms)
    return tadj


def _mst_of(sub):
    """Kruskal MST of a small graph given as ``{u: {v: w}}``."""
    edges = sorted((w, u, v) for u, nb in sub.items() for v, w in nb.items() if u < v)
    parent = {v: v for v in sub}
    new = {v: {} for v in sub}
    for w, u, v in edges:
        ru = u
        while parent[ru] != ru:
            parent[ru] = parent[parent[ru]]
            ru = parent[ru]
        rv = v
        while parent[rv] != rv:
            parent[rv] = parent[parent[rv]]
            rv = parent[rv]
        if ru != rv:
            parent[ru] = rv
            new[u][v] = w
            new[v][u] = w
    return new


def _steiner_mehlhorn(adj: _Adjacency, terms: FrozenSet[Node], *, improve: bool = True, **_):
    """Mehlhorn's KMB variant: Voronoi regions of the terminals, MST of regions."""
    dist = {}
    base = {}
    pred = {}
    seen = {}
    heap = [(0, t, t) for t in sorted(terms)]
    for t in terms:
        seen[t] = 0
    pop, push = _heappop, _heappush
    while heap:
        d, u, b = pop(heap)
        if u in dist:
            continue
        dist[u] = d
        base[u] = b
        for v, w in adj[u].items():
            nd = d + w
            sv = seen.get(v)
            if sv is None or nd < sv:
                seen[v] = nd
                pred[v] = u
                push(heap, (nd, v, b))
    links = {}
    for u in dist:
        bu, du = base[u], dist[u]
        for v, w in adj[u].items():
            bv = base[v]
            if bu < bv:
                c = du + w + dist[v]
                key = (bu, bv)
                old = links.get(key)
                if old is None or (c, u, v) < old:
                    links[key] = (c, u, v)
    parent = {t: t for t in terms}
    chosen = []
    for (c, u, v), (bu, bv) in sorted((val, key) for key, val in links.items()):
        ru = bu
        while parent[ru] != ru:
            ru = parent[ru]
        rv = bv
        while parent[rv] != rv:
            rv = parent[rv]
        if ru != rv:
            parent[ru] = rv
            chosen.append((u, v))
    roots = {t for t in terms if parent[t] == t}
    if len(roots) > 1:
        raise nx.NetworkXNoPath("terminals are not connected")
    sub = {t: {} for t in terms}
    for u, v in chosen:
        _add_edge(sub, u, v, adj[u][v])
        for x in (u, v):
            while x in pred and base[x] != x:
                p = pred[x]
                _add_edge(sub, x, p, adj[x][p])
                x = p
    tadj = _mst_of(sub)
    _prune_leaves(tadj, terms)
    if improve:
        tadj = _local_search(adj, tadj, terms)
    return tadj


#: Steiner strategies: ``name -> f(adj, terminals, *, improve=True, **options)``.
ALGORITHMS = {
    "sph": _steiner_sph,
    "kmb": _steiner_kmb,
    "mehlhorn": _steiner_mehlhorn,
}


def steiner_tree(G: nx.Graph, terminals: Iterable[Node], weight: Weight = "weight", method: str = "sph", *,
                 improve: bool = True, starts: Optional[int] = None, root: Optional[Node] = None,
                 cache: Optional[PathCache] = None) -> nx.Graph:
    """Low-cost tree connecting ``terminals`` (an approximate Steiner tree).

    Parameters
    ----------
    G : networkx.Graph
        Undirected topology with non-negative weights.
    terminals : iterable of nodes
        Nodes to connect: the group's source switch(es) and receiver switches.
    weight : str, None or callable, default "weight"
        See the module conventions.
    method : {"sph", "kmb", "mehlhorn"}, default "sph"
        Construction heuristic, see :data:`ALGORITHMS`:

        ``"sph"``
            Takahashi–Matsuyama shortest-path heuristic: grow a tree from a
            root terminal, repeatedly adding the nearest unconnected terminal
            by its shortest path.  Implemented as ONE Dijkstra from the growing
            tree (new tree nodes re-enter the heap with label 0), so a run
            costs ``O(r (m + n log n))`` with a small re-labelling factor ``r``
            (1.3-2 measured), not ``k`` Dijkstras.  ``starts`` roots (default
            1, the smallest terminal), each followed by the local search; the
            cheapest result wins.
        ``"kmb"``
            Kou–Markowsky–Berman: MST of the terminals' metric closure,
            expanded to paths, MST again, leaves pruned.
            ``O(k (m + n log n) + k^2)``; kept as a reference (with
            ``improve=False`` it can be ~2x worse than optimal).
        ``"mehlhorn"``
            Mehlhorn's KMB variant via Voronoi regions of the terminals, one
            multi-source Dijkstra: ``O(m log m)``.

        All three are ``2 (1 - 1/k)``-approximations before the local
        search, which never makes a tree worse.
    improve : bool, default True
        Apply the local search to the constructed tree, repeated until stable:

        1. MST of the subgraph induced by the tree's nodes, then pruning of
           non-terminal leaves: ``O(e log e)`` for the ``e`` induced edges.
        2. Key-path exchange: remove a key path (a maximal path whose inner
           nodes are non-terminals of degree 2) and reconnect the two halves
           by the shortest path between them when that is cheaper.  Per key
           path: the smaller half (a preorder slice) seeds a Dijkstra bounded
           by the path's cost, ``O(half + ball)``.  Paths that failed are not
           retried; single-edge paths are skipped in trees of more than
           :data:`SINGLE_EDGE_LIMIT` nodes.
        3. Steiner-vertex insertion in trees of at most :data:`INSERT_LIMIT`
           nodes: add one outside node if the MST through it is cheaper
           (finds hubs that terminal-to-terminal paths never visit, e.g.
           the star that KMB misses), ``O(|T| log |T|)`` per candidate.

        Two terminals skip it (the shortest path is optimal).
    starts : int, optional
        Number of SPH roots (``"sph"`` only), spread over the sorted
        terminals.  Each one costs a full run; 4 starts lower the mean excess
        from ~0.4% to ~0.3%.
    root : node, optional
        Stored as ``T.graph["root"]`` (the orientation used by
        :func:`tree_parent_map`); must be a terminal.  Default: the group
        source when called through :func:`tree`, else the smallest terminal.
    cache : PathCache, optional
        Shares the lazily compiled adjacency of ``(G, weight)`` between calls
        (~15% faster once warm).

    Returns
    -------
    networkx.Graph
        New tree graph whose leaves are all terminals, ``T.graph`` holds
        ``root``, ``terminals`` and ``method="steiner"``.  An empty terminal
        set gives the empty graph (``root`` None); one terminal a single node.

    Raises
    ------
    ValueError
        Unknown ``method``, negative weight, or ``root`` not a terminal.
    networkx.NodeNotFound
        A terminal is not in ``G``.
    networkx.NetworkXNoPath
        The terminals are not all connected.

    Notes
    -----
    Measured with ``bench/bench_trees.py`` (exact optima by Dreyfus–Wagner
    for k <= 8 and a flow ILP for k = 12..128, on random G(n, m),
    Barabási–Albert, Waxman and les_miserables graphs, 186 instances): the
    default is within 0.4% of the optimum on average (p95 2.5%, optimal in
    78% of the instances); ``networkx``'s mehlhorn is at 3.2% (p95 10%).
    On the 1,000-node graphs of the benchmark it is 2-3x faster than
    ``networkx.algorithms.approximation.steiner_tree(method="mehlhorn")`` on
    Barabási–Albert graphs for 2-128 terminals, and 1.5-2.4x on Waxman
    (geometric, long paths) graphs, where the local search explores more.
    """
    _check_graph(G)
    algo = ALGORITHMS.get(method)
    if algo is None:
        raise ValueError(f"unknown Steiner method {method!r}; choose from {sorted(ALGORITHMS)}")
    cache = _cache_for(G, weight, cache)
    terms = frozenset(terminals)
    _check_nodes(G, terms)
    if root is not None and root not in terms:
        raise ValueError(f"root {root!r} must be one of the terminals")
    if root is None and terms:
        root = min(terms)
    if len(terms) <= 1:
        return _new_tree(G, (), terms, root, terms, "steiner")
    adj = cache.adjacency() if cache is not None else _Adjacency(G, weight)
    tadj = algo(adj, terms, improve=improve, starts=starts)
    edges = [(u, v) for u, nb in tadj.items() for v in nb if u < v]
    return _new_tree(G, edges, tadj, root, terms, "steiner")


# --------------------------------------------------------------------------
# Dispatcher and tree helpers
# --------------------------------------------------------------------------

def tree(G: nx.Graph, terminals: Iterable[Node], *, method: str = "spt", source: Optional[Node] = None,
         root: Optional[Node] = None, weight: Weight = "weight", cache: Optional[PathCache] = None,
         **options) -> nx.Graph:
    """Build a multicast tree of the requested kind.

    Parameters
    ----------
    G : networkx.Graph
    terminals : iterable of nodes
        Receiver switches (for ``"shared"``: all member switches).
    method : {"spt", "shared", "steiner"}, default "spt"
    source : node, optional
        Required for ``"spt"``.  For ``"steiner"`` it is added to the
        terminals and becomes ``T.graph["root"]``; for ``"shared"`` it is
        added to the terminals (the source's switch must be on the tree).
    root : node, optional
        RP of a ``"shared"`` tree; default :func:`choose_center` ``(G)``
        (``O(n)`` Dijkstras -- pass a cache or an explicit root).
    weight, cache
        As in the individual functions.
    **options
        Passed to :func:`steiner_tree` (``steiner_method``, ``improve``,
        ``starts``).

    Returns
    -------
    networkx.Graph
        See :func:`spt`, :func:`shared_tree`, :func:`steiner_tree`.

    Raises
    ------
    ValueError
        Unknown ``method`` or missing ``source`` for ``"spt"``.
    """
    terms = set(terminals)
    if method == "spt":
        if source is None:
            raise ValueError("method='spt' needs a source")
        return spt(G, source, terms, weight, cache=cache)
    if method == "shared":
        if source is not None:
            terms.add(source)
        if root is None:
            root = choose_center(G, weight, cache=cache)
        return shared_tree(G, root, terms, weight, cache=cache)
    if method == "steiner":
        if source is not None:
            terms.add(source)
        steiner_method = options.pop("steiner_method", "sph")
        return steiner_tree(G, terms, weight, steiner_method, root=source, cache=cache, **options)
    raise ValueError(f"unknown tree method {method!r}; choose 'spt', 'shared' or 'steiner'")


def _tree_root(T, root):
    if root is None:
        root = T.graph.get("root")
        if root is None:
            if len(T) == 0:
                return None
            root = min(T)
    if root not in T:
        raise nx.NodeNotFound(f"root {root!r} is not in the tree")
    return root


def tree_parent_map(T: nx.Graph, root: Optional[Node] = None) -> Dict[Node, Optional[Node]]:
    """``{node: parent}`` of ``T`` oriented away from ``root`` (``root -> None``).

    ``root`` defaults to ``T.graph["root"]``.  Children are visited in sorted
    order (BFS), so the dict order is deterministic.  ``O(|T|)``.

    Raises
    ------
    networkx.NetworkXError
        ``T`` is not a tree (cycle, or nodes not reachable from ``root``).
    """
    root = _tree_root(T, root)
    if root is None:
        return {}
    parent: Dict[Node, Optional[Node]] = {root: None}
    queue = deque([root])
    adj = T._adj
    while queue:
        u = queue.popleft()
        pu = parent[u]
        for v in sorted(adj[u]):
            if v == pu:
                continue
            if v in parent:
                raise nx.NetworkXError("not a tree: cycle through %r" % (v,))
            parent[v] = u
            queue.append(v)
    if len(parent) != len(T):
        raise nx.NetworkXError("not a tree: some nodes are not connected to the root")
    return parent


def tree_children(T: nx.Graph, root: Optional[Node] = None) -> Dict[Node, List[Node]]:
    """``{node: [children...]}`` (sorted; leaves map to ``[]``) oriented from ``root``.

    ``O(|T| log d)``.  Same errors as :func:`tree_parent_map`.
    """
    parent = tree_parent_map(T, root)
    children: Dict[Node, List[Node]] = {v: [] for v in parent}
    for v, p in parent.items():
        if p is not None:
            children[p].append(v)
    return children


def tree_cost(T: nx.Graph, weight: Weight = "weight") -> float:
    """Sum of the edge weights of ``T`` (same ``weight`` conventions).  ``O(|T|)``."""
    wf = _weight_function(weight)
    total = 0
    for u, v, d in T.edges(data=True):
        w = wf(u, v, d)
        if w is None:
            raise ValueError(f"edge ({u!r}, {v!r}) is hidden by the weight function")
        total += w
    return total


# --------------------------------------------------------------------------
# Incremental trees
# --------------------------------------------------------------------------

class IncrementalTree:
    """A multicast tree kept up to date as receivers join and leave.

    Parameters
    ----------
    G : networkx.Graph
        Undirected topology (read only).
    method : {"spt", "shared", "steiner"}, default "spt"
        ``"spt"``: grafts follow the cached shortest-path tree of ``source``,
        so the tree is always exactly ``spt(G, source, terminals)``.
        ``"shared"``: the same from ``root`` (default :func:`choose_center`).
        ``"steiner"``: a new terminal is connected by the cheapest path to
        the current tree (the online greedy Steiner heuristic).
    source : node, optional
        Root of an ``"spt"`` tree (required there).  For ``"steiner"`` an
        optional permanent member (the group's first-hop switch); for
        ``"shared"`` it is added as a terminal.
    root : node, optional
        RP of a ``"shared"`` tree.
    terminals : iterable of nodes, optional
        Initial receivers, grafted in sorted order.
    weight : str, None or callable, default "weight"
    cache : PathCache, optional
        Shared path cache for ``(G, weight)``; one is created if omitted
        (``self.cache``).  After a topology change call
        ``self.cache.invalidate()`` then :meth:`repair`.

    Notes
    -----
    Complexities (``p`` = length of the grafted/pruned branch):

    * ``"spt"``/``"shared"`` :meth:`graft` and :meth:`prune` are ``O(p)``
      with a warm cache (a few microseconds; the first graft of a source pays
      its Dijkstra).
    * ``"steiner"`` :meth:`graft` is a Dijkstra from the new node that stops at
      the first tree node, ``O(ball)``; :meth:`prune` is ``O(p)``.
    * :meth:`repair` rebuilds the whole tree (one :func:`steiner_tree` call,
      or one pass over the cached SPT).

    Online Steiner trees drift: after many joins and leaves the tree keeps
    branches that a fresh computation would route differently (a leaving
    receiver's relay switches stay when they still connect others).  A
    reference study found ~1.25x the optimum after 50 join/leave events.
    ``bench/bench_trees.py`` measures, after 50 events starting from 16
    members: 1.06x (worst 1.25x) a fresh tree on a 1,000-node Barabási–Albert
    graph, 1.45x (worst 3x) on a Waxman graph, and 1.21x the exact optimum on
    60-node random graphs with 6 members.  :meth:`repair` brings it back to
    the static heuristic (1.00x mean, <= 1.06x worst; ~2-3 ms on 1,000
    nodes), so call it periodically or when :meth:`cost` has grown.

    Measured on 1,000 nodes with a warm cache: ``"spt"`` graft ~2 us and
    prune ~1 us (median); ``"steiner"`` graft 8-20 us, prune ~1 us.
    """

    def __init__(self, G: nx.Graph, method: str = "spt", *, source: Optional[Node] = None,
                 root: Optional[Node] = None, terminals: Iterable[Node] = (), weight: Weight = "weight",
                 cache: Optional[PathCache] = None):
        _check_graph(G)
        if method not in ("spt", "shared", "steiner"):
            raise ValueError(f"unknown tree method {method!r}; choose 'spt', 'shared' or 'steiner'")
        if cache is None:
            cache = PathCache(G, weight)
        else:
            cache._check(G, weight)
        self.G = G
        self.method = method
        self.weight = weight
        self.cache = cache
        self._wf = _weight_function(weight)
        extra = []
        if method == "spt":
            if source is None:
                raise ValueError("method='spt' needs a source")
            anchor = source
        elif method == "shared":
            anchor = root if root is not None else choose_center(G, weight, cache=cache)
            if source is not None:
                extra.append(source)
        else:
            anchor = source
        if anchor is not None and anchor not in G:
            raise nx.NodeNotFound(f"{'root' if method == 'shared' else 'source'} {anchor!r} is not in the graph")
        self._anchor = anchor
        self._adj: Dict[Node, Dict[Node, float]] = {anchor: {}} if anchor is not None else {}
        self._terms: set = set()
        for t in sorted(set(terminals) | set(extra)):
            self.graft(t)

    # -- views -----------------------------------------------------------
    @property
    def terminals(self) -> FrozenSet[Node]:
        """The current terminal (receiver) set."""
        return frozenset(self._terms)

    @property
    def root(self) -> Optional[Node]:
        """The source/RP; for a source-less Steiner tree the smallest terminal."""
        if self._anchor is not None:
            return self._anchor
        return min(self._terms) if self._terms else None

    @property
    def nodes(self) -> FrozenSet[Node]:
        return frozenset(self._adj)

    def edges(self) -> List[Tuple[Node, Node]]:
        """Tree edges as sorted ``(u, v)`` pairs with ``u < v``, sorted.  ``O(|T| log |T|)``."""
        return sorted((u, v) for u, nb in self._adj.items() for v in nb if u < v)

    def __len__(self) -> int:
        return len(self._adj)

    def __contains__(self, node) -> bool:
        return node in self._adj

    def to_graph(self) -> nx.Graph:
        """A new :class:`networkx.Graph` snapshot (edge data copied from ``G``).  ``O(|T|)``."""
        edges = [(u, v) for u, nb in self._adj.items() for v in nb if u < v]
        return _new_tree(self.G, edges, self._adj, self.root, self._terms, self.method)

    @property
    def graph(self) -> nx.Graph:
        """Same as :meth:`to_graph` (a fresh snapshot on every access)."""
        return self.to_graph()

    def cost(self) -> float:
        """Total weight of the tree edges (weights as of the last graft/repair).  ``O(|T|)``."""
        return _tree_cost(self._adj)

    def parent_map(self) -> Dict[Node, Optional[Node]]:
        """``{node: parent}`` oriented from :attr:`root`.  ``O(|T| log d)``."""
        return tree_parent_map(self.to_graph())

    def children(self) -> Dict[Node, List[Node]]:
        """``{node: [children]}`` oriented from :attr:`root`."""
        return tree_children(self.to_graph())

    # -- updates ---------------------------------------------------------
    def _weight_of(self, u, v) -> float:
        w = self._wf(u, v, self.G._adj[u][v])
        if w is None:
            raise nx.NetworkXNoPath(f"edge ({u!r}, {v!r}) is hidden")
        return w

    def graft(self, node: Node) -> List[Tuple[Node, Node]]:
        """Add terminal ``node``; returns the new edges as ``(child, parent)`` pairs.

        Already a terminal: no change, ``[]``.  Already on the tree (a relay
        switch): becomes a terminal, ``[]``.

        Raises
        ------
        networkx.NodeNotFound
            ``node`` is not in ``G``.
        networkx.NetworkXNoPath
            ``node`` cannot reach the tree; nothing is changed.
        """
        if node in self._terms:
            return []
        if node not in self.G:
            raise nx.NodeNotFound(f"terminal {node!r} is not in the graph")
        tadj = self._adj
        if node in tadj:
            self._terms.add(node)
            return []
        if not tadj:  # first terminal of a source-less Steiner tree
            tadj[node] = {}
            self._terms.add(node)
            return []
        if self.method == "steiner":
            chain = self._steiner_path(node)
        else:
            chain = self._spt_path(node)
        added = []
        for x, p in chain:
            w = self._weight_of(x, p)
            tadj.setdefault(x, {})[p] = w
            tadj.setdefault(p, {})[x] = w
            added.append((x, p))
        self._terms.add(node)
        return added

    def _spt_path(self, node):
        cache = self.cache
        _, pred = cache._sssp(self._anchor)
        index, nodes = cache._index, cache._nodes
        tadj = self._adj
        i = index[node]
        chain = []
        x = node
        while x not in tadj:
            p = pred[i]
            if p < 0:
                raise nx.NetworkXNoPath(f"{node!r} is unreachable from {self._anchor!r}")
            px = nodes[p]
            chain.append((x, px))
            i, x = p, px
        return chain

    def _steiner_path(self, node):
        adj = self.cache.adjacency()
        tadj = self._adj
        dist = {node: 0}
        pred = {}
        heap = [(0, node)]
        pop, push = _heappop, _heappush
        while heap:
            d, u = pop(heap)
            if d > dist[u]:
                continue
            if u in tadj:
                chain = []
                x = u
                while x != node:
                    p = pred[x]
                    chain.append((p, x))
                    x = p
                chain.reverse()
                return chain
            for v, w in adj[u].items():
                nd = d + w
                dv = dist.get(v)
                if dv is None or nd < dv:
                    dist[v] = nd
                    pred[v] = u
                    push(heap, (nd, v))
        raise nx.NetworkXNoPath(f"{node!r} cannot reach the tree")

    def prune(self, node: Node) -> List[Tuple[Node, Node]]:
        """Remove terminal ``node`` and then non-terminal leaves repeatedly.

        Returns the removed edges as ``(leaf, neighbour)`` pairs.  Not a
        terminal: ``[]``.  The source/RP stays on the tree even when it was
        also a terminal.  ``O(p)`` for the removed branch.
        """
        if node not in self._terms:
            return []
        self._terms.discard(node)
        tadj = self._adj
        terms = self._terms
        anchor = self._anchor
        removed = []
        x = node
        while x != anchor and x not in terms:
            nb = tadj.get(x)
            if nb is None or len(nb) > 1:
                break
            del tadj[x]
            if not nb:
                break
            (p, _), = nb.items()
            del tadj[p][x]
            removed.append((x, p))
            x = p
        return removed

    def _fresh(self) -> Dict[Node, Dict[Node, float]]:
        terms = set(self._terms)
        if self.method == "steiner":
            if self._anchor is not None:
                terms.add(self._anchor)
            if not terms:
                return {}
            T = steiner_tree(self.G, terms, self.weight, cache=self.cache)
        else:
            T = spt(self.G, self._anchor, terms, self.weight, cache=self.cache)
        wf = self._wf
        new = {v: {} for v in T}
        for u, v, d in T.edges(data=True):
            w = wf(u, v, d)
            new[u][v] = w
            new[v][u] = w
        return new

    def _current_cost(self) -> float:
        """Cost of the current edges under the current weights (inf if one is gone)."""
        gadj = self.G._adj
        wf = self._wf
        total = 0
        for u, nb in self._adj.items():
            for v in nb:
                if u < v:
                    data = gadj.get(u, {}).get(v)
                    if data is None:
                        return _INF
                    w = wf(u, v, data)
                    if w is None:
                        return _INF
                    total += w
        return total

    def repair(self) -> bool:
        """Recompute the tree for the current terminals; adopt it if better.

        ``"steiner"``: runs :func:`steiner_tree` and adopts the result when it
        is cheaper than the current tree (or the current tree uses a link or
        node that is gone / hidden).  ``"spt"``/``"shared"``: rebuilds from
        the (possibly invalidated and recomputed) cached shortest paths and
        adopts the result when its edge set differs.  Returns whether the
        tree changed.  Raises :class:`networkx.NetworkXNoPath` (tree unchanged)
        if some terminal became unreachable.

        Complexity: one :func:`steiner_tree` / :func:`spt` call.
        """
        new = self._fresh()
        old_edges = {(u, v) for u, nb in self._adj.items() for v in nb if u < v}
        new_edges = {(u, v) for u, nb in new.items() for v in nb if u < v}
        if new_edges == old_edges and set(new) == set(self._adj):
            for u, nb in new.items():  # refresh stored weights
                self._adj[u] = nb
            return False
        if self.method == "steiner":
            current = self._current_cost()
            fresh = _tree_cost(new)
            if current < _INF and fresh >= current - 1e-9 * max(1.0, abs(current)):
                return False
        self._adj = new
        if self._anchor is not None:
            self._adj.setdefault(self._anchor, {})
        return True

    def __repr__(self) -> str:
        return (f"IncrementalTree(method={self.method!r}, root={self.root!r}, "
                f"terminals={len(self._terms)}, nodes={len(self._adj)})")
