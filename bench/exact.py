"""Exact Steiner optima for the benchmark: classic graph reductions + an ILP (scipy/HiGHS).

* Reductions (each keeps the optimum cost unchanged): non-terminal leaves are removed,
  non-terminal nodes of degree 2 are replaced by one edge of the summed weight
  (parallel edges keep the cheaper), repeatedly. On Barabási–Albert m=2 graphs about
  half of the nodes have degree 2, so the ILP shrinks a lot.
* The ILP is the directed multi-commodity flow formulation of
  ``bench/bench_trees._ilp_cost`` (reused, not copied), solved by HiGHS through
  ``scipy.optimize.milp`` with a time limit; an instance it cannot prove optimal in time
  is reported as unsolved, never guessed.
* Few terminals: Dreyfus–Wagner (``mcast_sdn.trees_exact.exact_steiner_cost``).
"""
from __future__ import annotations

import os
import sys

import networkx as nx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mcast_sdn.trees_exact import exact_steiner_cost  # noqa: E402

try:  # the ILP lives in the trees engineer's benchmark; reuse it
    from bench_trees import _ilp_cost  # noqa: E402
except Exception:  # pragma: no cover - bench_trees missing or broken
    _ilp_cost = None


def have_scipy() -> bool:
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        return False
    return _ilp_cost is not None


def reduce_graph(G: nx.Graph, terminals, weight: str = "weight") -> nx.Graph:
    """Degree-1 / degree-2 non-terminal reductions; returns a new graph with 'weight' edges."""
    terms = set(terminals)
    H = nx.Graph()
    H.add_nodes_from(G)
    for u, v, d in G.edges(data=True):
        w = d.get(weight, 1)
        if H.has_edge(u, v):
            w = min(w, H[u][v]["weight"])
        H.add_edge(u, v, weight=w)
    todo = [v for v in H if v not in terms and H.degree(v) <= 2]
    while todo:
        v = todo.pop()
        if v not in H or v in terms:
            continue
        deg = H.degree(v)
        if deg == 0:
            H.remove_node(v)
        elif deg == 1:
            (u,) = H[v]
            H.remove_node(v)
            todo.append(u)
        elif deg == 2:
            a, b = H[v]
            w = H[v][a]["weight"] + H[v][b]["weight"]
            H.remove_node(v)
            if H.has_edge(a, b):
                if w < H[a][b]["weight"]:
                    H[a][b]["weight"] = w
                todo += [a, b]  # their degree dropped
            else:
                H.add_edge(a, b, weight=w)
    return H


def optimum(G: nx.Graph, terminals, *, time_limit: float = 20.0, dw_max: int = 6):
    """(cost, how) of a minimum Steiner tree, or (None, reason) if not proven in time."""
    terms = sorted(set(terminals))
    if len(terms) < 2:
        return 0.0, "trivial"
    H = reduce_graph(G, terms)
    if len(terms) <= dw_max:
        return exact_steiner_cost(H, terms), "dreyfus-wagner"
    if not have_scipy():
        return None, "no scipy"
    c = _ilp_cost(H, terms, time_limit=time_limit)
    if c is None:
        return None, "ilp time limit"
    return float(c), "ilp"
