"""Tests for topologies as data: the JSON files, the generators, validation, and the
Mininet Topo built from a spec (a Topo is plain data; no network is started here)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from mcast_sdn import topofile
from mcast_sdn.topofile import HostSpec, LinkSpec, SwitchSpec, TopologySpec

REPO = Path(__file__).resolve().parents[2]
TOPO_DIR = REPO / "topologies"
JSON_FILES = sorted(TOPO_DIR.glob("*.json"))


def _generate_module():
    spec = importlib.util.spec_from_file_location("topologies_generate",
                                                  TOPO_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _base() -> dict:
    """A small valid topology in the JSON format, for the validation tests."""
    return {
        "name": "t",
        "switches": [{"name": "s1"}, {"name": "s2"}, {"name": "s3"}],
        "links": [{"a": "s1", "b": "s2"}, {"a": "s2", "b": "s3"}],
        "hosts": [{"name": "h1", "switch": "s1"}, {"name": "h2", "switch": "s3"}],
    }


def _check_invariants(spec: TopologySpec) -> None:
    names = [s.name for s in spec.switches]
    assert len(set(names)) == len(names)
    dpids = [s.dpid for s in spec.switches]
    assert len(set(dpids)) == len(dpids)
    used: set[tuple[str, int]] = set()
    for link in spec.links:
        for end in ((link.a, link.a_port), (link.b, link.b_port)):
            assert end not in used, f"port reused: {end}"
            used.add(end)
    for h in spec.hosts:
        assert h.switch in names
        assert (h.switch, h.port) not in used
        used.add((h.switch, h.port))
    g = spec.graph()
    assert g.number_of_nodes() == len(spec.switches)
    assert g.number_of_edges() == len(spec.links)
    assert nx.is_connected(g)


# ---------------------------------------------------------------------------
# Shipped files


def test_expected_files_exist():
    names = {p.stem for p in JSON_FILES}
    assert {"linear3", "tree2x2", "ring4", "fattree4", "leafspine", "abilene",
            "geant"} <= names


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.name)
def test_json_file_loads_and_is_sane(path):
    spec = topofile.load(path)
    assert spec.name == path.stem
    assert spec.description
    assert spec.hosts
    _check_invariants(spec)
    # Loading by bare name finds the same file.
    assert topofile.load(path.stem) == spec


def test_json_files_match_generator():
    """The files are what topologies/generate.py writes (nobody hand-edited them)."""
    generated = _generate_module().build_all()
    assert set(generated) == {p.name for p in JSON_FILES}
    for fname, spec in generated.items():
        assert (TOPO_DIR / fname).read_text(encoding="utf-8") == spec.to_json(), fname
        assert topofile.load(TOPO_DIR / fname) == spec


def test_abilene():
    spec = topofile.load("abilene")
    assert len(spec.switches) == 11
    assert len(spec.links) == 14
    assert len(spec.hosts) == 11
    labels = {s.label for s in spec.switches}
    assert labels == {"New York", "Chicago", "Washington DC", "Seattle", "Sunnyvale",
                      "Los Angeles", "Denver", "Kansas City", "Houston", "Atlanta",
                      "Indianapolis"}
    by_name = {s.name: s.label for s in spec.switches}
    pairs = {frozenset((by_name[l.a], by_name[l.b])) for l in spec.links}
    for a, b in [("Seattle", "Sunnyvale"), ("Seattle", "Denver"), ("New York", "Chicago"),
                 ("Houston", "Atlanta"), ("Kansas City", "Indianapolis")]:
        assert frozenset((a, b)) in pairs
    assert frozenset(("Seattle", "New York")) not in pairs
    for s in spec.switches:
        assert len(spec.hosts_on(s.name)) == 1
    # Distance weights: Seattle-Sunnyvale is roughly 1,100 km.
    link = next(l for l in spec.links if {by_name[l.a], by_name[l.b]} == {"Seattle",
                                                                          "Sunnyvale"})
    assert 1000 < link.weight < 1200
    assert link.delay_ms == pytest.approx(link.weight / 200, abs=0.01)


def test_geant():
    spec = topofile.load("geant")
    assert len(spec.switches) == 22
    assert len(spec.links) == 36
    assert len(spec.hosts) == 22
    g = spec.graph()
    frankfurt = next(s for s in spec.switches if s.label.startswith("Frankfurt"))
    assert g.degree(frankfurt.dpid) == 8
    assert all(s.label for s in spec.switches)


# ---------------------------------------------------------------------------
# Generators


@pytest.mark.parametrize("spec,switches,links,hosts", [
    (topofile.linear(3), 3, 2, 3),
    (topofile.linear(4, hosts_per_switch=2), 4, 3, 8),
    (topofile.ring(4), 4, 4, 4),
    (topofile.tree(2, 2), 3, 2, 4),
    (topofile.tree(3, 2), 7, 6, 8),
    (topofile.tree(1, 3), 1, 0, 3),
    (topofile.fat_tree(4), 20, 32, 16),
    (topofile.fat_tree(8), 80, 256, 128),
    (topofile.leaf_spine(2, 4, 2), 6, 8, 8),
    (topofile.mesh(5), 5, 10, 5),
], ids=lambda x: x.name if isinstance(x, TopologySpec) else None)
def test_generator_sizes(spec, switches, links, hosts):
    assert (len(spec.switches), len(spec.links), len(spec.hosts)) == (switches, links, hosts)
    _check_invariants(spec)


def test_linear_is_a_path_and_ring_has_a_cycle():
    g = topofile.linear(3).graph()
    assert nx.is_tree(g)
    assert [d for _, d in sorted(g.degree())] == [1, 2, 1]
    ring = topofile.ring(4).graph()
    assert len(nx.cycle_basis(ring)) == 1
    assert all(d == 2 for _, d in ring.degree())


def test_linear_mininet_host_names():
    assert [h.name for h in topofile.linear(2).hosts] == ["h1", "h2"]
    assert [h.name for h in topofile.linear(2, 2).hosts] == ["h1s1", "h2s1", "h1s2", "h2s2"]


def test_tree_follows_mininet_treetopo():
    spec = topofile.tree(2, 2)
    assert [s.name for s in spec.switches] == ["s1", "s2", "s3"]
    assert [(h.name, h.switch) for h in spec.hosts] == [
        ("h1", "s2"), ("h2", "s2"), ("h3", "s3"), ("h4", "s3")]
    assert spec.hosts_on("s1") == ()
    # Hosts only at the leaves, fanout per leaf.
    spec = topofile.tree(3, 3)
    g = spec.graph()
    leaves = {s.name for s in spec.switches if g.degree(s.dpid) == 1}
    assert {h.switch for h in spec.hosts} == leaves
    assert all(len(spec.hosts_on(s)) == 3 for s in leaves)
    # Uplink of every non-root switch is port 1.
    for link in spec.links:
        assert link.b_port == 1


def test_fat_tree_structure():
    k = 4
    spec = topofile.fat_tree(k)
    g = spec.graph()
    core = [s for s in spec.switches if s.label.startswith("core")]
    agg = [s for s in spec.switches if "_agg" in s.label]
    edge = [s for s in spec.switches if "_edge" in s.label]
    assert (len(core), len(agg), len(edge)) == (4, 8, 8)
    assert all(g.degree(s.dpid) == k for s in core + agg)
    assert all(g.degree(s.dpid) == k // 2 for s in edge)
    assert all(len(spec.hosts_on(s.name)) == k // 2 for s in edge)
    assert all(not spec.hosts_on(s.name) for s in core + agg)
    # Core port p+1 leads to pod p.
    for port, (peer, _) in spec.ports("s1").items():
        assert spec.switch(peer).label == f"p{port - 1}_agg0"
    with pytest.raises(ValueError, match="even"):
        topofile.fat_tree(3)


def test_leaf_spine_structure():
    spec = topofile.leaf_spine(3, 5, 1)
    g = spec.graph()
    spines = [s for s in spec.switches if s.label.startswith("spine")]
    leaves = [s for s in spec.switches if s.label.startswith("leaf")]
    assert len(spines) == 3 and len(leaves) == 5
    for leaf in leaves:
        assert {n for n in g.neighbors(leaf.dpid)} == {s.dpid for s in spines}
        assert [p for p, (peer, _) in spec.ports(leaf.name).items()
                if peer.startswith("s")] == [1, 2, 3]


def test_mesh_is_complete():
    g = topofile.mesh(6).graph()
    assert nx.density(g) == 1.0


@pytest.mark.parametrize("call", [
    lambda: topofile.linear(0),
    lambda: topofile.linear("3"),
    lambda: topofile.ring(2),
    lambda: topofile.tree(0, 2),
    lambda: topofile.fat_tree(0),
    lambda: topofile.leaf_spine(0, 2),
    lambda: topofile.mesh(True),
])
def test_generator_arguments_are_checked(call):
    with pytest.raises(ValueError):
        call()


def test_from_graph_plain_and_round_trip():
    g = nx.Graph()
    g.add_edge("s1", "s2", weight=3, delay_ms=2)
    g.add_edge("s2", "s3")
    spec = topofile.from_graph(g, hosts=["s1", "s3"], name="small")
    assert [h.switch for h in spec.hosts] == ["s1", "s3"]
    assert spec.links[0].weight == 3.0 and spec.links[0].delay_ms == 2.0
    # The dpid-keyed graph of any spec rebuilds the same switches, links and ports.
    fat = topofile.fat_tree(4)
    again = topofile.from_graph(fat.graph(), hosts=0)

    def edges(g):
        return sorted((min(u, v), max(u, v), d["weight"], sorted(d["ports"].items()))
                      for u, v, d in g.edges(data=True))

    assert edges(again.graph()) == edges(fat.graph())
    for s in fat.switches:
        assert again.switch(s.dpid).name == s.name
        assert again.switch(s.dpid).label == s.label
    counts = topofile.from_graph(g, hosts={"s2": 3})
    assert [h.switch for h in counts.hosts] == ["s2"] * 3
    with pytest.raises(ValueError, match="unknown node"):
        topofile.from_graph(g, hosts=["s9"])


# ---------------------------------------------------------------------------
# Defaults


def test_default_ports_links_first_then_hosts():
    spec = topofile.from_dict(_base())
    assert [(l.a_port, l.b_port) for l in spec.links] == [(1, 1), (2, 1)]
    assert [h.port for h in spec.hosts] == [2, 2]


def test_explicit_ports_are_never_reused_by_defaults():
    data = _base()
    data["links"][0]["a_port"] = 1  # s1 port 1 explicitly
    data["hosts"][0]["port"] = 2    # and port 2, written after the links
    data["links"][1]["b_port"] = 1  # s3 port 1
    data["links"].append({"a": "s3", "b": "s1"})
    spec = topofile.from_dict(data)
    assert spec.links[2].b_port == 3  # s1: 1 and 2 were taken
    assert spec.links[2].a_port == 2  # s3: 1 was taken
    assert spec.host("h2").port == 3


def test_default_addresses():
    assert topofile.default_host_addresses(1) == ("00:00:00:00:00:01", "10.0.0.1/8",
                                                  "fc00::1/64")
    assert topofile.default_host_addresses(254)[1] == "10.0.0.254/8"
    assert topofile.default_host_addresses(255) == ("00:00:00:00:00:ff", "10.0.1.1/8",
                                                    "fc00::ff/64")
    assert topofile.default_host_addresses(300)[0] == "00:00:00:00:01:2c"
    spec = topofile.fat_tree(8)
    assert len({h.ip for h in spec.hosts}) == 128


def test_default_dpid_from_name_or_position():
    spec = topofile.from_dict({"name": "d", "switches": [
        {"name": "s7"}, {"name": "core"}, {"name": "x"}, {"name": "sw"},
        {"name": "hexed", "dpid": "00:00:00:00:00:00:01:00"}]})
    assert [s.dpid for s in spec.switches] == [7, 2, 3, 4, 256]


# ---------------------------------------------------------------------------
# Validation


def _mutate(fn):
    data = _base()
    fn(data)
    return data


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["links"].append({"a": "s1", "b": "s9"}), r"unknown switch 's9'"),
    (lambda d: d["hosts"].append({"name": "h3", "switch": "s9"}),
     r"host h3: unknown switch 's9'"),
    (lambda d: d["switches"].append({"name": "s1", "dpid": 99}),
     r"duplicate switch name 's1'"),
    (lambda d: d["hosts"].append({"name": "h1", "switch": "s2"}),
     r"duplicate host name 'h1'"),
    (lambda d: d["hosts"].append({"name": "s2", "switch": "s2"}), r"duplicate name 's2'"),
    (lambda d: d["switches"].append({"name": "x1"}), r"duplicate dpid 1: switches s1 and x1"),
    (lambda d: d["switches"][1].update(dpid=1), r"duplicate dpid 1"),
    (lambda d: d["switches"][0].update(dpid=0), r"dpid 0 is out of range"),
    (lambda d: d["switches"][0].update(dpid=2 ** 48), r"out of range"),
    (lambda d: d["switches"].append({"name": "s0"}), r"dpid 0 .*give \"dpid\" explicitly"),
    (lambda d: d["links"][0].update(a_port=1, b_port=1) or d["links"][1].update(a_port=1),
     r"duplicate port: port 1 on switch s2"),
    (lambda d: d["hosts"][0].update(port=1) or d["links"][0].update(a_port=1),
     r"port 1 on switch s1 is used by link s1-s2 and by host h1"),
    (lambda d: d["links"].append({"a": "s2", "b": "s2"}), r"self-loop"),
    (lambda d: d["links"].append({"a": "s2", "b": "s1"}), r"parallel link"),
    (lambda d: d["switches"].append({"name": "sw-1", "dpid": 9}), r"not valid"),
    (lambda d: d["switches"].append({"name": "1s", "dpid": 9}), r"not valid"),
    (lambda d: d["switches"].append({"name": "abcdefghijk", "dpid": 9}), r"too long"),
    (lambda d: d["hosts"].append({"name": "averylonghost", "switch": "s1"}), r"too long"),
    (lambda d: d["switches"].append({"name": "abcdefghij", "dpid": 9})
     or d["hosts"].append({"name": "h9", "switch": "abcdefghij", "port": 12}),
     r"'abcdefghij-eth12' is 16 characters"),
    (lambda d: d["links"][0].update(a_port=0), r"port 0 must be an integer >= 1"),
    (lambda d: d["links"][0].update(a_port="1"), r"a_port: '1' must be an integer"),
    (lambda d: d["links"][0].update(weight=0), r"weight 0 must be a positive number"),
    (lambda d: d["links"][0].update(weight="heavy"), r"weight"),
    (lambda d: d["links"][0].update(delay_ms=-1), r"delay_ms -1"),
    (lambda d: d["links"][0].update(bw_mbps=0), r"bw_mbps 0"),
    (lambda d: d["links"][0].update(wieght=2), r"unknown key\(s\) 'wieght'"),
    (lambda d: d["links"][0].pop("b"), r"links\[0\]: missing required key 'b'"),
    (lambda d: d.pop("switches"), r"missing required key 'switches'"),
    (lambda d: d.update(switches=[]), r"at least one switch"),
    (lambda d: d.update(links={}), r"'links' must be a list"),
    (lambda d: d["hosts"][0].update(mac="01:00:5e:00:00:01"), r"multicast"),
    (lambda d: d["hosts"][0].update(mac="00:00:00:00:00"), r"mac"),
    (lambda d: d["hosts"][0].update(mac="00:00:00:00:00:02"), r"duplicate mac"),
    (lambda d: d["hosts"][0].update(ip="10.0.0.2/8"), r"duplicate address 10.0.0.2"),
    (lambda d: d["hosts"][0].update(ip="10.0.0.1"), r"prefix length"),
    (lambda d: d["hosts"][0].update(ip="10.0.0.300/8"), r"not valid"),
    (lambda d: d["hosts"][0].update(ip="fc00::9/64"), r"not an IPv4 address"),
    (lambda d: d["hosts"][0].update(ip="224.0.0.1/8"), r"not a unicast"),
    (lambda d: d["hosts"][0].update(ip="10.255.255.255/8"), r"broadcast"),
    (lambda d: d["hosts"][0].update(ipv6="fc00::2/64"), r"duplicate address fc00::2"),
    (lambda d: d["hosts"][0].update(ipv6="10.0.0.9/8"), r"not an IPv6 address"),
])
def test_validation_errors(mutate, message):
    with pytest.raises(ValueError, match=message):
        topofile.from_dict(_mutate(mutate))


def test_validation_on_direct_construction():
    s1, s2 = SwitchSpec("s1", 1), SwitchSpec("s2", 2)
    with pytest.raises(ValueError, match="self-loop"):
        LinkSpec("s1", 1, "s1", 2)
    with pytest.raises(ValueError, match="parallel link"):
        TopologySpec("t", "", (s1, s2), (LinkSpec("s1", 1, "s2", 1),
                                         LinkSpec("s1", 2, "s2", 2)), ())
    with pytest.raises(ValueError, match="must hold SwitchSpec"):
        TopologySpec("t", "", ("s1",), (), ())
    with pytest.raises(ValueError, match="multicast"):
        HostSpec("h1", "s1", 1, "33:33:00:00:00:01", "10.0.0.1/8", "fc00::1/64")


def test_comment_keys_are_ignored():
    data = _base()
    data["_comment"] = "top"
    data["links"][0]["_note"] = "a cable"
    assert topofile.from_dict(data) == topofile.from_dict(_base())


def test_error_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutate(lambda d: d["links"].append({"a": "s1", "b": "s1"}))))
    with pytest.raises(ValueError, match=r"bad\.json: link s1-s1: self-loop"):
        topofile.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        topofile.load(path)


# ---------------------------------------------------------------------------
# Spec API


def test_lookups():
    spec = topofile.load("leafspine")
    assert spec.switch("s3").label == "leaf1"
    assert spec.switch(3).name == "s3"
    assert spec.dpid("s6") == 6
    assert spec.host("h3").switch == "s4"
    assert [h.name for h in spec.hosts_on("s4")] == ["h3", "h4"]
    assert spec.hosts_on(4) == spec.hosts_on("s4")
    assert spec.ports("s1") == {1: ("s3", 1), 2: ("s4", 1), 3: ("s5", 1), 4: ("s6", 1)}
    assert spec.ports("s3") == {1: ("s1", 1), 2: ("s2", 1), 3: ("h1", 0), 4: ("h2", 0)}
    for missing in (lambda: spec.switch("s99"), lambda: spec.switch(99),
                    lambda: spec.host("h99")):
        with pytest.raises(KeyError):
            missing()
    link = spec.links[0]
    assert link.port_on(link.a) == link.a_port and link.other(link.a) == link.b
    h = spec.host("h1")
    assert str(h.ip_address) == "10.0.0.1" and str(h.ipv6_address) == "fc00::1"


def test_graph_attributes():
    spec = topofile.load("abilene")
    g = spec.graph()
    assert set(g.nodes) == set(range(1, 12))
    assert g.nodes[4]["name"] == "s4" and g.nodes[4]["label"] == "Seattle"
    for link in spec.links:
        da, db = spec.dpid(link.a), spec.dpid(link.b)
        data = g.edges[da, db]
        assert data["ports"] == {da: link.a_port, db: link.b_port}
        assert data["weight"] == link.weight
        assert data["delay_ms"] == link.delay_ms
        assert data["bw_mbps"] is None
    g.remove_node(1)  # a fresh copy each call
    assert spec.graph().has_node(1)


@pytest.mark.parametrize("spec", [
    topofile.load("abilene"), topofile.linear(3, 2), topofile.fat_tree(4),
    topofile.from_dict({"name": "x", "description": "d",
                        "switches": [{"name": "s1", "label": "L"}, {"name": "s2"}],
                        "links": [{"a": "s1", "b": "s2", "weight": 2.5, "delay_ms": 0.5,
                                   "bw_mbps": 10}],
                        "hosts": [{"name": "h1", "switch": "s2",
                                   "mac": "0A:00:00:00:00:01", "ipv6": "FC00:0::7/64"}]}),
], ids=lambda s: s.name)
def test_round_trip(spec, tmp_path):
    text = json.dumps(spec.to_dict())
    assert topofile.from_dict(json.loads(text)) == spec
    path = tmp_path / "rt.json"
    path.write_text(spec.to_json())
    assert topofile.load(path) == spec
    assert json.loads(spec.to_json()) == spec.to_dict()


def test_addresses_are_normalised():
    spec = topofile.from_dict({"name": "n", "switches": [{"name": "s1"}], "hosts": [
        {"name": "h1", "switch": "s1", "mac": "0A:BC:00:00:00:01", "ipv6": "FC00:0:0::7/64"}]})
    assert spec.hosts[0].mac == "0a:bc:00:00:00:01"
    assert spec.hosts[0].ipv6 == "fc00::7/64"


def test_specs_are_frozen_and_hashable():
    spec = topofile.linear(2)
    with pytest.raises(Exception):
        spec.name = "other"
    assert hash(spec) == hash(topofile.linear(2))


# ---------------------------------------------------------------------------
# load()


def test_load_dispatches_to_generators():
    assert topofile.load("linear", n=3) == topofile.linear(3)
    assert topofile.load("fat_tree", k=4) == topofile.fat_tree(4)
    assert topofile.load("tree", depth=2, fanout=2) == topofile.tree(2, 2)
    assert topofile.load("ring", n=5).name == "ring5"
    assert topofile.load("mesh", n=3).name == "mesh3"
    assert topofile.load("leaf_spine", spines=2, leaves=2).name == "leafspine2x2x1"


def test_load_errors():
    with pytest.raises(ValueError, match="unknown topology 'nosuch'.*known: .*abilene"):
        topofile.load("nosuch")
    with pytest.raises(ValueError, match="bad parameters"):
        topofile.load("linear", m=3)
    with pytest.raises(ValueError, match="takes no parameters"):
        topofile.load("abilene", n=3)
    with pytest.raises(FileNotFoundError):
        topofile.load("/nonexistent/dir/x.json")


def test_load_by_file_name_and_env_dir(tmp_path, monkeypatch):
    assert topofile.load("abilene.json") == topofile.load("abilene")
    # The env directory is searched first and can override or add topologies.
    custom = topofile.linear(2)
    (tmp_path / "abilene.json").write_text(custom.to_json())
    (tmp_path / "mine.json").write_text(custom.to_json())
    (tmp_path / "linear.json").write_text(custom.to_json())
    monkeypatch.setenv(topofile.TOPOLOGIES_ENV, str(tmp_path))
    assert topofile.load("abilene") == custom
    assert topofile.load("mine") == custom
    assert topofile.load("geant").name == "geant"  # still found in the repo
    # A file named like a generator wins over the generator.
    assert topofile.load("linear") == custom
    with pytest.raises(ValueError, match="takes no parameters"):
        topofile.load("linear", n=4)
    assert "mine" in topofile.available()


def test_module_is_pure():
    """topofile must not pull in Mininet or Ryu (the controller imports it)."""
    code = ("import sys, mcast_sdn.topofile as t; t.load('abilene').graph(); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mininet', 'ryu')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------
# Mininet side (Topo objects only; no network is started)

def _have_mininet() -> bool:
    try:
        return importlib.util.find_spec("mininet.topo") is not None
    except ImportError:
        return False


needs_mininet = pytest.mark.skipif(not _have_mininet(), reason="mininet not installed")


@needs_mininet
def test_spec_topo_nodes_links_ports():
    from mcast_sdn.mntopo import SpecTopo

    spec = topofile.load("tree2x2")
    topo = SpecTopo(spec)
    assert topo.spec is spec
    assert topo.switches() == ["s1", "s2", "s3"]
    assert topo.hosts() == ["h1", "h2", "h3", "h4"]
    assert topo.nodeInfo("s2") == {"isSwitch": True, "dpid": "0000000000000002",
                                   "protocols": "OpenFlow13"}
    assert topo.nodeInfo("h3") == {"ip": "10.0.0.3/8", "mac": "00:00:00:00:00:03"}
    links = topo.links(withInfo=True)
    assert len(links) == len(spec.links) + len(spec.hosts)
    for link in spec.links:
        assert topo.port(link.a, link.b) == (link.a_port, link.b_port)
    for h in spec.hosts:
        assert topo.port(h.name, h.switch) == (0, h.port)
    for _, _, info in links:
        assert "cls" not in info and "delay" not in info  # no tc by default


@needs_mininet
def test_spec_topo_dpids_for_large_dpids():
    from mcast_sdn.mntopo import SpecTopo

    spec = topofile.from_dict({"name": "big", "switches": [
        {"name": "s1", "dpid": topofile.MAX_DPID}]})
    assert SpecTopo(spec).nodeInfo("s1")["dpid"] == "0000ffffffffffff"


@needs_mininet
def test_spec_topo_tc_options():
    from mininet.link import TCLink

    from mcast_sdn.mntopo import spec_topo

    spec = topofile.from_dict({"name": "tc", "switches": [{"name": "s1"}, {"name": "s2"},
                                                          {"name": "s3"}],
                               "links": [{"a": "s1", "b": "s2", "delay_ms": 5,
                                          "bw_mbps": 100},
                                         {"a": "s2", "b": "s3", "delay_ms": 0.25},
                                         {"a": "s3", "b": "s1"}],
                               "hosts": [{"name": "h1", "switch": "s1"}]})
    topo = spec_topo(spec, use_tc=True)
    info = {(a, b): i for a, b, i in topo.links(withInfo=True)}
    assert info[("s1", "s2")]["cls"] is TCLink
    assert info[("s1", "s2")]["delay"] == "5ms" and info[("s1", "s2")]["bw"] == 100
    assert info[("s2", "s3")]["delay"] == "0.25ms" and "bw" not in info[("s2", "s3")]
    assert "cls" not in info[("s3", "s1")]
    assert "cls" not in info[("h1", "s1")]
    plain = spec_topo(spec)
    assert all("delay" not in i for _, _, i in plain.links(withInfo=True))
    # By name / generator, as mn would.
    assert spec_topo("linear", n=4).switches() == ["s1", "s2", "s3", "s4"]


@needs_mininet
def test_mn_custom_file_works_like_mn_runs_it():
    """mn exec()s the --custom file in a bare dict (no __file__) and calls topos[name]."""
    import mininet
    from mininet.util import buildTopo

    path = REPO / "mininet" / "topos.py"
    assert not (REPO / "mininet" / "__init__.py").exists()
    customs: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), customs, customs)  # noqa: S102
    topos = customs["topos"]
    assert {"linear", "ring", "tree", "fattree", "leafspine", "abilene", "geant",
            "file"} <= set(topos)
    cases = {
        "linear": ("linear3", 3, 3),
        "linear,5": ("linear5", 5, 5),
        "tree,3,2": ("tree3x2", 7, 8),
        "fattree": ("fattree4", 20, 16),
        "leafspine": ("leafspine2x4x2", 6, 8),
        "leafspine,4": ("leafspine4x4x2", 8, 8),
        "ring,5,hosts_per_switch=2": ("ring5x2", 5, 10),
        "abilene": ("abilene", 11, 11),
        "geant": ("geant", 22, 22),
        f"file,{TOPO_DIR / 'ring4.json'}": ("ring4", 4, 4),
    }
    for arg, (name, nsw, nh) in cases.items():
        topo = buildTopo(topos, arg)
        assert (topo.spec.name, len(topo.switches()), len(topo.hosts())) == (name, nsw, nh)
        assert topo.use_tc is False
    assert buildTopo(topos, "abilene,use_tc=1").use_tc is True
    assert buildTopo(topos, "file,abilene.json,use_tc=true").use_tc is True
    # The repository's mininet/ directory must not shadow the real package.
    assert Path(mininet.__file__).parent != REPO / "mininet"
