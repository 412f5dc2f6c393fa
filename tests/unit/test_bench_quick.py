"""The benchmark suite's quick mode runs and produces sane, well-formed figures.

Prints the figures (run with -s to see them); makes NO timing assertions: absolute
times depend on the machine and on what else runs on it. It checks the structure of
the JSON, that tree-quality ratios to proven optima are >= 1 (a ratio below 1 would
mean a wrong optimum or a wrong cost), that state counts are consistent, and that the
emulated control-plane runs produced FlowMods.

The control-plane section starts ryu-manager on 127.0.0.1 with the OpenFlow switch
emulator (bench/ofemu.py): no root, no Mininet. The e2e section (root + Mininet) is not
part of quick mode.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(proc.stdout)
    print(proc.stderr[-4000:], file=sys.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text()), proc.stdout


def test_structure(quick):
    res, text = quick
    assert res["quick"] is True
    assert set(res["sections"]) == {"trees-quality", "trees-scale", "switch-state", "control-plane", "profile"}
    for name, sec in res["sections"].items():
        assert "error" not in sec, (name, sec.get("error"))
        assert sec["tables"], name
        for t in sec["tables"]:
            assert t["rows"] and all(len(r) == len(t["headers"]) for r in t["rows"]), t["title"]
    assert {"nproc", "cpu", "python"} <= set(res["machine"])
    for b in res["bars"]:
        assert {"bar", "target", "value", "met", "section"} <= set(b)
    assert "== bars" in text


def test_tree_quality_ratios_are_sane(quick):
    res, _ = quick
    sec = res["sections"]["trees-quality"]
    assert sec["figures"]["solved"] >= 10  # 10+ even without scipy (Dreyfus-Wagner only)
    for inst in sec["instances"]:
        if inst["opt"] is None:
            continue
        for method, cost in inst["cost"].items():
            r = cost / inst["opt"] if inst["opt"] else 1.0
            assert 1.0 - 1e-9 <= r < 5.0, (inst["graph"], inst["k"], method, cost, inst["opt"])
    ours = sec["figures"]["methods"]["steiner (sph)"]["ratio"]
    assert 1.0 <= ours["mean"] <= ours["p95"] <= ours["max"] < 2.0


def test_scale_and_drift_are_sane(quick):
    res, _ = quick
    f = res["sections"]["trees-scale"]["figures"]
    assert f["spt_s"] > 0 and f["steiner_s"] > 0
    if f["repaired"]["n"]:  # optima need scipy's ILP for most final member sets
        assert f["repaired"]["mean"] >= 1.0 - 1e-9 and f["drift"]["mean"] >= 1.0 - 1e-9
        assert f["repaired"]["mean"] <= f["drift"]["mean"] + 1e-9  # repair never makes a tree worse


def test_switch_state_counts(quick):
    res, _ = quick
    f = res["sections"]["switch-state"]["figures"]["spt_1000"]
    assert f["groups_max"] <= f["naive_groups_max"]
    assert f["naive_groups_max"] <= f["mcast_flows_max"]  # at most one group entry per multicast flow's group
    assert 0.0 < f["group_reduction_total"] < 1.0


def test_control_plane_produced_rules(quick):
    res, _ = quick
    f = res["sections"]["control-plane"]["figures"]
    for which in ("mcast-sdn", "ryu simple_switch_igmp_13"):
        em = f["emulated:" + which]
        assert em["burst_mods"] > 0 and em["latency_first"]["n"] > 0, which
    assert f["in_process_fat_tree_joins_per_s"] > 0
