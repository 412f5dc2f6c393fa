"""Sections 1 and 2: tree quality against exact optima, tree computation at scale.

Graph generators of ``bench/bench_trees.py`` (the trees engineer's benchmark) are
reused; this module adds the real WANs (topohub), fat-trees, 100-node random graphs,
the comparison against exact optima for every method side by side, and the bars.
"""
from __future__ import annotations

import gc
import math
import random
import statistics
import time

import common  # noqa: F401  (sys.path)
import networkx as nx
from common import bar, best_of, pct, summary, table
from networkx.algorithms.approximation import steiner_tree as nx_steiner

from bench_trees import ba_graph, waxman_graph  # noqa: E402  (reuse, do not duplicate)
from exact import have_scipy, optimum
from mcast_sdn import topofile
from mcast_sdn.trees import IncrementalTree, PathCache, choose_center, shared_tree, spt, steiner_tree, tree_cost

WAN_KEYS = [
    "topozoo/Abilene",
    "sndlib/janos-us",
    "topozoo/Geant2012",
    "sndlib/cost266",
    "sndlib/germany50",
    "topozoo/Uninett2011",
    "sndlib/ta2",
]
WAN_KEYS_QUICK = ["topozoo/Abilene", "topozoo/Geant2012", "sndlib/germany50"]


# ---------------------------------------------------------------------------- graphs
def _int_graph(G: nx.Graph) -> nx.Graph:
    G = G.subgraph(max(nx.connected_components(G), key=len)).copy()
    return nx.convert_node_labels_to_integers(G, ordering="sorted")


def wan_graphs(keys) -> tuple[list, str]:
    """Real WANs from topohub (link length in km as weight), else the shipped JSON files."""
    out = []
    try:
        import topohub

        for key in keys:
            try:
                raw = nx.node_link_graph(topohub.get(key), edges="edges")
            except Exception:
                continue
            G = nx.Graph()
            G.add_nodes_from(raw)
            for u, v, d in raw.edges(data=True):
                if u != v:
                    G.add_edge(u, v, weight=max(1, round(float(d.get("dist", 1) or 1))))
            out.append((key.split("/")[-1], _int_graph(G)))
        source = "topohub"
    except ImportError:
        source = "topologies/*.json (topohub not installed)"
    if not out:
        for name in ("abilene", "geant"):
            out.append((name, topofile.load(name).graph()))
        source = "topologies/*.json"
    return out, source


def waxman_small(n=100, seed=5) -> nx.Graph:
    G = nx.waxman_graph(n, beta=0.25, alpha=0.15, seed=seed)
    G = G.subgraph(max(nx.connected_components(G), key=len)).copy()
    for u, v, d in G.edges(data=True):
        (x1, y1), (x2, y2) = G.nodes[u]["pos"], G.nodes[v]["pos"]
        d["weight"] = round(1 + 100 * math.hypot(x1 - x2, y1 - y2), 2)
    return nx.convert_node_labels_to_integers(G, ordering="sorted")


def fat_tree_graph(k: int):
    spec = topofile.fat_tree(k)
    G = spec.graph()
    edge = sorted({spec.dpid(h.switch) for h in spec.hosts})  # hosts hang off edge switches only
    return G, edge


# ---------------------------------------------------------------------------- section 1
OURS = "steiner (sph)"
NX_MEHLHORN = "nx mehlhorn"


def _methods():
    """name -> f(G, terminals, ctx) -> tree; ctx has a warm PathCache and the centre."""
    return {
        OURS: lambda G, ts, c: steiner_tree(G, ts, cache=c["cache"]),
        "steiner sph starts=4": lambda G, ts, c: steiner_tree(G, ts, starts=4, cache=c["cache"]),
        "steiner mehlhorn+ls": lambda G, ts, c: steiner_tree(G, ts, method="mehlhorn", cache=c["cache"]),
        "steiner kmb+ls": lambda G, ts, c: steiner_tree(G, ts, method="kmb", cache=c["cache"]),
        "spt (source=1st)": lambda G, ts, c: spt(G, ts[0], ts[1:], cache=c["cache"]),
        "shared (centre)": lambda G, ts, c: shared_tree(G, c["center"], ts, cache=c["cache"]),
        NX_MEHLHORN: lambda G, ts, c: nx_steiner(G, ts, method="mehlhorn"),
        "nx kou": lambda G, ts, c: nx_steiner(G, ts, method="kou"),
    }


TIMED = (OURS, NX_MEHLHORN)  # best of 3; the rest once


