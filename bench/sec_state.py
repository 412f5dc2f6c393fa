"""Section 3: switch state (flow and group entries per switch) through the real Core.

10,000 groups on a k=8 fat-tree (80 switches, 128 hosts): each group gets one source
host (its first packet goes through source discovery) and 8 receiver hosts (IGMPv3
joins as PacketIns). What the core then holds as installed on each switch is counted:

* ours: multicast flows + ALL groups shared by bucket set (mcast_sdn.forwarding);
* naive: the same flows, but one group entry per multicast group per switch it
  crosses (what a controller without bucket-set sharing installs);
* flows are reported separately (sharing groups cannot reduce them), with and without
  the fixed base entries (punt, classify, unicast L2).
"""
from __future__ import annotations

import random
import statistics
import time

import common  # noqa: F401
from common import bar, table
from coredrive import Driver, count_mods, group_addr
from mcast_sdn import topofile
from mcast_sdn.ofmodel import TABLE_MCAST, ToGroup, diff


def _fill(mode: str, groups: int, receivers: int = 8, seed: int = 3, log=print):
    spec = topofile.fat_tree(8)
    d = Driver(spec, mode)
    rng = random.Random(seed)
    hosts = list(spec.hosts)
    t0 = time.perf_counter()
    mods = [0, 0]
    for i in range(groups):
        g = group_addr(i)
        src, *rs = rng.sample(hosts, receivers + 1)
        for h in rs:
            fm, gm, _ = count_mods(d.join(h, g))
            mods[0] += fm
            mods[1] += gm
        fm, gm, _ = count_mods(d.source(src, g))
        mods[0] += fm
        mods[1] += gm
        if (i + 1) % 2500 == 0:
            log(f"   switch-state [{mode}]: {i + 1:,} groups in {time.perf_counter() - t0:.1f} s")
    return d, time.perf_counter() - t0, mods


def _count(d: Driver):
    rows = []
    for dpid, inst in sorted(d.core.installed.items()):
        mt = d.core.mtables[dpid]
        mflows = [f for f in mt.flows.values()]
        naive_groups = len({grp for grp, ents in mt.by_group.items() if any(outs for _, _, outs, _ in ents)})
        base = len(inst.flows) - len(mflows)
        ours_groups = len(inst.groups)
        uses = sum(1 for f in mflows if any(isinstance(a, ToGroup) for a in f.actions))
        rows.append({"dpid": dpid, "mflows": len(mflows), "base_flows": base, "groups": ours_groups,
                     "naive_groups": naive_groups, "flows_with_group": uses})
    return rows


def switch_state(quick: bool = False, log=print) -> dict:
    t_start = time.perf_counter()
    groups = 1000 if quick else 10000
    runs = [("spt", groups)] + [(m, 1000 if quick else 2000) for m in ("steiner", "shared")]
    tables, bars, figs = [], [], {}
    summary_rows = []
    for mode, n in runs:
        d, dt, mods = _fill(mode, n, log=log)
        assert all(diff(d.core.desired(d.now, x), inst) == [] for x, inst in d.core.installed.items())
        rows = _count(d)
        mf = [r["mflows"] for r in rows]
        tot_flows = [r["mflows"] + r["base_flows"] for r in rows]
        og = [r["groups"] for r in rows]
        ng = [r["naive_groups"] for r in rows]
        ours_tot = [a + b for a, b in zip(tot_flows, og)]
        naive_tot = [a + b for a, b in zip(tot_flows, ng)]
        red_groups = 1 - sum(og) / sum(ng) if sum(ng) else 0.0
        red_max = 1 - max(og) / max(ng) if max(ng) else 0.0
        f = {"groups": n, "seconds": dt, "events": n * 9, "flowmods": mods[0], "groupmods": mods[1],
             "mcast_flows_max": max(mf), "mcast_flows_mean": statistics.fmean(mf),
             "flows_max": max(tot_flows), "flows_mean": statistics.fmean(tot_flows),
             "groups_max": max(og), "groups_mean": statistics.fmean(og),
             "naive_groups_max": max(ng), "naive_groups_mean": statistics.fmean(ng),
             "total_max": max(ours_tot), "total_mean": statistics.fmean(ours_tot),
             "naive_total_max": max(naive_tot), "naive_total_mean": statistics.fmean(naive_tot),
             "group_reduction_total": red_groups, "group_reduction_max_switch": red_max}
        figs[f"{mode}_{n}"] = f
        summary_rows.append([f"{mode}, {n:,} groups", max(mf), statistics.fmean(mf), max(og), statistics.fmean(og),
                             max(ng), statistics.fmean(ng), red_groups, max(ours_tot), max(naive_tot),
                             max(naive_tot) / max(ours_tot)])
        if mode == "spt":
            # per switch layer (fat-tree: core, aggregation, edge by dpid order of the generator)
            by_kind: dict[str, list] = {}
            spec = d.spec
            for r, sw in zip(rows, sorted(spec.switches, key=lambda s: s.dpid)):
                lab = (getattr(sw, "label", None) or sw.name).rstrip("0123456789")
                kind = "core" if lab.startswith("core") else lab.split("_")[-1] if "_" in lab else lab
                by_kind.setdefault(kind, []).append(r)
            layer_rows = []
            for kind, rs in sorted(by_kind.items()):
                layer_rows.append([kind, len(rs), max(r["mflows"] for r in rs), statistics.fmean(r["mflows"] for r in rs),
                                   max(r["groups"] for r in rs), max(r["naive_groups"] for r in rs),
                                   max(r["base_flows"] for r in rs)])
            tables.append(table(f"switch-state by switch kind (spt, {n:,} groups)",
                                ["switches", "count", "mcast flows max", "mcast flows mean", "groups max (ours)",
                                 "groups max (naive)", "base flows max"], layer_rows))
            b = bar("switch-state: group entries, ours vs naive (whole network)", red_groups * 100, 96.0, " %",
                    higher_is_better=True, note=f"reference cut 96-99.7%; max per switch {max(og):,} vs {max(ng):,}")
            if n < 10000:  # sharing grows with the number of groups: the bar is for 10,000
                b["met"] = None
                b["note"] += f" (quick: {n:,} groups; the bar is for 10,000)"
            bars.append(b)
            bars.append(bar("switch-state: max total entries per switch (flows + groups)", max(ours_tot),
                            max(naive_tot), "", note=f"naive {max(naive_tot):,}; flow entries max {max(tot_flows):,} "
                            f"(multicast {max(mf):,}) are the same in both"))
        log(f"   switch-state [{mode}]: {n:,} groups, {n * 9:,} PacketIns in {dt:.1f} s")
    tables.insert(0, table(
        "switch-state on a k=8 fat-tree (80 switches, 128 hosts), 1 source + 8 receivers per group, through Core: "
        "per switch, ours (ALL groups shared by bucket set) vs naive (one group per multicast group per switch)",
        ["run", "mcast flows max", "mean", "groups max", "mean", "naive groups max", "mean", "group cut",
         "total max", "naive total max", "naive/ours"], summary_rows,
        note="flows are identical in both (one (S,G) or (*,G) flow per group per tree switch); totals add "
             "the base flows (punt, classify, unicast L2) and the group entries"))
    return {"tables": tables, "bars": bars, "figures": figs, "seconds": time.perf_counter() - t_start}
