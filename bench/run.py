#!/usr/bin/env python3
"""mcast-sdn benchmark suite: one command, tables on stdout, JSON on request.

    .venv/bin/python bench/run.py                 # full run (< 15 min on 2 cores)
    .venv/bin/python bench/run.py --quick         # reduced sections 1-4 and 6 (< 2 min)
    .venv/bin/python bench/run.py --json out.json --only trees-quality,switch-state

Sections (in priority order): trees-quality, trees-scale, switch-state, control-plane,
e2e (root + Open vSwitch + Mininet; skipped in --quick), profile, resilience (issue 8;
root + Open vSwitch + Mininet, about 4 min; skipped in --quick). Every comparison runs
its reference implementation in the same process and run, and reports ratios, since
absolute times drift on shared machines. See BENCHMARKS.md for the method and figures.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from common import fmt, machine, render_table  # noqa: E402

SECTIONS = ["trees-quality", "trees-scale", "switch-state", "control-plane", "e2e", "profile", "resilience"]
QUICK_SECTIONS = ["trees-quality", "trees-scale", "switch-state", "control-plane", "profile"]


def _runner(name):
    if name == "trees-quality":
        from sec_trees import trees_quality

        return trees_quality
    if name == "trees-scale":
        from sec_trees import trees_scale

        return trees_scale
    if name == "switch-state":
        from sec_state import switch_state

        return switch_state
    if name == "control-plane":
        from sec_control import control_plane

        return control_plane
    if name == "e2e":
        from sec_e2e import e2e

        return e2e
    if name == "profile":
        from sec_profile import profile

        return profile
    if name == "resilience":
        from sec_resilience import resilience

        return resilience
    raise KeyError(name)


def _json_safe(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced sections 1-4 and 6, under 2 minutes")
    ap.add_argument("--json", metavar="OUT", help="write all figures (and per-instance data) to this file")
    ap.add_argument("--only", metavar="SECTION,...", help=f"comma-separated subset of: {', '.join(SECTIONS)}")
    args = ap.parse_args(argv)
    if args.only:
        names = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in names if s not in SECTIONS]
        if bad:
            ap.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    else:
        names = QUICK_SECTIONS if args.quick else SECTIONS
    m = machine()
    print(f"mcast-sdn benchmarks ({'quick' if args.quick else 'full'}): {m['nproc']} x {m['cpu']}, "
          f"Python {m['python']}, networkx {m['networkx']}", flush=True)
    t_all = time.perf_counter()
    result = {"machine": m, "quick": args.quick, "argv": sys.argv[1:], "sections": {}, "bars": [],
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    failed = []
    for name in names:
        print(f"\n== {name}", flush=True)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        try:
            res = _runner(name)(quick=args.quick, log=log)
        except Exception as e:  # one broken section must not hide the others
            traceback.print_exc()
            res = {"error": f"{type(e).__name__}: {e}", "tables": [], "bars": []}
            failed.append(name)
        res["seconds"] = time.perf_counter() - t0
        res["loadavg_1min"] = [load0, os.getloadavg()[0]]  # other processes share these cores
        for t in res.get("tables", []):
            print(render_table(t), flush=True)
        if res.get("skipped"):
            print(f"   skipped: {res['skipped']}")
        if res.get("findings"):
            print("   findings:")
            for f in res["findings"]:
                print(f"   - {f}")
        for b in res.get("bars", []):
            b["section"] = name
        result["bars"].extend(res.get("bars", []))
        result["sections"][name] = res
        print(f"   ({name}: {res['seconds']:.1f} s; 1-min load average {res['loadavg_1min'][0]:.2f} -> "
              f"{res['loadavg_1min'][1]:.2f} on {m['nproc']} cores)", flush=True)
    result["seconds"] = time.perf_counter() - t_all
    if result["bars"]:
        print("\n== bars")
        rows = []
        for b in result["bars"]:
            met = {True: "MET", False: "MISSED", None: "n/a"}[b["met"]]
            rows.append([b["bar"], fmt(b["value"]) + b["unit"], b["target"], met, b.get("note", "")])
        print(render_table(common.table("bars of issue 7", ["bar", "value", "target", "", "note"], rows)))
    print(f"\ntotal {result['seconds']:.1f} s" + (f"; FAILED sections: {', '.join(failed)}" if failed else ""))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(_json_safe(result), fh, indent=1)
        print(f"JSON written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
