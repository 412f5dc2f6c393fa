"""Section 7: resilience in Mininet (issue 8): what a stream's members see when something breaks.

Real Open vSwitch (userspace datapath, fail_mode secure), kernel receivers and a streaming
sender, the controller under ryu-manager. Every failure kind is repeated 3 times while a
stream of known rate runs from the first host to all others. The section is not part of
the default --quick run; ``--quick --only resilience`` runs each kind once, without fattree4.

* ``link down``: a link of the group's tree is taken down mid-stream (Mininet
  ``configLinkStatus``), on ring4 and on fattree4; it is brought back (and rediscovered)
  before the next repetition.
* ``bridge/reconnect``: ``ovs-appctl bridge/reconnect s2`` (the switch keeps its entries).
* ``del/set-controller``: ``ovs-vsctl del-controller s2`` + ``set-controller`` (OVS flushes
  its flows when its controllers are reconfigured).
* ``del-flows (audit)``: ``ovs-ofctl del-flows s2`` mid-stream, repaired by the periodic audit.
* ``controller restart``: the controller is killed mid-stream and a new one started on the
  same OpenFlow port; the stream runs until after the restart grace has ended.
* ``report flood``: one host sends IGMPv2 reports as fast as it can for 5 s; another host
  on the same switch joins a group meanwhile.

Per member: outage = the longest gap between consecutive received packets of the stream
(normal gap 1/rate), lost = sent - distinct received, duplicates. Controller-side times are
sampled by polling its REST API every 10-20 ms (each poll takes a few ms of the controller's
event loop), so they carry about that resolution: 0 means "within one sample".

The scenarios and their measurement helpers are those of the integration tests
(``tests/integration/test_resilience_net.py``), imported, not copied.
"""
from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: F401  (puts the repo root on sys.path)
from common import ROOT, bar, pct, table

ARTIFACTS = Path(ROOT) / "artifacts" / "bench"
RATE = 200.0  # packets/s of every stream: normal gap 5 ms
CONFIG = {"core": {"audit_interval": 2.0},
          "membership": {"startup_query_interval": 2.0, "query_response_interval": 2.0}}
# restart grace of the controller with CONFIG: settle 3 + startup query 2 + response 2 + 2
GRACE = 3.0 + 2.0 + 2.0 + 2.0


