"""Section 5: end to end in Mininet with the kernel IGMP stack, four contenders.

Contenders, on the same loop-free topology and the same scenario:

* mcast-sdn (``mcast_sdn.app`` under ryu-manager; secure OVS bridges, OpenFlow 1.3);
* Ryu's ``ryu.app.simple_switch_igmp_13`` (same bridges; it hard-wires switch 1 as
  the IGMP querier with the multicast server on its port 2 -- so the topology puts
  the sender there);
* Open vSwitch's own IGMP snooping (standalone bridges, no controller,
  ``mcast_snooping_enable=true``, unregistered multicast not flooded);
* plain flooding (standalone bridges, no snooping).

Topology ``tree-src``: s1 (sender h1 on port 2) with s2 and s3 below it, three hosts
on each of s2/s3 (loop-free: standalone bridges would storm on loops). Hosts speak
IGMPv2 (Ryu's app knows only v1/v2; the kernel picks the version by sysctl).

Phase A (steady state): the 3 hosts of s2 join, a host of s3 only watches its wire;
the sender sends N packets: does every member get every packet exactly once and the
non-member none? Packet sockets on the switch-side link interfaces count the stream's
datagrams each link direction carried: link stress = copies on links / (N x links of
the minimal tree, here 1). Phase B (churn): while a stream runs, each of the 6 hosts
joins and later leaves at staggered times; join latency = first packet after the join call, leave
latency = last packet on the wire after the leave call (mcast_recv's packet socket).
"""
from __future__ import annotations

import fcntl
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

import common  # noqa: F401
import networkx as nx
from common import ROOT, bar, pct, table
from mcast_sdn import topofile, traffic

ARTIFACTS = Path(ROOT) / "artifacts" / "bench"


def tree_src_spec() -> topofile.TopologySpec:
    hosts = [{"name": "h1", "switch": "s1", "port": 2}]
    n = 2
    for sw in ("s2", "s3"):
        for p in (2, 3, 4):
            hosts.append({"name": f"h{n}", "switch": sw, "port": p})
            n += 1
    return topofile.from_dict({
        "name": "treesrc",
        "description": "loop-free: s1 (sender on port 2) over s2 and s3, 3 hosts each",
        "switches": [{"name": "s1"}, {"name": "s2"}, {"name": "s3"}],
        "links": [{"a": "s1", "a_port": 1, "b": "s2", "b_port": 1},
                  {"a": "s1", "a_port": 3, "b": "s3", "b_port": 1}],
        "hosts": hosts,
    })


def _standalone_net(spec, snooping: bool):
    """A McastNet whose bridges are standalone (no controller), optionally snooping."""
    from mininet.net import Mininet
    from mininet.node import OVSSwitch
    from mininet.link import Link
    from mininet.log import setLogLevel

    from mcast_sdn.mnet import LOCK_PATH, McastNet, _run, cleanup_stale
    from mcast_sdn.mntopo import SpecTopo

    class StandaloneNet(McastNet):
        def start(self):
            setLogLevel(os.environ.get("MCAST_SDN_MN_LOGLEVEL", "warning"))
            self._lock_fh = open(LOCK_PATH, "w")
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX)
            try:
                cleanup_stale(self.spec)
                switch = partial(OVSSwitch, datapath="user", protocols="OpenFlow13", failMode="standalone")
                self.net = Mininet(topo=SpecTopo(self.spec), switch=switch, controller=None, link=Link,
                                   autoSetMacs=False, build=False)
                self.net.build()
                self._quiet_root_namespace()
                self.net.start()
                for s in self.spec.switches:
                    if snooping:
                        _run("ovs-vsctl", "set", "Bridge", s.name, "mcast_snooping_enable=true",
                             "other_config:mcast-snooping-disable-flood-unregistered=true")
                        # no querier in the network: inter-switch ports forward reports upstream,
                        # so every bridge on the path learns which port leads to members
                        for l in self.spec.links:
                            for end, port in ((l.a, l.a_port), (l.b, l.b_port)):
                                if end == s.name:
                                    _run("ovs-vsctl", "set", "Port", f"{end}-eth{port}",
                                         "other_config:mcast-snooping-flood-reports=true")
                    else:
                        _run("ovs-vsctl", "set", "Bridge", s.name, "mcast_snooping_enable=false")
                self._configure_hosts()
            except BaseException:
                self.stop()
                raise
            return self

    return StandaloneNet(spec, controller_port=0)


def _link_tx(net, spec) -> dict:
    link_ports = {(spec.dpid(l.a), l.a_port) for l in spec.links} | {(spec.dpid(l.b), l.b_port) for l in spec.links}
    res = {}
    for s in spec.switches:
        for p, st in net.port_stats(s.name).items():
            if (s.dpid, p) in link_ports:
                res[(s.dpid, p)] = st.get("tx_pkts", 0)
    return res


