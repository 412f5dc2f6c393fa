#!/usr/bin/env python3
"""Verification run: play a scenario on a real network and say whether multicast delivery was right.

    python mininet/verify.py SCENARIO [--topo NAME] [--json OUT] [--controller URL:OFPORT] [--keep]

SCENARIO is a file or a name in mininet/scenarios/ (basic, ssm, churn, mixed-versions, ...;
format in mcast_sdn/verify.py). The run starts Open vSwitch if it is not running, the
controller (stock ``ryu-manager mcast_sdn.app`` on 127.0.0.1, with the scenario's
"controller" settings as MCAST_SDN_CONFIG) unless --controller attaches to a running one
(e.g. ``--controller http://127.0.0.1:8080:6653``: REST base URL, then the OpenFlow port),
and the topology (the scenario's, or --topo) in Mininet; waits until the controller has
discovered it; then plays the timeline with the kernel's IGMP/MLD stack:

* every join is an ``mcast_recv.py`` in the host (one per host and group; its version
  forced with force_igmp_version / force_mld_version first), every send an
  ``mcast_send.py``; a leave is the receiver's --leave-after;
* every host also runs a wire watcher (``mcast_recv.py --wire on`` that never joins), so
  whatever reaches a host's interface is seen, member or not;
* OVS port counters of every inter-switch port are read before the first stream, when
  it starts and at the end (the hosts' IPv6 router solicitations, which Linux repeats
  forever and the network floods, are switched off first); the controller's trees
  (GET /mcast/v1/groups) are polled every 0.5 s while streams run.

It prints per host and stream what was owed, received, duplicated, missed and leaked,
join/leave latencies (median/p95 over mid-stream joins and leaves), per-link copies
against the trees and the optimal (Steiner) link count, and a verdict. Exit status 0 if
the verdict is true, 1 if false, 2 if the scenario or the set-up is unusable.

--keep keeps the run directory (every tool's JSON-lines records, the controller log);
it is also kept when the verdict is false, and always when named with --workdir.
Everything started is stopped in a finally (network, controller, tools, by PID);
nothing else on the machine is touched.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mcast_sdn import topofile, traffic  # noqa: E402
from mcast_sdn import verify as V  # noqa: E402

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
POLL = 0.5  # seconds between REST snapshots while streams run
MAX_RUN = 300.0  # hard bound on one scenario's play time


def log_print(*a) -> None:
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# environment: OVS, controller (started or attached), discovery
# ---------------------------------------------------------------------------


def _ovs_ok() -> bool:
    try:
        return subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_ovs(log=log_print) -> None:
    """Start Open vSwitch (ovs-ctl start) if `ovs-vsctl show` fails; wait until it answers."""
    if _ovs_ok():
        return
    log(f"Open vSwitch is not answering: {OVS_CTL} start")
    subprocess.run([OVS_CTL, "start", "--system-id=random"], capture_output=True, timeout=60)
    deadline = time.monotonic() + 15
    while not _ovs_ok():
        if time.monotonic() > deadline:
            raise RuntimeError("Open vSwitch did not start (ovs-vsctl show still fails)")
        time.sleep(0.2)


class AttachedController:
    """A controller somebody else runs: its REST base URL and OpenFlow port (never stopped by us)."""

    def __init__(self, base_url: str, of_port: int):
        self._base = base_url.rstrip("/")
        self.of_port = of_port
        self.host = urllib.parse.urlparse(self._base).hostname or "127.0.0.1"
        self.log_path = None

    @property
    def base_url(self) -> str:
        return self._base

    def get(self, path: str, timeout: float = 5.0):
        import json
        import urllib.request

        with urllib.request.urlopen(self._base + path, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def alive(self) -> bool:
        try:
            self.get("/mcast/v1/stats", timeout=2)
            return True
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def stop(self) -> None:  # not ours
        pass


def parse_controller(text: str) -> tuple[str, int]:
    """'http://127.0.0.1:8080:6653' -> ('http://127.0.0.1:8080', 6653)."""
    url, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not url.startswith(("http://", "https://")):
        raise ValueError(f"--controller {text!r}: expected URL:OFPORT, e.g. http://127.0.0.1:8080:6653")
    p = int(port)
    if not 1 <= p <= 65535:
        raise ValueError(f"--controller {text!r}: OpenFlow port {p} out of range")
    return url, p


def wait_discovered(ctl, spec, timeout: float = 45.0) -> dict:
    """Until the controller sees every switch and link, and every host port as an edge port."""
    want_sw = {s.dpid for s in spec.switches}
    host_ports = {(spec.dpid(h.switch), h.port) for h in spec.hosts}
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            snap = ctl.get("/mcast/v1/topology")
            last = snap
            if {int(d) for d in snap["switches"]} == want_sw and len(snap["links"]) == len(spec.links) and all(
                    snap["switches"][str(d)].get(str(p), {}).get("kind") == "edge" for d, p in host_ports):
                return snap
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            n = (len(last["switches"]), len(last["links"])) if last else ("?", "?")
            raise TimeoutError(f"topology {spec.name} not discovered within {timeout:.0f}s "
                               f"(switches {n[0]}/{len(want_sw)}, links {n[1]}/{len(spec.links)})")
        time.sleep(0.2)


def load_topology(name_or_obj):
    if isinstance(name_or_obj, dict):
        return topofile.from_dict(name_or_obj, default_name="inline")
    return topofile.load(name_or_obj)


# ---------------------------------------------------------------------------
# one run of a plan on a running network
# ---------------------------------------------------------------------------


def _ofctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True, timeout=15)


class Run:
    """Plays one `mcast_sdn.verify.Plan` on a started McastNet with a controller; `execute()` -> report."""

    def __init__(self, plan: V.Plan, net, ctl, workdir, log=log_print):
        self.plan = plan
        self.net = net
        self.ctl = ctl
        self.spec = plan.spec
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.watchers: dict[str, tuple] = {}
        self.receivers: dict[tuple, tuple] = {}
        self.senders: dict[int, tuple] = {}
        self.snapshots: list[tuple[float, dict]] = []
        self.faults: list[dict] = []
        self.restore: list[tuple] = []
        self.errors: list[str] = []
        self._rest_failed = False
        self._next_poll = 0.0
        self.names = {s.dpid: s.name for s in self.spec.switches}
        self.t0_wall = time.time()

    # -- helpers -------------------------------------------------------------
    def host(self, name):
        return self.net.host(name)

    def link_ports(self) -> set[tuple[int, int]]:
        out = set()
        for l in self.spec.links:
            out.add((self.spec.dpid(l.a), l.a_port))
            out.add((self.spec.dpid(l.b), l.b_port))
        return out

    def port_tx(self) -> tuple[float, dict]:
        lp = self.link_ports()
        res = {}
        for s in self.spec.switches:
            for p, st in self.net.port_stats(s.name).items():
                if (s.dpid, p) in lp:
                    res[(s.dpid, p)] = st.get("tx_pkts", st.get("tx_packets", 0))
        return time.time(), res

    def poll_rest(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_poll:
            return
        self._next_poll = now + POLL
        try:
            view = self.ctl.get("/mcast/v1/groups", timeout=3)
            self.snapshots.append((time.time(), view))
        except (OSError, urllib.error.URLError, ValueError) as e:
            if not self._rest_failed:
                self._rest_failed = True
                self.errors.append(f"controller REST /mcast/v1/groups failed: {e}")
        if hasattr(self.ctl, "proc") and not self.ctl.alive() and "controller exited" not in " ".join(self.errors):
            self.errors.append(f"controller exited during the run (log: {self.ctl.log_path})")

    def wait_until(self, deadline_mono: float, cond=None, step: float = 0.05) -> bool:
        """Poll REST (every POLL s) until `cond()` is true or the monotonic deadline passes."""
        while True:
            if cond is not None and cond():
                return True
            now = time.monotonic()
            if now >= deadline_mono:
                return cond() if cond is not None else True
            self.poll_rest()
            time.sleep(min(step, max(0.0, deadline_mono - now)))

    # -- actions -------------------------------------------------------------
    def start_watchers(self, duration: float) -> None:
        for h in self.plan.host_names():
            out = self.dir / f"watch-{h}.jsonl"
            p = traffic.start_receiver(self.host(h), self.plan.groups, out_path=out, port=self.plan.port,
                                       duration=duration, join_after=duration - 1.0, wire="on")
            self.watchers[h] = (p, out)
        deadline = time.monotonic() + 15
        for h, (p, out) in self.watchers.items():
            while True:
                recs = traffic.collect(out)
                st = [r for r in recs if r.get("event") == "start"]
                if st:
                    if not st[0].get("wire"):
                        raise RuntimeError(f"{h}: the wire watcher has no packet socket: {st[0]}")
                    break
                if p.poll() is not None:
                    raise RuntimeError(f"{h}: wire watcher exited ({p.returncode}): "
                                       f"{Path(str(out) + '.stderr').read_text(errors='replace')[-500:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{h}: wire watcher not started within 15s")
                time.sleep(0.05)

    def set_versions(self) -> None:
        for h, v in self.plan.versions.items():
            traffic.set_host_versions(self.host(h), igmp=v.get("igmp") or 0, mld=v.get("mld") or 0)

    def quiet_hosts(self) -> None:
        """Stop the hosts' IPv6 router solicitations (Linux repeats them with back-off forever, and
        each is flooded along the spanning tree): the link counters are to show the streams."""
        for h in self.plan.host_names():
            node = self.host(h)
            node.cmd(f"sysctl -q -w net.ipv6.conf.{traffic.host_iface(node)}.router_solicitations=0")

    def do_join(self, j: V.JoinPlan, life: float) -> None:
        out = self.dir / f"recv-{j.host}-{j.group.replace(':', '_')}.jsonl"
        kw = {}
        if j.mode == "include":
            kw["sources"] = list(j.sources)
        elif j.mode == "exclude":
            kw["blocks"] = list(j.sources)
        if j.leave_at is not None:
            kw["leave_after"] = j.leave_at - j.at
        p = traffic.start_receiver(self.host(j.host), [j.group], out_path=out, port=self.plan.port,
                                   duration=life, wire="off", **kw)
        self.receivers[(j.host, j.group)] = (p, out)

    def do_send(self, s: V.SendPlan) -> None:
        out = self.dir / f"send-{s.stream}-{s.host}.jsonl"
        p = traffic.start_sender(self.host(s.host), s.group, out_path=out, port=self.plan.port, count=s.count,
                                 rate=s.rate, size=s.size, stream=s.stream, max_seconds=s.seconds + 15)
        self.senders[s.stream] = (p, out, time.monotonic() + s.seconds + 15)

    def do_fault(self, f: V.FaultPlan) -> None:
        rec = {"at": f.at, "kind": f.kind, "group": f.group, "source": f.source, "switch": None, "command": None,
               "affected": [], "applied": False}
        self.faults.append(rec)
        try:
            view = self.ctl.get("/mcast/v1/groups", timeout=3)
            g = next((x for x in view.get("groups", []) if V.norm_addr(x["group"]) == f.group), None)
            if g is None:
                raise RuntimeError(f"the controller has no group {f.group}")
            src = f.source or next(s.src for s in self.plan.sends if s.group == f.group)
            rec["source"] = src
            src_dpid = next((s["dpid"] for s in g.get("sources", []) if V.norm_addr(s["address"]) == src), None)
            edges = V.directed_tree_edges(g.get("trees", {}), src, src_dpid)
            if not edges:
                raise RuntimeError(f"no tree for ({src}, {f.group}) yet")
            members = [(m["dpid"], m["port"]) for m in g.get("members", [])]
            if f.switch:
                d = self.spec.dpid(f.switch)
                edge = next((e for e in edges if e[2] == d), None)
                if edge is None:
                    raise RuntimeError(f"switch {f.switch} is not below the root of the tree of ({src}, {f.group})")
                below = V.subtree(edges, d)
            else:
                picked = V.pick_fault_edge(edges, members, root=src_dpid)
                if picked is None:
                    raise RuntimeError(f"no tree link of ({src}, {f.group}) leads to a member")
                edge, below = picked
            port_host = {(self.spec.dpid(h.switch), h.port): h.name for h in self.spec.hosts}
            rec["affected"] = sorted({port_host[m] for m in members if m[0] in below and m in port_host},
                                     key=self.plan.host_names().index)
            if f.kind == "del_flows":
                sw = self.names[edge[2]]
                m = f"table=2,ip,nw_dst={f.group}" if V.family(f.group) == 4 else f"table=2,ipv6,ipv6_dst={f.group}"
                args = ["del-flows", sw, m]
            else:
                sw = self.names[edge[0]]
                args = ["mod-port", sw, str(edge[1]), "no-forward"]
                self.restore.append(("mod-port", sw, str(edge[1]), "forward"))
            rec["switch"] = sw
            rec["command"] = "ovs-ofctl -O OpenFlow13 " + " ".join(args)
            r = _ofctl(*args)
            if r.returncode != 0:
                raise RuntimeError(f"{rec['command']} failed: {r.stderr.strip()}")
            rec["applied"] = True
            self.log(f"  fault: {rec['command']} (cuts off {', '.join(rec['affected']) or 'nobody'})")
        except Exception as e:  # noqa: BLE001 - reported; the verdict cannot be trusted then
            rec["error"] = f"{type(e).__name__}: {e}"
            self.errors.append(f"fault at {f.at}s ({f.kind} on {f.group}) not applied: {rec['error']}")

    # -- observation -----------------------------------------------------------
    def observed(self, with_links=None) -> V.Observed:
        obs = V.Observed()
        for key, (_p, out) in self.receivers.items():
            obs.members[key] = traffic.collect(out)
        for h, (_p, out) in self.watchers.items():
            obs.watch[h] = traffic.collect(out)
        for sid, (_p, out, _d) in self.senders.items():
            obs.senders[sid] = traffic.collect(out)
        for j in self.plan.joins:
            if (j.host, j.group) not in self.receivers:
                obs.errors.append(f"{j.host}: the join of {j.group} was never started")
        obs.errors += self.errors
        obs.faults = self.faults
        obs.links = with_links
        return obs

    def complete(self) -> bool:
        rep = V.analyse(self.plan, self.observed())
        return all(r["missing"] == 0 for r in rep["rows"])

    def record_sizes(self) -> tuple:
        files = [o for _p, o in self.receivers.values()] + [o for _p, o in self.watchers.values()]
        return tuple(os.path.getsize(f) if os.path.exists(f) else -1 for f in files)

    def stream_trees(self, streams: list[V.StreamInfo]) -> tuple[dict, dict]:
        """Per stream: directed edges seen in the REST snapshots taken while it ran, and the last view."""
        edges: dict[int, set] = {}
        for s in streams:
            es: set = set()
            if s.t_first is not None:
                for t, view in self.snapshots:
                    if not (s.t_first - 0.05 <= t <= (s.t_last or s.t_first) + 0.5):
                        continue
                    g = next((x for x in view.get("groups", []) if V.norm_addr(x["group"]) == s.group), None)
                    if g is None:
                        continue
                    src_dpid = next((x["dpid"] for x in g.get("sources", []) if V.norm_addr(x["address"]) == s.src),
                                    None)
                    es |= V.directed_tree_edges(g.get("trees", {}), s.src, src_dpid)
            edges[s.stream] = es
        return edges

    def display_view(self, streams) -> tuple[float | None, dict | None]:
        """(wall time, REST view) to show: the last snapshot taken while every stream that ever ran
        was running, else the last one taken while any stream ran, else the last one."""
        if not self.snapshots:
            return None, None
        spans = [(s.t_first, s.t_last) for s in streams if s.t_first is not None]
        if spans:
            lo, hi = max(a for a, _ in spans), min(b for _, b in spans)
            inside = [(t, v) for t, v in self.snapshots if lo <= t <= hi]
            if inside:
                return inside[-1]
            anyrun = [(t, v) for t, v in self.snapshots if any(a <= t <= b for a, b in spans)]
            if anyrun:
                return anyrun[-1]
        return self.snapshots[-1]

    # -- the run -------------------------------------------------------------
    def execute(self) -> dict:
        plan = self.plan
        t_begin = time.monotonic()
        end = plan.end
        if end > MAX_RUN:
            raise V.ScenarioError(f"scenario lasts {end:.0f}s, more than {MAX_RUN:.0f}s")
        life = end + plan.tail + 60.0
        try:
            self.set_versions()
            self.quiet_hosts()
            self.start_watchers(life + 30.0)
            t0_wall, tx0 = self.port_tx()
            events = sorted([(j.at, 0, i, j) for i, j in enumerate(plan.joins)]
                            + [(s.at, 1, i, s) for i, s in enumerate(plan.sends)]
                            + [(f.at, 2, i, f) for i, f in enumerate(plan.faults)], key=lambda e: e[:3])
            m0 = time.monotonic()
            self.t0_wall = time.time()
            self.log(f"  playing {len(plan.joins)} joins, {len(plan.sends)} streams, {len(plan.faults)} faults "
                     f"over {end:.1f}s")
            t1_wall, tx1 = None, None
            for at, kind, _i, ev in events:
                self.wait_until(m0 + at)
                if kind == 0:
                    self.do_join(ev, life - ev.at)
                elif kind == 1:
                    if tx1 is None:
                        t1_wall, tx1 = self.port_tx()
                    self.do_send(ev)
                else:
                    self.do_fault(ev)
            # senders end on their own (count / rate), bounded by their deadlines
            for sid, (p, _out, deadline) in self.senders.items():
                self.wait_until(deadline, lambda p=p: p.poll() is not None)
                if p.poll() is None:
                    self.errors.append(f"sender of stream {sid} did not finish in time")
                    traffic.stop(p)
            self.wait_until(m0 + end)  # joins/leaves planned after the last stream
            self.poll_rest(force=True)
            # stragglers: until every member has what it is owed (bounded by tail), then until quiet
            self.wait_until(time.monotonic() + plan.tail, self.complete, step=0.2)
            last, quiet_since = None, time.monotonic()
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                sizes = self.record_sizes()
                if sizes != last:
                    last, quiet_since = sizes, time.monotonic()
                elif time.monotonic() - quiet_since >= 0.3:
                    break
                time.sleep(0.05)
            t2_wall, tx2 = self.port_tx()
            try:  # the controller's own counters, for whoever reads the JSON (drops, PacketIns, ...)
                self.counters = self.ctl.get("/mcast/v1/stats", timeout=3).get("counters", {})
            except (OSError, urllib.error.URLError, ValueError, AttributeError):
                self.counters = {}
        finally:
            for p, _o in self.watchers.values():
                traffic.stop(p)
            for p, _o in self.receivers.values():
                traffic.stop(p)
            for p, _o, _d in self.senders.values():
                traffic.stop(p)
            for args in self.restore:
                _ofctl(*args)
        # ---- analysis
        streams, _ = V.observed_streams(plan, self.observed().senders)
        interests, _ = V.observed_interests(plan, self.observed().members)
        trees = self.stream_trees(streams)
        graph = self.spec.graph()
        optimal, packets = {}, {}
        for s in streams:
            src_sw = self.spec.dpid(self.spec.host(s.host).switch)
            terms = {src_sw}
            for h in plan.host_names():
                if len(V.must_receive(interests.get((h, s.group)), s, plan.expect)):
                    terms.add(self.spec.dpid(self.spec.host(h).switch))
            optimal[s.stream] = V.optimal_links(graph, terms)
            packets[s.stream] = s.count
        if tx1 is None:
            t1_wall, tx1 = t2_wall, tx2
        window = max(0.0, t2_wall - t1_wall)
        base = max(1e-3, t1_wall - t0_wall)
        background = {}
        for k, v in tx2.items():
            rate = (tx1.get(k, 0) - tx0.get(k, 0)) / base if base >= 0.8 else 1.5
            background[k] = max(0.0, rate) * window
        links = {
            "links": [(self.spec.dpid(l.a), l.a_port, self.spec.dpid(l.b), l.b_port) for l in self.spec.links],
            "tx": {k: tx2[k] - tx1.get(k, 0) for k in tx2},
            "background": background,
            "trees": trees,
            "packets": packets,
            "slack": float(plan.expect.get("link_slack", 10)),
            "window": window,
            "hosts": len(self.spec.hosts),
            "names": self.names,
            "optimal": optimal,
        }
        obs = self.observed(with_links=links)
        obs.trees = {s.stream: {"tree_links": len(trees.get(s.stream, ())), "optimal_links": optimal.get(s.stream),
                                "tree": sorted(trees.get(s.stream, ()))} for s in streams}
        report = V.analyse(plan, obs)
        t_view, report["trees_view"] = self.display_view(streams)
        report["trees_view_at"] = None if t_view is None else round(t_view - self.t0_wall, 2)
        report["timing"] = {"play_seconds": round(time.monotonic() - t_begin, 2), "planned_seconds": end}
        report["workdir"] = str(self.dir)
        report["controller_counters"] = getattr(self, "counters", {})
        return report


# ---------------------------------------------------------------------------
# whole lifecycle (CLI)
# ---------------------------------------------------------------------------


def run_scenario(scenario, topo=None, controller: str | None = None, workdir=None, log=log_print) -> dict:
    """Load + resolve the scenario, start (or attach) everything, play it, stop everything; -> report.

    Raises ScenarioError for an unusable scenario (before anything is started).
    """
    from mcast_sdn.ctlproc import ControllerProcess
    from mcast_sdn.mnet import McastNet

    sc = scenario if isinstance(scenario, V.Scenario) else V.load_scenario(scenario)
    topo = topo or sc.topology
    if topo is None:
        raise V.ScenarioError(f"{sc.source}: no topology in the scenario; pass --topo")
    try:
        spec = load_topology(topo)
    except (OSError, ValueError, KeyError) as e:
        raise V.ScenarioError(f"topology {topo!r}: {e}") from None
    plan = V.resolve(sc, spec)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="mcast-verify-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_ovs(log)
    ctl = net = None
    t0 = time.monotonic()
    try:
        if controller:
            url, ofport = parse_controller(controller)
            ctl = AttachedController(url, ofport)
            if not ctl.alive():
                raise RuntimeError(f"no controller REST at {url}")
            if sc.controller:
                log(f"  note: attached to {url}; the scenario's controller settings are not applied")
        else:
            ctl = ControllerProcess(workdir / "controller.log", config=sc.controller)
            ctl.start()
        log(f"controller: {ctl.base_url} (OpenFlow :{ctl.of_port})")
        net = McastNet(spec, ctl.of_port, controller_ip=getattr(ctl, "host", "127.0.0.1")).start()
        log(f"network {spec.name}: {len(spec.switches)} switches, {len(spec.links)} links, {len(spec.hosts)} hosts")
        wait_discovered(ctl, spec)
        log(f"  discovered in {time.monotonic() - t0:.1f}s")
        report = Run(plan, net, ctl, workdir, log=log).execute()
    finally:
        if net is not None:
            net.stop()
        if ctl is not None:
            ctl.stop()
    report["timing"]["total_seconds"] = round(time.monotonic() - t0, 2)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="verify.py", description=__doc__.split("\n\n")[0],
                                 epilog=f"scenarios: {', '.join(V.available())}")
    ap.add_argument("scenario", help="scenario file or name in mininet/scenarios/")
    ap.add_argument("--topo", default=None, help="topology name or JSON file (default: the scenario's)")
    ap.add_argument("--json", default=None, metavar="OUT", help="write the report as JSON to OUT ('-' = stdout)")
    ap.add_argument("--controller", default=None, metavar="URL:OFPORT",
                    help="attach to a running controller, e.g. http://127.0.0.1:8080:6653")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (records, controller log)")
    ap.add_argument("--workdir", default=None, help="run directory, kept (default: a new temp dir)")
    ap.add_argument("--no-links", action="store_true", help="leave the per-link table out of the terminal output")
    args = ap.parse_args(argv)
    if args.controller:
        try:
            parse_controller(args.controller)
        except ValueError as e:
            ap.error(str(e))
    # validate before asking for root: a bad scenario is a bad scenario anywhere
    try:
        sc = V.load_scenario(args.scenario)
        topo = args.topo or sc.topology
        if topo is None:
            raise V.ScenarioError(f"{sc.source}: no topology in the scenario; pass --topo")
        V.resolve(sc, load_topology(topo))
    except (V.ScenarioError, OSError, ValueError, KeyError) as e:
        print(f"verify.py: {e}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("verify.py: run as root (Mininet and Open vSwitch need it)", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mcast-verify-"))
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json == "-" else log_print
    try:
        report = run_scenario(sc, topo=topo, controller=args.controller, workdir=workdir, log=log)
    except (RuntimeError, TimeoutError, OSError) as e:
        print(f"verify.py: run failed: {e}", file=sys.stderr)
        print(f"verify.py: records kept in {workdir}", file=sys.stderr)
        return 2
    text = V.format_report(report, links=not args.no_links)
    print(text, file=sys.stderr if args.json == "-" else sys.stdout, flush=True)
    if args.json:
        data = V.report_json(report)
        if args.json == "-":
            print(data)
        else:
            Path(args.json).write_text(data + "\n")
    if args.keep or args.workdir or not report["verdict"]:
        print(f"run directory kept: {workdir}", file=sys.stderr)
    else:  # a temp dir of our own, and nothing went wrong
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report["verdict"] else 1


if __name__ == "__main__":
    sys.exit(main())
