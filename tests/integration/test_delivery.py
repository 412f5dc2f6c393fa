"""Distribution trees end to end: real OVS group tables, kernel receivers, a streaming sender.

Every member gets every packet exactly once, non-members get none (their interface
is watched with a packet socket), (S,G) filters of IGMPv3/MLDv2 hold, OVS port
counters show each link carried the stream at most once (tree links exactly once,
others not at all), and joins/leaves mid-stream do not disturb the other members.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from mcast_sdn import topofile, traffic
from mcast_sdn.mnet import wait_until

from .itutil import wait_topology

TOPOS = {
    "linear3": lambda: topofile.linear(3),
    "tree2x2": lambda: topofile.tree(2, 2),
    "ring4": lambda: topofile.ring(4),
    "fattree4": lambda: topofile.fat_tree(4),
}


class Stream:
    """Receivers and senders of one test, with their record files; all stopped at the end."""

    def __init__(self, net, tmp: Path):
        self.net, self.tmp = net, tmp
        self.recv: dict[str, tuple] = {}
        self.send: dict[str, tuple] = {}

    def receiver(self, host: str, groups, watch_only: bool = False, **kw):
        """watch_only: a non-member that only records what reaches its interface."""
        out = self.tmp / f"recv-{host}.jsonl"
        ready = None if watch_only else Path(f"{out}.ready")
        p = traffic.start_receiver(self.net.host(host), groups, out_path=out, ready_file=ready, **kw)
        self.recv[host] = (p, out, ready)
        return p

    def wait_ready(self):
        for host, (p, out, ready) in self.recv.items():
            if ready is not None:
                traffic.wait_ready(ready, timeout=10, proc=p)
            else:  # watching: its start record says whether the packet socket is open
                start = wait_until(lambda: [r for r in traffic.collect(out) if r["event"] == "start"], 10, what=f"{host} started")
                assert start[0].get("wire"), f"{host}: no wire capture: {start}"

    def sender(self, host: str, group: str, **kw):
        out = self.tmp / f"send-{host}-{group.replace(':', '_')}.jsonl"
        p = traffic.start_sender(self.net.host(host), group, out_path=out, **kw)
        self.send[f"{host}/{group}"] = (p, out)
        return p

    def wait_senders(self, timeout: float):
        deadline = time.monotonic() + timeout
        for p, _ in self.send.values():
            p.wait(timeout=max(0.1, deadline - time.monotonic()))

    def stop(self):
        for p, *_ in list(self.recv.values()) + list(self.send.values()):
            traffic.stop(p)

    def results(self) -> dict[str, dict]:
        """Per receiving host: summarize() keyed by (group, src), against what was sent."""
        sent = []
        for _, out in self.send.values():
            sent += traffic.collect(out)
        expected = traffic.expected_from_sent(sent)
        return {h: traffic.summarize(traffic.collect(out), expected) for h, (_, out, _) in self.recv.items()}


@pytest.fixture
def stream(tmp_path):
    holder = []

    def make(net):
        s = Stream(net, tmp_path)
        holder.append(s)
        return s

    yield make
    for s in holder:
        s.stop()


def wait_members(ctl, group: str, ports: set[tuple[int, int]], timeout=5.0):
    def ok():
        for g in ctl.get("/mcast/v1/groups")["groups"]:
            if g["group"] == group:
                return {(m["dpid"], m["port"]) for m in g["members"]} >= ports and g
        return False

    return wait_until(ok, timeout, interval=0.05, what=f"members of {group}")


def link_tx(net, spec) -> dict[tuple[int, int], int]:
    """tx packet counters of every inter-switch port."""
    res = {}
    link_ports = {(spec.dpid(l.a), l.a_port) for l in spec.links} | {(spec.dpid(l.b), l.b_port) for l in spec.links}
    for s in spec.switches:
        for p, st in net.port_stats(s.name).items():
            if (s.dpid, p) in link_ports:
                res[(s.dpid, p)] = st.get("tx_pkts", 0)
    return res


@pytest.mark.parametrize("name", list(TOPOS))
def test_every_member_gets_every_packet_once(name, controller, network, stream):
    spec = TOPOS[name]()
    ctl = controller()
    net = network(spec, ctl)
    wait_topology(ctl, spec, timeout=40)
    hosts = list(spec.hosts)
    sender, nonmember, members = hosts[0], hosts[-1], hosts[1:-1]
    if name == "fattree4":
        members = hosts[1:12]
    group, N = "239.20.0.1", 300
    st = stream(net)
    for h in members:
        st.receiver(h.name, [group], duration=25)
    # the non-member watches its wire and never joins
    st.receiver(nonmember.name, [group], watch_only=True, duration=60, join_after=59, wire="on")
    st.wait_ready()
    snap = wait_members(ctl, group, {(spec.dpid(h.switch), h.port) for h in members})
    before = link_tx(net, spec)
    st.sender(sender.name, group, count=N, rate=150)
    st.wait_senders(15)
    res = {}

    def all_in():
        nonlocal res
        res = st.results()
        return all(res[h.name].get((group, sender.ip.split("/")[0]), {}).get("unique", 0) >= N for h in members)

    try:
        wait_until(all_in, 10, interval=0.3, what="every member to receive the whole stream")
    except TimeoutError:
        raise AssertionError(f"incomplete delivery: {res}")
    after = link_tx(net, spec)
    src = sender.ip.split("/")[0]
    for h in members:
        s = res[h.name][(group, src)]
        assert (s["unique"], s["duplicates"], s["missing"]) == (N, 0, 0), f"{h.name}: {s}"
    leaks = traffic.summarize(traffic.collect(st.recv[nonmember.name][1]))
    assert all(v.get("received", 0) == 0 and v.get("wire_before_join", 0) == 0 for v in leaks.values()), leaks
    # link stress from OVS counters: tree links carried it once, others not at all
    view = next(g for g in ctl.get("/mcast/v1/groups")["groups"] if g["group"] == group)
    tree_out = {tuple(e["from"]) for e in view["trees"][src]}
    slack = 25  # LLDP (about one per port per second) and ND/IGMP chatter
    for port, tx in after.items():
        d = tx - before.get(port, 0)
        if port in tree_out:
            assert N <= d <= N + slack, f"tree link out of {port} carried {d} for {N}"
        else:
            assert d < slack, f"link out of {port} is not on the tree but carried {d}"
    assert len(tree_out) >= 1
    # The fake data plane, run on the tables OVS really holds (dump-flows/dump-groups),
    # predicts exactly what the real switches did: the same hosts, the same links.
    from mcast_sdn.fakedp import FakeNetwork
    from mcast_sdn.ovsdump import dump_switch

    tables = {s.dpid: dump_switch(s.name) for s in spec.switches}
    link_map = {}
    for l in spec.links:
        a, b = (spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port)
        link_map[a], link_map[b] = b, a
    fake = FakeNetwork(tables, link_map).inject(
        spec.dpid(sender.switch), sender.port,
        {"eth_src": sender.mac, "eth_dst": "01:00:5e:14:00:01", "eth_type": 0x0800, "ip_proto": 17, "ipv4_src": src, "ipv4_dst": group})
    assert dict(fake.delivered) == {(spec.dpid(h.switch), h.port): 1 for h in members}, fake.delivered
    assert set(fake.link_copies) == tree_out and fake.max_link_stress() == 1


@pytest.mark.parametrize("family", [4, 6])
def test_source_filtering_include_and_exclude(family, controller, network, stream):
    """IGMPv3 / MLDv2: INCLUDE{S1} gets only S1, EXCLUDE{S1} (block) gets only S2, ASM gets both."""
    spec = topofile.ring(4)
    ctl = controller()
    net = network(spec, ctl)
    wait_topology(ctl, spec, timeout=40)
    h1, h2, h3, h4 = spec.hosts
    addr = (lambda h: h.ip.split("/")[0]) if family == 4 else (lambda h: h.ipv6.split("/")[0])
    group = "239.21.0.1" if family == 4 else "ff15::21:1"
    N = 200
    st = stream(net)
    st.receiver("h3", [group], sources=[addr(h1)], duration=20)  # INCLUDE{h1}
    st.receiver("h4", [group], blocks=[addr(h1)], duration=20)  # EXCLUDE{h1}
    st.wait_ready()
    wait_members(ctl, group, {(spec.dpid(h.switch), h.port) for h in (h3, h4)})
    st.sender("h1", group, count=N, rate=150)
    st.sender("h2", group, count=N, rate=150)
    st.wait_senders(15)
    res = {}

    def done():
        nonlocal res
        res = st.results()
        return res["h3"].get((group, addr(h1)), {}).get("unique", 0) >= N and res["h4"].get((group, addr(h2)), {}).get("unique", 0) >= N

    try:
        wait_until(done, 10, interval=0.3, what="filtered streams")
    except TimeoutError:
        raise AssertionError(f"incomplete filtered streams: h3 {res.get('h3')}, h4 {res.get('h4')}")
    # give stray copies a moment to show up: wait for the receivers' end, bounded
    r3 = res["h3"]
    r4 = res["h4"]
    assert r3[(group, addr(h1))]["duplicates"] == 0 and r3.get((group, addr(h2)), {}).get("received", 0) == 0, r3
    assert r4[(group, addr(h2))]["duplicates"] == 0 and r4.get((group, addr(h1)), {}).get("received", 0) == 0, r4


def test_join_and_leave_mid_stream_do_not_disturb_others(controller, network, stream):
    spec = topofile.fat_tree(4)
    ctl = controller()
    net = network(spec, ctl)
    wait_topology(ctl, spec, timeout=40)
    hosts = list(spec.hosts)
    sender = hosts[0]
    stable = [hosts[5], hosts[10], hosts[15]]
    joiner, leaver = hosts[6], hosts[12]
    group, N, rate = "239.22.0.1", 600, 100
    st = stream(net)
    for h in stable:
        st.receiver(h.name, [group], duration=30)
    st.receiver(leaver.name, [group], duration=30, leave_after=4.0)
    st.receiver(joiner.name, [group], watch_only=True, duration=30, join_after=4.0)
    st.wait_ready()
    wait_members(ctl, group, {(spec.dpid(h.switch), h.port) for h in stable + [leaver]})
    st.sender(sender.name, group, count=N, rate=rate)  # ~6 s: the join and the leave happen mid-stream
    st.wait_senders(20)
    src = sender.ip.split("/")[0]
    res = {}

    def done():
        nonlocal res
        res = st.results()
        return all(res[h.name].get((group, src), {}).get("unique", 0) >= N for h in stable)

    wait_until(done, 10, interval=0.3, what="stable members to get the whole stream")
    for h in stable:
        s = res[h.name][(group, src)]
        assert (s["unique"], s["duplicates"], s["missing"]) == (N, 0, 0), f"{h.name}: {s}"
    j = res[joiner.name][(group, src)]
    # the joiner gets a contiguous tail of the stream, the leaver a contiguous head
    assert j["duplicates"] == 0 and 0 < j["unique"] < N and j["missing_seqs"] == list(range(N - j["unique"])), f"joiner: {j}"
    assert j["wire_before_join"] == 0, f"joiner got traffic before it joined: {j}"
    l = res[leaver.name][(group, src)]
    assert l["duplicates"] == 0 and 0 < l["unique"] < N and l["missing_seqs"] == list(range(l["unique"], N)), f"leaver: {l}"
    print(f"join latency {j.get('join_latency')}, leave latency {l.get('leave_latency')}")


def _ofctl(*args) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True, check=True).stdout
