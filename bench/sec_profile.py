"""Section 6: profile the hot paths on the control-plane workload.

Workloads, each under cProfile (deterministic, per function) and, when installed,
pyinstrument (sampling; its call tree is written to artifacts/bench/):

1. membership churn: the in-process control-plane workload on a k=8 fat-tree
   (sources known, joins of new (host, group) pairs, leaves, ticks), with every change
   compiled to Ryu OpenFlow messages and serialised the way the adapter sends them
   (ofmsgs.compile_change + msg.serialize on a stub datapath) -- PacketIn handling,
   tree update and diff in one picture;
2. host learning: table-miss PacketIns of new hosts (the path every new host takes
   before its first report counts).

The section prints the top functions by own time and by cumulative time and a
breakdown by module, and derives findings; it changes nothing.
"""
from __future__ import annotations

import cProfile
import io
import pstats
import random
import time
from pathlib import Path

import common  # noqa: F401
from common import ROOT, table
from coredrive import Driver, group_addr
from mcast_sdn import topofile
from mcast_sdn.ofmodel import COOKIE_MISS

ARTIFACTS = Path(ROOT) / "artifacts" / "bench"


class _StubDP:
    """Just enough of a Ryu Datapath for OFP message construction and serialisation."""

    def __init__(self, dpid):
        from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser

        self.id = dpid
        self.ofproto = ofproto_v1_3
        self.ofproto_parser = ofproto_v1_3_parser
        self.xid = 0

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)


def _churn(groups: int, events: int, seed: int = 5):
    try:
        from mcast_sdn import ofmsgs
    except ImportError:  # the adapter side is optional here (e.g. being edited): core only
        ofmsgs = None

    spec = topofile.fat_tree(8)
    d = Driver(spec, "spt")
    dps = {}
    rng = random.Random(seed)
    hosts = list(spec.hosts)
    n_msgs = 0

    def send(out):
        nonlocal n_msgs
        if ofmsgs is None:
            return
        for dpid in {d for st in out.stages() for d in st}:
            dp = dps.get(dpid) or dps.setdefault(dpid, _StubDP(dpid))
            for c in out.all_changes(dpid):
                for m in ofmsgs.compile_change(dp, c):
                    dp.set_xid(m)
                    m.serialize()
                    n_msgs += 1

    def work():
        for i in range(groups):
            send(d.source(rng.choice(hosts), group_addr(i)))
        pairs = [(rng.choice(hosts), rng.randrange(groups)) for _ in range(events)]
        for h, i in pairs:
            send(d.join(h, group_addr(i)))
        for h, i in pairs:
            send(d.leave(h, group_addr(i)))
        for _ in range(10):
            send(d.advance(0.5))

    return d, work, lambda: n_msgs


def _host_learning(n_hosts: int):
    spec = topofile.fat_tree(8)
    d = Driver(spec, "spt", learn_hosts=False)
    hosts = list(spec.hosts)[:n_hosts]

    def work():
        for h in hosts:
            frame = b"\xff" * 6 + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28
            d._in(h, COOKIE_MISS, frame)

    return d, work


def _app_under_ryu(quick: bool, log):
    import os
    import signal
    import sys

    from sec_control import _emulated_run, mcast_sdn_app, single_switch

    prof = ARTIFACTS / f"profile-app-{os.getpid()}.prof"
    prof.unlink(missing_ok=True)
    wrapper = str(Path(__file__).with_name("ryu_profiled.py"))
    ctl = mcast_sdn_app(ARTIFACTS / f"profile-app-{os.getpid()}.log", prefix=[sys.executable, wrapper, str(prof)],
                        stop_signal=signal.SIGTERM).start()
    n_lat, n_burst = (30, 300) if quick else (100, 1500)
    r = _emulated_run("mcast-sdn", single_switch(48), 40 if quick else 100, n_lat, n_burst, log=log, ctl=ctl,
                      on_measure=lambda: os.kill(ctl.proc.pid, signal.SIGUSR1))
    deadline = time.monotonic() + 10
    while not prof.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    st = pstats.Stats(str(prof))
    prof.unlink(missing_ok=True)
    ctl.log_path.unlink(missing_ok=True)
    ctl.log_path.with_suffix(".config.json").unlink(missing_ok=True)
    return st, {"events": n_lat + n_burst, "burst_events_per_s": r["burst_events"] / r["burst_seconds"]}


