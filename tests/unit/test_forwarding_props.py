"""Property tests of multicast forwarding: the whole core (membership -> trees -> compiled
flows and ALL groups -> diff) executed on the multi-switch fake data plane.

After every step, for every active source S of every group G, a packet from S must reach
each port whose membership interest admits S exactly once, reach no other port, and cross
each link at most once; and diff(desired, installed) must be empty on every switch.
"""
from __future__ import annotations

import ipaddress
import random

import networkx as nx
import pytest

from mcast_sdn import topofile
from mcast_sdn.core import Core, CoreConfig
from mcast_sdn.fakedp import FakeNetwork, connect
from mcast_sdn.forwarding import RangePolicy, TreeConfig
from mcast_sdn.messages import GroupRecord, RecordType, Report
from mcast_sdn.ofmodel import COOKIE_MISS, COOKIE_SRCDISC, diff
from mcast_sdn.packets import multicast_mac

MODES = ["spt", "shared", "steiner"]


def make_core(spec: topofile.TopologySpec, mode: str) -> Core:
    tc = TreeConfig(policies=(RangePolicy(ipaddress.ip_network("224.0.0.0/4"), mode),
                              RangePolicy(ipaddress.ip_network("ff00::/8"), mode)), default_mode=mode)
    core = Core(CoreConfig(settle=0.0), tree_config=tc)
    connect(core, spec)
    core.tick(0.1)
    for h in spec.hosts:  # learn every host (admission entries)
        frame = b"\xff" * 6 + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28
        core.packet_in(0.1, spec.dpid(h.switch), h.port, COOKIE_MISS, frame)
    return core


def udp_frame(h, group: str) -> bytes:
    src = ipaddress.ip_address(h.ip.split("/")[0])
    g = ipaddress.ip_address(group)
    mac = bytes.fromhex(multicast_mac(g).replace(":", ""))
    hdr = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 8, 17, 0, 0]) + src.packed + g.packed
    return mac + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x00" + hdr + b"\x00" * 8


class Scenario:
    def __init__(self, spec, mode, seed):
        self.spec = spec
        self.core = make_core(spec, mode)
        self.rnd = random.Random(seed)
        self.now = 1.0
        self.sources: dict[str, set[str]] = {}  # group -> host names sending

    def report(self, h, rtype, group, sources=()):
        rec = GroupRecord(rtype, ipaddress.ip_address(group), tuple(sorted(ipaddress.ip_address(s) for s in sources)))
        msg = Report(4, 3, ipaddress.ip_address(h.ip.split("/")[0]), (rec,))
        eff = self.core.members.handle(self.now, self.spec.dpid(h.switch), h.port, msg)
        out = self.core._finish(self.now, __import__("mcast_sdn.core", fromlist=["Out"]).Out(), set(), self.core._effects(self.now, eff, __import__("mcast_sdn.core", fromlist=["Out"]).Out()))
        return out

    def send_first_packet(self, h, group):
        self.core.packet_in(self.now, self.spec.dpid(h.switch), h.port, COOKIE_SRCDISC, udp_frame(h, group))
        self.sources.setdefault(group, set()).add(h.name)

    def advance(self, dt):
        self.now += dt
        self.core.tick(self.now)

    def check(self):
        core, spec = self.core, self.spec
        for d, inst in core.installed.items():
            assert diff(core.desired(self.now, d), inst) == [], f"switch {d} not converged"
        net = FakeNetwork(core.installed, core.topo.link_ports())
        members = core.members.groups()
        if core.static_joins:  # static joins are interest too
            members = core._with_static(members, set(members) | {k[2] for k in core.static_joins})
        host_ports = {(spec.dpid(h.switch), h.port) for h in spec.hosts}
        for group, senders in self.sources.items():
            g = ipaddress.ip_address(group)
            for name in sorted(senders):
                h = spec.host(name)
                src = ipaddress.ip_address(h.ip.split("/")[0])
                pkt = {"eth_src": h.mac, "eth_dst": multicast_mac(g), "eth_type": 0x0800,
                       "ipv4_src": str(src), "ipv4_dst": group, "ip_proto": 17}
                res = net.inject(spec.dpid(h.switch), h.port, pkt)
                want = {k for k, i in members.get(g, {}).items() if i.wants(src)} - {(spec.dpid(h.switch), h.port)}
                got = dict(res.delivered)
                assert set(got) <= host_ports
                assert got == {k: 1 for k in want}, f"{group} from {name}: delivered {got}, wanted {sorted(want)}"
                assert res.max_link_stress() <= 1, f"a link carried two copies: {res.link_copies}"


