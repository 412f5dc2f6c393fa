#!/usr/bin/env python3
"""Benchmark for mcast_sdn.trees: speed at controller scale and Steiner quality.

Prints (never asserts) figures:

1. 10,000 groups x 8 receivers on 1,000-node Barabási–Albert and Waxman
   graphs: total time for ``spt``, ``shared`` and ``steiner`` trees, with a
   cold and a warm :class:`PathCache`.
2. ``IncrementalTree`` graft/prune medians (spt and steiner), and the cost
   drift of incremental Steiner trees after 50 join/leave events, before and
   after ``repair()``.
3. Steiner quality and speed against
   ``networkx.algorithms.approximation.steiner_tree(method="mehlhorn")`` on
   the 1,000-node graphs (group sizes 2..128), and against exact optima on
   small instances (Dreyfus–Wagner for <= 8 terminals; with scipy installed
   also an ILP for 12..128 terminals on ~120-node graphs).

Usage::

    python bench/bench_trees.py [--groups 10000] [--quick] [--no-ilp]

Timings are wall-clock ``time.perf_counter`` on whatever machine runs it;
speed comparisons interleave the two contenders and keep the best of three
runs per instance to damp noise from other processes.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import networkx as nx  # noqa: E402
from networkx.algorithms.approximation import steiner_tree as nx_steiner  # noqa: E402

from mcast_sdn.trees import (  # noqa: E402
    IncrementalTree,
    PathCache,
    choose_center,
    shared_tree,
    spt,
    steiner_tree,
    tree_cost,
)
from mcast_sdn.trees_exact import exact_steiner_cost  # noqa: E402


# ---------------------------------------------------------------------------
# graphs
# ---------------------------------------------------------------------------

def ba_graph(n=1000, seed=1):
    G = nx.barabasi_albert_graph(n, 2, seed=seed)
    rng = random.Random(seed)
    for u, v, d in G.edges(data=True):
        d["weight"] = rng.randint(1, 10)
    return G


def waxman_graph(n=1000, seed=2):
    G = nx.waxman_graph(n, beta=0.06, alpha=0.1, seed=seed)
    G = G.subgraph(max(nx.connected_components(G), key=len)).copy()
    for u, v, d in G.edges(data=True):
        (x1, y1), (x2, y2) = G.nodes[u]["pos"], G.nodes[v]["pos"]
        d["weight"] = round(1 + 100 * math.hypot(x1 - x2, y1 - y2), 2)
    return nx.convert_node_labels_to_integers(G, ordering="sorted")


def gnm_graph(n, m, seed):
    G = nx.gnm_random_graph(n, m, seed=seed)
    rng = random.Random(seed)
    for u, v, d in G.edges(data=True):
        d["weight"] = rng.randint(1, 10)
    return G.subgraph(max(nx.connected_components(G), key=len)).copy()


def describe(G):
    return f"{len(G)} nodes, {G.number_of_edges()} edges"


# ---------------------------------------------------------------------------
# 1. scale
# ---------------------------------------------------------------------------

def bench_scale(name, G, groups, receivers=8, seed=7, steiner_groups=None):
    rng = random.Random(seed)
    nodes = sorted(G)
    work = []
    for _ in range(groups):
        s = rng.choice(nodes)
        work.append((s, rng.sample(nodes, receivers)))
    print(f"\n== {name} ({describe(G)}): {groups} groups x {receivers} receivers, random sources")

    cache = PathCache(G)
    gc.collect()
    t0 = time.perf_counter()
    for s, rs in work:
        spt(G, s, rs, cache=cache)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    edges = 0
    for s, rs in work:
        edges += spt(G, s, rs, cache=cache).number_of_edges()
    warm = time.perf_counter() - t0
    print(f"spt     : {cold:6.2f} s cold cache ({len(cache)} sources -> {len(cache)} Dijkstras), "
          f"{warm:6.2f} s warm  ({warm / groups * 1e6:.0f} us/group, {edges / groups:.1f} links/tree)")

    t0 = time.perf_counter()
    center = choose_center(G, cache=PathCache(G))
    tc = time.perf_counter() - t0
    cache2 = PathCache(G)
    gc.collect()
    t0 = time.perf_counter()
    for s, rs in work:
        shared_tree(G, center, rs + [s], cache=cache2)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    edges = 0
    for s, rs in work:
        edges += shared_tree(G, center, rs + [s], cache=cache2).number_of_edges()
    warm = time.perf_counter() - t0
    print(f"shared  : {cold:6.2f} s cold, {warm:6.2f} s warm ({warm / groups * 1e6:.0f} us/group, "
          f"{edges / groups:.1f} links/tree); choose_center (n Dijkstras, cold cache) {tc:.2f} s")

    sg = work if steiner_groups is None else work[:steiner_groups]
    cache3 = PathCache(G)
    gc.collect()
    t0 = time.perf_counter()
    edges = 0
    for s, rs in sg:
        edges += steiner_tree(G, rs + [s], cache=cache3).number_of_edges()
    dt = time.perf_counter() - t0
    extra = "" if len(sg) == groups else f" (extrapolated from {len(sg)}: {dt / len(sg) * groups:.1f} s)"
    print(f"steiner : {dt:6.2f} s for {len(sg)} groups, {dt / len(sg) * 1e3:.2f} ms/group, "
          f"{edges / len(sg):.1f} links/tree{extra}")


# ---------------------------------------------------------------------------
# 2. incremental
# ---------------------------------------------------------------------------

def bench_incremental(name, G, events=20000, seed=11):
    rng = random.Random(seed)
    nodes = sorted(G)
    print(f"\n== incremental on {name} ({describe(G)})")
    for method in ("spt", "steiner"):
        cache = PathCache(G)
        source = nodes[0]
        it = IncrementalTree(G, method, source=source, cache=cache,
                             terminals=rng.sample(nodes, 16))
        if method == "spt":
            cache.distance(source, source)  # warm: one Dijkstra for the source
        joins, leaves = [], []
        n_events = events if method == "spt" else events // 4
        for _ in range(n_events):
            members = it.terminals
            if members and (len(members) > 64 or rng.random() < 0.5):
                node = rng.choice(sorted(members))
                t0 = time.perf_counter()
                it.prune(node)
                leaves.append(time.perf_counter() - t0)
            else:
                node = rng.choice(nodes)
                t0 = time.perf_counter()
                it.graft(node)
                joins.append(time.perf_counter() - t0)
        print(f"{method:8s}: graft median {statistics.median(joins) * 1e6:7.1f} us "
              f"(p95 {sorted(joins)[int(.95 * len(joins))] * 1e6:7.1f}), prune median "
              f"{statistics.median(leaves) * 1e6:6.1f} us over {len(joins) + len(leaves)} events")


def bench_drift(name, G, start=16, events=50, trials=20, seed=13, exact=False):
    """Cost of incremental Steiner trees after ``events`` joins/leaves."""
    rng = random.Random(seed)
    nodes = sorted(G)
    drift, repaired = [], []
    t_repair = []
    for _ in range(trials):
        cache = PathCache(G)
        pool = rng.sample(nodes, min(len(nodes), 4 * start))
        it = IncrementalTree(G, "steiner", cache=cache, terminals=pool[:start])
        for _ in range(events):
            members = sorted(it.terminals)
            if len(members) > 2 and rng.random() < 0.5:
                it.prune(rng.choice(members))
            else:
                it.graft(rng.choice(pool))
        ref = (exact_steiner_cost(G, it.terminals) if exact
               else tree_cost(steiner_tree(G, it.terminals, starts=4, cache=cache)))
        drift.append(it.cost() / ref)
        t0 = time.perf_counter()
        it.repair()
        t_repair.append(time.perf_counter() - t0)
        repaired.append(it.cost() / ref)
    what = "exact optimum" if exact else "static steiner_tree(starts=4)"
    print(f"drift {name}: after {events} join/leave events from {start} members, cost / {what}: "
          f"mean {statistics.mean(drift):.3f}, max {max(drift):.3f}; after repair(): "
          f"mean {statistics.mean(repaired):.3f}, max {max(repaired):.3f} "
          f"(repair {statistics.median(t_repair) * 1e3:.1f} ms median)")


# ---------------------------------------------------------------------------
# 3. quality
# ---------------------------------------------------------------------------

def _best_of(f, reps=3):
    best = math.inf
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_vs_networkx(name, G, sizes=(2, 4, 8, 16, 32, 64, 128), per_size=10, seed=17):
    rng = random.Random(seed)
    nodes = sorted(G)
    warm = PathCache(G)
    for v in nodes:  # what a long-running controller has: compiled adjacency
        warm.adjacency()[v]
        warm.adjacency().by_weight[v]
    print(f"\n== steiner_tree vs networkx mehlhorn on {name} ({describe(G)}), {per_size} groups per size;"
          f" best of 3 runs each")
    print(f"{'k':>4} {'nx ms':>8} {'ours ms':>8} {'speed-up':>8} {'warm ms':>8} {'speed-up':>8} "
          f"{'cost ours/nx':>13} {'mehlhorn no-ls ms':>18}")
    tot = [0, 0, 0]
    for k in sizes:
        t_nx = t_us = t_warm = t_mh = 0
        c_nx = c_us = 0
        for _ in range(per_size):
            ts = rng.sample(nodes, k)
            a, Tn = _best_of(lambda: nx_steiner(G, ts, method="mehlhorn"))
            b, Tu = _best_of(lambda: steiner_tree(G, ts))
            w, _ = _best_of(lambda: steiner_tree(G, ts, cache=warm))
            c, _ = _best_of(lambda: steiner_tree(G, ts, method="mehlhorn", improve=False), 1)
            t_nx += a
            t_us += b
            t_warm += w
            t_mh += c
            c_nx += Tn.size("weight")
            c_us += tree_cost(Tu)
        tot[0] += t_nx
        tot[1] += t_us
        tot[2] += t_warm
        print(f"{k:4d} {t_nx / per_size * 1e3:8.2f} {t_us / per_size * 1e3:8.2f} {t_nx / t_us:7.2f}x "
              f"{t_warm / per_size * 1e3:8.2f} {t_nx / t_warm:7.2f}x {c_us / c_nx:13.4f} "
              f"{t_mh / per_size * 1e3:18.2f}")
    n = len(sizes) * per_size
    print(f" all {tot[0] / n * 1e3:8.2f} {tot[1] / n * 1e3:8.2f} {tot[0] / tot[1]:7.2f}x "
          f"{tot[2] / n * 1e3:8.2f} {tot[0] / tot[2]:7.2f}x   (ours = cold, no cache; warm = PathCache"
          f" with compiled adjacency)")


def _ilp_cost(G, terminals, time_limit=120):
    """Directed multi-commodity-flow ILP (HiGHS via scipy); None if scipy is missing."""
    try:
        import numpy as np
        import scipy.sparse as sp
        from scipy.optimize import Bounds, LinearConstraint, milp
    except ImportError:
        return None
    terms = sorted(set(terminals))
    r, others = terms[0], terms[1:]
    if not others:
        return 0.0
    idx = {v: i for i, v in enumerate(sorted(G))}
    n = len(idx)
    arcs, w = [], []
    for u, v, d in G.edges(data=True):
        c = d.get("weight", 1)
        arcs += [(idx[u], idx[v]), (idx[v], idx[u])]
        w += [c, c]
    A, K = len(arcs), len(others)
    rows, cols, vals, lo, hi = [], [], [], [], []
    row = 0
    for k, t in enumerate(others):  # flow conservation, 1 unit r -> t
        base = A + k * A
        for j, (a, b) in enumerate(arcs):
            rows += [row + a, row + b]
            cols += [base + j, base + j]
            vals += [1.0, -1.0]
        rhs = np.zeros(n)
        rhs[idx[r]], rhs[idx[t]] = 1, -1
        lo.extend(rhs)
        hi.extend(rhs)
        row += n
    for k in range(K):  # flow only on bought arcs
        base = A + k * A
        for j in range(A):
            rows += [row, row]
            cols += [base + j, j]
            vals += [1.0, -1.0]
            lo.append(-np.inf)
            hi.append(0)
            row += 1
    M = sp.csr_matrix((vals, (rows, cols)), shape=(row, A + K * A))
    c = np.concatenate([np.array(w, float), np.zeros(K * A)])
    integrality = np.concatenate([np.ones(A), np.zeros(K * A)])
    res = milp(c, constraints=[LinearConstraint(M, lo, hi)], integrality=integrality, bounds=Bounds(0, 1),
               options={"time_limit": time_limit, "mip_rel_gap": 1e-9})
    if res.status != 0:
        return None
    return res.fun


def bench_vs_exact(use_ilp=True, quick=False, seed=19):
    rng = random.Random(seed)
    families = []
    for i in range(2 if quick else 3):
        families.append(("gnm", gnm_graph(120, 300, seed=100 + i)))
        G = nx.barabasi_albert_graph(150, 2, seed=200 + i)
        for u, v, d in G.edges(data=True):
            d["weight"] = rng.randint(1, 10)
        families.append(("ba", G))
        families.append(("waxman", waxman_graph(120, seed=300 + i)))
    families.append(("les_miserables", nx.les_miserables_graph()))
    small = (2, 3, 4, 6, 8)
    big = (12, 16, 24, 32, 48, 64, 96, 128) if use_ilp else ()
    methods = {
        "sph (default)": lambda G, ts: steiner_tree(G, ts),
        "sph starts=4": lambda G, ts: steiner_tree(G, ts, starts=4),
        "mehlhorn+ls": lambda G, ts: steiner_tree(G, ts, method="mehlhorn"),
        "sph, no ls": lambda G, ts: steiner_tree(G, ts, improve=False),
        "kmb, no ls": lambda G, ts: steiner_tree(G, ts, method="kmb", improve=False),
        "nx mehlhorn": lambda G, ts: nx_steiner(G, ts, method="mehlhorn"),
    }
    ratios = {m: [] for m in methods}
    by_k = {}
    solved = skipped = 0
    for fam, G in families:
        nodes = sorted(G)
        for k in small + big:
            if k > 0.85 * len(nodes):
                continue
            for _ in range(1 if quick else 2):
                ts = rng.sample(nodes, k)
                opt = exact_steiner_cost(G, ts) if k <= 8 else _ilp_cost(G, ts)
                if opt is None:
                    skipped += 1
                    continue
                solved += 1
                for m, f in methods.items():
                    c = f(G, ts)
                    c = c.size("weight")
                    r = c / opt if opt else 1.0
                    ratios[m].append(r)
                    if m == "sph (default)":
                        by_k.setdefault(k, []).append(r)
    print(f"\n== Steiner cost / exact optimum on {solved} instances (gnm 120, BA 150, Waxman ~120, "
          f"les_miserables; k = 2..{max(small + big)})" + (f", {skipped} ILPs skipped" if skipped else ""))
    for m, rs in ratios.items():
        rs = sorted(rs)
        print(f"{m:15s} mean {statistics.mean(rs):.4f}  p95 {rs[int(.95 * len(rs))]:.4f}  max {rs[-1]:.4f}  "
              f"optimal in {sum(r < 1 + 1e-9 for r in rs) / len(rs):.0%}")
    print("default by k: " + ", ".join(f"{k}: {statistics.mean(v):.4f}" for k, v in sorted(by_k.items())))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=10000)
    ap.add_argument("--steiner-groups", type=int, default=None,
                    help="Steiner trees for only this many of the groups (default: all)")
    ap.add_argument("--quick", action="store_true", help="fewer groups and instances")
    ap.add_argument("--no-ilp", action="store_true", help="skip the scipy ILP optima (k > 8)")
    args = ap.parse_args(argv)
    groups = 1000 if args.quick else args.groups
    steiner_groups = args.steiner_groups if args.steiner_groups else (200 if args.quick else None)
    graphs = [("Barabasi-Albert m=2", ba_graph()), ("Waxman", waxman_graph())]
    print(f"python {sys.version.split()[0]}, networkx {nx.__version__}")
    for name, G in graphs:
        bench_scale(name, G, groups, steiner_groups=steiner_groups)
    for name, G in graphs:
        bench_incremental(name, G, events=4000 if args.quick else 20000)
    print()
    for name, G in graphs:
        bench_drift(name, G, trials=5 if args.quick else 20)
    bench_drift("gnm 60 nodes, 6 members", gnm_graph(60, 150, seed=5), start=6, trials=10 if args.quick else 30,
                exact=True)
    for name, G in graphs:
        bench_vs_networkx(name, G, per_size=3 if args.quick else 10)
    bench_vs_exact(use_ilp=not args.no_ilp, quick=args.quick)


if __name__ == "__main__":
    main()