class LinkCounter:
    """Counts the UDP datagrams of one group/port that each inter-switch port transmits.

    One AF_PACKET socket per switch-side link interface (root namespace), counting
    frames of type PACKET_OUTGOING (sent by the bridge on that port) that are IPv4 UDP
    to (group, port): the copies each link direction carried, control chatter excluded.
    """

    def __init__(self, spec, group: str, port: int = traffic.DEFAULT_PORT):
        import ipaddress
        import socket
        import threading

        self.counts: dict = {}
        self._stop = threading.Event()
        self._threads = []
        self._socks = []
        gb = ipaddress.ip_address(group).packed
        pb = port.to_bytes(2, "big")
        for l in spec.links:
            for sw, p in ((l.a, l.a_port), (l.b, l.b_port)):
                key = (spec.dpid(sw), p)
                self.counts[key] = 0
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
                s.bind((f"{sw}-eth{p}", 0))
                s.settimeout(0.2)
                self._socks.append(s)

                def loop(s=s, key=key):
                    while not self._stop.is_set():
                        try:
                            data, addr = s.recvfrom(2048)
                        except OSError:
                            continue
                        if addr[2] != socket.PACKET_OUTGOING or len(data) < 38 or data[12:14] != b"\x08\x00":
                            continue
                        ihl = (data[14] & 15) * 4
                        if data[23] == 17 and data[30:34] == gb and data[14 + ihl + 2:14 + ihl + 4] == pb:
                            self.counts[key] += 1

                t = threading.Thread(target=loop, daemon=True)
                t.start()
                self._threads.append(t)

    def close(self) -> dict:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        for s in self._socks:
            s.close()
        return dict(self.counts)


def _min_tree_links(spec, switches) -> int:
    G = spec.graph()
    terms = sorted(set(switches))
    if len(terms) < 2:
        return 0
    T = nx.algorithms.approximation.steiner_tree(G, terms)  # exact on a tree topology
    return T.number_of_edges()


