#!/usr/bin/env python3
"""The README's main command: a live demo network driven by mcast-sdn.

Starts the controller (stock `ryu-manager mcast_sdn.app` on 127.0.0.1), builds a
topology from topologies/ in Mininet with userspace Open vSwitch (default: a leaf-spine,
whose leaves reach each other over two spines, so it has loops), waits until the
controller has discovered it, proves unicast connectivity (pingall, IPv4 and IPv6), then
plays the demo scenario (mininet/scenarios/demo.json) with the hosts' own IGMPv3/MLDv2
stacks: members join an IPv4 group, an IPv6 group and an SSM group, sources stream, a
host joins and another leaves mid-stream. It prints the verification table of
mininet/verify.py (per host: owed, received, duplicates, missing, leaks; latencies;
per-link copies against the trees) and the trees the controller built, and cleans up
everything it started.

    python mininet/demo.py [--topo leafspine] [--cli] [--scenario demo] [--json OUT]

Exit status 0 when every check passed (the verdict is true), 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for p in (ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from mcast_sdn import verify as V  # noqa: E402
from mcast_sdn.ctlproc import ControllerProcess  # noqa: E402
from mcast_sdn.mnet import McastNet  # noqa: E402

import verify as runner  # noqa: E402  (mininet/verify.py: the verification run)

DEFAULT_TOPO = "leafspine"
DEFAULT_SCENARIO = "demo"
FALLBACK_SCENARIO = "basic"  # for topologies too small for the demo scenario


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def pick_plan(scenario: str, spec) -> V.Plan:
    """The demo scenario on this topology, or the basic one when the topology is too small for it."""
    sc = V.load_scenario(scenario)
    try:
        return V.resolve(sc, spec)
    except V.ScenarioError as e:
        if scenario != DEFAULT_SCENARIO:
            raise
        print(f"note: {e}\n      -> playing the '{FALLBACK_SCENARIO}' scenario instead", flush=True)
        return V.resolve(V.load_scenario(FALLBACK_SCENARIO), spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topo", default=DEFAULT_TOPO,
                    help=f"topology name or JSON path (default: {DEFAULT_TOPO}, which has loops)")
    ap.add_argument("--cli", action="store_true", help="leave the Mininet CLI open at the end (before clean-up)")
    ap.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario name or file (default: %(default)s)")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the verification report as JSON")
    ap.add_argument("--logdir", default=None, help="where the controller log and tool records go (default: a temp dir)")
    args = ap.parse_args(argv)
    try:
        spec = runner.load_topology(args.topo)
        plan = pick_plan(args.scenario, spec)
    except (V.ScenarioError, OSError, ValueError, KeyError) as e:
        print(f"demo.py: {e}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("demo.py: run as root (Mininet and Open vSwitch need it)", file=sys.stderr)
        return 2

    logdir = Path(args.logdir or tempfile.mkdtemp(prefix="mcast-sdn-demo-"))
    logdir.mkdir(parents=True, exist_ok=True)
    runner.ensure_ovs()
    ctl = ControllerProcess(logdir / "controller.log", config=plan.controller)
    net = None
    ok = True
    report = None
    t0 = time.monotonic()
    try:
        banner(f"controller: ryu-manager mcast_sdn.app on 127.0.0.1:{ctl.of_port} (REST :{ctl.rest_port}), "
               f"log {ctl.log_path}")
        ctl.start()
        banner(f"network: {spec.name}: {len(spec.switches)} switches, {len(spec.links)} links, {len(spec.hosts)} hosts")
        net = McastNet(spec, ctl.of_port).start()
        snap = runner.wait_discovered(ctl, spec)
        print(f"switches connected: {len(snap['switches'])}; links discovered: {len(snap['links'])} "
              f"({time.monotonic() - t0:.1f}s since start)")
        names = {s.dpid: s.name for s in spec.switches}
        for l in snap["links"]:
            a, b = l["a"], l["b"]
            print(f"  link {names.get(a[0], a[0])}:{a[1]} <-> {names.get(b[0], b[0])}:{b[1]}")

        banner("pingall (IPv4)")
        loss = net.net.pingAll(timeout=2)
        print(f"  {len(spec.hosts) * (len(spec.hosts) - 1)} pings, {loss:.0f}% loss")
        ok &= loss == 0
        banner("ping6 from the first host to every other host")
        first = spec.hosts[0]
        for h in spec.hosts[1:]:
            out = net.host(first.name).cmd(f"ping -6 -c1 -W2 {h.ipv6.split('/')[0]}")
            good = " 0% packet loss" in out
            ok &= good
            print(f"  {first.name} -> {h.name} {h.ipv6}: {'ok' if good else 'FAILED'}")

        banner(f"multicast: scenario '{plan.name}' ({plan.description})")
        steps = []
        for j in plan.joins:
            fam = V.family(j.group)
            proto = f"{'IGMP' if fam == 4 else 'MLD'}v{V.effective_version(fam, j.version)}"
            filt = "ASM" if j.mode == "asm" else f"{j.mode.upper()}{{{','.join(j.sources)}}}"
            steps.append((j.at, f"{j.host} joins {j.group} ({proto} {filt})"))
            if j.leave_at is not None:
                steps.append((j.leave_at, f"{j.host} leaves {j.group}"))
        for s in plan.sends:
            steps.append((s.at, f"{s.host} sends {s.count} x {s.size} B to {s.group} at {s.rate:g}/s "
                                f"(stream {s.stream}, source {s.src})"))
        for at, text in sorted(steps, key=lambda x: x[0]):
            print(f"  {at:4.1f}s  {text}")
        report = runner.Run(plan, net, ctl, logdir / "records").execute()

        at = report.get("trees_view_at")
        banner("trees built by the controller (GET /mcast/v1/groups"
               + (f", {at:.1f}s into the scenario)" if at is not None else ")"))
        print(V.format_trees(report.get("trees_view") or {}, spec))
        banner("verification")
        print(V.format_report(report))
        ok &= bool(report["verdict"])
        if args.json:
            Path(args.json).write_text(V.report_json(report) + "\n")

        stats = ctl.get("/mcast/v1/stats")
        banner("controller counters")
        for k, v in sorted(stats["counters"].items()):
            print(f"  {k:32s} {v}")
        if args.cli:
            from mininet.cli import CLI

            banner("Mininet CLI (exit to clean up)")
            CLI(net.net)
    finally:
        if net is not None:
            net.stop()
        ctl.stop()
    banner(f"verdict: {'PASS' if ok else 'FAIL'} ({time.monotonic() - t0:.1f}s; logs and records in {logdir})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