class Poller:
    """Samples the controller's /stats every `interval` s in a thread: (monotonic t, counters, #switches)."""

    def __init__(self, ctl, interval: float = 0.01):
        self.ctl, self.interval = ctl, interval
        self.samples: list[tuple[float, dict, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                s = self.ctl.get("/mcast/v1/stats", timeout=2.0)
                self.samples.append((time.monotonic(), s["counters"], len(s["switches"])))
            except Exception:
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=3)

    def first(self, pred, after: float = 0.0):
        """Time of the first sample (taken after `after`) for which pred(counters, n_switches) holds."""
        for t, c, n in list(self.samples):
            if t >= after and pred(c, n):
                return t
        return None

    def wait(self, pred, timeout: float, what: str, after: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.first(pred, after)
            if t is not None:
                return t
            time.sleep(0.02)
        raise TimeoutError(f"{what} not within {timeout:.0f}s")


def _inc(c0: dict, key: str, by: int = 1):
    return lambda c, n: c.get(key, 0) >= c0.get(key, 0) + by


def _change_types(c0: dict, c: dict) -> dict:
    """OpenFlow changes sent on adoption, by kind (FlowAdd, GroupMod, ...), since c0."""
    p = "core.adopt_changes:"
    return {k[len(p):]: c[k] - c0.get(k, 0) for k in c if k.startswith(p) and c[k] - c0.get(k, 0)}


class Env:
    """One controller and one Mininet network for a topology; rebuilt when a scenario broke it."""

    def __init__(self, spec, tmp: Path, log):
        self.spec, self.tmp, self.log = spec, tmp, log
        self.ctl = self.net = None
        self.n_ctl = 0
        self.setup_s = None

    def up(self):
        from mcast_sdn.ctlproc import ControllerProcess
        from mcast_sdn.mnet import McastNet
        from tests.integration.itutil import wait_topology

        if self.net is not None:
            return self
        t0 = time.monotonic()
        self.ctl = ControllerProcess(self.tmp / f"ctl-{self.spec.name}-{self.n_ctl}.log", config=CONFIG).start()
        self.n_ctl += 1
        self.net = McastNet(self.spec, self.ctl.of_port).start()  # waits for the machine-wide Mininet lock
        wait_topology(self.ctl, self.spec, timeout=60)
        self.setup_s = time.monotonic() - t0
        self.log(f"   resilience: {self.spec.name} up in {self.setup_s:.1f} s (lock wait included)")
        return self

    def down(self, keep_log: bool = False):
        if self.net is not None:
            try:
                self.net.stop()
            finally:
                self.net = None
        if self.ctl is not None:
            self.ctl.stop()
            if keep_log and self.ctl.log_path.exists():
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.ctl.log_path, ARTIFACTS / f"resilience-{self.ctl.log_path.name}")
            self.ctl = None


def _tree_switches(ctl, group) -> set:
    for g in ctl.get("/mcast/v1/groups")["groups"]:
        if g["group"] == group:
            return {e["from"][0] for t in g["trees"].values() for e in t} | {e["to"][0] for t in g["trees"].values() for e in t}
    return set()


def _stream(env, rep_dir: Path, group: str, n: int, during, members=None) -> dict:
    """One stream with `during` called mid-stream; per-member outage, loss, duplicates."""
    from tests.integration.test_resilience_net import gaps, run_stream

    spec = env.spec
    sender = spec.hosts[0]
    members = members or spec.hosts[1:]
    rep_dir.mkdir(parents=True, exist_ok=True)
    res, recs, src, extra = run_stream(env.ctl, env.net, spec, rep_dir, members, sender, group, n, RATE, during)
    per = {}
    for h in members:
        s = res[h.name].get((group, src), {})
        gap, _ = gaps(recs[h.name], group, src)
        per[h.name] = {"outage_ms": None if gap is None else gap * 1e3, "lost": n - s.get("unique", 0),
                       "duplicates": s.get("duplicates", 0)}
    return {"members": per, "n": n, **(extra or {})}


# ---------------------------------------------------------------------------- failure kinds
def _rep_baseline(env, d, group):
    return _stream(env, d, group, int(RATE * 3), lambda: {})


def _rep_link_down(env, d, group, members=None):
    from mcast_sdn.mnet import wait_until
    from tests.integration.itutil import wait_topology

    ctl, net = env.ctl, env.net
    down = []

    def fail_a_tree_link():
        wait_until(lambda: any(g["group"] == group and g["trees"] for g in ctl.get("/mcast/v1/groups")["groups"]), 5,
                   what="tree")
        view = next(g for g in ctl.get("/mcast/v1/groups")["groups"] if g["group"] == group)
        edge = next(iter(view["trees"].values()))[0]
        a, b = f"s{edge['from'][0]}", f"s{edge['to'][0]}"
        dead = {(edge["from"][0], edge["to"][0]), (edge["to"][0], edge["from"][0])}

        def rerouted():  # the controller's view of the group's trees no longer uses the dead link
            for g in ctl.get("/mcast/v1/groups")["groups"]:
                if g["group"] == group:
                    return g["trees"] and not any((e["from"][0], e["to"][0]) in dead
                                                  for t in g["trees"].values() for e in t)
            return False

        t0 = time.monotonic()
        net.net.configLinkStatus(a, b, "down")
        down.append((a, b))
        try:
            wait_until(rerouted, 10, interval=0.02, what="tree recomputed")
            t_seen = time.monotonic()
        except TimeoutError:
            t_seen = None
        return {"link": f"{a}-{b}", "seen_ms": None if t_seen is None else (t_seen - t0) * 1e3}

    try:
        return _stream(env, d, group, int(RATE * 4), fail_a_tree_link, members)
    finally:
        for a, b in down:
            net.net.configLinkStatus(a, b, "up")
        if down:
            wait_topology(ctl, env.spec, timeout=60)


def _rep_reconnect(env, d, group, how: str, target: str = "s2"):
    ctl = env.ctl

    def flap():
        c0 = ctl.get("/mcast/v1/stats")["counters"]
        with Poller(ctl) as p:
            t0 = time.monotonic()
            if how == "reconnect":
                subprocess.run(["ovs-appctl", "bridge/reconnect", target], check=True, capture_output=True)
            else:
                subprocess.run(["ovs-vsctl", "del-controller", target], check=True)
                p.wait(_inc(c0, "core.switch_leave"), 10, "switch leave seen")
                subprocess.run(["ovs-vsctl", "set-controller", target, f"tcp:127.0.0.1:{ctl.of_port}"], check=True)
            t_adopt = p.wait(_inc(c0, "core.readback_adopted"), 15, "read-back adopted after the reconnect")
            t_back = p.first(_inc(c0, "core.switch_enter"))
        c = ctl.get("/mcast/v1/stats")["counters"]
        return {"back_ms": (t_back - t0) * 1e3 if t_back else None,
                "reconcile_ms": (t_adopt - t_back) * 1e3 if t_back else None,
                "adopt_changes": c.get("core.adopt_changes", 0) - c0.get("core.adopt_changes", 0),
                "adopt_change_types": _change_types(c0, c),
                "readback_flows": c.get("core.readback_flows", 0) - c0.get("core.readback_flows", 0)}

    r = _stream(env, d, group, int(RATE * 4), flap)
    v = ctl.get(f"/mcast/v1/switches/{env.spec.dpid(target)}?verify=1")["verify"]
    r["verify_ok"] = bool(v.get("ok"))
    return r


def _rep_audit(env, d, group, target: str = "s2"):
    from mcast_sdn.mnet import wait_until

    ctl = env.ctl

    def wipe():
        wait_until(lambda: env.spec.dpid(target) in _tree_switches(ctl, group), 5, what=f"{target} on the tree")
        c0 = ctl.get("/mcast/v1/stats")["counters"]
        with Poller(ctl) as p:
            t0 = time.monotonic()
            subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", target], check=True)
            t_rep = p.wait(_inc(c0, "core.audit_repairs"), 3 * CONFIG["core"]["audit_interval"] + 5, "audit repair")
        wait_until(lambda: ctl.get(f"/mcast/v1/switches/{env.spec.dpid(target)}?verify=1")["verify"]["ok"], 5,
                   what=f"{target} agrees")
        c = ctl.get("/mcast/v1/stats")["counters"]
        return {"reconcile_ms": (t_rep - t0) * 1e3,
                "missing_entries": c.get("core.audit_missing_entries", 0) - c0.get("core.audit_missing_entries", 0)}

    return _stream(env, d, group, int(RATE * 5), wipe)


def _rep_restart(env, d, group):
    from mcast_sdn.ctlproc import ControllerProcess
    from mcast_sdn.mnet import wait_until
    from tests.integration.itutil import wait_topology

    spec = env.spec
    members = spec.hosts[1:]
    old = env.ctl

    def restart():
        old.stop()
        t_kill = time.monotonic()
        c2 = ControllerProcess(env.tmp / f"ctl-{spec.name}-{env.n_ctl}.log", config=CONFIG)
        env.n_ctl += 1
        c2.of_port = old.of_port  # the switches reconnect to the same address
        c2.start()
        env.ctl = c2
        want = {(spec.dpid(h.switch), h.port) for h in members}

        def rebuilt():
            for g in c2.get("/mcast/v1/groups")["groups"]:
                if g["group"] == group:
                    return {(m["dpid"], m["port"]) for m in g["members"]} >= want
            return False

        with Poller(c2) as p:
            t_first = p.wait(lambda c, n: n >= 1, 30, "a switch back")
            t_back = p.wait(lambda c, n: n == len(spec.switches), 30, "switches back")
            wait_until(rebuilt, 30, interval=0.05, what="membership rebuilt after restart")
            t_rebuilt = time.monotonic()
            t_adopted = p.wait(lambda c, n: c.get("core.readback_adopted", 0) >= len(spec.switches), 10, "all adopted")
        # keep the stream running until the restart grace (kept entries frozen) has ended
        time.sleep(max(0.0, t_first + GRACE + 1.0 - time.monotonic()))
        c = c2.get("/mcast/v1/stats")["counters"]
        return {"back_ms": (t_back - t_kill) * 1e3, "reconcile_ms": (t_rebuilt - t_back) * 1e3,
                "adopted_ms": (t_adopted - t_back) * 1e3,
                "adopt_changes": c.get("core.adopt_changes", 0),
                "adopt_change_types": _change_types({}, c),
                "adopted_mcast_flows": c.get("core.adopted_mcast_flows", 0)}

    # stream: ~1 s before the kill, then kill -> start (~2 s) -> reconnect (OVS backoff, up to 8 s) -> grace (9 s)
    r = _stream(env, d, group, int(RATE * 20), restart)
    old.log_path.unlink(missing_ok=True)
    old.log_path.with_suffix(".config.json").unlink(missing_ok=True)
    wait_topology(env.ctl, spec, timeout=60)  # the new controller knows the network before the next repetition
    return r


FLOOD_SCRIPT = (
    "import socket,sys,time\n"
    "d=open(sys.argv[1],'rb').read(); fr=[]; i=0\n"
    "while i<len(d):\n n=int.from_bytes(d[i:i+2],'big'); fr.append(d[i+2:i+2+n]); i+=2+n\n"
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind((sys.argv[2],0))\n"
    "open(sys.argv[3],'w').close(); end=time.time()+float(sys.argv[4]); sent=0\n"
    "while time.time()<end:\n"
    " for f in fr[:500]:\n  s.send(f); sent+=1\n"
    " fr=fr[500:]+fr[:500]\n"
    "print(sent)\n"
)


def _meter_drops(switch: str) -> int:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "meter-stats", switch], capture_output=True, text=True).stdout
    return sum(int(m) for m in re.findall(r"^\s*\d+:\s*packet_count:(\d+)", out, re.M))