def run_scenario(spec, mode, seed, steps=6):
    sc = Scenario(spec, mode, seed)
    rnd = sc.rnd
    hosts = list(spec.hosts)
    groups = ["239.1.1.1", "239.2.2.2"]
    for step in range(steps):
        h = rnd.choice(hosts)
        g = rnd.choice(groups)
        action = rnd.random()
        others = [o for o in hosts if o is not h]
        if action < 0.35:
            sc.report(h, RecordType.CHANGE_TO_EXCLUDE, g)  # ASM join
        elif action < 0.5 and others:
            excl = [rnd.choice(others).ip.split("/")[0]]
            sc.report(h, RecordType.CHANGE_TO_EXCLUDE, g, excl)  # EXCLUDE{S}
        elif action < 0.65 and others:
            incl = [o.ip.split("/")[0] for o in rnd.sample(others, min(2, len(others)))]
            sc.report(h, RecordType.CHANGE_TO_INCLUDE, g, incl)  # INCLUDE{S..}
        elif action < 0.8:
            sc.report(h, RecordType.CHANGE_TO_INCLUDE, g)  # leave
        else:
            sc.send_first_packet(h, g)
        sc.advance(3.0)  # past the last-member query time: state settles
        sc.check()
    # every host sends at the end so each tree is exercised
    for g in groups:
        sc.send_first_packet(rnd.choice(hosts), g)
    sc.check()
    return sc


def atlas_graphs():
    out = []
    for g in nx.graph_atlas_g()[1:]:
        if 2 <= g.number_of_nodes() <= 7 and nx.is_connected(g):
            out.append(g)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_every_small_connected_graph(mode):
    graphs = atlas_graphs()
    assert len(graphs) > 800
    for i, g in enumerate(graphs):
        h = nx.relabel_nodes(g, {n: n + 1 for n in g.nodes})
        spec = topofile.from_graph(h, hosts=1, name=f"atlas{i}")
        run_scenario(spec, mode, seed=i, steps=3)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(4))
def test_random_graphs_up_to_50_switches(mode, seed):
    rnd = random.Random(seed)
    n = rnd.randint(8, 50)
    g = nx.connected_watts_strogatz_graph(n, 4, 0.3, seed=seed)
    g = nx.relabel_nodes(g, {x: x + 1 for x in g.nodes})
    spec = topofile.from_graph(g, hosts=1, name=f"ws{seed}")
    run_scenario(spec, mode, seed=seed, steps=25)


@pytest.mark.parametrize("mode", ["spt", "steiner"])
def test_fat_tree_trees_use_minimal_links(mode):
    """Unit-weight k=4 fat-tree: consistent tie-breaks give trees with the optimal link count."""
    from mcast_sdn.trees_exact import exact_steiner_cost

    spec = topofile.fat_tree(4)
    rnd = random.Random(5)
    for trial in range(6):
        sc = Scenario(spec, mode, trial)
        group = f"239.9.9.{trial + 1}"
        src, *members = rnd.sample(list(spec.hosts), 6)
        for h in members:
            sc.report(h, RecordType.CHANGE_TO_EXCLUDE, group)
        sc.send_first_packet(src, group)
        sc.advance(3.0)
        sc.check()
        route = sc.core.routes[ipaddress.ip_address(group)]
        (edges,) = route.trees.values()
        terminals = {spec.dpid(h.switch) for h in members} | {spec.dpid(src.switch)}
        optimum = exact_steiner_cost(sc.core.topo.graph(), terminals)
        assert len(edges) == optimum, f"{mode} tree uses {len(edges)} links, optimum {optimum}"


