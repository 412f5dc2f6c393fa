"""Section 4: control-plane throughput and PacketIn -> FlowMod latency.

(a) In-process: ``Core.packet_in`` with real IGMP frames (bench/coredrive.py), on a
    48-port single switch (the workload of (b)) and on a k=8 fat-tree with 1,000
    groups: events/s and per-event latency, plus the FlowMods/GroupMods produced.
(b) The real apps under the stock ``ryu-manager``, connected to the OpenFlow 1.3
    switch emulator of bench/ofemu.py over TCP: mcast-sdn (``mcast_sdn.app``) vs Ryu's
    own ``ryu.app.simple_switch_igmp_13``, same switch, same IGMPv2 reports (that app
    knows only IGMPv1/v2 and hard-wires switch 1 as the querier with the multicast
    server on port 2, so the source sits on port 2 of switch 1). Latency: one report at
    a time, time from the PacketIn leaving the emulator to the first FlowMod/GroupMod
    (and to the last one of the burst). Throughput: a burst of reports for new
    (group, port) pairs, events / (last mod - first PacketIn).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401
import networkx as nx
from common import ROOT, bar, summary, table
from coredrive import Driver, count_mods, group_addr, udp_frame, v2_report_frame
from mcast_sdn import topofile
from mcast_sdn.ctlproc import free_port, ryu_manager_path
from mcast_sdn.ofmodel import COOKIE_PUNT, COOKIE_SRCDISC, TABLE_MCAST
from ofemu import EmuNet

ARTIFACTS = Path(ROOT) / "artifacts" / "bench"


def single_switch(ports: int = 48):
    G = nx.Graph()
    G.add_node(1)
    return topofile.from_graph(G, hosts=ports, name=f"single{ports}")


# ------------------------------------------------------------------ (a) in-process
def _in_process(spec, groups: int, events: int, version: int, seed: int = 5):
    """Sources known for `groups` groups; then `events` joins of new (host, group) pairs
    and as many leaves; per-event wall time of Core.packet_in (and of the tick that
    removes the state after the last-member query)."""
    d = Driver(spec, "spt")
    rng = random.Random(seed)
    hosts = list(spec.hosts)
    src = hosts[1]  # port 2 of the first switch, as in (b)
    for i in range(groups):
        d.source(src, group_addr(i))
    pairs = [(h, i) for i in range(groups) for h in hosts if h is not src]
    rng.shuffle(pairs)
    pairs = pairs[:events]
    lat_join, lat_leave = [], []
    mods = [0, 0]
    for h, i in pairs:
        g = group_addr(i)
        if version == 2:
            frame = v2_report_frame(h, g)
            dt, out = d.timed(d._in, h, COOKIE_PUNT, frame)
        else:
            dt, out = d.timed(d.join, h, g)
        fm, gm, _ = count_mods(out)
        mods[0] += fm
        mods[1] += gm
        lat_join.append(dt)
    t_tick = 0.0
    for h, i in pairs:
        g = group_addr(i)
        if version == 2:
            dt, out = d.timed(d._in, h, COOKIE_PUNT, v2_report_frame(h, g, leave=True))
        else:
            dt, out = d.timed(d.leave, h, g)
        lat_leave.append(dt)
    # last-member query time passes: the tick removes the state and the rules
    removed = 0
    for _ in range(20):
        dt, out = d.timed(d.advance, 0.5)
        t_tick += dt
        removed += sum(count_mods(out)[:2])
    return {"join": lat_join, "leave": lat_leave, "tick_s": t_tick, "mods": mods, "removed": removed,
            "events": len(pairs)}


# ------------------------------------------------------------------ (b) ryu-manager + emulator
class RyuApp:
    """ryu-manager running any app, started and stopped by PID (its own session).

    `prefix` runs it under a wrapper (e.g. ``python -m cProfile -o FILE``); `stop_signal`
    SIGINT lets such a wrapper write its output on the way out."""

    def __init__(self, app: str, log_path: Path, *, extra_args=(), env=None, prefix=(), stop_signal=None):
        import signal

        self.app = app
        self.of_port = free_port()
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.env = env
        self.prefix = list(prefix)
        self.stop_signal = stop_signal or signal.SIGTERM
        self.proc = None
        self._fh = None

    def start(self, wait: float = 20.0):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.log_path, "w")
        cmd = self.prefix + [ryu_manager_path(), "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port",
                             str(self.of_port), *self.extra_args, self.app]
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + wait
        hexport = f":{self.of_port:04X}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited: {self.log_path.read_text()[-2000:]}")
            with open("/proc/net/tcp") as fh:  # listening? (no probe connection: Ryu would log it)
                if any(hexport in line.split()[1] and line.split()[3] == "0A" for line in fh.readlines()[1:]):
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.app} not listening after {wait}s")

    def stop(self):
        import signal

        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self._fh:
            self._fh.close()
            self._fh = None


def mcast_sdn_app(log_path: Path, **kw) -> RyuApp:
    """mcast_sdn.app under ryu-manager with the benchmark's settings (REST on a free local port)."""
    from mcast_sdn.core import CoreConfig

    core_cfg = {"settle": 0.3, "punt_per_second": 1e6, "source_discovery_per_second": 1e6}
    if hasattr(CoreConfig(), "audit_interval"):
        # the emulator keeps no tables, so its read-back is always empty: the initial one is
        # truthful (a new switch), a periodic audit would look like lost state and re-send
        # everything in the middle of the measurement. No audits during the benchmark.
        core_cfg["audit_interval"] = 3600.0
    cfg = log_path.with_suffix(".config.json")
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({"core": core_cfg}))
    return RyuApp("mcast_sdn.app", log_path, env={"MCAST_SDN_CONFIG": str(cfg)},
                  extra_args=["--wsapi-host", "127.0.0.1", "--wsapi-port", str(free_port())], **kw)