def _cost(T) -> float:
    return T.size("weight")


def trees_quality(quick: bool = False, log=print) -> dict:
    t_start = time.perf_counter()
    rng = random.Random(2024)
    wans, wan_source = wan_graphs(WAN_KEYS_QUICK if quick else WAN_KEYS)
    fam = []  # (family, name, G, terminal pool, sizes, exact max k, instances per size)
    per = 1 if quick else 3
    for name, G in wans:
        fam.append(("wan", name, G, sorted(G), (2, 4, 8, 16, 32), 64, per))
    for k in (4, 8):
        G, edge = fat_tree_graph(k)
        fam.append(("fat-tree", f"fat-tree k={k}", G, edge, (2, 4, 8, 16, 32), 64, per))
    fam.append(("random-100", "waxman-100", waxman_small(100, 5), None, (2, 4, 8, 16, 32, 64), 64, 1 if quick else 5))
    G = ba_graph(100, seed=3)
    fam.append(("random-100", "ba-100", G, None, (2, 4, 8, 16, 32, 64), 64, 1 if quick else 5))
    big_sizes = (4, 16, 128) if quick else (2, 4, 8, 16, 32, 64, 128)
    fam.append(("random-1000", "waxman-1000", waxman_graph(1000, seed=2), None, big_sizes, 8 if quick else 16, per))
    fam.append(("random-1000", "ba-1000", ba_graph(1000, seed=1), None, big_sizes, 16 if quick else 64, per))
    ilp_limit = 5.0 if quick else 20.0
    methods = _methods()
    instances = []
    for family, name, G, pool, sizes, exact_max, reps in fam:
        pool = pool if pool is not None else sorted(G)
        cache = PathCache(G)
        for v in G:  # what a running controller has: the compiled adjacency
            cache.adjacency()[v]
            cache.adjacency().by_weight[v]
        ctx = {"cache": cache, "center": choose_center(G, cache=cache)}
        n_done = 0
        t_fam = time.perf_counter()
        for k in sizes:
            if k > 0.85 * len(pool) and k > 2:
                continue
            for _ in range(reps):
                ts = rng.sample(pool, k)
                rec = {"family": family, "graph": name, "n": len(G), "m": G.number_of_edges(), "k": k,
                       "cost": {}, "time": {}}
                for m, f in methods.items():
                    reps_t = 3 if m in TIMED else 1
                    dt, T = best_of(lambda: f(G, ts, ctx), reps_t)
                    rec["cost"][m] = _cost(T)
                    rec["time"][m] = dt
                # cold (no cache): what a caller without a PathCache pays
                dt, _ = best_of(lambda: steiner_tree(G, ts), 3)
                rec["time"]["steiner (sph) cold"] = dt
                if k <= exact_max:
                    t0 = time.perf_counter()
                    opt, how = optimum(G, ts, time_limit=ilp_limit)
                    rec["exact_s"] = time.perf_counter() - t0
                else:
                    opt, how = None, "not attempted"
                rec["opt"], rec["opt_how"] = opt, how
                rec["best_known"] = min(rec["cost"].values()) if opt is None else opt
                instances.append(rec)
                n_done += 1
        log(f"   trees-quality: {name} ({len(G)} nodes): {n_done} instances in {time.perf_counter() - t_fam:.1f} s")

    solved = [r for r in instances if r["opt"] is not None]
    unsolved = [r for r in instances if r["opt"] is None]

    def ratios(rs, m, ref="opt"):
        return [r["cost"][m] / r[ref] if r[ref] else 1.0 for r in rs]

    def speed(rs, m, base=NX_MEHLHORN):
        a = sum(r["time"][base] for r in rs)
        b = sum(r["time"][m] for r in rs)
        return a / b if b else math.nan

    big = [r for r in instances if r["n"] >= 900]
    rows = []
    fig_methods = {}
    for m in list(methods) + ["steiner (sph) cold"]:
        if m in methods:
            rr = ratios(solved, m)
            s = summary(rr)
            opt_share = sum(x < 1 + 1e-9 for x in rr) / len(rr) if rr else math.nan
        else:
            s, opt_share = {"mean": None, "p95": None, "max": None}, None
        t_ms = statistics.fmean(r["time"][m] for r in instances) * 1e3
        t_big = statistics.fmean(r["time"][m] for r in big) * 1e3 if big else math.nan
        sp_all, sp_big = speed(instances, m), speed(big, m) if big else math.nan
        rows.append([m, s.get("mean"), s.get("p95"), s.get("max"), opt_share, t_ms, t_big, sp_big, sp_all])
        fig_methods[m] = {"ratio": s, "optimal_share": opt_share, "mean_ms": t_ms, "mean_ms_1000": t_big,
                          "speedup_vs_nx_mehlhorn_1000": sp_big, "speedup_vs_nx_mehlhorn_all": sp_all}
    t1 = table(
        f"trees-quality: cost / exact optimum over {len(solved)} proven instances "
        f"({len(instances)} total; WANs from {wan_source}); speed = nx mehlhorn time / method time",
        ["method", "mean", "p95", "max", "optimal", "ms/tree", "ms (1000n)", "speed 1000n", "speed all"],
        rows,
        note="times are best of 3 for steiner (sph), its cold variant and nx mehlhorn, single runs otherwise; "
             "'cold' = no PathCache (adjacency compiled per call), the others share a warm PathCache as the "
             "controller does",
    )
    fams = sorted({r["graph"] for r in instances}, key=lambda g: [r["graph"] for r in instances].index(g))
    rows = []
    for g in fams:
        rs = [r for r in solved if r["graph"] == g]
        allg = [r for r in instances if r["graph"] == g]
        if not allg:
            continue
        st = summary(ratios(rs, OURS)) if rs else {}
        nxm = summary(ratios(rs, NX_MEHLHORN)) if rs else {}
        rows.append([g, allg[0]["n"], len(rs), len(allg), st.get("mean"), st.get("p95"), st.get("max"),
                     nxm.get("mean"), nxm.get("p95"),
                     statistics.fmean(ratios(rs, "spt (source=1st)")) if rs else None,
                     statistics.fmean(ratios(rs, "shared (centre)")) if rs else None,
                     max(ratios(rs, "shared (centre)")) if rs else None,
                     speed(allg, OURS)])
    t2 = table("trees-quality per graph: steiner vs nx mehlhorn vs spt vs shared (ratios to the optimum)",
               ["graph", "nodes", "proven", "inst", "ours mean", "ours p95", "ours max", "nx mean", "nx p95",
                "spt mean", "shared mean", "shared max", "speed vs nx"], rows)
    rows = []
    for k in sorted({r["k"] for r in instances}):
        rs = [r for r in solved if r["k"] == k]
        if not rs:
            rows.append([k, 0, None, None, None, None, None])
            continue
        rows.append([k, len(rs), statistics.fmean(ratios(rs, OURS)), max(ratios(rs, OURS)),
                     statistics.fmean(ratios(rs, NX_MEHLHORN)), statistics.fmean(ratios(rs, "spt (source=1st)")),
                     statistics.fmean(ratios(rs, "shared (centre)"))])
    t3 = table("trees-quality by group size (proven instances)",
               ["k", "inst", "ours mean", "ours max", "nx mehlhorn", "spt", "shared"], rows)
    tables = [t1, t2, t3]
    if unsolved:
        rows = []
        for m in (OURS, "steiner sph starts=4", NX_MEHLHORN, "nx kou", "spt (source=1st)", "shared (centre)"):
            rr = ratios(unsolved, m, "best_known")
            rows.append([m, statistics.fmean(rr), pct(rr, 95), max(rr)])
        tables.append(table(
            f"trees-quality: {len(unsolved)} instances without a proven optimum (ILP not attempted -- "
            "1000-node graphs with many terminals -- or out of time, or no scipy): cost / best cost any method found",
            ["method", "mean", "p95", "max"], rows))
    ours = fig_methods[OURS]
    sp = ours["speedup_vs_nx_mehlhorn_1000"]
    bars = [
        bar("trees-quality: steiner mean ratio to optimum", ours["ratio"].get("mean"), 1.01, "x",
            note=f"{len(solved)} proven instances, k=2..{max(r['k'] for r in solved)}"),
        bar("trees-quality: steiner p95 ratio to optimum", ours["ratio"].get("p95"), 1.05, "x"),
        bar("trees-quality: steiner speed vs nx mehlhorn (1000-node graphs)", sp, 2.0, "x", higher_is_better=True,
            note=f"warm PathCache; cold (no cache): {fig_methods['steiner (sph) cold']['speedup_vs_nx_mehlhorn_1000']:.2f}x; "
                 f"all graphs: {ours['speedup_vs_nx_mehlhorn_all']:.2f}x"),
    ]
    return {
        "tables": tables,
        "bars": bars,
        "figures": {"methods": fig_methods, "solved": len(solved), "instances": len(instances),
                    "wan_source": wan_source, "ilp": have_scipy(),
                    "exact_seconds": sum(r.get("exact_s", 0) for r in instances)},
        "instances": instances,
        "seconds": time.perf_counter() - t_start,
    }


