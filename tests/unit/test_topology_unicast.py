"""Unit tests of the pure foundation: topology state, spanning tree, paths, host learning,
the unicast entries and the core's diffing. No Ryu, no switches."""
from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from mcast_sdn import ofmodel, topofile, unicast
from mcast_sdn.fakedp import FakeNetwork, connect, spec_ports
from mcast_sdn.core import COOKIE_MISS, COOKIE_PUNT, Core, CoreConfig, parse_eth, punt_flows
from mcast_sdn.ofmodel import FlowAdd, Output, PacketOut, SwitchState, diff
from mcast_sdn.topology import Topology, shortest_paths


def build_topology(spec: topofile.TopologySpec, now: float = 0.0, settle: float = 3.0) -> Topology:
    t = Topology(settle=settle)
    for d, ps in spec_ports(spec).items():
        t.add_switch(now, d, [(p, True, "") for p in ps])
    for l in spec.links:
        t.link_add((spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port))
        t.link_add((spec.dpid(l.b), l.b_port), (spec.dpid(l.a), l.a_port))
    return t


def tree_edges(t: Topology) -> set[frozenset]:
    g = t.graph()
    tp = t.tree_ports()
    edges = set()
    for u, v, data in g.edges(data=True):
        if data["ports"][u] in tp[u] and data["ports"][v] in tp[v]:
            edges.add(frozenset((u, v)))
    return edges


