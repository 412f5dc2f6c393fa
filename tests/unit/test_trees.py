"""Unit tests for mcast_sdn.trees on hand-built graphs with known answers."""
from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from mcast_sdn.trees import (
    ALGORITHMS,
    IncrementalTree,
    PathCache,
    choose_center,
    shared_tree,
    spt,
    steiner_tree,
    tree,
    tree_children,
    tree_cost,
    tree_parent_map,
)
from mcast_sdn.trees_exact import exact_steiner_cost


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def assert_valid_tree(G, T, terminals, root=None, weight="weight"):
    """T is a tree of G spanning terminals (+ root) whose leaves are all needed."""
    terminals = set(terminals)
    needed = terminals | ({root} if root is not None else set())
    assert isinstance(T, nx.Graph) and not T.is_directed()
    assert T is not G
    if not needed:
        assert len(T) == 0
        return
    assert needed <= set(T)
    assert nx.is_tree(T) if len(T) > 1 else T.number_of_edges() == 0
    for u, v, d in T.edges(data=True):
        assert G.has_edge(u, v)
        assert d == G.edges[u, v]
        assert d is not G.edges[u, v]  # copied, not shared
    for v in T:
        if T.degree(v) <= 1 and len(T) > 1:
            assert v in needed, f"useless leaf {v!r}"


def edge_set(T):
    return {tuple(sorted(e)) for e in T.edges()}