def test_source_filtering_exclude_and_include():
    spec = topofile.linear(4)
    sc = Scenario(spec, "spt", 0)
    h1, h2, h3, h4 = spec.hosts
    ip = lambda h: h.ip.split("/")[0]
    sc.report(h3, RecordType.CHANGE_TO_EXCLUDE, "239.5.5.5", [ip(h1)])  # EXCLUDE{h1}
    sc.report(h4, RecordType.CHANGE_TO_INCLUDE, "239.5.5.5", [ip(h2)])  # INCLUDE{h2}
    sc.send_first_packet(h1, "239.5.5.5")
    sc.send_first_packet(h2, "239.5.5.5")
    sc.advance(3.0)
    sc.check()
    net = FakeNetwork(sc.core.installed, sc.core.topo.link_ports())
    pkt = lambda h: {"eth_src": h.mac, "eth_dst": "01:00:5e:05:05:05", "eth_type": 0x0800, "ipv4_src": ip(h), "ipv4_dst": "239.5.5.5"}
    from_h1 = net.inject(1, h1.port, pkt(h1)).delivered
    from_h2 = net.inject(2, h2.port, pkt(h2)).delivered
    assert (3, h3.port) not in from_h1 and (4, h4.port) not in from_h1  # h3 excludes h1, h4 only wants h2
    assert from_h2 == {(3, h3.port): 1, (4, h4.port): 1}


def test_negative_cache_then_member_appears():
    spec = topofile.linear(3)
    sc = Scenario(spec, "spt", 0)
    h1, h2, h3 = spec.hosts
    sc.send_first_packet(h1, "239.7.7.7")
    inst = sc.core.installed[1]
    neg = [f for f in inst.flows.values() if f.table == 2 and f.priority == 310]
    assert len(neg) == 1 and neg[0].actions == () and neg[0].hard_timeout > 0
    sc.report(h3, RecordType.CHANGE_TO_EXCLUDE, "239.7.7.7")
    sc.advance(0.5)
    sc.check()
    assert not [f for f in sc.core.installed[1].flows.values() if f.table == 2 and f.priority == 310]


def test_negative_cache_expires():
    spec = topofile.linear(2)
    sc = Scenario(spec, "spt", 0)
    sc.send_first_packet(spec.hosts[0], "239.7.7.8")
    assert sc.core.sources
    sc.advance(11.0)
    assert not sc.core.sources and sc.core.counters["source_expired"] == 1


def test_groups_shared_by_bucket_set_and_modified_in_place():
    spec = topofile.linear(2)
    sc = Scenario(spec, "spt", 0)
    h1, h2 = spec.hosts
    for g in ("239.1.0.1", "239.1.0.2", "239.1.0.3"):
        sc.report(h2, RecordType.CHANGE_TO_EXCLUDE, g)
        sc.send_first_packet(h1, g)
    inst = sc.core.installed[1]
    mc = [f for f in inst.flows.values() if f.table == 2 and f.priority == 300]
    assert len(mc) == 3 and len({f.actions for f in mc}) == 1, "same buckets -> one shared group"
    assert len(inst.groups) == 1


def test_static_join_and_leave_drive_delivery():
    spec = topofile.linear(3)
    sc = Scenario(spec, "spt", 0)
    h1, h2, h3 = spec.hosts
    sc.core.static_join(sc.now, 3, h3.port, "239.6.6.6")
    sc.send_first_packet(h1, "239.6.6.6")
    sc.check()
    net = FakeNetwork(sc.core.installed, sc.core.topo.link_ports())
    pkt = {"eth_src": h1.mac, "eth_dst": "01:00:5e:06:06:06", "eth_type": 0x0800, "ipv4_src": "10.0.0.1", "ipv4_dst": "239.6.6.6"}
    assert net.inject(1, h1.port, pkt).delivered == {(3, h3.port): 1}
    # (S,G) static join of another port, then undo the (*,G) one
    sc.core.static_join(sc.now, 2, h2.port, "239.6.6.6", "10.0.0.1")
    found, _ = sc.core.static_leave(sc.now, 3, h3.port, "239.6.6.6")
    assert found
    assert net.inject(1, h1.port, pkt).delivered == {(2, h2.port): 1}
    found, out = sc.core.static_leave(sc.now, 3, h3.port, "239.6.6.6")
    assert not found and not out


