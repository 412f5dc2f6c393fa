"""Property tests for mcast_sdn.trees against exact optima and invariants.

Fixed seeds throughout; the whole file runs in a few seconds.
"""
from __future__ import annotations

import random
import statistics

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcast_sdn.trees import (
    ALGORITHMS,
    IncrementalTree,
    PathCache,
    shared_tree,
    spt,
    steiner_tree,
    tree_cost,
    tree_parent_map,
)
from mcast_sdn.trees_exact import exact_steiner_cost


def _atlas_cases():
    """Every connected atlas graph with 3..7 nodes, a few terminal sets each.

    Every third graph gets random integer weights 1..9, every third float
    weights; the rest are unit-weight.  Terminal sets have 2..n nodes.
    """
    rng = random.Random(2024)
    cases = []
    for i, G in enumerate(nx.graph_atlas_g()):
        if not 3 <= len(G) <= 7 or not nx.is_connected(G):
            continue
        G = G.copy()
        kind = i % 3
        for u, v, d in G.edges(data=True):
            d["weight"] = 1 if kind == 0 else rng.randint(1, 9) if kind == 1 else round(rng.uniform(0.5, 5), 3)
        nodes = sorted(G)
        for _ in range(2):
            k = rng.randint(2, len(nodes))
            cases.append((i, G, rng.sample(nodes, k)))
    return cases


ATLAS = _atlas_cases()


def _check_tree(G, T, needed):
    needed = set(needed)
    assert needed <= set(T)
    if len(T) > 1:
        assert nx.is_tree(T)
    else:
        assert T.number_of_edges() == 0
    for v in T:
        if len(T) > 1 and T.degree(v) == 1:
            assert v in needed
    for u, v in T.edges():
        assert G.has_edge(u, v)


def test_atlas_is_big_enough():
    assert len(ATLAS) > 1500


@pytest.mark.parametrize("method", sorted(ALGORITHMS))
def test_atlas_steiner_within_bounds_of_optimum(method):
    ratios = []
    for i, G, ts in ATLAS:
        opt = exact_steiner_cost(G, ts)
        for improve in (True, False):
            T = steiner_tree(G, ts, method=method, improve=improve)
            _check_tree(G, T, ts)
            c = tree_cost(T)
            assert c >= opt - 1e-9, (i, ts)
            # the 2(1 - 1/k) guarantee of SPH / KMB / Mehlhorn
            assert c <= 2 * (1 - 1 / len(ts)) * opt + 1e-9, (i, ts, c, opt)
            if improve:
                ratios.append(c / opt if opt else 1.0)
    mean = statistics.mean(ratios)
    worst = max(ratios)
    print(f"\n{method}: {len(ratios)} atlas instances, mean ratio {mean:.4f}, max {worst:.4f}")
    assert mean <= 1.05
    assert mean <= 1.01  # measured ~1.001-1.003


def test_atlas_spt_paths_are_shortest():
    for i, G, ts in ATLAS:
        s = ts[0]
        dist = nx.single_source_dijkstra_path_length(G, s)
        cache = PathCache(G)
        for T in (spt(G, s, ts), spt(G, s, ts, cache=cache), shared_tree(G, s, ts, cache=cache)):
            _check_tree(G, T, ts)
            parent = tree_parent_map(T)
            for t in ts:
                d, x = 0, t
                while parent[x] is not None:
                    d += G.edges[x, parent[x]]["weight"]
                    x = parent[x]
                assert x == s
                assert d == pytest.approx(dist[t]), (i, s, t)


def _random_graph(rng, n):
    kind = rng.choice(["gnm", "ba", "geo"])
    seed = rng.randrange(1 << 30)
    if kind == "gnm":
        G = nx.gnm_random_graph(n, rng.randint(n, 3 * n), seed=seed)
    elif kind == "ba":
        G = nx.barabasi_albert_graph(n, rng.randint(1, 3), seed=seed)
    else:
        G = nx.random_geometric_graph(n, 0.3, seed=seed)
    for u, v, d in G.edges(data=True):
        d["weight"] = rng.choice([1, 1, 2, 3, 5, 8]) if rng.random() < 0.7 else round(rng.uniform(0.1, 10), 2)
    return G.subgraph(max(nx.connected_components(G), key=len)).copy()


def _check_incremental(G, it):
    needed = set(it.terminals)
    if it._anchor is not None:
        needed.add(it._anchor)
    T = it.to_graph()
    _check_tree(G, T, needed)
    assert set(T) == set(it.nodes)
    if not needed:
        assert len(T) == 0
    assert it.cost() == pytest.approx(tree_cost(T))
    return T


@pytest.mark.parametrize("method", ["spt", "shared", "steiner"])
def test_incremental_join_leave_sequences(method):
    rng = random.Random({"spt": 1, "shared": 2, "steiner": 3}[method])
    for _ in range(25):
        G = _random_graph(rng, rng.randint(5, 50))
        nodes = sorted(G)
        cache = PathCache(G)
        kwargs = {}
        if method == "spt" or rng.random() < 0.6:  # steiner/shared: source optional
            kwargs["source"] = rng.choice(nodes)
        if method == "shared" and rng.random() < 0.8:  # else choose_center
            kwargs["root"] = rng.choice(nodes)
        it = IncrementalTree(G, method, cache=cache, **kwargs)
        for _ in range(40):
            node = rng.choice(nodes)
            if node in it.terminals and rng.random() < 0.6:
                removed = it.prune(node)
                assert all(G.has_edge(a, b) for a, b in removed)
            else:
                added = it.graft(node)
                assert all(G.has_edge(a, b) for a, b in added)
            T = _check_incremental(G, it)
            if method != "steiner":
                assert {frozenset(e) for e in T.edges()} == {
                    frozenset(e) for e in spt(G, it.root, it.terminals, cache=cache).edges()}
            if rng.random() < 0.15:
                before = it.cost()
                it.repair()
                _check_incremental(G, it)
                assert it.cost() <= before + 1e-9


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 12))
def test_insertion_order_does_not_matter(seed, k):
    rng = random.Random(seed)
    G = _random_graph(rng, rng.randint(k, 40))
    if len(G) < k:
        return
    ts = rng.sample(sorted(G), k)
    edges = list(G.edges(data=True))
    rng.shuffle(edges)
    H = nx.Graph()
    H.add_nodes_from(rng.sample(sorted(G), len(G)))
    H.add_edges_from((v, u, d) for u, v, d in edges)

    def es(T):
        return {frozenset(e) for e in T.edges()}

    assert es(spt(G, ts[0], ts)) == es(spt(H, ts[0], ts, cache=PathCache(H)))
    for method in ALGORITHMS:
        assert es(steiner_tree(G, ts, method=method)) == es(steiner_tree(H, ts[::-1], method=method))


def test_random_graphs_steiner_vs_exact():
    """Larger than the atlas: 12-40 nodes, up to 8 terminals, all methods."""
    rng = random.Random(7)
    ratios = []
    for _ in range(40):
        G = _random_graph(rng, rng.randint(12, 40))
        k = rng.randint(3, min(8, len(G)))
        ts = rng.sample(sorted(G), k)
        opt = exact_steiner_cost(G, ts)
        for method in ALGORITHMS:
            c = tree_cost(steiner_tree(G, ts, method=method))
            assert opt - 1e-9 <= c <= 2 * opt
            if method == "sph":
                ratios.append(c / opt)
    print(f"\nsph on 40 random graphs: mean {statistics.mean(ratios):.4f}, max {max(ratios):.4f}")
    assert statistics.mean(ratios) <= 1.02
