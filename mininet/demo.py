#!/usr/bin/env python3
"""The README's main command: a live demo network driven by mcast-sdn.

Starts the controller (stock `ryu-manager mcast_sdn.app` on 127.0.0.1), builds a
topology from topologies/ in Mininet with userspace Open vSwitch, waits until the
controller has discovered it, proves connectivity (pingall, IPv4 and IPv6) and
prints what the controller believes. Cleans up everything it started.

    python mininet/demo.py [--topo ring4] [--cli]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mcast_sdn import topofile  # noqa: E402
from mcast_sdn.ctlproc import ControllerProcess  # noqa: E402
from mcast_sdn.mnet import McastNet, wait_until  # noqa: E402


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def wait_discovered(ctl, spec, timeout=40.0):
    want_sw = {s.dpid for s in spec.switches}
    host_ports = {(spec.dpid(h.switch), h.port) for h in spec.hosts}

    def ready():
        snap = ctl.get("/mcast/v1/topology")
        if {int(d) for d in snap["switches"]} != want_sw or len(snap["links"]) != len(spec.links):
            return False
        return all(snap["switches"][str(d)].get(str(p), {}).get("kind") == "edge" for d, p in host_ports) and snap

    return wait_until(ready, timeout, interval=0.2, what="topology discovery")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topo", default="ring4", help="topology name or JSON path (default: ring4, which has a loop)")
    ap.add_argument("--cli", action="store_true", help="leave the Mininet CLI open at the end")
    ap.add_argument("--logdir", default=None, help="where the controller log goes (default: a temp dir)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("demo.py: run as root (Mininet and Open vSwitch need it)", file=sys.stderr)
        return 2

    spec = topofile.load(args.topo)
    logdir = Path(args.logdir or tempfile.mkdtemp(prefix="mcast-sdn-demo-"))
    ctl = ControllerProcess(logdir / "controller.log")
    net = None
    ok = True
    t0 = time.monotonic()
    try:
        banner(f"controller: ryu-manager mcast_sdn.app on 127.0.0.1:{ctl.of_port} (REST :{ctl.rest_port}), log {ctl.log_path}")
        ctl.start()
        banner(f"network: {spec.name}: {len(spec.switches)} switches, {len(spec.links)} links, {len(spec.hosts)} hosts")
        net = McastNet(spec, ctl.of_port).start()
        snap = wait_discovered(ctl, spec)
        print(f"switches connected: {len(snap['switches'])}; links discovered: {len(snap['links'])} "
              f"({time.monotonic() - t0:.1f}s since start)")
        for l in snap["links"]:
            print(f"  link s{l['a'][0]}:{l['a'][1]} <-> s{l['b'][0]}:{l['b'][1]}")
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
        stats = ctl.get("/mcast/v1/stats")
        banner("controller counters")
        for k, v in sorted(stats["counters"].items()):
            print(f"  {k:28s} {v}")
        if args.cli:
            from mininet.cli import CLI

            CLI(net.net)
    finally:
        if net is not None:
            net.stop()
        ctl.stop()
    banner(f"verdict: {'PASS' if ok else 'FAIL'} ({time.monotonic() - t0:.1f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