def _run_contender(name: str, spec, tmp: Path, n_a: int, rate: float, churn_s: float, rounds: int = 1,
                   log=print) -> dict:
    from mcast_sdn.ctlproc import ControllerProcess
    from mcast_sdn.mnet import McastNet, wait_until
    from sec_control import RyuApp

    ctl = None
    net = None
    procs = []
    try:
        if name == "mcast-sdn":
            ctl = ControllerProcess(ARTIFACTS / f"e2e-mcast-sdn-{os.getpid()}.log", config={"core": {"settle": 1.0}}).start()
            net = McastNet(spec, ctl.of_port).start()
        elif name == "ryu simple_switch_igmp_13":
            ctl = RyuApp("ryu.app.simple_switch_igmp_13", ARTIFACTS / f"e2e-ryu-igmp-{os.getpid()}.log").start()
            net = McastNet(spec, ctl.of_port).start()
        elif name == "ovs snooping":
            net = _standalone_net(spec, snooping=True).start()
        else:
            net = _standalone_net(spec, snooping=False).start()
        t_up = time.monotonic()
        if ctl is not None:
            wait_until(net.connected, 20, what="switches connected")
        if name == "mcast-sdn":
            want_links = len(spec.links)
            host_ports = {(spec.dpid(h.switch), h.port) for h in spec.hosts}

            def ready():
                snap = ctl.get("/mcast/v1/topology")
                if len(snap["links"]) != want_links:
                    return False
                return all(snap["switches"].get(str(d), {}).get(str(p), {}).get("kind") == "edge"
                           for d, p in host_ports)

            wait_until(ready, 30, interval=0.2, what="topology discovered")
        elif name.startswith("ryu"):
            # its snoopers need to have seen the querier's general query (sent by switch 1 when
            # it connects and every 60 s after); one that missed it floods and ignores leaves
            def heard_query():
                lines = [ln for ln in ctl.log_path.read_text(errors="replace").splitlines() if "[QUERY]" in ln]
                return all(any(f"SW={s.dpid:016x} " in ln for ln in lines) for s in spec.switches if s.dpid != 1)

            try:
                wait_until(heard_query, 70, interval=0.5, what="Ryu snoopers to learn the querier")
            except TimeoutError:
                log("   e2e [ryu]: snoopers did not hear a query within 70 s; measuring anyway")
            time.sleep(1.0)
        else:
            time.sleep(2.0)
        t_ready = time.monotonic() - t_up
        hosts = list(spec.hosts)
        sender, watcher = hosts[0], hosts[-1]
        members = [h for h in hosts if h.switch == "s2"]  # phase A: the s3 subtree has no member
        churners = hosts[1:]  # phase B: everyone joins and leaves once
        for h in hosts:
            traffic.set_host_versions(net.host(h.name), igmp=2)
        # one ARP round so learning switches know the hosts (same for every contender)
        for h in hosts[1:]:
            net.host(sender.name).cmd(f"ping -c1 -W1 {h.ip.split('/')[0]} >/dev/null 2>&1")
        src_ip = sender.ip.split("/")[0]

        # ---------------- phase A: steady state
        group = "239.30.0.1"
        recs = {}
        for h in members:
            out = tmp / f"{name[:4]}-A-{h.name}.jsonl"
            recs[h.name] = (traffic.start_receiver(net.host(h.name), [group], out_path=out,
                                                   ready_file=Path(f"{out}.ready"), duration=20 + n_a / rate),
                            out)
        wout = tmp / f"{name[:4]}-A-watch.jsonl"
        recs[watcher.name] = (traffic.start_receiver(net.host(watcher.name), [group], out_path=wout,
                                                     duration=30 + n_a / rate, join_after=29 + n_a / rate,
                                                     wire="on"), wout)
        procs += [p for p, _ in recs.values()]
        for h in members:
            traffic.wait_ready(Path(f"{recs[h.name][1]}.ready"), timeout=10, proc=recs[h.name][0])
        time.sleep(1.5)  # reports processed (kernel sends the IGMPv2 report at once, then repeats)
        counter = LinkCounter(spec, group)
        before = _link_tx(net, spec)
        t_before = time.monotonic()
        sout = tmp / f"{name[:4]}-A-send.jsonl"
        sp = traffic.start_sender(net.host(sender.name), group, out_path=sout, count=n_a, rate=rate)
        procs.append(sp)
        sp.wait(timeout=n_a / rate + 15)
        time.sleep(1.0)
        after = _link_tx(net, spec)
        window = time.monotonic() - t_before
        copies = counter.close()  # datagrams of the stream per link direction
        sent = traffic.collect(sout)
        expected = traffic.expected_from_sent(sent)
        exact_members, dup, miss = 0, 0, 0
        for h in members:
            s = traffic.summarize(traffic.collect(recs[h.name][1]), expected).get((group, src_ip), {})
            dup += s.get("duplicates", 0)
            miss += s.get("missing", n_a)
            if (s.get("unique"), s.get("duplicates"), s.get("missing")) == (n_a, 0, 0):
                exact_members += 1
        leak = traffic.summarize(traffic.collect(wout))
        leaked = sum(v.get("wire_before_join", 0) + v.get("received", 0) for v in leak.values())
        for p, _ in recs.values():
            traffic.stop(p)
        chatter = {k: max(0, after.get(k, 0) - before.get(k, 0) - copies.get(k, 0)) for k in after}
        carried = sum(copies.values())
        tree_links = _min_tree_links(spec, [spec.dpid(sender.switch)] + [spec.dpid(h.switch) for h in members])
        stress = carried / (n_a * tree_links) if tree_links else None
        max_link = max(copies.values()) / n_a if copies else None

        # ---------------- phase B: churn (staggered join, then leave, per host), `rounds` times
        joins, leaves, never_stopped, before_join = [], [], 0, 0
        for rnd in range(rounds):
            group_b = f"239.30.1.{rnd + 1}"
            recs_b = {}
            dur = churn_s + 4
            for i, h in enumerate(churners):
                out = tmp / f"{name[:4]}-B{rnd}-{h.name}.jsonl"
                ja = 1.5 + 0.4 * i
                la = ja + churn_s / 2
                recs_b[h.name] = (traffic.start_receiver(net.host(h.name), [group_b], out_path=out, duration=dur,
                                                         join_after=ja, leave_after=la, wire="on"), out)
            procs += [p for p, _ in recs_b.values()]
            time.sleep(0.5)
            count_b = int(rate * (churn_s + 2.5))
            sout_b = tmp / f"{name[:4]}-B{rnd}-send.jsonl"
            sp = traffic.start_sender(net.host(sender.name), group_b, out_path=sout_b, count=count_b, rate=rate)
            procs.append(sp)
            sp.wait(timeout=count_b / rate + 15)
            time.sleep(0.5)
            for p, _ in recs_b.values():
                traffic.stop(p)
            sent_b = traffic.collect(sout_b)
            t_last_sent = max(((r.get("t_last") or 0) for r in sent_b if r.get("event") == "sent"), default=None)
            for h in churners:
                s = traffic.summarize(traffic.collect(recs_b[h.name][1])).get((group_b, src_ip), {})
                if s.get("join_latency") is not None:
                    joins.append(s["join_latency"])
                before_join += s.get("wire_before_join", 0)
                ll = s.get("leave_latency")
                if ll is not None:
                    if t_last_sent and s.get("left") is not None and ll >= (t_last_sent - s["left"]) - 0.05:
                        never_stopped += 1  # traffic until the very end of the stream: the leave changed nothing
                    else:
                        leaves.append(ll)
        log(f"   e2e [{name}]: ready in {t_ready:.1f} s; exact {exact_members}/{len(members)}, "
            f"stress {stress}, joins {len(joins)}, leaves {len(leaves)}, never stopped {never_stopped}")
        ok = True
        return {
            "ready_s": t_ready, "members": len(members), "exact_members": exact_members, "duplicates": dup,
            "missing": miss, "nonmember_packets": leaked, "link_copies": {f"{a}:{b}": c for (a, b), c in copies.items()},
            "link_chatter_per_s": {f"{a}:{b}": c / window for (a, b), c in chatter.items()},
            "tree_links": tree_links, "link_stress": stress, "max_link_copies_per_packet": max_link, "n": n_a,
            "join_latency": joins, "leave_latency": leaves, "leave_never_stopped": never_stopped,
            "packets_before_join": before_join, "churners": len(churners), "rounds": rounds,
        }
    finally:
        for p in procs:
            try:
                traffic.stop(p)
            except Exception:
                pass
        if net is not None:
            net.stop()
        if ctl is not None:
            ctl.stop()
            if locals().get("ok"):  # keep the controller's log only when something failed
                ctl.log_path.unlink(missing_ok=True)
                ctl.log_path.with_suffix(".config.json").unlink(missing_ok=True)