def _rep_flood(env, d, rep: int, seconds: float = 5.0):
    from mcast_sdn import packets, traffic
    from mcast_sdn.mnet import wait_until
    from tests.integration.test_delivery import Stream, wait_members

    spec, ctl, net = env.spec, env.ctl, env.net
    flooder, joiner = spec.hosts[0], spec.hosts[1]  # same switch
    assert flooder.switch == joiner.switch
    d.mkdir(parents=True, exist_ok=True)
    fip = flooder.ip.split("/")[0]
    frames = [packets.build_igmp_report(2, flooder.mac, fip, f"239.50.{i // 250}.{i % 250 + 1}") for i in range(2000)]
    blob = d / "frames.bin"
    blob.write_bytes(b"".join(len(f).to_bytes(2, "big") + f for f in frames))
    script = d / "flood.py"
    script.write_text(FLOOD_SCRIPT)
    started = d / "flood.started"
    c0 = ctl.get("/mcast/v1/stats")["counters"]
    m0 = _meter_drops(flooder.switch)

    def punted():
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", flooder.switch,
                              f"table=0,in_port={flooder.port},ip,nw_proto=2"], capture_output=True, text=True).stdout
        return sum(int(x.split("=")[1].rstrip(",")) for x in out.split() if x.startswith("n_packets="))

    p0 = punted()
    fl = net.host(flooder.name).popen([sys.executable, str(script), str(blob), f"{flooder.name}-eth0", str(started),
                                       str(seconds)], stdout=subprocess.PIPE)
    group = f"239.51.0.{rep + 1}"
    try:
        wait_until(started.exists, 10, what="the flood to start")
        wait_until(lambda: punted() > p0 + 5000, 10, interval=0.1, what="the flood to hit the switch")
        st = Stream(net, d)
        try:
            st.receiver(joiner.name, [group], duration=20)
            st.wait_ready()
            wait_members(ctl, group, {(spec.dpid(joiner.switch), joiner.port)}, timeout=10.0)
            t_member = time.time()
            joined = [r["t"] for r in traffic.collect(st.recv[joiner.name][1]) if r.get("event") == "joined"]
        finally:
            st.stop()
        out, _ = fl.communicate(timeout=seconds + 15)
        sent = int(out.decode().strip() or 0)
        at_switch = punted() - p0
    finally:
        traffic.stop(fl)
    alive = ctl.alive()
    c = ctl.get("/mcast/v1/stats")["counters"]

    def delta(k):
        return c.get(k, 0) - c0.get(k, 0)

    return {"reports_sent": sent, "reached_switch": at_switch, "join_ms": (t_member - min(joined)) * 1e3 if joined else None,
            "reached_controller": delta("core.punt_igmp"), "dropped_budget": delta("core.drop_punt_rate_limited"),
            "dropped_meters": _meter_drops(flooder.switch) - m0, "controller_alive": alive}