def _profile(work):
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    work()
    pr.disable()
    wall = time.perf_counter() - t0
    return pstats.Stats(pr), wall


def _top(st: pstats.Stats, key: str, n: int, total: float):
    rows = []
    items = []
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        short = fn.replace(ROOT + "/", "")
        if "site-packages/" in short:
            short = short.split("site-packages/", 1)[1]
        items.append((tt if key == "tottime" else ct, nc, tt, ct, f"{short}:{line}({name})"))
    items.sort(reverse=True)
    for _, nc, tt, ct, where in items[:n]:
        rows.append([where, nc, tt, tt / total * 100, ct, ct / total * 100])
    return rows


def _by_module(st: pstats.Stats, total: float):
    agg = {}
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        if "/mcast_sdn/" in fn:
            mod = "mcast_sdn/" + fn.rsplit("/", 1)[1]
        elif "/ryu/" in fn:
            mod = "ryu (message construction/serialisation)"
        elif "/networkx/" in fn:
            mod = "networkx"
        elif "ipaddress" in fn:
            mod = "ipaddress (stdlib)"
        elif "/bench/" in fn:
            mod = "bench driver"
        else:
            mod = "other stdlib/builtins"
        agg[mod] = agg.get(mod, 0.0) + tt
    return sorted(([m, t, t / total * 100] for m, t in agg.items()), key=lambda r: -r[1])


def _cum(st: pstats.Stats, needle: str) -> float:
    best = 0.0
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        if f"{fn}:{name}".endswith(needle) or name == needle.split(":")[-1] and needle.split(":")[0] in fn:
            best = max(best, ct)
    return best