def fat_tree(k=4):
    """Unit-weight k-ary fat-tree of switches, numbered so that core j links to agg j // (k/2).

    core: 1..(k/2)^2, aggregation of pod p: 100 + 10p + i, edge of pod p: 200 + 10p + i.
    """
    half = k // 2
    G = nx.Graph()
    cores = list(range(1, half * half + 1))
    for p in range(k):
        aggs = [100 + 10 * p + i for i in range(half)]
        edges = [200 + 10 * p + i for i in range(half)]
        for a in aggs:
            for e in edges:
                G.add_edge(a, e)
        for j, c in enumerate(cores):
            G.add_edge(c, aggs[j // half])
    return G


def star_vs_path(k=6):
    """SPT is a star of cost 2k; the optimum follows the receiver chain, k + 1."""
    G = nx.Graph()
    for i in range(1, k + 1):
        G.add_edge("s", f"r{i}", weight=2)
    for i in range(1, k):
        G.add_edge(f"r{i}", f"r{i + 1}", weight=1)
    return G, "s", [f"r{i}" for i in range(1, k + 1)]


HUB = -1


def kmb_trap(k=20, eps=0.01):
    """Terminals 0..k-1 on a ring (links 2 - eps) around the hub -1 (links 1).

    The optimum is the star through the hub (cost k); KMB/Mehlhorn, which only
    see terminal-to-terminal shortest paths, return a ring path:
    (k - 1)(2 - eps), i.e. almost 2x.
    """
    G = nx.Graph()
    for i in range(k):
        G.add_edge(HUB, i, weight=1)
        G.add_edge(i, (i + 1) % k, weight=2 - eps)
    return G, list(range(k))


def random_weighted(n, m, seed, lo=1, hi=10):
    rng = random.Random(seed)
    G = nx.gnm_random_graph(n, m, seed=seed)
    for u, v, d in G.edges(data=True):
        d["weight"] = rng.randint(lo, hi)
    G = G.subgraph(max(nx.connected_components(G), key=len)).copy()
    return G


def shuffled_copy(G, seed):
    rng = random.Random(seed)
    nodes = list(G.nodes(data=True))
    edges = list(G.edges(data=True))
    rng.shuffle(nodes)
    rng.shuffle(edges)
    H = nx.Graph()
    H.add_nodes_from(nodes)
    H.add_edges_from((v, u, dict(d)) if rng.random() < 0.5 else (u, v, dict(d)) for u, v, d in edges)
    return H


# ---------------------------------------------------------------------------
# shortest-path trees
# ---------------------------------------------------------------------------

class TestSPT:
    def test_star_vs_path_spt_is_the_star(self):
        G, s, rs = star_vs_path(6)
        T = spt(G, s, rs)
        assert_valid_tree(G, T, rs, s)
        assert tree_cost(T) == 12
        assert edge_set(T) == {tuple(sorted((s, r))) for r in rs}
        assert T.graph == {"root": s, "terminals": frozenset(rs), "method": "spt"}

    def test_paths_are_shortest(self):
        G = random_weighted(60, 150, seed=1)
        s = min(G)
        rs = random.Random(2).sample(sorted(G), 12)
        dist = nx.single_source_dijkstra_path_length(G, s)
        T = spt(G, s, rs)
        assert_valid_tree(G, T, rs, s)
        for r in rs:
            assert nx.path_weight(T, nx.shortest_path(T, s, r), "weight") == dist[r]

    @pytest.mark.parametrize("source", [200, 211, 230])
    def test_fat_tree_spt_uses_fewest_links(self, source):
        G = fat_tree(4)
        edge_switches = sorted(v for v in G if v >= 200)
        others = [e for e in edge_switches if e != source]
        rng = random.Random(source)
        cache = PathCache(G, weight=None)
        for size in range(1, len(others) + 1):
            rs = rng.sample(others, size)
            T = spt(G, source, rs, weight=None, cache=cache)
            assert_valid_tree(G, T, rs, source)
            assert T.number_of_edges() == exact_steiner_cost(G, rs + [source], weight=None)
            pods = {(e - 200) // 10 for e in rs} - {(source - 200) // 10}
            assert T.number_of_edges() == len(rs) + 1 + (1 + len(pods) if pods else 0)

    def test_fat_tree_groups_of_one_source_share_links(self):
        G = fat_tree(4)
        cache = PathCache(G, weight=None)
        T1 = spt(G, 200, [211, 221], weight=None, cache=cache)
        T2 = spt(G, 200, [211, 231], weight=None, cache=cache)
        # both climb through the same aggregation switch and core
        assert edge_set(T1) & edge_set(T2) >= {(100, 200), (1, 100), (1, 110), (110, 211)}

    def test_smallest_predecessor_wins_ties(self):
        # diamond: 0 -> {1, 2, 3} -> 4, all equal cost
        G = nx.Graph()
        G.add_edges_from([(0, 3), (3, 4), (0, 2), (2, 4), (0, 1), (1, 4)], weight=1)
        for cache in (None, PathCache(G)):
            T = spt(G, 0, [4], cache=cache)
            assert edge_set(T) == {(0, 1), (1, 4)}

    def test_cached_and_uncached_agree_with_many_ties(self):
        G = nx.grid_2d_graph(6, 6)
        H = nx.convert_node_labels_to_integers(G, ordering="sorted")
        for graph in (G, H):  # tuple nodes and int nodes
            nodes = sorted(graph)
            for s in nodes[::7]:
                for weight in (None, "weight"):
                    cache = PathCache(graph, weight)
                    a = spt(graph, s, nodes, weight)
                    b = spt(graph, s, nodes, weight, cache=cache)
                    assert edge_set(a) == edge_set(b)

    def test_source_is_terminal_and_single_terminal(self):
        G = random_weighted(20, 40, seed=3)
        s = min(G)
        T = spt(G, s, [s])
        assert list(T) == [s] and T.number_of_edges() == 0
        T = spt(G, s, [])
        assert list(T) == [s]
        t = max(G)
        T = spt(G, s, [t, s, t])
        assert_valid_tree(G, T, [t], s)
        assert nx.path_weight(T, nx.shortest_path(T, s, t), "weight") == nx.dijkstra_path_length(G, s, t)

    def test_weight_callable_hides_edges(self):
        G = nx.cycle_graph(6)
        nx.set_edge_attributes(G, 1, "weight")
        G.edges[0, 1]["down"] = True

        def w(u, v, d):
            return None if d.get("down") else d["weight"]

        T = spt(G, 0, [1], weight=w)
        assert edge_set(T) == {(0, 5), (4, 5), (3, 4), (2, 3), (1, 2)}
        cache = PathCache(G, weight=w)
        assert edge_set(spt(G, 0, [1], weight=w, cache=cache)) == edge_set(T)

    def test_unreachable_terminal_raises(self):
        G = nx.path_graph(4)
        G.add_edge(10, 11)
        with pytest.raises(nx.NetworkXNoPath, match="10"):
            spt(G, 0, [3, 10])
        with pytest.raises(nx.NetworkXNoPath, match="11"):
            spt(G, 0, [11], cache=PathCache(G))

    def test_unknown_nodes(self):
        G = nx.path_graph(3)
        with pytest.raises(nx.NodeNotFound):
            spt(G, 9, [1])
        with pytest.raises(nx.NodeNotFound):
            spt(G, 0, [9])
        with pytest.raises(nx.NodeNotFound):
            spt(G, 0, [9], cache=PathCache(G))

    def test_negative_weight_rejected(self):
        G = nx.path_graph(3)
        G.edges[1, 2]["weight"] = -1
        with pytest.raises(ValueError, match="negative"):
            spt(G, 0, [2])
        with pytest.raises(ValueError, match="negative"):
            spt(G, 0, [2], cache=PathCache(G))

    def test_directed_and_multigraph_rejected(self):
        with pytest.raises(nx.NetworkXNotImplemented):
            spt(nx.DiGraph([(0, 1)]), 0, [1])
        with pytest.raises(nx.NetworkXNotImplemented):
            steiner_tree(nx.MultiGraph([(0, 1)]), [0, 1])

    def test_result_is_a_new_graph(self):
        G = random_weighted(15, 30, seed=4)
        T = spt(G, min(G), list(G))
        u, v = next(iter(T.edges()))
        T.edges[u, v]["weight"] = 999
        T.remove_node(u)
        assert G.edges[u, v]["weight"] != 999 and u in G


# ---------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------

class TestPathCache:
    def test_hits_and_invalidate(self):
        G = nx.path_graph(5)
        cache = PathCache(G)
        spt(G, 0, [4], cache=cache)
        spt(G, 0, [3], cache=cache)
        assert (cache.misses, cache.hits) == (1, 1) and 0 in cache and len(cache) == 1
        assert cache.distance(0, 4) == 4
        assert cache.path(0, 3) == [0, 1, 2, 3]
        assert cache.predecessors(0) == {1: 0, 2: 1, 3: 2, 4: 3}
        assert cache.distances(0) == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}
        G.add_edge(0, 4, weight=1)  # edge change: must invalidate by hand
        cache.invalidate()
        assert len(cache) == 0
        assert edge_set(spt(G, 0, [4], cache=cache)) == {(0, 4)}

    def test_node_change_recompiles_by_itself(self):
        G = nx.path_graph(3)
        cache = PathCache(G)
        spt(G, 0, [2], cache=cache)
        G.add_edge(2, 3)
        assert edge_set(spt(G, 0, [3], cache=cache)) == {(0, 1), (1, 2), (2, 3)}

    def test_maxsize(self):
        G = nx.path_graph(6)
        cache = PathCache(G, maxsize=2)
        for s in range(4):
            cache.distance(s, 5)
        assert len(cache) == 2 and 3 in cache and 0 not in cache

    def test_mismatched_cache_rejected(self):
        G = nx.path_graph(3)
        with pytest.raises(ValueError, match="weight"):
            spt(G, 0, [2], weight="cost", cache=PathCache(G))
        with pytest.raises(ValueError, match="graph"):
            spt(G, 0, [2], cache=PathCache(nx.path_graph(3)))

    def test_unreachable_path(self):
        G = nx.Graph([(0, 1), (2, 3)])
        cache = PathCache(G)
        assert cache.distance(0, 3) == float("inf")
        with pytest.raises(nx.NetworkXNoPath):
            cache.path(0, 3)


# ---------------------------------------------------------------------------
# shared trees and centres
# ---------------------------------------------------------------------------

class TestShared:
    def test_shared_tree_contains_root(self):
        G = random_weighted(40, 90, seed=5)
        root = choose_center(G)
        members = random.Random(1).sample(sorted(set(G) - {root}), 6)
        T = shared_tree(G, root, members)
        assert_valid_tree(G, T, members, root)
        assert T.graph["root"] == root and T.graph["method"] == "shared"
        assert edge_set(T) == edge_set(spt(G, root, members))

    def test_choose_center_path_and_ties(self):
        assert choose_center(nx.path_graph(5)) == 2
        assert choose_center(nx.path_graph(4)) == 1  # 1 and 2 tie
        assert choose_center(nx.cycle_graph(7)) == 0
        G = nx.star_graph(4)
        assert choose_center(G, weight=None) == 0

    def test_choose_center_weighted_and_terminals(self):
        G = nx.path_graph(5)
        nx.set_edge_attributes(G, {(0, 1): 10}, "weight")
        assert choose_center(G) == 1  # ecc(1) = 10 vs ecc(2) = 11
        assert choose_center(G, terminals=[2, 4]) == 3
        cache = PathCache(G)
        assert choose_center(G, cache=cache) == 1 and len(cache) == 5

    def test_choose_center_errors(self):
        with pytest.raises(nx.NetworkXError):
            choose_center(nx.Graph([(0, 1), (2, 3)]))
        with pytest.raises(nx.NetworkXPointlessConcept):
            choose_center(nx.Graph())


# ---------------------------------------------------------------------------
# Steiner trees
# ---------------------------------------------------------------------------

class TestSteiner:
    def test_star_vs_path_optimum(self):
        G, s, rs = star_vs_path(6)
        for method in ALGORITHMS:
            T = steiner_tree(G, rs + [s], method=method)
            assert_valid_tree(G, T, rs + [s])
            assert tree_cost(T) == 7 == exact_steiner_cost(G, rs + [s])
        assert tree_cost(spt(G, s, rs)) / 7 > 1.7

    def test_kmb_is_almost_2x_worse_default_is_optimal(self):
        G8, ts8 = kmb_trap(8)
        assert exact_steiner_cost(G8, ts8) == 8  # sanity of the construction
        G, ts = kmb_trap(20)
        kmb = tree_cost(steiner_tree(G, ts, method="kmb", improve=False))
        mehlhorn = tree_cost(steiner_tree(G, ts, method="mehlhorn", improve=False))
        assert kmb == pytest.approx(19 * 1.99) and mehlhorn == pytest.approx(19 * 1.99)
        assert kmb / 20 > 1.85
        for method in ALGORITHMS:  # the local search finds the hub
            T = steiner_tree(G, ts, method=method)
            assert_valid_tree(G, T, ts)
            assert tree_cost(T) == 20

    def test_steiner_point(self):
        # three terminals pairwise 1.9 apart, or 1 each from a centre
        G = nx.Graph()
        for a, b in itertools.combinations("abc", 2):
            G.add_edge(a, b, weight=1.9)
        for a in "abc":
            G.add_edge(a, "x", weight=1)
        T = steiner_tree(G, "abc")
        assert tree_cost(T) == 3 and "x" in T

    def test_known_optimum_on_random_graphs(self):
        for seed in range(6):
            G = random_weighted(30, 60, seed=seed)
            ts = random.Random(seed).sample(sorted(G), 6)
            opt = exact_steiner_cost(G, ts)
            for method in ALGORITHMS:
                T = steiner_tree(G, ts, method=method)
                assert_valid_tree(G, T, ts)
                assert opt <= tree_cost(T) <= 1.2 * opt

    def test_two_terminals_is_shortest_path(self):
        G = random_weighted(50, 120, seed=7)
        a, b = min(G), max(G)
        T = steiner_tree(G, [a, b])
        assert tree_cost(T) == nx.dijkstra_path_length(G, a, b)
        assert_valid_tree(G, T, [a, b])

    def test_trivial_terminal_sets(self):
        G = nx.path_graph(4)
        T = steiner_tree(G, [])
        assert len(T) == 0 and T.graph["root"] is None
        T = steiner_tree(G, [2, 2])
        assert list(T) == [2] and T.graph["root"] == 2

    def test_root_attribute(self):
        G = nx.path_graph(5)
        assert steiner_tree(G, [1, 3]).graph["root"] == 1
        assert steiner_tree(G, [1, 3], root=3).graph["root"] == 3
        with pytest.raises(ValueError):
            steiner_tree(G, [1, 3], root=2)

    def test_unknown_method(self):
        with pytest.raises(ValueError, match="unknown"):
            steiner_tree(nx.path_graph(3), [0, 2], method="nope")
        assert set(ALGORITHMS) >= {"sph", "kmb", "mehlhorn"}

    def test_disconnected_terminals_raise(self):
        G = nx.Graph([(0, 1), (1, 2), (5, 6)])
        for method in ALGORITHMS:
            with pytest.raises(nx.NetworkXNoPath):
                steiner_tree(G, [0, 2, 6], method=method)

    def test_hidden_edges(self):
        G, ts = kmb_trap(8)
        G.edges[HUB, 0]["down"] = True

        def w(u, v, d):
            return None if d.get("down") else d["weight"]

        T = steiner_tree(G, ts, weight=w)
        assert not T.has_edge(HUB, 0)
        assert_valid_tree(G, T, ts)
        assert tree_cost(T) == pytest.approx(7 + 1.99)

    def test_more_starts_never_worse(self):
        G = random_weighted(80, 200, seed=11)
        ts = random.Random(3).sample(sorted(G), 15)
        c1 = tree_cost(steiner_tree(G, ts, starts=1))
        c4 = tree_cost(steiner_tree(G, ts, starts=4))
        assert c4 <= c1

    def test_cache_gives_same_tree(self):
        G = random_weighted(80, 200, seed=12)
        ts = random.Random(4).sample(sorted(G), 10)
        cache = PathCache(G)
        assert edge_set(steiner_tree(G, ts)) == edge_set(steiner_tree(G, ts, cache=cache))
        assert edge_set(steiner_tree(G, ts, cache=cache)) == edge_set(steiner_tree(G, ts))

    def test_string_nodes(self):
        G = nx.relabel_nodes(random_weighted(30, 70, seed=13), lambda v: f"sw{v:02d}")
        ts = sorted(G)[::5]
        T = steiner_tree(G, ts)
        assert_valid_tree(G, T, ts)


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------

class TestDeterminism:
    @pytest.mark.parametrize("seed", range(3))
    def test_shuffled_insertion_order(self, seed):
        G = random_weighted(60, 140, seed=20 + seed, lo=1, hi=3)  # many ties
        rng = random.Random(seed)
        ts = rng.sample(sorted(G), 10)
        s = ts[0]
        H = shuffled_copy(G, seed)
        assert edge_set(spt(G, s, ts)) == edge_set(spt(H, s, ts))
        assert edge_set(spt(G, s, ts, cache=PathCache(G))) == edge_set(spt(H, s, ts, cache=PathCache(H)))
        assert edge_set(shared_tree(G, s, ts)) == edge_set(shared_tree(H, s, ts))
        assert choose_center(G) == choose_center(H)
        for method in ALGORITHMS:
            a = steiner_tree(G, ts, method=method)
            b = steiner_tree(H, list(reversed(ts)), method=method)
            assert edge_set(a) == edge_set(b), method
        for method in ("spt", "shared", "steiner"):
            a = IncrementalTree(G, method, source=s, root=s, terminals=ts)
            b = IncrementalTree(H, method, source=s, root=s, terminals=ts)
            assert a.edges() == b.edges()

    def test_repeated_calls(self):
        G = random_weighted(60, 140, seed=30, lo=1, hi=2)
        ts = random.Random(0).sample(sorted(G), 12)
        first = edge_set(steiner_tree(G, ts))
        for _ in range(3):
            assert edge_set(steiner_tree(G, ts)) == first
            assert edge_set(tree(G, ts, method="spt", source=ts[0])) == edge_set(spt(G, ts[0], ts))


# ---------------------------------------------------------------------------
# dispatcher and orientation helpers
# ---------------------------------------------------------------------------

class TestDispatchAndHelpers:
    def test_tree_dispatch(self):
        G = random_weighted(40, 90, seed=40)
        rs = random.Random(1).sample(sorted(G), 6)
        s = rs.pop()
        cache = PathCache(G)
        assert edge_set(tree(G, rs, source=s)) == edge_set(spt(G, s, rs))
        T = tree(G, rs, method="shared", source=s, cache=cache)
        assert T.graph["root"] == choose_center(G) and s in T
        T = tree(G, rs, method="shared", root=rs[0])
        assert_valid_tree(G, T, rs, rs[0])
        T = tree(G, rs, method="steiner", source=s)
        assert T.graph["root"] == s
        assert_valid_tree(G, T, rs + [s])
        T = tree(G, rs, method="steiner", source=s, steiner_method="kmb", improve=False)
        assert_valid_tree(G, T, rs + [s])
        with pytest.raises(ValueError):
            tree(G, rs, method="spt")
        with pytest.raises(ValueError):
            tree(G, rs, method="cbt", source=s)

    def test_parent_map_and_children(self):
        G = random_weighted(50, 110, seed=41)
        rs = random.Random(2).sample(sorted(G), 9)
        for T in (spt(G, rs[0], rs), steiner_tree(G, rs, root=rs[3])):
            root = T.graph["root"]
            parent = tree_parent_map(T)
            assert parent[root] is None
            assert set(parent) == set(T)
            for v, p in parent.items():
                if p is not None:
                    assert T.has_edge(v, p)
                seen = set()
                while v is not None:  # walks up to the root without cycles
                    assert v not in seen
                    seen.add(v)
                    v = parent[v]
            kids = tree_children(T)
            assert sum(len(c) for c in kids.values()) == len(T) - 1
            for p, cs in kids.items():
                assert cs == sorted(cs)
                assert all(parent[c] == p for c in cs)
            # explicit root overrides
            other = tree_parent_map(T, rs[1])
            assert other[rs[1]] is None and len(other) == len(T)

    def test_parent_map_of_spt_is_the_predecessor_map(self):
        G = random_weighted(40, 90, seed=42)
        cache = PathCache(G)
        s = min(G)
        T = spt(G, s, list(G), cache=cache)
        parent = tree_parent_map(T)
        parent.pop(s)
        assert parent == cache.predecessors(s)

    def test_parent_map_rejects_non_trees(self):
        with pytest.raises(nx.NetworkXError):
            tree_parent_map(nx.cycle_graph(4), 0)
        with pytest.raises(nx.NetworkXError):
            tree_parent_map(nx.Graph([(0, 1), (2, 3)]), 0)
        with pytest.raises(nx.NodeNotFound):
            tree_parent_map(nx.path_graph(3), 7)
        assert tree_parent_map(nx.Graph()) == {}


# ---------------------------------------------------------------------------
# incremental trees
# ---------------------------------------------------------------------------

def assert_incremental_ok(it: IncrementalTree, G):
    T = it.to_graph()
    anchor = it._anchor
    assert_valid_tree(G, T, it.terminals, anchor)
    assert set(T) == set(it.nodes)
    assert it.cost() == pytest.approx(tree_cost(T, it.weight))
    if it.method in ("spt", "shared"):
        assert edge_set(T) == edge_set(spt(G, anchor, it.terminals, it.weight, cache=it.cache))


class TestIncremental:
    def test_graft_prune_spt(self):
        G = random_weighted(50, 120, seed=50)
        it = IncrementalTree(G, "spt", source=0)
        assert list(it.nodes) == [0] and it.cost() == 0
        rng = random.Random(0)
        for t in rng.sample(sorted(G), 20):
            added = it.graft(t)
            for c, p in added:
                assert G.has_edge(c, p)
            assert_incremental_ok(it, G)
        for t in sorted(it.terminals):
            removed = it.prune(t)
            assert all(G.has_edge(a, b) for a, b in removed)
            assert_incremental_ok(it, G)
        assert list(it.nodes) == [0] and it.edges() == []

    def test_graft_returns_path_and_prune_removes_branch(self):
        G = nx.path_graph(5)
        it = IncrementalTree(G, "spt", source=0)
        assert it.graft(4) == [(4, 3), (3, 2), (2, 1), (1, 0)]
        assert it.graft(2) == [] and it.graft(2) == []
        assert it.prune(4) == [(4, 3), (3, 2)]
        assert it.prune(4) == []  # idempotent
        assert it.edges() == [(0, 1), (1, 2)]
        assert it.prune(2) == [(2, 1), (1, 0)]
        assert it.graft(0) == [] and it.prune(0) == [] and list(it.nodes) == [0]

    def test_steiner_incremental(self):
        G, ts = kmb_trap(8)
        it = IncrementalTree(G, "steiner")
        assert it.root is None and len(it) == 0
        it.graft(0)
        assert list(it.nodes) == [0] and it.root == 0
        it.graft(1)
        assert it.edges() == [(0, 1)]
        for t in ts[2:]:
            it.graft(t)
            assert_incremental_ok(it, G)
        before = it.cost()
        assert before > 8
        assert it.repair() is True
        assert it.cost() == 8 < before
        assert it.repair() is False
        for t in ts:
            it.prune(t)
            assert_incremental_ok(it, G)
        assert len(it) == 0

    def test_steiner_with_source(self):
        G = random_weighted(40, 90, seed=51)
        it = IncrementalTree(G, "steiner", source=5, terminals=[1, 9, 20])
        assert it.root == 5 and 5 in it and it.terminals == {1, 9, 20}
        for t in (1, 9, 20):
            it.prune(t)
        assert list(it.nodes) == [5]

    def test_shared_default_root(self):
        G = random_weighted(40, 90, seed=52)
        it = IncrementalTree(G, "shared", source=3, terminals=[7, 8])
        assert it.root == choose_center(G) and it.terminals == {3, 7, 8}
        assert_incremental_ok(it, G)

    def test_errors_leave_state_unchanged(self):
        G = nx.Graph([(0, 1), (1, 2), (5, 6)])
        for method in ("spt", "steiner"):
            it = IncrementalTree(G, method, source=0, terminals=[2])
            edges = it.edges()
            with pytest.raises(nx.NetworkXNoPath):
                it.graft(6)
            with pytest.raises(nx.NodeNotFound):
                it.graft(99)
            assert it.edges() == edges and it.terminals == {2}
        with pytest.raises(ValueError):
            IncrementalTree(G, "spt")
        with pytest.raises(ValueError):
            IncrementalTree(G, "cbt", source=0)
        with pytest.raises(nx.NodeNotFound):
            IncrementalTree(G, "spt", source=42)

    def test_repair_after_topology_change(self):
        G = nx.cycle_graph(6)
        nx.set_edge_attributes(G, 1, "weight")
        for method in ("spt", "steiner"):
            H = G.copy()
            it = IncrementalTree(H, method, source=0, terminals=[1, 2])
            assert it.edges() == [(0, 1), (1, 2)]
            H.remove_edge(0, 1)
            it.cache.invalidate()
            assert it.repair() is True
            assert it.edges() == [(0, 5), (1, 2), (2, 3), (3, 4), (4, 5)]
            assert_incremental_ok(it, H)

    def test_views(self):
        G = nx.path_graph(4)
        it = IncrementalTree(G, "spt", source=0, terminals=[3])
        assert it.parent_map() == {0: None, 1: 0, 2: 1, 3: 2}
        assert it.children()[1] == [2]
        g = it.graph
        assert g is not it.graph and g.graph["method"] == "spt"
        assert "spt" in repr(it)


class TestOddGraphs:
    def test_zero_weights_and_self_loops(self):
        rng = random.Random(60)
        G = random_weighted(40, 90, seed=60, lo=0, hi=2)  # many zero-weight links
        for v in list(G)[::4]:
            G.add_edge(v, v, weight=0)
        ts = rng.sample(sorted(G), 8)
        s = ts[0]
        dist = nx.single_source_dijkstra_path_length(G, s)
        for cache in (None, PathCache(G)):
            T = spt(G, s, ts, cache=cache)
            assert_valid_tree(G, T, ts, s)
            for t in ts:
                assert nx.path_weight(T, nx.shortest_path(T, s, t), "weight") == dist[t]
        opt = exact_steiner_cost(G, ts)
        for method in ALGORITHMS:
            T = steiner_tree(G, ts, method=method)
            assert_valid_tree(G, T, ts)
            assert opt <= tree_cost(T) <= 2 * opt
        for method in ("spt", "steiner"):
            it = IncrementalTree(G, method, source=s, terminals=ts)
            assert_incremental_ok(it, G)

    def test_hop_count_and_callable_weights_incremental(self):
        G = random_weighted(40, 90, seed=61)
        rs = random.Random(61).sample(sorted(G), 8)
        for weight in (None, lambda u, v, d: d["weight"] * 2):
            for method in ("spt", "steiner"):
                it = IncrementalTree(G, method, source=rs[0], terminals=rs[1:], weight=weight)
                assert_incremental_ok(it, G)
                for t in rs[1:4]:
                    it.prune(t)
                    assert_incremental_ok(it, G)


def test_spt_keeping_prefers_the_links_in_use_among_equal_cost_paths():
    """Ring of 4: s1->s3 has two equal-cost paths. The plain SPT picks s1-s2-s3; with
    s1-s4-s3 in use it keeps them (no needless reroute); a strictly shorter path still wins."""
    from mcast_sdn.trees import spt, spt_keeping

    G = nx.cycle_graph([1, 2, 3, 4])
    assert set(map(frozenset, spt(G, 1, [3]).edges)) == {frozenset((1, 2)), frozenset((2, 3))}
    keep = {frozenset((1, 4)), frozenset((4, 3))}
    assert set(map(frozenset, spt_keeping(G, 1, [3], keep).edges)) == keep
    # a member joins on s4 while s1-s4-s3 is in use: grafted, 2 links, not 3
    t = spt_keeping(G, 1, [3, 4], keep)
    assert t.number_of_edges() == 2
    # a strictly shorter path is taken even if it is not in use
    G.add_edge(1, 3)
    assert set(map(frozenset, spt_keeping(G, 1, [3], keep).edges)) == {frozenset((1, 3))}
    with pytest.raises(nx.NetworkXNoPath):
        spt_keeping(nx.Graph([(1, 2), (3, 4)]), 1, [4], set())
