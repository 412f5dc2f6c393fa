"""The REST API against a real network: stock ryu-manager, OVS (userspace) + Mininet, kernel IGMP.

On a ring of four switches (loops: the tree is a real subset of the links), two hosts
join a group with their kernel's IGMP and a third, which never speaks IGMP, is joined by
a static REST join (by a configured host name). The API must show that membership, a
tree whose edges are exactly the links whose OVS counters carried the stream, switches
that agree with what the controller installed (read back), and after DELETE of the
static join that host must stop receiving while the IGMP members go on.

Waits are conditions with deadlines; receivers, senders and the network are stopped by
the fixtures (processes by PID).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mcast_sdn import topofile, traffic
from mcast_sdn.mnet import wait_until

from .itutil import wait_topology

TOKEN = "integration-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
GROUP = "239.30.0.1"
N = 250  # datagrams per stream
RATE = 125.0
SLACK = 25  # LLDP (about one per port per second) and ND/IGMP chatter on a link during a stream


def addr(h) -> str:
    return h.ip.split("/")[0]


class Procs:
    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            traffic.stop(p)


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.stop()


def link_ports(spec) -> set[tuple[int, int]]:
    return {(spec.dpid(l.a), l.a_port) for l in spec.links} | {(spec.dpid(l.b), l.b_port) for l in spec.links}


def tx(net, spec, ports) -> dict[tuple[int, int], int]:
    out = {}
    for s in spec.switches:
        for p, st in net.port_stats(s.name).items():
            if (s.dpid, p) in ports:
                out[(s.dpid, p)] = st.get("tx_pkts", 0)
    return out


def group_view(ctl):
    status, body = ctl.request("GET", f"/mcast/v1/groups/{GROUP}")
    return body if status == 200 else None


def wire_seqs(out: Path, stream: int) -> list[int]:
    return [r["seq"] for r in traffic.collect(out) if r.get("event") == "wire" and r.get("stream") == stream]


def rx_seqs(out: Path, stream: int) -> list[int]:
    return [r["seq"] for r in traffic.collect(out) if r.get("event") == "rx" and r.get("stream") == stream]


def run_stream(net, spec, sender, stream_id: int, tmp: Path, procs, receivers: dict[str, Path]):
    """Send N datagrams of `stream_id`; wait until the IGMP members have them all; return link tx deltas."""
    lp = link_ports(spec)
    before = tx(net, spec, lp)
    out = tmp / f"send-{stream_id}.jsonl"
    p = procs.add(traffic.start_sender(net.host(sender.name), GROUP, out_path=out, count=N, rate=RATE, stream=stream_id))
    p.wait(timeout=N / RATE + 15)
    sent = [r for r in traffic.collect(out) if r.get("event") == "sent"]
    assert sent and sent[0]["count"] == N, traffic.collect(out)
    wait_until(lambda: all(len(set(rx_seqs(o, stream_id))) >= N for o in receivers.values()), 15, interval=0.3,
               what=f"the IGMP members to receive stream {stream_id}")
    after = tx(net, spec, lp)
    return {k: after[k] - before.get(k, 0) for k in after}


def check_tree_matches_counters(view, src: str, deltas: dict) -> set:
    """Links on the tree carried the stream once; the others did not carry it."""
    edges = view["trees"][src]
    tree_out = {tuple(e["from"]) for e in edges}
    carried = {k for k, d in deltas.items() if d >= N}
    print(f"tree out-ports {sorted(tree_out)}; link tx deltas {sorted(deltas.items())}")
    assert carried == tree_out, f"tree {sorted(tree_out)} but stream carried on {sorted(carried)}: {deltas}"
    for port, d in deltas.items():
        if port in tree_out:
            assert N <= d <= N + SLACK, f"tree link out of {port} carried {d} for {N}"
        else:
            assert d < SLACK, f"link out of {port} is not on the tree but carried {d}"
    return tree_out


def wait_switches_agree(ctl, spec):
    """Every switch holds what the controller believes it installed (read back with ?verify=1)."""
    def agree():
        bad = {}
        for s in spec.switches:
            status, body = ctl.request("GET", f"/mcast/v1/switches/{s.dpid}?verify=1", timeout=10)
            assert status == 200, body
            if not body["verify"]["ok"]:
                bad[s.dpid] = body["verify"]
        return not bad or None

    wait_until(agree, 10, interval=0.3, what="switches to agree with the controller")


def test_static_rest_join_alongside_igmp_members(controller, network, procs, tmp_path):
    spec = topofile.ring(4)
    h1, h2, h3, h4 = spec.hosts  # h1 sends; h2, h3 join with IGMP; h4 is joined statically
    ctl = controller(config={"rest": {"token": TOKEN, "host_names": {"camera": h4.mac}}})
    net = network(spec, ctl)
    wait_topology(ctl, spec, timeout=40)

    # writes need the token
    status, body = ctl.request("POST", "/mcast/v1/static", {"host": "camera", "group": GROUP},
                               {"Content-Type": "application/json"})
    assert status == 401 and body["status"] == 401

    # IGMP members (kernel sockets) and the static host's wire watcher (never joins)
    receivers = {}
    for h in (h2, h3):
        out = tmp_path / f"recv-{h.name}.jsonl"
        ready = Path(f"{out}.ready")
        p = procs.add(traffic.start_receiver(net.host(h.name), [GROUP], out_path=out, ready_file=ready, duration=120))
        traffic.wait_ready(ready, timeout=10, proc=p)
        receivers[h.name] = out
    watch = tmp_path / "watch-h4.jsonl"
    procs.add(traffic.start_receiver(net.host(h4.name), [GROUP], out_path=watch, duration=120, join_after=119, wire="on"))
    wait_until(lambda: [r for r in traffic.collect(watch) if r.get("event") == "start" and r.get("wire")], 10,
               what="h4's wire capture")

    # h4 must be a learned host for a join by name: one ping makes it talk
    wait_until(lambda: net.net.ping([net.host(h4.name), net.host(h1.name)], timeout=1) == 0, 15, what="h4 reachable")
    wait_until(lambda: any(h["mac"] == h4.mac for h in ctl.get("/mcast/v1/topology")["hosts"]), 10, what="h4 learned")

    status, body = ctl.request("POST", "/mcast/v1/static", {"host": "camera", "group": GROUP}, AUTH)
    assert status == 201, body
    h4_port = (spec.dpid(h4.switch), h4.port)
    assert (body["joined"]["dpid"], body["joined"]["port"]) == h4_port
    status, again = ctl.request("POST", "/mcast/v1/static", {"host": "camera", "group": GROUP}, AUTH)
    assert status == 409, again

    # GET shows the same membership as IGMP + the static join
    igmp_ports = {(spec.dpid(h.switch), h.port) for h in (h2, h3)}

    def members():
        v = group_view(ctl)
        if v is None:
            return None
        got = {(m["dpid"], m["port"]): m for m in v["members"]}
        return v if set(got) == igmp_ports | {h4_port} else None

    view = wait_until(members, 15, interval=0.2, what="IGMP members and the static join in GET /groups")
    by_port = {(m["dpid"], m["port"]): m for m in view["members"]}
    assert by_port[h4_port]["static"] is True and by_port[h4_port]["hosts"] == [h4.mac]
    assert all(by_port[k]["static"] is False and by_port[k]["mode"] == "exclude" for k in igmp_ports)
    snap = ctl.get("/mcast/v1/membership")
    assert {(m["dpid"], m["port"]) for m in snap["groups"][GROUP]} == igmp_ports  # IGMP state proper
    assert ctl.get("/mcast/v1/static")["static"] == [{"dpid": h4_port[0], "port": h4_port[1], "group": GROUP, "source": None}]
    port_view = ctl.get(f"/mcast/v1/ports/{spec.dpid(h2.switch)}/{h2.port}")
    assert GROUP in port_view["membership"]["groups"] and port_view["membership"]["queriers"]["ipv4"]["querier"]

    # stream 1: everyone, including h4, gets it; the tree is what the counters show
    deltas = run_stream(net, spec, h1, 1, tmp_path, procs, receivers)
    wait_until(lambda: len(set(wire_seqs(watch, 1))) >= N, 10, interval=0.3, what="h4 to get stream 1 (static join)")
    for name, out in receivers.items():
        seqs = rx_seqs(out, 1)
        assert sorted(seqs) == list(range(N)), f"{name}: {len(seqs)} datagrams, {len(set(seqs))} distinct"
    assert sorted(wire_seqs(watch, 1)) == list(range(N))  # once each
    view = group_view(ctl)
    src = addr(h1)
    assert view["sources"] == [{"address": src, "dpid": spec.dpid(h1.switch), "port": h1.port}]
    tree1 = check_tree_matches_counters(view, src, deltas)
    reached = {tuple(e["to"])[0] for e in view["trees"][src]} | {spec.dpid(h1.switch)}
    assert {spec.dpid(h.switch) for h in (h2, h3, h4)} <= reached
    wait_switches_agree(ctl, spec)

    # DELETE of the static join: h4 stops receiving, the members go on
    status, body = ctl.request("DELETE", f"/mcast/v1/static/{h4_port[0]}/{h4_port[1]}/{GROUP}", headers=AUTH)
    assert status == 200, body
    assert {(m["dpid"], m["port"]) for m in body["group"]["members"]} == igmp_ports
    status, body = ctl.request("DELETE", f"/mcast/v1/static/{h4_port[0]}/{h4_port[1]}/{GROUP}", headers=AUTH)
    assert status == 409
    wait_switches_agree(ctl, spec)  # the switches hold the pruned tree before the next stream
    deltas = run_stream(net, spec, h1, 2, tmp_path, procs, receivers)
    for name, out in receivers.items():
        assert sorted(rx_seqs(out, 2)) == list(range(N)), name
    assert wire_seqs(watch, 2) == [], "h4 still receives after DELETE of its static join"
    view = group_view(ctl)
    tree2 = check_tree_matches_counters(view, src, deltas)
    assert tree2 < tree1 or spec.dpid(h4.switch) not in {tuple(e["to"])[0] for e in view["trees"][src]}
    assert ctl.alive()


def test_static_join_from_the_settings_file(controller, network, procs, tmp_path):
    """A static join in the settings file is applied at start-up and takes effect when its switch connects."""
    spec = topofile.linear(2)
    h1, h2 = spec.hosts
    ctl = controller(config={"static": [{"dpid": spec.dpid(h2.switch), "port": h2.port, "group": GROUP}]})
    assert ctl.get("/mcast/v1/static")["static"] == [
        {"dpid": spec.dpid(h2.switch), "port": h2.port, "group": GROUP, "source": None}]
    # no token configured: writes are refused with a hint
    status, body = ctl.request("DELETE", "/mcast/v1/static", {"dpid": 2, "port": h2.port, "group": GROUP},
                               {"Authorization": "Bearer whatever-whatever", "Content-Type": "application/json"})
    assert status == 403 and "MCAST_SDN_TOKEN" in body["error"]
    net = network(spec, ctl)
    wait_topology(ctl, spec, timeout=40)
    watch = tmp_path / "watch-h2.jsonl"
    procs.add(traffic.start_receiver(net.host(h2.name), [GROUP], out_path=watch, duration=60, join_after=59, wire="on"))
    wait_until(lambda: [r for r in traffic.collect(watch) if r.get("event") == "start" and r.get("wire")], 10,
               what="h2's wire capture")
    out = tmp_path / "send.jsonl"
    p = procs.add(traffic.start_sender(net.host(h1.name), GROUP, out_path=out, count=100, rate=100, stream=7))
    p.wait(timeout=20)
    wait_until(lambda: len(set(wire_seqs(watch, 7))) >= 100, 10, interval=0.3, what="h2 to receive via its static join")
    assert sorted(wire_seqs(watch, 7)) == list(range(100))
    v = group_view(ctl)
    assert [(m["dpid"], m["port"], m["static"]) for m in v["members"]] == [(spec.dpid(h2.switch), h2.port, True)]