def test_merge_interest_is_a_union():
    from mcast_sdn.core import merge_interest
    from mcast_sdn.membership import Interest

    a, b, c = (ipaddress.ip_address(x) for x in ("10.0.0.1", "10.0.0.2", "10.0.0.3"))
    inc = lambda *s: Interest("include", frozenset(s))
    exc = lambda *s: Interest("exclude", frozenset(s))
    for x, y in [(inc(a), inc(b)), (exc(a, b), exc(b, c)), (exc(a, b), inc(a)), (inc(c), exc(c, b)), (None, inc(a))]:
        m = merge_interest(x, y)
        for s in (a, b, c):
            assert m.wants(s) == ((x is not None and x.wants(s)) or (y is not None and y.wants(s)))


def test_steiner_trees_grow_incrementally_and_background_repair_does_not_break_delivery():
    rnd = random.Random(3)
    g = nx.relabel_nodes(nx.connected_watts_strogatz_graph(30, 4, 0.3, seed=3), lambda x: x + 1)
    spec = topofile.from_graph(g, hosts=1, name="ws30")
    sc = Scenario(spec, "steiner", 3)
    group = "239.77.0.1"
    src = spec.hosts[0]
    sc.send_first_packet(src, group)
    joined = set()
    for _ in range(40):  # churn: the incremental tree drifts
        h = rnd.choice(spec.hosts[1:])
        if h.name in joined:
            sc.report(h, RecordType.CHANGE_TO_INCLUDE, group)
            joined.discard(h.name)
        else:
            sc.report(h, RecordType.CHANGE_TO_EXCLUDE, group)
            joined.add(h.name)
        sc.advance(3.0)
    sc.check()
    assert sc.core.incremental, "steiner mode keeps incremental trees"
    key = (ipaddress.ip_address(group), ipaddress.ip_address(src.ip.split("/")[0]))
    before = sc.core.incremental[key].cost()
    changed = sc.core.repair_trees()
    after = sc.core.incremental[key].cost()
    assert after <= before
    # the repaired tree is what gets installed, and delivery is still exact
    from mcast_sdn.core import Out
    sc.core._finish(sc.now, Out(), set(), changed)
    sc.check()
    route = sc.core.routes[ipaddress.ip_address(group)]
    assert len(next(iter(route.trees.values()))) == after


def test_flood_ports_receive_unregistered_multicast():
    spec = topofile.linear(3)
    tc = TreeConfig()
    core = Core(CoreConfig(settle=0.0, flood_ports=[[3, spec.hosts[2].port]]), tree_config=tc)
    sc = Scenario(spec, "spt", 0)
    sc.core = core
    connect(core, spec)
    core.tick(0.1)
    for h in spec.hosts:
        core.packet_in(0.1, spec.dpid(h.switch), h.port, COOKIE_MISS, b"\xff" * 6 + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28)
    sc.send_first_packet(spec.hosts[0], "239.88.0.1")  # nobody joined
    net = FakeNetwork(core.installed, core.topo.link_ports())
    h1 = spec.hosts[0]
    res = net.inject(1, h1.port, {"eth_src": h1.mac, "eth_dst": "01:00:5e:58:00:01", "eth_type": 0x0800, "ipv4_src": "10.0.0.1", "ipv4_dst": "239.88.0.1"})
    assert dict(res.delivered) == {(3, spec.hosts[2].port): 1}
    import pytest as _pt
    with _pt.raises(ValueError):
        CoreConfig(flood_ports=[["x", 1]])