SPECS = {
    "linear3": lambda: topofile.linear(3),
    "ring4": lambda: topofile.ring(4),
    "tree2x2": lambda: topofile.tree(2, 2),
    "fattree4": lambda: topofile.fat_tree(4),
    "mesh5": lambda: topofile.mesh(5),
    "leafspine": lambda: topofile.leaf_spine(2, 4, 2),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_spanning_tree_is_a_spanning_tree(name):
    spec = SPECS[name]()
    t = build_topology(spec)
    edges = tree_edges(t)
    g = nx.Graph(list(tuple(e) for e in edges))
    g.add_nodes_from(s.dpid for s in spec.switches)
    assert nx.is_tree(g), "flooding tree must connect every switch without a cycle"
    # tree ports are exactly the ends of tree edges (nothing extra floods)
    n_ports = sum(len(p) for p in t.tree_ports().values())
    assert n_ports == 2 * len(edges)


def test_spanning_tree_deterministic_under_insertion_order():
    spec = topofile.fat_tree(4)
    ref = tree_edges(build_topology(spec))
    for seed in range(5):
        rnd = random.Random(seed)
        links = list(spec.links)
        rnd.shuffle(links)
        shuffled = topofile.TopologySpec(spec.name, spec.description, tuple(reversed(spec.switches)), tuple(links), spec.hosts)
        assert tree_edges(build_topology(shuffled)) == ref


@pytest.mark.parametrize("name", list(SPECS))
def test_next_hops_follow_shortest_paths_and_never_loop(name):
    spec = SPECS[name]()
    t = build_topology(spec)
    g = t.graph()
    lengths = dict(nx.all_pairs_shortest_path_length(g))
    for dst in g.nodes:
        toward = t.toward(dst)
        for src in g.nodes:
            if src == dst:
                continue
            # walk the next hops: must reach dst in exactly the shortest-path length
            node, hops, seen = src, 0, set()
            while node != dst:
                assert node not in seen, "forwarding loop"
                seen.add(node)
                port = toward[node]
                node = next(v for v in g[node] if g.edges[node, v]["ports"][node] == port)
                hops += 1
            assert hops == lengths[src][dst]


def test_shortest_paths_tie_break_prefers_smallest_predecessor():
    g = nx.Graph()
    # 1 -> {2,3} -> 4 both cost 2: pred of 4 must be 2 regardless of insertion order
    g.add_edge(1, 3, weight=1)
    g.add_edge(3, 4, weight=1)
    g.add_edge(1, 2, weight=1)
    g.add_edge(2, 4, weight=1)
    _, pred = shortest_paths(g, 1)
    assert pred[4] == 2


def test_port_kinds_settle_and_switch_facing():
    t = Topology(settle=3.0)
    t.add_switch(10.0, 1, [(1, True, ""), (2, True, "")])
    t.add_switch(10.0, 2, [(1, True, "")])
    assert t.port_kind(11.0, 1, 2) == "pending"
    assert t.port_kind(13.0, 1, 2) == "edge"
    t.link_add((1, 1), (2, 1))
    assert t.port_kind(13.0, 1, 1) == "link"
    # LLDP times out but the port stays up: it must not become a flooding edge port
    t.link_delete((1, 1), (2, 1))
    assert t.port_kind(20.0, 1, 1) == "dead"
    assert 1 not in t.edge_ports(20.0, 1)
    # port goes down and up: a new life, settle again
    t.port_update(21.0, 1, 1, False)
    assert t.port_kind(21.5, 1, 1) == "down"
    t.port_update(22.0, 1, 1, True)
    assert t.port_kind(23.0, 1, 1) == "pending"
    assert t.port_kind(25.0, 1, 1) == "edge"
    assert t.next_settle_deadline(22.5) == 25.0


def test_unknown_port_or_switch_links_ignored():
    t = Topology()
    t.add_switch(0, 1, [(1, True, "")])
    assert not t.link_add((1, 1), (9, 1))
    assert not t.link_add((1, 7), (1, 1))
    assert t.links() == []


def test_host_table_learn_move_limit():
    ht = unicast.HostTable(max_per_port=2)
    assert ht.learn(0, "00:00:00:00:00:01", 1, 1)[2] == "learned"
    assert ht.learn(1, "00:00:00:00:00:01", 1, 1) == (False, None, "known")
    changed, old, status = ht.learn(2, "00:00:00:00:00:01", 2, 5)
    assert changed and status == "moved" and (old.dpid, old.port) == (1, 1)
    assert ht.hosts["00:00:00:00:00:01"].dpid == 2
    ht.learn(3, "00:00:00:00:00:02", 3, 1)
    ht.learn(3, "00:00:00:00:00:03", 3, 1)
    assert ht.learn(3, "00:00:00:00:00:04", 3, 1)[2] == "limit"
    assert "00:00:00:00:00:04" not in ht.hosts
    assert ht.forget_port(3, 1) == ["00:00:00:00:00:02", "00:00:00:00:00:03"]


def _learn_all(core: Core, spec, now: float):
    for h in spec.hosts:
        frame = bytes.fromhex(h.mac.replace(":", "")) * 0 + b"\xff" * 6 + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28
        core.packet_in(now, spec.dpid(h.switch), h.port, COOKIE_MISS, frame)


def _core_for(spec, now=0.0) -> Core:
    core = Core(CoreConfig(settle=3.0))
    connect(core, spec, now)
    return core


class FakeL2:
    """Drive the fake data plane over the core's installed tables for L2 frames."""

    def __init__(self, core: Core, spec):
        self.spec = spec
        self.net = FakeNetwork(core.installed, core.topo.link_ports())
        self.host_at = {(spec.dpid(h.switch), h.port): h.name for h in spec.hosts}

    def send(self, src_host, eth_dst, eth_type=0x0806, **fields):
        h = self.spec.host(src_host)
        res = self.net.inject(self.spec.dpid(h.switch), h.port, dict(eth_src=h.mac, eth_dst=eth_dst, eth_type=eth_type, **fields))
        delivered = {self.host_at[k]: n for k, n in res.delivered.items() if k in self.host_at}
        assert set(res.delivered) <= set(self.host_at), "output to a port that is neither host nor link"
        return delivered, dict(res.link_copies)


@pytest.mark.parametrize("name", list(SPECS))
def test_broadcast_reaches_every_host_once_and_unicast_follows_one_path(name):
    spec = SPECS[name]()
    core = _core_for(spec)
    now = 5.0
    core.tick(now)  # ports settle: edge ports flood
    _learn_all(core, spec, now)
    dp = FakeL2(core, spec)
    for h in spec.hosts:
        delivered, use = dp.send(h.name, "ff:ff:ff:ff:ff:ff")
        assert delivered == {o.name: 1 for o in spec.hosts if o.name != h.name}
        assert all(n == 1 for n in use.values()), "a link carried a broadcast twice"
    g = core.topo.graph()
    for a, b in itertools.permutations(spec.hosts[:6], 2):
        delivered, use = dp.send(a.name, b.mac)
        assert delivered == {b.name: 1}
        hops = nx.shortest_path_length(g, spec.dpid(a.switch), spec.dpid(b.switch))
        assert len(use) == hops


def test_learning_only_on_settled_edge_ports_and_reinject():
    spec = topofile.linear(2)
    core = _core_for(spec)
    h1 = spec.hosts[0]
    frame = b"\xff" * 6 + bytes.fromhex(h1.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28
    out = core.packet_in(1.0, spec.dpid(h1.switch), h1.port, COOKIE_MISS, frame)
    assert not out and core.counters["drop_miss_pending_port"] == 1 and not core.hosts.hosts
    core.tick(4.0)
    out = core.packet_in(4.0, spec.dpid(h1.switch), h1.port, COOKIE_MISS, frame)
    changes = out.by_dpid[spec.dpid(h1.switch)]
    # the admission entry is sent before the packet is re-injected into the pipeline
    kinds = [type(c).__name__ for c in changes]
    assert kinds.index("PacketOut") > kinds.index("FlowAdd")
    po = [c for c in changes if isinstance(c, PacketOut)][0]
    assert po.actions == (Output(ofmodel.OFPP_TABLE),) and po.data == frame
    # a frame arriving on an inter-switch port never teaches a host
    link_port = spec.links[0].a_port
    core.packet_in(4.0, spec.dpid(spec.links[0].a), link_port, COOKIE_MISS, b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28)
    assert "02:02:02:02:02:02" not in core.hosts.hosts


def test_punt_rules_cover_igmp_and_mld_types():
    keys = {tuple(sorted(dict(f.match).items())) for f in punt_flows() if f.cookie == COOKIE_PUNT}
    assert (("eth_type", 0x0800), ("ip_proto", 2)) in keys
    for t in (130, 131, 132, 143):
        assert (("eth_type", 0x86DD), ("icmpv6_type", t), ("ip_proto", 58)) in keys


def test_punted_packets_counted_by_kind():
    spec = topofile.linear(1)
    core = _core_for(spec)
    core.tick(5.0)
    igmp = b"\x01\x00\x5e\x00\x00\x16" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00" + bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 1, 2]) + b"\x00" * 30
    core.packet_in(5.0, 1, spec.hosts[0].port, COOKIE_PUNT, igmp)
    assert core.counters["punt_igmp"] == 1
    assert "00:00:00:00:00:01" in core.hosts.hosts


def test_core_is_idempotent_and_converges():
    spec = topofile.ring(4)
    core = _core_for(spec)
    core.tick(5.0)
    _learn_all(core, spec, 5.0)
    for d in core.installed:
        assert diff(core.desired(5.0, d), core.installed[d]) == []
    # repeated events change nothing
    l = spec.links[0]
    assert not core.link_add(6.0, (spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port))
    _learn_all(core, spec, 6.0)
    assert all(not isinstance(c, FlowAdd) for ch in core.tick(6.0).by_dpid.values() for c in ch)


def test_link_failure_reroutes_unicast():
    spec = topofile.ring(4)
    core = _core_for(spec)
    core.tick(5.0)
    _learn_all(core, spec, 5.0)
    l = spec.links[0]
    core.link_delete(6.0, (spec.dpid(l.a), l.a_port), (spec.dpid(l.b), l.b_port))
    core.port_update(6.0, spec.dpid(l.a), l.a_port, False)
    dp = FakeL2(core, spec)
    for a, b in itertools.permutations(spec.hosts, 2):
        delivered, _ = dp.send(a.name, b.mac)
        assert delivered == {b.name: 1}
        delivered, _ = dp.send(a.name, "ff:ff:ff:ff:ff:ff")
        assert set(delivered) == {o.name for o in spec.hosts if o != a}


def test_diff_orders_make_before_break_and_is_minimal():
    g1 = ofmodel.GroupEntry(1, ((Output(1),), (Output(2),)))
    g1b = ofmodel.GroupEntry(1, ((Output(1),),))
    f1 = ofmodel.FlowEntry(2, 10, ofmodel.match(in_port=1), (ofmodel.ToGroup(1),))
    f2 = ofmodel.FlowEntry(2, 10, ofmodel.match(in_port=2), (Output(3),))
    installed = SwitchState({f2.key: f2}, {1: g1, 7: ofmodel.GroupEntry(7, ())})
    desired = SwitchState({f1.key: f1}, {1: g1b})
    ch = diff(desired, installed)
    names = [type(c).__name__ for c in ch]
    assert names == ["GroupModify", "FlowAdd", "Barrier", "FlowDelete", "GroupDelete"]
    ofmodel.apply(installed, ch)
    assert installed.flows == desired.flows and installed.groups == desired.groups
    assert diff(desired, installed) == []


def test_parse_eth_never_raises_on_junk():
    rnd = random.Random(7)
    for n in range(3000):
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 80)))
        parse_eth(data)  # must not raise
    assert parse_eth(b"\x00" * 5) is None


