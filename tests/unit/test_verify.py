"""Unit tests for the verification run's pure parts (mcast_sdn/verify.py) and the CLI's checks.

Scenario loading and validation (every shipped file on the shipped topologies; bad ones
with clear errors), host selectors, expected delivery from a timeline, the analysis and
verdict on synthetic tool records (a duplicate, a miss, a leak, a link carrying a stream
twice each make it false), link stress, optimal trees, and the table/JSON/tree output.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import networkx as nx
import pytest

from mcast_sdn import topofile
from mcast_sdn import verify as V

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.stem for p in (ROOT / "mininet" / "scenarios").glob("*.json"))
TOPOLOGIES = sorted(p.stem for p in (ROOT / "topologies").glob("*.json"))


def _load_runner():
    spec = importlib.util.spec_from_file_location("_verify_runner", ROOT / "mininet" / "verify.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def scenario(**over) -> dict:
    base = {
        "name": "t",
        "topology": "ring4",
        "groups": {"G": "239.1.1.1"},
        "timeline": [
            {"at": 0, "join": "G", "hosts": "1:-1"},
            {"at": 1.5, "send": "G", "hosts": "first", "count": 100, "rate": 100},
        ],
    }
    base.update(over)
    return base


def plan_of(data: dict, topo: str = "ring4") -> V.Plan:
    return V.resolve(V.parse_scenario(data), topofile.load(topo))


def err(data: dict, topo: str = "ring4") -> str:
    with pytest.raises(V.ScenarioError) as e:
        plan_of(data, topo)
    return str(e.value)


# ---------------------------------------------------------------------------
# shipped scenarios
# ---------------------------------------------------------------------------


def test_the_required_scenarios_are_shipped():
    assert {"basic", "ssm", "churn", "mixed-versions", "demo"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_shipped_scenarios_load_and_resolve_on_their_topology(name):
    sc = V.load_scenario(name)
    assert sc.name == name and sc.topology
    plan = V.resolve(sc, topofile.load(sc.topology))
    assert plan.sends and plan.end > 0
    assert V.expected_delivery(plan), "somebody must be owed something"


@pytest.mark.parametrize("topo", TOPOLOGIES)
def test_basic_runs_on_every_topology(topo):
    plan = V.resolve(V.load_scenario("basic"), topofile.load(topo))
    hosts = plan.host_names()
    assert [s.host for s in plan.sends] == [hosts[0]]
    assert [j.host for j in plan.joins] == hosts[1:-1]
    assert hosts[-1] not in {j.host for j in plan.joins}


@pytest.mark.parametrize("name", ["ssm", "churn", "mixed-versions", "demo"])
@pytest.mark.parametrize("topo", ["ring4", "leafspine", "fattree4", "abilene"])
def test_other_scenarios_are_topology_independent(name, topo):
    V.resolve(V.load_scenario(name), topofile.load(topo))


def test_scenarios_needing_four_hosts_say_so_on_linear3():
    msg = err(json.loads((ROOT / "mininet/scenarios/churn.json").read_text()), "linear3")
    assert "needs at least 4 hosts" in msg and "3" in msg


def test_ssm_scenario_filters():
    plan = V.resolve(V.load_scenario("ssm"), topofile.load("ring4"))
    by = {(j.host, j.group): j for j in plan.joins}
    assert by[("h3", "232.1.1.1")].mode == "include" and by[("h3", "232.1.1.1")].sources == ("10.0.0.1",)
    assert by[("h3", "239.11.0.1")].mode == "exclude"
    assert by[("h4", "ff15::11:1")].sources == ("fc00::2",)
    assert len(plan.sends) == 8 and len({s.stream for s in plan.sends}) == 8


def test_mixed_versions_scenario_versions():
    plan = V.resolve(V.load_scenario("mixed-versions"), topofile.load("ring4"))
    assert plan.versions["h2"] == {"igmp": 2, "mld": 1}
    assert plan.versions["h3"] == {"igmp": 3, "mld": 2}
    assert plan.versions["h4"] == {"igmp": 2, "mld": 2}


# ---------------------------------------------------------------------------
# validation: clear errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.update(colour="red"), "unknown key(s) 'colour'"),
    (lambda d: d.update(timeline=[]), "timeline must be a non-empty list"),
    (lambda d: d["timeline"][0].pop("at"), "\"at\" (seconds from the start) is required"),
    (lambda d: d["timeline"][0].update(at=-1), "at -1 out of range"),
    (lambda d: d["timeline"][0].update(send="G"), "needs exactly one of"),
    (lambda d: d["timeline"][0].update(join="G7"), "unknown group 'G7'"),
    (lambda d: d["timeline"][0].update(join="10.1.1.1"), "10.1.1.1 is not a multicast address"),
    (lambda d: d["timeline"][0].update(join="224.0.0.5"), "link-local"),
    (lambda d: d["timeline"][0].update(join="ff02::5"), "link-local scope"),
    (lambda d: d["timeline"][0].update(mode="any"), "mode 'any' is not one of"),
    (lambda d: d["timeline"][0].update(mode="include"), "include needs at least one source"),
    (lambda d: d["timeline"][0].update(mode="asm", sources=["h1"]), "asm takes no sources"),
    (lambda d: d["timeline"][0].update(version=4), "IGMP version 4 out of range"),
    (lambda d: d["timeline"][0].update(join="ff15::1", version=3), "MLD version 3 out of range"),
    (lambda d: d["timeline"][0].update(hosts=True), "host selector True is not valid"),
    (lambda d: d["timeline"][0].update(bogus=1), "unknown key(s) 'bogus'"),
    (lambda d: d["timeline"][1].update(count=10000, rate=10), "at most 60s per stream"),
    (lambda d: d["timeline"][1].update(size=9000), "size 9000 out of range"),
    (lambda d: d["timeline"][1].update(rate="fast"), "rate 'fast' must be a number"),
    (lambda d: d.update(groups={"239.1.1.1": "239.1.1.1"}), "must be an identifier"),
    (lambda d: d.update(groups={"G": "239.1.1.1", "H": "239.1.1.1"}), "named twice"),
    (lambda d: d.update(controller={"trees": {"default_mode": "fastest"}}), "controller config rejected"),
    (lambda d: d.update(expect={"join_grace": "1s"}), "join_grace '1s' must be a number"),
    (lambda d: d.update(topology=4), "topology must be a name"),
    (lambda d: d["timeline"].append({"at": 1, "fault": "unplug", "group": "G"}), "fault 'unplug' is not one of"),
])
def test_structural_errors_are_clear(mutate, needle):
    d = scenario()
    mutate(d)
    with pytest.raises(V.ScenarioError) as e:
        V.parse_scenario(d, source="x.json")
    assert needle in str(e.value)
    assert str(e.value).startswith("x.json")


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["timeline"][0].update(hosts="h9"), "no host 'h9' in the topology"),
    (lambda d: d["timeline"][0].update(hosts=7), "host index 7 needs at least 8 hosts; the topology has 4"),
    (lambda d: d["timeline"][0].update(hosts="@nobody"), "unknown role '@nobody'"),
    (lambda d: d["timeline"][0].update(hosts="4:"), "selects no host on topology ring4"),
    (lambda d: d["timeline"].append({"at": 2, "join": "G", "hosts": "h2"}), "h2 already joins 239.1.1.1"),
    (lambda d: d["timeline"].append({"at": 2, "leave": "G", "hosts": "h4"}), "h4 leaves 239.1.1.1 but never joins it"),
    (lambda d: d["timeline"].append({"at": 0, "leave": "G", "hosts": "h2"}), "not after its join"),
    (lambda d: (d["timeline"][0].update(version=1), d["timeline"].append({"at": 3, "leave": "G", "hosts": "h2"})),
     "IGMPv1, which has no leave message"),
    (lambda d: d["timeline"].append({"at": 0, "join": "232.1.1.1", "hosts": "h2"}), "SSM range"),
    (lambda d: d["timeline"].append({"at": 0, "join": "ff35::8000:1", "hosts": "h2", "mode": "exclude",
                                     "sources": ["h1"]}), "SSM range"),
    (lambda d: (d["groups"].update(H="239.2.2.2"),
                d["timeline"].append({"at": 0, "join": "H", "hosts": "h2", "version": 2})),
     "the IGMP version is host state"),
    (lambda d: d["timeline"].append({"at": 0, "join": "ff15::1", "hosts": "h2", "sources": ["10.0.0.1"]}),
     "source 10.0.0.1 is IPv4, the group is IPv6"),
    (lambda d: d.update(timeline=[{"at": 0, "join": "G", "hosts": "h2"}]), "nothing is sent"),
    (lambda d: d["timeline"].append({"at": 0.5, "fault": "del_flows", "group": "G"}), "no stream of 239.1.1.1 is running"),
    (lambda d: d["timeline"].append({"at": 2, "fault": "del_flows", "group": "239.9.9.9"}), "nobody sends to 239.9.9.9"),
    (lambda d: d["timeline"].append({"at": 2, "fault": "del_flows", "group": "G", "switch": "s9"}), "no switch 's9'"),
    (lambda d: d.update(roles={"a": "@b", "b": "@a"}), "cycle"),
])
def test_topology_errors_are_clear(mutate, needle):
    d = scenario()
    mutate(d)
    assert needle in err(d)


def test_optional_entries_may_select_nobody():
    d = scenario()
    d["timeline"].append({"at": 0, "join": "G", "hosts": "4:", "optional": True})
    assert len(plan_of(d).joins) == 2


def test_load_scenario_errors(tmp_path):
    with pytest.raises(V.ScenarioError, match="no scenario 'nope'"):
        V.load_scenario("nope")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(V.ScenarioError, match="not valid JSON"):
        V.load_scenario(bad)
    good = tmp_path / "mine.json"
    good.write_text(json.dumps(scenario(name=None) | {"name": "mine"}))
    assert V.load_scenario(good).name == "mine"


def test_inline_topology_is_accepted():
    topo = topofile.linear(3).to_dict()
    sc = V.parse_scenario(scenario(topology=topo))
    assert sc.topology["name"] == "linear3"


# ---------------------------------------------------------------------------
# host selectors
# ---------------------------------------------------------------------------

NAMES = ["h1", "h2", "h3", "h4", "h5", "h6"]


@pytest.mark.parametrize("sel, want", [
    (0, ["h1"]), (-1, ["h6"]), ("2", ["h3"]), ("-2", ["h5"]), ("first", ["h1"]), ("last", ["h6"]),
    ("all", NAMES), ("1:-1", NAMES[1:-1]), ("::2", ["h1", "h3", "h5"]), ("4:", ["h5", "h6"]), ("9:", []),
    ("h4", ["h4"]), (["h4", 0, "h4"], ["h4", "h1"]), ({"hosts": "all", "except": ["first", "last"]}, NAMES[1:-1]),
    ("@r", ["h2", "h3"]), ({"hosts": "@r", "except": "@s"}, ["h2"]),
])
def test_selectors(sel, want):
    assert V.select_hosts(sel, NAMES, {"r": "1:3", "s": ["h3"]}) == want


def test_selector_zero_step_is_an_error():
    with pytest.raises(V.ScenarioError, match="step 0"):
        V.select_hosts("::0", NAMES)


# ---------------------------------------------------------------------------
# expected delivery from the timeline
# ---------------------------------------------------------------------------


def test_expected_delivery_basic():
    plan = V.resolve(V.load_scenario("basic"), topofile.load("ring4"))
    exp = V.expected_delivery(plan)
    assert [(e["host"], e["group"], e["source"], e["first_seq"], e["last_seq"]) for e in exp] == [
        ("h2", "239.10.0.1", "10.0.0.1", 0, 299), ("h3", "239.10.0.1", "10.0.0.1", 0, 299)]
    assert exp[0]["from"] == 1.5 and exp[0]["until"] == pytest.approx(4.49)


def test_expected_delivery_with_joins_and_leaves_mid_stream():
    d = scenario(timeline=[
        {"at": 0, "join": "G", "hosts": "h2"},
        {"at": 2.0, "join": "G", "hosts": "h3"},  # 1 s grace: owed from 3.0 s
        {"at": 4.0, "leave": "G", "hosts": "h2"},  # 0.3 s margin: owed until 3.7 s
        {"at": 1.0, "send": "G", "hosts": "h1", "count": 500, "rate": 100},  # 1.0 .. 5.99 s
    ])
    exp = {e["host"]: e for e in V.expected_delivery(plan_of(d))}
    assert (exp["h2"]["first_seq"], exp["h2"]["last_seq"]) == (0, 270)
    assert (exp["h3"]["first_seq"], exp["h3"]["last_seq"]) == (200, 499)
    assert "h4" not in exp and "h1" not in exp  # non-member, sender


def test_expected_delivery_source_filters():
    plan = V.resolve(V.load_scenario("ssm"), topofile.load("ring4"))
    got = {(e["host"], e["group"], e["source"]) for e in V.expected_delivery(plan)}
    assert got == {
        ("h3", "232.1.1.1", "10.0.0.1"), ("h4", "232.1.1.1", "10.0.0.2"),
        ("h3", "239.11.0.1", "10.0.0.2"), ("h4", "239.11.0.1", "10.0.0.1"), ("h4", "239.11.0.1", "10.0.0.2"),
        ("h3", "ff35::8000:1", "fc00::1"), ("h3", "ff35::8000:1", "fc00::2"), ("h4", "ff35::8000:1", "fc00::2"),
        ("h3", "ff15::11:1", "fc00::2"), ("h4", "ff15::11:1", "fc00::1"),
    }


def test_old_versions_cannot_filter_in_the_network():
    i2 = V.Interest("h2", "239.1.1.1", "include", frozenset({"10.0.0.1"}), 2, 0.0)
    i3 = V.Interest("h2", "239.1.1.1", "include", frozenset({"10.0.0.1"}), 3, 0.0)
    m1 = V.Interest("h2", "ff15::1", "exclude", frozenset({"fc00::1"}), 1, 0.0)
    assert not i2.socket_admits("10.0.0.2") and i2.network_admits("10.0.0.2")
    assert not i3.socket_admits("10.0.0.2") and not i3.network_admits("10.0.0.2")
    assert not m1.socket_admits("fc00::1") and m1.network_admits("fc00::1")
    assert i2.filter_text() == "IGMPv2 INCLUDE{10.0.0.1}"


def test_leave_grace_follows_the_controller_config():
    assert V.leave_grace_for(None) == 3.0
    assert V.leave_grace_for({"membership": {"last_member_query_interval": 0.5}}) == 2.0
    assert V.leave_grace_for({"membership": {"robustness": 3}}) == 4.0
    assert V.leave_grace_for({"membership": {"last_member_query_count": 1, "last_member_query_interval": 2}}) == 3.0
    assert plan_of(scenario(expect={"leave_grace": 0.7})).expect["leave_grace"] == 0.7


def test_stream_schedule():
    s = V.StreamInfo(1, "h1", "239.1.1.1", "10.0.0.1", 10, 100, 50.0, 1000.0, 1001.98)
    assert s.t_of(10) == 1000.0 and s.t_of(60) == 1001.0
    assert s.seqs_between(1000.5, 1001.0) == range(35, 61)
    assert s.seqs_between(999, None) == range(10, 110)
    assert len(s.seqs_between(1003, None)) == 0


def test_a_new_sources_first_packets_are_owed():
    """Exact accounting: a source that has just started owes its members every packet from
    its first one (the controller learns it from that packet and must deliver it); no
    scenario can excuse them (there is no source_grace)."""
    member = V.Interest("h2", "239.1.1.1", "asm", frozenset(), 3, 0.0)
    s = V.StreamInfo(1, "h1", "239.1.1.1", "10.0.0.1", 0, 100, 100.0, 5.0, 5.99)
    assert V.must_receive(member, s, V.DEFAULT_EXPECT) == range(0, 100)
    assert V.must_receive(member, s, V.DEFAULT_EXPECT, sent_at={k: 5.0 + k / 100 for k in range(100)}) == list(range(100))
    assert "source_grace" not in V.DEFAULT_EXPECT
    assert "unknown key(s) 'source_grace'" in err(scenario(expect={"source_grace": 0.1}))
    for name in SCENARIOS:
        assert "source_grace" not in json.loads((ROOT / "mininet" / "scenarios" / f"{name}.json").read_text()).get("expect", {})


# ---------------------------------------------------------------------------
# analysis and verdict on synthetic records
# ---------------------------------------------------------------------------

T0 = 1_000_000.0
N = 100


def synthetic(plan: V.Plan, delay: float = 0.002):
    """Records of a perfect run of `plan` (times = T0 + plan time), as the tools would write them."""
    obs = V.Observed()
    for s in plan.sends:
        t_first = T0 + s.at
        obs.senders[s.stream] = [{"event": "start", "t": t_first}, {
            "event": "sent", "t": t_first + s.seconds, "count": s.count, "errors": 0, "first_seq": 0,
            "last_seq": s.count - 1, "t_first": t_first, "t_last": t_first + (s.count - 1) / s.rate,
            "group": s.group, "src": s.src, "stream": s.stream, "rate": s.rate, "reason": "count"}]
    interests = {(i.host, i.group): i for i in V.plan_interests(plan)}
    for j in plan.joins:
        recs = [{"event": "start", "t": T0 + j.at}, {"event": "joined", "t": T0 + j.at, "group": j.group}]
        i = interests[(j.host, j.group)]
        for s in plan.sends:
            if s.group != j.group or s.host == j.host or not i.socket_admits(s.src):
                continue
            for k in range(s.count):
                sent = T0 + s.at + k / s.rate
                arrive = sent + delay
                if arrive >= T0 + j.at + 0.05 and (j.leave_at is None or arrive < T0 + j.leave_at):
                    recs.append({"event": "rx", "t": arrive, "group": s.group, "src": s.src, "stream": s.stream,
                                 "seq": k, "sent": sent})
        if j.leave_at is not None:
            recs.append({"event": "left", "t": T0 + j.leave_at, "group": j.group, "final": False})
        obs.members[(j.host, j.group)] = recs
    for h in plan.host_names():
        obs.watch[h] = [{"event": "start", "t": T0, "wire": True}]
    return obs


def wire(obs, host, s: V.SendPlan, seqs, t=None):
    for k in seqs:
        sent = T0 + s.at + k / s.rate
        obs.watch[host].append({"event": "wire", "t": t if t is not None else sent + 0.002, "group": s.group,
                                "src": s.src, "stream": s.stream, "seq": k, "sent": sent})


def basic_plan():
    return plan_of(scenario(timeline=[
        {"at": 0, "join": "G", "hosts": "1:-1"},
        {"at": 1.5, "send": "G", "hosts": "first", "count": N, "rate": 100},
    ]))


def test_perfect_run_gives_a_true_verdict():
    plan = basic_plan()
    obs = synthetic(plan)
    wire(obs, "h2", plan.sends[0], range(N))
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is True and rep["problems"] == []
    rows = {r["host"]: r for r in rep["rows"]}
    assert rows["h2"]["expected"] == N and rows["h2"]["unique"] == N and rows["h2"]["status"] == "ok"
    assert rows["h1"]["role"] == "sender"
    assert rep["quiet_hosts"] == ["h4"]


def test_a_duplicate_makes_the_verdict_false():
    plan = basic_plan()
    obs = synthetic(plan)
    obs.members[("h3", "239.1.1.1")].append(dict(obs.members[("h3", "239.1.1.1")][-1]))
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is False
    assert any(p.startswith("h3 ") and "1 duplicate" in p for p in rep["problems"]), rep["problems"]
    assert {r["host"]: r["status"] for r in rep["rows"]}["h3"] == "DUP 1"


def test_a_duplicate_on_the_wire_makes_the_verdict_false():
    plan = basic_plan()
    obs = synthetic(plan)
    wire(obs, "h2", plan.sends[0], [5, 5, 6])
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is False and any("h2" in p and "twice" in p for p in rep["problems"])


def test_a_miss_makes_the_verdict_false_and_names_the_host():
    plan = basic_plan()
    obs = synthetic(plan)
    recs = obs.members[("h2", "239.1.1.1")]
    obs.members[("h2", "239.1.1.1")] = [r for r in recs if not (r["event"] == "rx" and 40 <= r["seq"] < 50)]
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is False
    assert rep["problems"] == ["h2 (member, IGMPv3 ASM): missed 10 of 100 packets of 239.1.1.1 from 10.0.0.1 "
                               "(stream 1): seq 40-49"]


def test_a_leak_to_a_non_member_makes_the_verdict_false():
    plan = basic_plan()
    obs = synthetic(plan)
    wire(obs, "h4", plan.sends[0], range(3))
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is False
    assert any(p.startswith("h4 (non-member)") and "3 packets" in p and "never a member" in p for p in rep["problems"])
    assert "h4" not in rep["quiet_hosts"]


def test_reordering_is_reported_but_not_a_failure():
    plan = basic_plan()
    obs = synthetic(plan)
    recs = obs.members[("h2", "239.1.1.1")]
    rx = [r for r in recs if r["event"] == "rx"]
    for k in ("seq", "sent"):  # arrival (kernel time) order 0 1 4 3 2 5 ...
        rx[2][k], rx[4][k] = rx[4][k], rx[2][k]
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is True
    assert {r["host"]: r["out_of_order"] for r in rep["rows"]}["h2"] == 2
    assert "out of order (informational): 2 packets, h2/stream 1: 2" in V.format_report(rep)


def test_a_packet_sent_back_to_its_sender_is_a_leak():
    plan = basic_plan()
    obs = synthetic(plan)
    wire(obs, "h1", plan.sends[0], [0])
    rep = V.analyse(plan, obs)
    assert any("sent back to its own sender" in p for p in rep["problems"])


def test_leaks_around_joins_leaves_and_filters():
    d = scenario(timeline=[
        {"at": 0, "join": "G", "hosts": "h2"},
        {"at": 3, "leave": "G", "hosts": "h2"},
        {"at": 4, "join": "G", "hosts": "h3"},
        {"at": 0, "join": "G", "hosts": "h4", "mode": "exclude", "sources": ["h1"]},
        {"at": 1, "send": "G", "hosts": "h1", "count": 500, "rate": 100},
    ])
    plan = plan_of(d)
    assert plan.expect["leave_grace"] == 3.0
    s = plan.sends[0]
    obs = synthetic(plan)
    wire(obs, "h2", s, [250], t=T0 + 3.0 + 2.9)  # within the leave grace: fine
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is True, rep["problems"]
    wire(obs, "h2", s, [450], t=T0 + 3.0 + 3.2)  # too long after the leave
    wire(obs, "h3", s, [290], t=T0 + 3.9)  # before its join
    wire(obs, "h4", s, [10])  # a source its filter excludes
    rep = V.analyse(plan, obs)
    reasons = {r["host"]: r["leak_reasons"] for r in rep["rows"]}
    assert reasons["h2"] == ["more than 3s after its leave"]
    assert reasons["h3"] == ["before its join"]
    assert reasons["h4"] == ["source 10.0.0.1 filtered out (IGMPv3 EXCLUDE{10.0.0.1})"]
    assert rep["verdict"] is False and len(rep["problems"]) == 3


def test_latencies_are_measured_for_mid_stream_joins_and_leaves():
    d = scenario(timeline=[
        {"at": 0, "join": "G", "hosts": "h2"},
        {"at": 3, "leave": "G", "hosts": "h2"},
        {"at": 3, "join": "G", "hosts": "h3"},
        {"at": 0, "join": "G", "hosts": "h4"},  # joined before the stream: no join latency
        {"at": 1, "send": "G", "hosts": "h1", "count": 500, "rate": 100},
    ])
    plan = plan_of(d)
    obs = synthetic(plan, delay=0.002)
    s = plan.sends[0]
    wire(obs, "h2", s, range(200, 212), t=None)  # 1.99..2.11 s after start: up to 0.11 s before leave...
    obs.watch["h2"] += [{"event": "wire", "t": T0 + 3.0 + 0.8, "group": s.group, "src": s.src, "stream": 1,
                         "seq": 279, "sent": T0 + 3.79}]
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is True, rep["problems"]
    lat = rep["latency"]
    assert lat["leave"]["n"] == 1 and lat["leave"]["median"] == pytest.approx(0.8)
    assert lat["join"]["n"] == 1 and lat["join"]["per_host"]["h3/239.1.1.1"] == pytest.approx(0.052, abs=0.011)


def test_a_packet_sent_late_near_a_leave_is_not_owed():
    d = scenario(timeline=[
        {"at": 0, "join": "G", "hosts": ["h2", "h3"]},
        {"at": 3, "leave": "G", "hosts": "h2"},  # owed until 2.7 s
        {"at": 1, "send": "G", "hosts": "h1", "count": 300, "rate": 100},
    ])
    plan = plan_of(d)
    obs = synthetic(plan)
    h2 = obs.members[("h2", "239.1.1.1")]
    obs.members[("h2", "239.1.1.1")] = [r for r in h2 if r.get("seq") != 169]  # scheduled at 2.69 s
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is False and "seq 169" in rep["problems"][0]
    for r in obs.members[("h3", "239.1.1.1")]:
        if r.get("seq") == 169:
            r["sent"] = T0 + 2.75  # h3 saw it stamped after h2's margin: the CPU held the sender up
    assert V.analyse(plan, obs)["verdict"] is True


def test_sender_and_receiver_failures_are_problems():
    plan = basic_plan()
    obs = synthetic(plan)
    obs.senders[1] = [{"event": "error", "t": T0, "msg": "OSError: boom"}]
    obs.members[("h2", "239.1.1.1")] = [{"event": "error", "t": T0, "msg": "RuntimeError: no iface"}]
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is False
    assert any("sender of stream 1" in p and "boom" in p for p in rep["problems"])
    assert any("h2: receiver for 239.1.1.1 never joined: RuntimeError: no iface" == p for p in rep["problems"])


def test_refused_sends_are_problems():
    plan = basic_plan()
    obs = synthetic(plan)
    obs.senders[1][1].update(errors=3, last_error="OSError: ENOBUFS")
    rep = V.analyse(plan, obs)
    assert any("3 of 100 sends" in p for p in rep["problems"])


# ---------------------------------------------------------------------------
# links
# ---------------------------------------------------------------------------

LINKS = [(1, 1, 2, 1), (2, 2, 3, 1), (3, 2, 4, 1), (4, 2, 1, 2)]  # ring4
TREE = {1: {(1, 1, 2, 1), (2, 2, 3, 1)}}


def links(tx, **kw):
    args = dict(links=LINKS, tx=tx, background={}, trees=TREE, packets={1: 300}, slack=10,
                optimal={1: 2}, names={1: "s1", 2: "s2", 3: "s3", 4: "s4"})
    args.update(kw)
    return V.link_report(**args)


def test_links_ok_when_each_tree_link_carries_each_packet_once():
    tx = {(1, 1): 303, (2, 2): 301, (2, 1): 2, (3, 1): 1, (3, 2): 0, (4, 1): 3, (4, 2): 2, (1, 2): 1}
    rep = links(tx)
    assert rep["ok"] and rep["problems"] == []
    assert rep["tree_copies"] == 600 and rep["optimal_copies"] == 600
    assert rep["stress"] == pytest.approx((303 + 301 + 2 + 1 + 3 + 2 + 1) / 600, abs=1e-3)
    row = next(r for r in rep["rows"] if r["link"] == "s1:1->s2:1")
    assert row["allowed"] == 300 and row["per_packet"] == pytest.approx(1.01)


def test_a_link_carrying_a_stream_twice_makes_the_verdict_false():
    tx = {(1, 1): 600, (2, 2): 300}
    rep = links(tx)
    assert not rep["ok"]
    assert rep["problems"] == ["link s1:1->s2:1 carried 600 packets; its trees allow 300 (each packet once): "
                               "a stream crossed it more than once"]
    plan = basic_plan()
    obs = synthetic(plan)
    obs.links = dict(links=LINKS, tx=tx, background={}, trees=TREE, packets={1: 300})
    rep = V.analyse(plan, obs)
    assert rep["verdict"] is False and rep["links"]["ok"] is False


def test_a_link_off_the_tree_carrying_the_stream_is_reported():
    rep = links({(1, 1): 300, (2, 2): 300, (1, 2): 300})
    assert rep["problems"] == ["link s1:2->s4:2 is on no tree but carried 300 packets"]


def test_background_and_slack():
    rep = links({(1, 1): 300, (2, 2): 300, (1, 2): 30}, background={(1, 2): 25.0})
    assert rep["ok"]
    assert not links({(1, 2): 30})["ok"]
    assert links({(1, 2): 30}, window=8, hosts=8)["ok"]  # 10 + 8 + 16 tolerated


def test_shared_trees_are_oriented_from_the_source():
    view = {"*": [{"from": [2, 2], "to": [3, 1]}, {"from": [2, 1], "to": [1, 1]}]}
    assert V.directed_tree_edges(view, "10.0.0.1", 1) == {(1, 1, 2, 1), (2, 2, 3, 1)}
    assert V.directed_tree_edges(view, "10.0.0.3", 3) == {(3, 1, 2, 2), (2, 1, 1, 1)}
    src = {"10.0.0.1": [{"from": [1, 1], "to": [2, 1]}]}
    assert V.directed_tree_edges(src, "10.0.0.1", 1) == {(1, 1, 2, 1)}
    assert V.directed_tree_edges(src, "10.0.0.9", 1) == set()


def test_fault_edge_cuts_off_the_most_members():
    edges = {(1, 1, 2, 1), (2, 2, 3, 1), (1, 3, 5, 1), (3, 2, 4, 1)}
    members = [(3, 9), (4, 9), (5, 9), (1, 9)]
    edge, below = V.pick_fault_edge(edges, members, root=1)
    assert edge == (1, 1, 2, 1) and below == {2, 3, 4}
    assert V.subtree(edges, 3) == {3, 4}
    assert V.pick_fault_edge(edges, [(1, 9)], root=1) is None


def test_optimal_links():
    g = topofile.ring(6).graph()
    assert V.optimal_links(g, [1, 3]) == 2
    assert V.optimal_links(g, [1, 3, 5]) == 4
    assert V.optimal_links(g, [1]) == 0
    big = nx.path_graph(30)
    assert V.optimal_links(big, list(range(0, 30, 2))) == 28  # 15 terminals: the heuristic path
    ft = topofile.fat_tree(4).graph()
    edge_switches = [n for n in ft if ft.degree(n) == 2][:4]
    assert V.optimal_links(ft, edge_switches) >= 3


def test_stats_and_percentiles():
    assert V.stats([]) == {"n": 0, "median": None, "p95": None, "max": None}
    s = V.stats(range(1, 101))
    assert (s["n"], s["median"], s["p95"], s["max"]) == (100, 50.5, 95, 100)
    assert V.percentile([3.0], 95) == 3.0


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------


def test_table_and_json_formatting():
    plan = basic_plan()
    obs = synthetic(plan)
    obs.members[("h3", "239.1.1.1")] = [r for r in obs.members[("h3", "239.1.1.1")] if r.get("seq") != 7]
    obs.links = dict(links=LINKS, tx={(1, 1): 100, (2, 2): 100}, background={}, trees=TREE, packets={1: 100},
                     names={1: "s1", 2: "s2", 3: "s3", 4: "s4"}, optimal={1: 2})
    rep = V.analyse(plan, obs)
    text = V.format_report(rep)
    lines = text.splitlines()
    assert lines[0] == "scenario t on ring4"
    assert lines[1].split() == ["host", "role", "group", "source", "st", "filter", "owed", "got", "dup", "miss",
                                "leak", "join", "leave", "status"]
    h3 = next(l for l in lines if l.startswith("h3 "))
    assert h3.split()[-2:] == ["MISS", "1"]
    assert "s1:1->s2:1" in text and "stress" in text
    assert "verdict: FALSE" in text and "  - h3 (member, IGMPv3 ASM): missed 1 of 100" in text
    assert "h4    non-member" in text
    data = json.loads(V.report_json(rep))
    assert data["verdict"] is False and data["rows"][0]["host"] == "h1"
    assert data["links"]["rows"][0]["from"] == [1, 1]
    assert "links" not in V.format_report(rep, links=False).split("verdict")[0].split("\n")[-3]


def test_tree_rendering():
    spec = topofile.load("ring4")
    view = {"groups": [{
        "group": "239.1.1.1", "mode": "spt", "root": None,
        "members": [{"dpid": 3, "port": 3, "mode": "exclude", "sources": []},
                    {"dpid": 2, "port": 3, "mode": "include", "sources": ["10.0.0.1"]}],
        "sources": [{"address": "10.0.0.1", "dpid": 1, "port": 3}, {"address": "10.0.0.4", "dpid": 4, "port": 3}],
        "trees": {"10.0.0.1": [{"from": [1, 1], "to": [2, 1]}, {"from": [2, 2], "to": [3, 1]}], "10.0.0.4": []},
    }]}
    text = V.format_trees(view, spec)
    assert "group 239.1.1.1  (mode spt)" in text
    assert "members: s2:3 h2 INCLUDE{10.0.0.1}; s3:3 h3 ASM" in text
    assert "source 10.0.0.1 (h1) enters at s1:3: 2 links" in text
    assert "`- s1:1 -> s2:1  [h2@3]" in text
    assert "`- s2:2 -> s3:1  [h3@3]" in text
    assert "nobody wants it" in text
    assert V.format_trees({"groups": []}) == "(no groups)"


def test_shared_tree_rendering():
    view = {"groups": [{"group": "239.1.1.1", "mode": "shared", "root": 2, "members": [], "sources": [],
                        "trees": {"*": [{"from": [2, 1], "to": [1, 1]}, {"from": [2, 2], "to": [3, 1]}]}}]}
    text = V.format_trees(view)
    assert "shared tree (2 links, bidirectional)" in text and "s2:1 -> s1:1" in text


# ---------------------------------------------------------------------------
# the CLI's own checks (no root needed: they come before anything starts)
# ---------------------------------------------------------------------------


def test_parse_controller():
    r = _load_runner()
    assert r.parse_controller("http://127.0.0.1:8080:6653") == ("http://127.0.0.1:8080", 6653)
    assert r.parse_controller("http://ctl:6653") == ("http://ctl", 6653)  # REST on port 80
    for bad in ("127.0.0.1:6653", "http://x:8080:99999", "http://x:8080:"):
        with pytest.raises(ValueError):
            r.parse_controller(bad)


def test_cli_rejects_bad_scenarios_with_status_2(tmp_path, capsys):
    r = _load_runner()
    bad = tmp_path / "bad.json"
    d = scenario()
    d["timeline"][0]["hosts"] = "h9"
    bad.write_text(json.dumps(d))
    assert r.main([str(bad)]) == 2
    assert "no host 'h9'" in capsys.readouterr().err
    assert r.main(["basic", "--topo", "nosuchtopo"]) == 2
    d = copy.deepcopy(scenario())
    del d["topology"]
    nt = tmp_path / "notopo.json"
    nt.write_text(json.dumps(d))
    assert r.main([str(nt)]) == 2
    assert "pass --topo" in capsys.readouterr().err