def e2e(quick: bool = False, log=print) -> dict:
    t_start = time.perf_counter()
    if os.geteuid() != 0 or shutil.which("ovs-vsctl") is None or shutil.which("mn") is None:
        return {"tables": [], "bars": [], "skipped": "needs root, Open vSwitch and Mininet", "figures": {}}
    if subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode != 0:
        subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "start", "--system-id=random"], capture_output=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    spec = tree_src_spec()
    n_a, rate, churn_s, rounds = (200, 100.0, 6.0, 1) if quick else (400, 100.0, 8.0, 2)
    res = {}
    with tempfile.TemporaryDirectory(prefix="mcast-bench-e2e-") as td:
        for name in ("mcast-sdn", "ryu simple_switch_igmp_13", "ovs snooping", "flooding"):
            try:
                res[name] = _run_contender(name, spec, Path(td), n_a, rate, churn_s, rounds, log=log)
            except Exception as e:
                log(f"   e2e [{name}] failed: {type(e).__name__}: {e}")
                res[name] = {"error": f"{type(e).__name__}: {e}"}
    rows = []
    for name, r in res.items():
        if "error" in r:
            rows.append([name, r["error"]] + [None] * 11)
            continue
        j, l = r["join_latency"], r["leave_latency"]
        rows.append([name, f"{r['exact_members']}/{r['members']}", r["duplicates"], r["missing"],
                     r["nonmember_packets"], r["link_stress"], r["max_link_copies_per_packet"],
                     statistics.median(j) * 1e3 if j else None, pct(j, 95) * 1e3 if j else None,
                     statistics.median(l) * 1e3 if l else None, pct(l, 95) * 1e3 if l else None,
                     r["leave_never_stopped"], r["packets_before_join"]])
    t = table(
        f"e2e in Mininet (userspace OVS, kernel IGMPv2 hosts), topology tree-src (3 switches, sender + 6 hosts): "
        f"phase A {n_a} packets at {rate:.0f}/s to the 3 hosts of s2 (a host of s3 watches); phase B "
        f"staggered join, then leave, of all 6 hosts during a stream ({rounds} round(s))",
        ["contender", "exact members", "dups", "missing", "to non-member", "link stress", "max copies/link",
         "join p50 ms", "join p95 ms", "leave p50 ms", "leave p95 ms", "leave never stopped", "pkts before join"],
        rows,
        note="link stress = copies of the stream on inter-switch links / (packets x links of the minimal tree); "
             "leave latency = last packet on the member's wire after its leave call; 'never stopped' = the "
             "stream kept reaching the port until its end")
    bars = []
    ours = res.get("mcast-sdn", {})
    if "error" not in ours and ours:
        bars.append(bar("e2e: delivery exact (every member every packet once, non-member none)",
                        ours["exact_members"] == ours["members"] and ours["nonmember_packets"] == 0, True, "",
                        higher_is_better=True, note=f"{ours['exact_members']}/{ours['members']} members exact"))
        bars.append(bar("e2e: link stress (copies / minimal tree)", ours["link_stress"], 1.0, "x"))
    return {"tables": [t], "bars": bars, "figures": res, "seconds": time.perf_counter() - t_start}