# ---------------------------------------------------------------------------- driver
def _values(reps, key):
    return [r[key] for r in reps if r.get(key) is not None]


def _member_values(reps, key):
    return [m[key] for r in reps for m in r["members"].values() if m.get(key) is not None]


def resilience(quick: bool = False, log=print) -> dict:
    t_start = time.perf_counter()
    if os.geteuid() != 0 or shutil.which("ovs-vsctl") is None or shutil.which("mn") is None:
        return {"tables": [], "bars": [], "skipped": "needs root, Open vSwitch and Mininet", "figures": {}}
    if subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode != 0:
        subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "start", "--system-id=random"], capture_output=True)
    from mcast_sdn import topofile

    reps = 1 if quick else 3
    ring = topofile.ring(4)
    fat = topofile.fat_tree(4)
    ring2 = topofile.ring(4, hosts_per_switch=2)
    # (key, label, topology, repetition); the restart comes last on its network (it replaces the controller)
    plan = [("baseline", "no failure (baseline)", ring, lambda e, d, i: _rep_baseline(e, d, f"239.60.0.{i + 1}"))]
    plan += [
        ("link-ring4", "link down", ring, lambda e, d, i: _rep_link_down(e, d, f"239.60.1.{i + 1}")),
        ("reconnect", "bridge/reconnect", ring, lambda e, d, i: _rep_reconnect(e, d, f"239.60.2.{i + 1}", "reconnect")),
        ("set-controller", "del/set-controller", ring,
         lambda e, d, i: _rep_reconnect(e, d, f"239.60.3.{i + 1}", "set-controller")),
        ("audit", "del-flows (audit)", ring, lambda e, d, i: _rep_audit(e, d, f"239.60.4.{i + 1}")),
        ("restart", "controller restart", ring, lambda e, d, i: _rep_restart(e, d, f"239.60.5.{i + 1}")),
        ("flood", "report flood", ring2, lambda e, d, i: _rep_flood(e, d, i)),
    ]
    if not quick:
        plan.append(("link-fattree4", "link down", fat,
                     lambda e, d, i: _rep_link_down(e, d, f"239.60.6.{i + 1}", members=fat.hosts[1:12])))
    figures: dict = {"rate_pps": RATE, "reps": reps, "config": CONFIG, "kinds": {}, "setup_s": {}}
    with tempfile.TemporaryDirectory(prefix="mcast-bench-res-") as td:
        tmp = Path(td)
        env = None
        for key, label, spec, fn in plan:
            if env is not None and env.spec is not spec:
                env.down()
                env = None
            kind = {"label": label, "topology": spec.name, "reps": [], "errors": []}
            figures["kinds"][key] = kind
            t_kind = time.monotonic()
            for i in range(reps):
                try:
                    if env is None:
                        env = Env(spec, tmp, log).up()
                        figures["setup_s"][spec.name] = env.setup_s
                    r = fn(env, tmp / f"{key}-{i}", i)
                    kind["reps"].append(r)
                    out = [m["outage_ms"] for m in r.get("members", {}).values() if m["outage_ms"] is not None]
                    log(f"   resilience [{key} {i + 1}]: " + (f"outage max {max(out):.0f} ms, " if out else "")
                        + ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in r.items() if k not in ("members", "n")))
                except Exception as e:
                    log(f"   resilience [{key} {i + 1}] failed: {type(e).__name__}: {e}")
                    kind["errors"].append(f"{type(e).__name__}: {e}")
                    if env is not None:
                        env.down(keep_log=True)
                        env = None
            kind["seconds"] = time.monotonic() - t_kind
        if env is not None:
            env.down()

    # ---------------- tables
    rows = []
    reconcile_what = {"reconnect": "switch back -> read-back adopted",
                      "set-controller": "switch back -> read-back adopted",
                      "audit": "del-flows -> audit repair",
                      "restart": "switches back -> membership rebuilt",
                      "link-ring4": "link down -> tree recomputed (REST view)",
                      "link-fattree4": "link down -> tree recomputed (REST view)"}
    for key, k in figures["kinds"].items():
        if key == "flood":
            continue
        rs = k["reps"]
        if not rs:
            rows.append([k["label"], k["topology"], 0, "; ".join(k["errors"])[:80]] + [None] * 11)
            continue
        out, lost, dups = _member_values(rs, "outage_ms"), _member_values(rs, "lost"), _member_values(rs, "duplicates")
        rec = _values(rs, "reconcile_ms") or _values(rs, "seen_ms")
        back = _values(rs, "back_ms")
        chg = _values(rs, "adopt_changes")
        rows.append([k["label"], k["topology"], f"{len(rs)}" + (f" ({len(k['errors'])} failed)" if k["errors"] else ""),
                     len(out), statistics.median(out) if out else None, pct(out, 95) if out else None,
                     max(out) if out else None, statistics.median(lost) if lost else None, max(lost) if lost else None,
                     sum(dups), statistics.median(back) if back else None,
                     statistics.median(rec) if rec else None, max(rec) if rec else None,
                     "/".join(str(c) for c in chg) if chg else None, reconcile_what.get(key, "-")])
    t1 = table(
        f"resilience in Mininet (userspace OVS, fail_mode secure; kernel receivers): a stream of {RATE:.0f} packets/s "
        f"from the first host to every other (fattree4: 11 of them); each failure mid-stream, {reps} repetition(s)",
        ["failure", "topology", "reps", "samples", "outage p50 ms", "outage p95 ms", "outage max ms",
         "lost/member p50", "lost/member max", "dups", "back after ms", "reconcile p50 ms", "reconcile max ms",
         "changes on adoption", "reconcile ="],
        rows,
        note="outage = longest gap between consecutive packets at a member (normal gap 5 ms); samples = members x "
             "repetitions; the baseline shows the jitter of an undisturbed stream; lost = sent - distinct received; back after = command (or kill) -> switch(es) connected "
             "again; changes on adoption = OpenFlow changes the controller sent after reading a switch back "
             "(restart: all switches, cumulated, per repetition); controller times are sampled every 10-20 ms (0 = within one sample)")
    tables = [t1]
    fk = figures["kinds"].get("flood")
    if fk is not None:
        rs = fk["reps"]
        j = _values(rs, "join_ms")
        t2 = table(
            f"report flood on {fk['topology']}: one host sends IGMPv2 reports (2,000 groups) as fast as it can for 5 s; "
            f"another host on the same switch joins a group meanwhile; {len(rs)} repetition(s)",
            ["reps", "reports sent/s", "matched at the switch/s", "join p50 ms", "join max ms", "reached controller/rep",
             "dropped by controller budget/rep", "dropped by switch meters/rep", "controller alive"],
            [[f"{len(rs)}" + (f" ({len(fk['errors'])} failed)" if fk["errors"] else ""),
              statistics.median(_values(rs, "reports_sent")) / 5.0 if rs else None,
              statistics.median(_values(rs, "reached_switch")) / 5.0 if rs else None,
              statistics.median(j) if j else None, max(j) if j else None,
              statistics.median(_values(rs, "reached_controller")) if rs else None,
              statistics.median(_values(rs, "dropped_budget")) if rs else None,
              statistics.median(_values(rs, "dropped_meters")) if rs else None,
              all(_values(rs, "controller_alive")) if rs else None]],
            note="sent = written to the flooder's packet socket; matched at the switch = packets counted by the "
                 "switch's IGMP punt entry of the flooder's port (the rest is lost before OVS's userspace datapath); "
                 "join = the joiner's join call (receiver record) -> its port listed as a member by the controller; "
                 "reached controller = IGMP PacketIns counted by the controller during the repetition (all hosts); "
                 "medians over repetitions")
        tables.append(t2)

    # ---------------- bars of issue 8
    bars = []
    kinds = figures["kinds"]
    for key in ("link-ring4", "link-fattree4"):
        rs = kinds.get(key, {}).get("reps")
        if rs:
            out = _member_values(rs, "outage_ms")
            bars.append(bar(f"resilience: link-down outage median, {kinds[key]['topology']} (issue 8)",
                            statistics.median(out), 100.0, " ms"))
    dup_total = sum(sum(_member_values(k["reps"], "duplicates")) for k in kinds.values() if k["reps"] and k is not fk)
    bars.append(bar("resilience: duplicates after any failure (issue 8)", dup_total, 0, ""))
    rs = kinds.get("restart", {}).get("reps")
    if rs:
        bars.append(bar("resilience: controller restart, packets lost per member, max (goal none)",
                        max(_member_values(rs, "lost")), 0, ""))
    rs = kinds.get("audit", {}).get("reps")
    if rs:
        bars.append(bar("resilience: del-flows repaired within the audit interval, max",
                        max(_values(rs, "reconcile_ms")) / 1e3, CONFIG["core"]["audit_interval"], " s"))
    if fk is not None and fk["reps"] and _values(fk["reps"], "join_ms"):
        bars.append(bar("resilience: join under a report flood, max", max(_values(fk["reps"], "join_ms")) / 1e3, 2.0, " s"))
    return {"tables": tables, "bars": bars, "figures": figures, "seconds": time.perf_counter() - t_start}