def _emulated_run(which: str, spec, groups: int, n_lat: int, n_burst: int, log=print, ctl=None,
                  on_measure=None) -> dict:
    """`ctl`: an already started controller (RyuApp) to use instead of the default for `which`;
    `on_measure()` is called once set-up is done, right before the measured phases."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tag = f"{time.strftime('%H%M%S')}-{os.getpid()}"  # concurrent runs (e.g. the test suite) never share files
    if ctl is None:
        if which == "mcast-sdn":
            ctl = mcast_sdn_app(ARTIFACTS / f"ctl-{which}-{tag}.log").start()
        else:
            ctl = RyuApp("ryu.app.simple_switch_igmp_13", ARTIFACTS / f"ctl-ryu-igmp-{tag}.log").start()
    port = ctl.of_port
    if which == "mcast-sdn":
        cookie_punt, cookie_src = COOKIE_PUNT, COOKIE_SRCDISC
    else:
        cookie_punt = cookie_src = 0
    ports = {spec.dpid(s.name): [] for s in spec.switches}
    for h in spec.hosts:
        ports[spec.dpid(h.switch)].append(h.port)
    net = EmuNet(ports)
    try:
        net.connect("127.0.0.1", port)
        sw = net.switches[1]
        if not sw.ready.wait(15):
            raise TimeoutError(f"{which}: no FlowMod from the controller within 15 s")
        time.sleep(1.0)  # ports settle (mcast-sdn: 0.3 s configured), switch-enter work finishes
        net.wait_quiet(0.3, 10)
        hosts = list(spec.hosts)
        src = hosts[1]
        assert src.port == 2
        # sources: the first packet of each group reaches the controller (table-miss of the tree table)
        # (each draws a response: mcast-sdn a negative-cache flow, Ryu's app a flooding PacketOut)
        r0 = net.responses
        for i in range(groups):
            sw.packet_in(src.port, udp_frame(src, group_addr(i)), cookie=cookie_src, table_id=TABLE_MCAST)
        net.settle(r0, groups)
        # warm-up: every host reports once for a group of its own (hosts learned, app code warm),
        # so the measured joins are steady-state membership changes
        r0 = net.responses
        warm = [h for h in hosts if h is not src and h.port != 1]
        for h in warm:
            sw.packet_in(h.port, v2_report_frame(h, group_addr(groups + 1)), cookie=cookie_punt)
        net.settle(r0, len(warm), quiet=0.5)
        pairs = [(h, i) for i in range(groups) for h in hosts if h is not src and h.port != 1]
        random.Random(9).shuffle(pairs)
        if on_measure is not None:
            on_measure()
        lat_first, lat_last, missing = [], [], 0
        mods_before = net.n_mods()
        for h, i in pairs[:n_lat]:
            n0 = net.n_mods()
            t0 = sw.packet_in(h.port, v2_report_frame(h, group_addr(i)), cookie=cookie_punt)
            if not net.wait_mods(n0 + 1, 2.0):
                missing += 1
                continue
            with net._lock:
                first = net.mods[n0][0]
            last = net.wait_quiet(0.02, 2.0)
            lat_first.append(first - t0)
            lat_last.append(last - t0)
        lat_mods = net.n_mods() - mods_before
        burst = pairs[n_lat:n_lat + n_burst]
        n0 = net.n_mods()
        t_first = time.perf_counter()
        for h, i in burst:
            sw.packet_in(h.port, v2_report_frame(h, group_addr(i)), cookie=cookie_punt)
        t_sent = time.perf_counter()
        last = net.wait_quiet(1.0, 120)
        burst_mods = net.n_mods() - n0
        dt = max(last - t_first, 1e-9)
        kinds = {}
        with net._lock:
            for t, k, _ in net.mods[n0:]:
                kinds[k] = kinds.get(k, 0) + 1
        res = {"latency_first": lat_first, "latency_last": lat_last, "missing": missing,
               "mods_per_event_latency_phase": lat_mods / max(1, n_lat),
               "burst_events": len(burst), "burst_seconds": dt, "burst_send_seconds": t_sent - t_first,
               "burst_mods": burst_mods, "burst_kinds": kinds, "counts": dict(net.counts),
               "log": None}
        log(f"   control-plane [{which}]: {len(lat_first)} latency samples, burst {len(burst)} events -> "
            f"{burst_mods} mods in {dt:.2f} s")
        ok = True
        return res
    finally:
        net.close()
        ctl.stop()
        if locals().get("ok"):  # keep the controller's log (and settings) only when something failed
            ctl.log_path.unlink(missing_ok=True)
            ctl.log_path.with_suffix(".config.json").unlink(missing_ok=True)


def control_plane(quick: bool = False, log=print) -> dict:
    t_start = time.perf_counter()
    tables, bars, figs = [], [], {}
    single = single_switch(48)
    groups_single = 40 if quick else 100
    # (a) in-process
    rows = []
    a1 = _in_process(single, groups_single, 600 if quick else 2000, version=2)
    a2 = _in_process(topofile.fat_tree(8), 200 if quick else 1000, 600 if quick else 3000, version=3)
    for name, a in (("single switch, 48 ports, IGMPv2", a1), ("k=8 fat-tree, 128 hosts, IGMPv3", a2)):
        sj, sl = summary(a["join"]), summary(a["leave"])
        tot = sum(a["join"])
        rows.append([name, a["events"], a["events"] / tot, sj["p50"] * 1e6, sj["p99"] * 1e6,
                     sl["p50"] * 1e6, a["tick_s"] / a["events"] * 1e6, (a["mods"][0] + a["mods"][1]) / a["events"],
                     (a["mods"][0] + a["mods"][1]) / tot])
        figs["in_process:" + name] = {"events": a["events"], "joins_per_s": a["events"] / tot,
                                      "join": sj, "leave": sl, "tick_s": a["tick_s"], "mods": a["mods"],
                                      "removed_mods": a["removed"]}
    tables.append(table(
        "control-plane (a) in-process: Core.packet_in with real IGMP frames (joins of new (host, group) pairs, "
        "each group with a known source), then the leaves",
        ["workload", "joins", "joins/s", "join p50 us", "join p99 us", "leave p50 us", "leave tick us/event",
         "mods/join", "mods/s"], rows,
        note="leave: the PacketIn only starts the last-member query; the rules go when it times out, in a "
             "core tick (its cost per leave in 'leave tick')"))
    fp = figs["in_process:k=8 fat-tree, 128 hosts, IGMPv3"]
    # (b) ryu-manager + emulator
    n_lat, n_burst = (60, 300) if quick else (300, 1500)
    emu = {}
    for which in ("mcast-sdn", "ryu simple_switch_igmp_13"):
        try:
            emu[which] = _emulated_run(which if which == "mcast-sdn" else "ryu", single, groups_single, n_lat,
                                       n_burst, log=log)
        except Exception as e:
            emu[which] = {"error": f"{type(e).__name__}: {e}"}
            log(f"   control-plane [{which}] failed: {e}")
    rows = []
    for which, r in emu.items():
        if "error" in r:
            rows.append([which, r["error"]] + [None] * 8)
            continue
        lf, ll = summary(r["latency_first"]), summary(r["latency_last"])
        rows.append([which, len(r["latency_first"]), lf.get("p50", 0) * 1e6, lf.get("p99", 0) * 1e6,
                     ll.get("p50", 0) * 1e6, ll.get("p99", 0) * 1e6, r["mods_per_event_latency_phase"],
                     r["burst_events"] / r["burst_seconds"], r["burst_mods"] / r["burst_seconds"]])
        figs["emulated:" + which] = {k: v for k, v in r.items() if k not in ("latency_first", "latency_last")}
        figs["emulated:" + which].update({"latency_first": lf, "latency_last": ll})
    ours, ryu = emu.get("mcast-sdn", {}), emu.get("ryu simple_switch_igmp_13", {})
    if "error" not in ours and "error" not in ryu and ours and ryu:
        lo, lr = summary(ours["latency_first"]), summary(ryu["latency_first"])
        eo = ours["burst_events"] / ours["burst_seconds"]
        er = ryu["burst_events"] / ryu["burst_seconds"]
        rows.append(["ratio ours/ryu (latency: lower is better)", None, lo["p50"] / lr["p50"], lo["p99"] / lr["p99"],
                     None, None, None, eo / er, None])
        figs["ratios"] = {"latency_p50": lo["p50"] / lr["p50"], "latency_p99": lo["p99"] / lr["p99"],
                          "throughput": eo / er}
    tables.append(table(
        "control-plane (b) ryu-manager + OpenFlow 1.3 switch emulator over TCP (1 switch, 48 ports, source on "
        f"port 2, {groups_single} groups; IGMPv2 reports of new (group, port) pairs)",
        ["controller", "samples", "first mod p50 us", "p99 us", "last mod p50 us", "p99 us", "mods/event",
         "events/s (burst)", "mods/s (burst)"], rows,
        note="Ryu's app installs 2 FlowMods per new (group, port) on its querier switch and no group entries; "
             "mcast-sdn installs an (S,G) flow + a shared ALL group (GroupMod) per change; its two-stage send "
             "waits for barrier replies. Controller logs are kept in artifacts/bench/ when a run fails"))
    if "error" not in ours and ours:
        bars.append(bar("control-plane: PacketIn->FlowMod p50 latency, ryu-manager+emulator (info)",
                        summary(ours["latency_first"])["p50"] * 1e3,
                        summary(ryu["latency_first"])["p50"] * 1e3 if ryu and "error" not in ryu else float("nan"),
                        " ms", note="target = Ryu simple_switch_igmp_13 in the same run (no numeric bar in the issue)"))
        bars.append(bar("control-plane: membership changes/s, ryu-manager+emulator (info)",
                        ours["burst_events"] / ours["burst_seconds"],
                        ryu["burst_events"] / ryu["burst_seconds"] if ryu and "error" not in ryu else float("nan"),
                        "/s", higher_is_better=True,
                        note="target = Ryu simple_switch_igmp_13 in the same run"))
    figs["in_process_fat_tree_joins_per_s"] = fp["joins_per_s"]
    return {"tables": tables, "bars": bars, "figures": figs, "seconds": time.perf_counter() - t_start}