# ---------------------------------------------------------------------------- section 2
def _work(G, groups, receivers, seed):
    rng = random.Random(seed)
    nodes = sorted(G)
    return [(rng.choice(nodes), rng.sample(nodes, receivers)) for _ in range(groups)]


def trees_scale(quick: bool = False, log=print) -> dict:
    t_start = time.perf_counter()
    G = ba_graph(1000, seed=1)
    target = 10000
    work = _work(G, target, 8, seed=7)
    groups = target  # spt/shared: always the full 10,000 (about a second)
    st_groups = 1000 if quick else target  # steiner: quick mode extrapolates from 1,000
    scale = 1.0
    rows, figs = [], {}

    cache = PathCache(G)
    gc.collect()
    t0 = time.perf_counter()
    for s, rs in work:
        spt(G, s, rs, cache=cache)
    t_spt = time.perf_counter() - t0
    figs["spt_s"] = t_spt
    figs["spt_sources"] = len(cache)
    rows.append(["spt (cold PathCache: Dijkstras included)", groups, t_spt, t_spt * scale, t_spt / groups * 1e6])

    t0 = time.perf_counter()
    center = choose_center(G, cache=PathCache(G))
    t_center = time.perf_counter() - t0
    cache2 = PathCache(G)
    gc.collect()
    t0 = time.perf_counter()
    for s, rs in work:
        shared_tree(G, center, rs + [s], cache=cache2)
    t_sh = time.perf_counter() - t0
    figs["shared_s"], figs["choose_center_s"] = t_sh, t_center
    rows.append(["shared (centre-rooted; cold cache)", groups, t_sh, t_sh * scale, t_sh / groups * 1e6])
    rows.append(["  + choose_center once per topology", 1, t_center, t_center, None])

    cache3 = PathCache(G)
    gc.collect()
    t0 = time.perf_counter()
    for s, rs in work[:st_groups]:
        steiner_tree(G, rs + [s], root=s, cache=cache3)
    t_st = time.perf_counter() - t0
    st_scale = target / st_groups
    figs["steiner_s"] = t_st * st_scale
    rows.append(["steiner (sph + local search)", st_groups, t_st, t_st * st_scale, t_st / st_groups * 1e6])

    n_nx = 50 if quick else 300
    t0 = time.perf_counter()
    for s, rs in work[:n_nx]:
        nx_steiner(G, rs + [s], method="mehlhorn")
    t_nx = time.perf_counter() - t0
    figs["nx_mehlhorn_extrapolated_s"] = t_nx / n_nx * target
    rows.append([f"reference: nx mehlhorn (sample of {n_nx})", n_nx, t_nx, t_nx / n_nx * target, t_nx / n_nx * 1e6])
    t_scale = table(
        f"trees-scale: {groups:,} groups x 8 receivers, random sources, Barabasi-Albert 1,000 nodes / "
        f"{G.number_of_edges():,} edges",
        ["method", "groups", "seconds", f"s per {target:,}", "us/group"], rows,
        note=("quick mode: steiner on 1,000 groups, scaled x10" if quick else None))

    # -- incremental join / leave vs recompute
    rng = random.Random(11)
    nodes = sorted(G)
    inc_rows = []
    n_ev = 2000 if quick else 10000
    inc = {}
    for method in ("spt", "steiner"):
        cache = PathCache(G)
        joins, leaves, recompute = [], [], []
        ev = 0
        gi = 0
        while ev < n_ev:
            s, rs = work[gi % len(work)]
            gi += 1
            it = IncrementalTree(G, method, source=s, cache=cache, terminals=rs)
            for _ in range(50):
                members = sorted(it.terminals - {s})
                if len(members) > 2 and (len(members) > 16 or rng.random() < 0.5):
                    node = rng.choice(members)
                    t0 = time.perf_counter()
                    it.prune(node)
                    leaves.append(time.perf_counter() - t0)
                else:
                    node = rng.choice(nodes)
                    t0 = time.perf_counter()
                    it.graft(node)
                    joins.append(time.perf_counter() - t0)
                ev += 1
                if ev % 10 == 0:  # recompute from scratch, same cache (the alternative to incremental)
                    terms = sorted(it.terminals | {s})
                    t0 = time.perf_counter()
                    if method == "spt":
                        spt(G, s, terms, cache=cache)
                    else:
                        steiner_tree(G, terms, root=s, cache=cache)
                    recompute.append(time.perf_counter() - t0)
        jm, lm, rm = statistics.median(joins), statistics.median(leaves), statistics.median(recompute)
        inc[method] = {"join_median_us": jm * 1e6, "join_p95_us": pct(joins, 95) * 1e6,
                       "leave_median_us": lm * 1e6, "leave_p95_us": pct(leaves, 95) * 1e6,
                       "recompute_median_us": rm * 1e6, "events": len(joins) + len(leaves)}
        inc_rows.append([method, len(joins) + len(leaves), jm * 1e6, pct(joins, 95) * 1e6, lm * 1e6,
                         pct(leaves, 95) * 1e6, rm * 1e6, rm / jm])
    t_inc = table("trees-scale: incremental join (graft) / leave (prune) vs recomputing the tree (warm cache)",
                  ["tree", "events", "join med us", "join p95 us", "leave med us", "leave p95 us",
                   "recompute med us", "recompute/join"], inc_rows)

    # -- drift under churn, then one repair pass, against the exact optimum
    trials = 3 if quick else 12
    drift, fixed, fresh, t_rep, skipped = [], [], [], [], 0
    rng = random.Random(13)
    cache = PathCache(G)
    for i in range(trials):
        s, rs = work[i]
        it = IncrementalTree(G, "steiner", source=s, cache=cache, terminals=rs)
        for _ in range(50):
            members = sorted(it.terminals - {s})
            if len(members) > 2 and rng.random() < 0.5:
                it.prune(rng.choice(members))
            else:
                it.graft(rng.choice(nodes))
        terms = sorted(it.terminals | {s})
        opt, how = optimum(G, terms, time_limit=10.0 if quick else 30.0)
        if opt is None:
            skipped += 1
            continue
        drift.append(it.cost() / opt)
        fresh.append(tree_cost(steiner_tree(G, terms, cache=cache)) / opt)
        t0 = time.perf_counter()
        it.repair()
        t_rep.append(time.perf_counter() - t0)
        fixed.append(it.cost() / opt)
    sd, sf, sfr = summary(drift), summary(fixed), summary(fresh)
    t_drift = table(
        f"trees-scale: incremental Steiner trees after 50 join/leave events per group ({len(drift)} groups, "
        "source + 8 receivers to start), cost / exact optimum",
        ["state", "mean", "p95", "max"],
        [["after churn (incremental only)", sd.get("mean"), sd.get("p95"), sd.get("max")],
         ["after one repair() pass", sf.get("mean"), sf.get("p95"), sf.get("max")],
         ["static steiner_tree of the final members", sfr.get("mean"), sfr.get("p95"), sfr.get("max")]],
        note=f"repair median {statistics.median(t_rep) * 1e3:.1f} ms" + (f"; {skipped} optima not proven, skipped" if skipped else ""))
    q = " (quick: extrapolated from 1,000 groups)" if quick else ""
    bars = [
        bar("trees-scale: spt 10,000 groups", t_spt, 1.5, " s",
            note=f"cold cache: {figs['spt_sources']} Dijkstras included"),
        bar("trees-scale: shared 10,000 groups", t_sh, 1.5, " s",
            note=f"plus choose_center {t_center:.2f} s once per topology"),
        bar("trees-scale: steiner 10,000 groups", t_st * st_scale, 30.0, " s",
            note=f"nx mehlhorn would take ~{figs['nx_mehlhorn_extrapolated_s']:.0f} s" + q),
        bar("trees-scale: incremental join median (steiner)", inc["steiner"]["join_median_us"] / 1e3, 0.1, " ms",
            note=f"spt {inc['spt']['join_median_us']:.1f} us"),
        bar("trees-scale: incremental leave median (steiner)", inc["steiner"]["leave_median_us"] / 1e3, 0.1, " ms",
            note=f"spt {inc['spt']['leave_median_us']:.1f} us"),
        bar("trees-scale: steiner drift after churn + one repair (mean)", sf.get("mean"), 1.03, "x",
            note=f"before repair mean {sd.get('mean', math.nan):.3f}, max {sd.get('max', math.nan):.3f}; "
                 f"after repair max {sf.get('max', math.nan):.3f}"),
    ]
    figs.update({"groups": groups, "incremental": inc, "drift": sd, "repaired": sf, "fresh": sfr})
    return {"tables": [t_scale, t_inc, t_drift], "bars": bars, "figures": figs,
            "seconds": time.perf_counter() - t_start}