def test_link_local_multicast_floods_and_routable_multicast_goes_to_tree_table():
    spec = topofile.ring(4)
    core = _core_for(spec)
    core.tick(5.0)
    _learn_all(core, spec, 5.0)
    dp = FakeL2(core, spec)
    everyone_else = {o.name: 1 for o in spec.hosts[1:]}
    delivered, use = dp.send("h1", "01:00:5e:00:00:fb", eth_type=0x0800, ipv4_src="10.0.0.1", ipv4_dst="224.0.0.251")
    assert delivered == everyone_else
    delivered, _ = dp.send("h1", "33:33:00:00:00:01", eth_type=0x86DD, ipv6_src="fe80::1", ipv6_dst="ff02::1")
    assert delivered == everyone_else
    st = core.installed[spec.dpid("s1")]
    from mcast_sdn.fakedp import lookup
    f = lookup(st, ofmodel.TABLE_CLASSIFY, {"eth_type": 0x0800, "ipv4_dst": "239.1.2.3"})
    assert f.goto == ofmodel.TABLE_MCAST
    f = lookup(st, ofmodel.TABLE_CLASSIFY, {"eth_type": 0x86DD, "ipv6_dst": "ff0e::1"})
    assert f.goto == ofmodel.TABLE_MCAST


def test_meters_rate_limit_punts_per_host_port_when_supported():
    from mcast_sdn.ofmodel import MeterAdd
    from mcast_sdn import ofmsgs

    spec = topofile.linear(2)
    core = _core_for(spec)
    core.tick(5.0)
    d = spec.dpid("s1")
    host_port = spec.hosts[0].port
    assert not core.installed[d].meters
    out = core.set_meter_support(5.0, d, True)
    ch = out.by_dpid[d]
    meters = [c for c in ch if isinstance(c, MeterAdd)]
    assert [m.entry.meter_id for m in meters] == [host_port], "one meter per host port, none on links"
    first_flow = next(i for i, c in enumerate(ch) if isinstance(c, FlowAdd))
    assert ch.index(meters[0]) < first_flow, "meters must exist before flows use them"
    metered = [f for f in core.installed[d].flows.values() if f.meter is not None]
    assert metered and all(dict(f.match)["in_port"] == host_port and f.meter == host_port for f in metered)
    # every change compiles to a Ryu message that serialises
    from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    class DP:
        ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

        def set_xid(self, msg):
            msg.set_xid(1)

    for c in ch:
        for m in ofmsgs.compile_change(DP(), c):
            m.serialize()
    assert core.set_meter_support(6.0, d, True).count() == 0


def test_settled_ports_start_flooding_even_if_another_sync_happened_first():
    """Regression: a sync triggered by some other event after a port's settle deadline (but
    before the tick) must not make the core forget to turn that port into a flooding port."""
    spec = topofile.linear(2)
    core = _core_for(spec, now=0.0)  # host ports settle at 3.0
    h2 = spec.hosts[1]
    # at 3.5 an unrelated event syncs one switch before any tick ran
    core.link_add(3.5, (1, 99), (2, 99))  # unknown ports: ignored, no change
    core._sync(3.5, {spec.dpid(h2.switch)})
    core.tick(3.6)
    dp = FakeL2(core, spec)
    _learn_all(core, spec, 3.7)
    delivered, _ = dp.send(spec.hosts[0].name, "ff:ff:ff:ff:ff:ff")
    assert delivered == {h2.name: 1}