def profile(quick: bool = False, log=print) -> dict:
    t_start = time.perf_counter()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tables, figs, findings = [], {}, []
    groups, events = (300, 600) if quick else (1000, 3000)
    d, work, n_msgs = _churn(groups, events)
    st, wall = _profile(work)
    total = st.total_tt
    figs["churn"] = {"groups": groups, "events": 2 * events, "wall_s": wall, "profiled_s": total,
                     "messages": n_msgs()}
    tables.append(table(
        f"profile: membership churn on k=8 fat-tree ({groups} sources, {events} joins + {events} leaves, "
        f"{n_msgs():,} OpenFlow messages built and serialised), top by own time (cProfile; "
        f"{total:.2f} s profiled)",
        ["function", "calls", "own s", "own %", "cum s", "cum %"], _top(st, "tottime", 15, total)))
    tables.append(table("profile: membership churn, top by cumulative time",
                        ["function", "calls", "own s", "own %", "cum s", "cum %"], _top(st, "cumtime", 22, total)))
    mods = _by_module(st, total)
    tables.append(table("profile: membership churn, own time by module", ["module", "own s", "%"], mods))
    phases = {k: _cum(st, k) for k in ("core.py:_punted", "core.py:_source_discovery", "core.py:_recompute",
                                       "core.py:_sync", "ofmodel.py:diff_subset", "ofmodel.py:diff",
                                       "forwarding.py:compute_group", "forwarding.py:set_group",
                                       "packets.py:parse_frame", "ofmsgs.py:compile_change", "core.py:tick",
                                       "membership_manager.py:handle")}
    figs["churn_phases_s"] = phases
    tables.append(table("profile: membership churn, time per phase (cumulative, overlapping)",
                        ["phase", "cum s", "% of profiled"],
                        [[k, v, v / total * 100] for k, v in sorted(phases.items(), key=lambda kv: -kv[1])]))
    ser = sum(r[1] for r in mods if r[0].startswith("ryu"))
    findings.append(f"Ryu message construction + serialisation (adapter side) is {ser / total:.0%} of the "
                    f"churn profile: {ser / max(1, n_msgs()) * 1e6:.0f} us per message")
    core_share = {k: v / total for k, v in phases.items()}
    findings.append("per phase (share of profiled time): " + ", ".join(
        f"{k.split(':')[1]} {v:.0%}" for k, v in sorted(core_share.items(), key=lambda kv: -kv[1])[:6]))

    # host learning
    n_hosts = 16 if quick else 48
    d2, work2 = _host_learning(n_hosts)
    st2, wall2 = _profile(work2)
    figs["host_learning"] = {"hosts": n_hosts, "wall_s": wall2, "per_host_ms": wall2 / n_hosts * 1e3}
    tables.append(table(
        f"profile: host learning on k=8 fat-tree ({n_hosts} new hosts, one table-miss PacketIn each; "
        f"{wall2 / n_hosts * 1e3:.1f} ms per host), top by cumulative time",
        ["function", "calls", "own s", "own %", "cum s", "cum %"], _top(st2, "cumtime", 14, st2.total_tt)))
    desired = _cum(st2, "core.py:desired")
    unicast = _cum(st2, "unicast.py:desired_flows")
    findings.append(
        f"host learning costs {wall2 / n_hosts * 1e3:.0f} ms per new host on an 80-switch fat-tree: each learned "
        f"host re-syncs every switch of the component, recomputing all desired flows (core.desired "
        f"{desired / st2.total_tt:.0%}, unicast.desired_flows {unicast / st2.total_tt:.0%} of it) -- O(switches x "
        f"hosts) per host; only the new host's dst-MAC entries actually change")

    # the real app under ryu-manager (cProfile around ryu-manager), driven by the emulator
    try:
        st3, info = _app_under_ryu(quick, log)
        tot3 = st3.total_tt
        figs["app_under_ryu"] = info
        tables.append(table(
            f"profile: mcast_sdn.app under ryu-manager (cProfile), control-plane emulator workload "
            f"({info['events']} IGMP PacketIns; profiled from the first measured PacketIn to the end, "
            f"{tot3:.2f} s incl. the idle event loop), top by own time",
            ["function", "calls", "own s", "own %", "cum s", "cum %"], _top(st3, "tottime", 18, tot3)))
        mods3 = _by_module(st3, tot3)
        tables.append(table("profile: app under ryu-manager, own time by module (incl. the idle event loop)",
                            ["module", "own s", "%"], mods3[:12]))
        busy = {m: t for m, t, _ in mods3 if not m.startswith("other")}
        ryu_t = sum(t for m, t in busy.items() if m.startswith("ryu"))
        ours_t = sum(t for m, t in busy.items() if m.startswith("mcast_sdn"))
        findings.append(f"under ryu-manager (emulator workload): Ryu framework code {ryu_t:.2f} s vs mcast_sdn "
                        f"{ours_t:.2f} s own time (the rest is the idle event loop and stdlib); "
                        f"see artifacts/bench/profile-app.txt")
        stream = io.StringIO()
        st3.stream = stream
        st3.sort_stats("tottime").print_stats(50)
        (ARTIFACTS / "profile-app.txt").write_text(stream.getvalue())
    except Exception as e:  # the app profile is an extra; never lose the section for it
        log(f"   profile: app under ryu-manager failed: {type(e).__name__}: {e}")
        figs["app_under_ryu"] = {"error": str(e)}

    # pyinstrument call tree (optional)
    try:
        from pyinstrument import Profiler

        d3, work3, _ = _churn(groups // 2, events // 2, seed=6)
        p = Profiler(interval=0.0005)
        p.start()
        work3()
        p.stop()
        text = p.output_text(unicode=False, color=False, show_all=False)
        path = ARTIFACTS / "profile-churn-pyinstrument.txt"
        path.write_text(text)
        figs["pyinstrument"] = str(path)
        findings.append(f"pyinstrument call tree of the churn workload: {path.relative_to(ROOT)}")
    except ImportError:
        figs["pyinstrument"] = None
    stream = io.StringIO()
    st.stream = stream
    st.sort_stats("cumulative").print_stats(60)
    (ARTIFACTS / "profile-churn-cprofile.txt").write_text(stream.getvalue())
    return {"tables": tables, "figures": figs, "findings": findings, "bars": [],
            "seconds": time.perf_counter() - t_start}
