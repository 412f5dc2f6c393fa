"""Exact Steiner tree cost, for tests and benchmarks only.

`exact_steiner_cost` is the Dreyfus–Wagner dynamic programme in the
Erickson–Monma–Veinott form: for every subset ``S`` of the terminals (minus one
"root" terminal ``r``) and every node ``v``, ``dp[S][v]`` is the cost of the
cheapest tree that connects ``S ∪ {v}``.  It is filled subset by subset: first
merge two complementary sub-trees at ``v`` (``dp[S1][v] + dp[S \\ S1][v]``),
then let the labels flow along edges with one Dijkstra run. The answer is
``dp[all][r]``.

Complexity: ``O(3**k * n + 2**k * (m + n log n))`` time and ``O(2**k * n)``
memory for ``k`` terminals, ``n`` nodes and ``m`` edges. That is fine for
``k <= ~10`` on graphs of a few hundred nodes and hopeless beyond; it exists to
check the heuristics in :mod:`mcast_sdn.trees`, never to run in the controller.
"""
from __future__ import annotations

import heapq
import math
from typing import Callable, Hashable, Iterable, Optional, Union

import networkx as nx

__all__ = ["exact_steiner_cost"]

Weight = Union[str, None, Callable[[Hashable, Hashable, dict], Optional[float]]]


def _weight_function(weight: Weight):
    if callable(weight):
        return weight
    if weight is None:
        return lambda u, v, d: 1
    return lambda u, v, d: d.get(weight, 1)


def exact_steiner_cost(G: nx.Graph, terminals: Iterable[Hashable], weight: Weight = "weight") -> float:
    """Cost of a minimum Steiner tree of ``terminals`` in ``G`` (Dreyfus–Wagner).

    Parameters
    ----------
    G : networkx.Graph
        Undirected graph with non-negative edge weights.
    terminals : iterable of nodes
        Nodes that must be connected; duplicates are ignored.
    weight : str, None or callable, default "weight"
        Edge attribute name (missing attribute counts as 1), ``None`` for unit
        weights, or ``f(u, v, data)`` returning a weight or ``None`` to hide
        the edge, as in networkx.

    Returns
    -------
    float
        The optimum cost; ``0`` for fewer than two distinct terminals.

    Raises
    ------
    networkx.NodeNotFound
        If a terminal is not in ``G``.
    networkx.NetworkXNoPath
        If the terminals are not all connected.

    Notes
    -----
    Complexity ``O(3**k n + 2**k (m + n log n))`` time, ``O(2**k n)`` memory.
    """
    terms = sorted(set(terminals))
    for t in terms:
        if t not in G:
            raise nx.NodeNotFound(f"terminal {t!r} is not in the graph")
    if len(terms) <= 1:
        return 0
    wf = _weight_function(weight)
    nodes = sorted(G)
    index = {v: i for i, v in enumerate(nodes)}
    n = len(nodes)
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for u, nbrs in G.adjacency():
        iu = index[u]
        for v, data in nbrs.items():
            w = wf(u, v, data)
            if w is None:
                continue
            if w < 0:
                raise ValueError(f"negative weight {w!r} on edge ({u!r}, {v!r})")
            adj[iu].append((index[v], w))
    inf = math.inf

    def flow(labels: list[float]) -> list[float]:
        """Dijkstra from every node at once, starting from ``labels``."""
        dist = labels[:]
        heap = [(d, i) for i, d in enumerate(dist) if d < inf]
        heapq.heapify(heap)
        done = [False] * n
        while heap:
            d, u = heapq.heappop(heap)
            if done[u] or d > dist[u]:
                continue
            done[u] = True
            for v, w in adj[u]:
                nd = d + w
                if nd < dist[v]:
                    dist[v] = nd
                    heapq.heappush(heap, (nd, v))
        return dist

    root = index[terms[-1]]
    others = [index[t] for t in terms[:-1]]
    q = len(others)
    dp: list[Optional[list[float]]] = [None] * (1 << q)
    for i, t in enumerate(others):
        start = [inf] * n
        start[t] = 0
        dp[1 << i] = flow(start)
    # Subsets in increasing numeric order: every proper subset comes first.
    for S in range(1, 1 << q):
        if S & (S - 1) == 0:
            continue
        best = [inf] * n
        low = S & -S  # fix the lowest element in S1 so each split is seen once
        S1 = (S - 1) & S
        while S1:
            if S1 & low:
                a = dp[S1]
                b = dp[S ^ S1]
                for v in range(n):
                    c = a[v] + b[v]
                    if c < best[v]:
                        best[v] = c
            S1 = (S1 - 1) & S
        dp[S] = flow(best)
    cost = dp[(1 << q) - 1][root]
    if cost == inf:
        raise nx.NetworkXNoPath("terminals are not connected")
    return cost
