"""The REST API (mcast_sdn/rest.py) through the real Ryu WSGI stack, without a network.

A `WSGIApplication` gets the API attached to a fake application object that holds a real
`Core` (three switches in a line, hosts learned from real frames, an IGMP member and a
sender), records the `Out`s it is asked to send and reads switches back from what the
core installed (serialised and parsed with Ryu's OpenFlow 1.3 classes, as a switch would
answer). Requests are `webob.Request.blank(...).get_response(wsgi)`.

Also here: the OpenAPI document equals the registered routes and every response
validates against it, and a schemathesis run over the document finds no 5xx.
"""
from __future__ import annotations

import copy
import ipaddress
import io
import json
import logging
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, settings as hsettings
from ryu.app.wsgi import WSGIApplication
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as ofparser
from webob import Request

from mcast_sdn import ofmsgs, packets, rest, settings, topofile
from mcast_sdn.config import MembershipConfig
from mcast_sdn import fakedp
from mcast_sdn.core import Core, CoreConfig
from mcast_sdn.messages import GroupRecord, RecordType
from mcast_sdn.ofmodel import COOKIE_MISS, COOKIE_PUNT, COOKIE_SRCDISC, FlowEntry, Output, ToGroup
from mcast_sdn.packets import multicast_mac

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
DOC = yaml.safe_load(DOC_PATH.read_text())
TOKEN = "t0k3n-for-unit-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
G = "239.1.1.1"


# ------------------------------------------------------------------ the fake application
class FakeApp:
    def __init__(self, core: Core, token: str | None = TOKEN, static=(), host_names=None, membership=None):
        self.core = core
        self.settings = settings.Settings()
        self.settings.rest = settings.RestSettings(token, dict(host_names or {}))
        self.settings.static = tuple(static)
        self.dps = {d: object() for d in core.installed}
        self.sent = []
        self.t = 1.0
        self.tamper = None  # callable(flows, groups) -> (flows, groups), to fake a disagreeing switch
        self.read_error: Exception | None = None

    def now(self) -> float:
        return self.t

    def send(self, out) -> None:
        self.sent.append(out)

    def read_switch(self, dpid: int, timeout: float = 5.0) -> dict:
        if self.read_error is not None:
            raise self.read_error
        if dpid not in self.dps:
            raise KeyError(dpid)
        inst = self.core.installed[dpid]
        flows = [wire_flow(f) for f in inst.flows.values()]
        groups = [wire_group(g) for g in inst.groups.values()]
        if self.tamper:
            flows, groups = self.tamper(flows, groups)
        return {"flows": flows, "groups": groups}


def _roundtrip(obj, cls):
    buf = bytearray()
    obj.serialize(buf, 0)
    return cls.parser(bytes(buf), 0)


def wire_flow(e: FlowEntry):
    """What a switch would answer for entry `e` (match and instructions through the wire format)."""
    m = _roundtrip(ofparser.OFPMatch(**dict(e.match)), ofparser.OFPMatch)
    ins = [_roundtrip(i, ofparser.OFPInstruction) for i in ofmsgs._instructions(e)]
    return ofparser.OFPFlowStats(table_id=e.table, duration_sec=1, duration_nsec=0, priority=e.priority,
                                 idle_timeout=e.idle_timeout, hard_timeout=e.hard_timeout, flags=0, cookie=e.cookie,
                                 packet_count=0, byte_count=0, match=m, instructions=ins)


def wire_group(g):
    buckets = [_roundtrip(b, ofparser.OFPBucket) for b in ofmsgs._buckets(g)]
    return ofparser.OFPGroupDescStats(type_=ofp.OFPGT_ALL, group_id=g.group_id, buckets=buckets)


# ------------------------------------------------------------------ a small network in the core
SPEC = topofile.linear(3)  # s1 - s2 - s3; h1 on s1:2, h2 on s2:3, h3 on s3:2


def host(name):
    return SPEC.host(name)


def ip(h) -> str:
    return h.ip.split("/")[0]


def build_core(connect: bool = True, membership: MembershipConfig | None = None, static=()) -> Core:
    core = Core(CoreConfig(settle=0.0), membership)
    for j in static:
        core.static_join(0.0, j.dpid, j.port, j.group, j.source)
    if connect:
        connect_all(core)
    return core


def connect_all(core: Core) -> None:
    fakedp.connect(core, SPEC)
    core.tick(0.1)


def igmp_join(core: Core, h, group: str, now: float = 0.5, sources=(), mode=RecordType.CHANGE_TO_EXCLUDE):
    rec = GroupRecord(mode, ipaddress.ip_address(group), tuple(ipaddress.ip_address(s) for s in sources))
    frame = packets.build_igmp_report(3, h.mac, ip(h), records=[rec])
    return core.packet_in(now, SPEC.dpid(h.switch), h.port, COOKIE_PUNT, frame)


def udp_frame(h, group: str) -> bytes:
    src = ipaddress.ip_address(ip(h))
    g = ipaddress.ip_address(group)
    mac = bytes.fromhex(multicast_mac(g).replace(":", ""))
    hdr = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 8, 17, 0, 0]) + src.packed + g.packed
    return mac + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x00" + hdr + b"\x00" * 8


def send_first_packet(core: Core, h, group: str, now: float = 0.6):
    return core.packet_in(now, SPEC.dpid(h.switch), h.port, COOKIE_SRCDISC, udp_frame(h, group))


def learn(core: Core, h, now: float = 0.4):
    frame = b"\xff" * 6 + bytes.fromhex(h.mac.replace(":", "")) + b"\x08\x06" + b"\x00" * 28
    core.packet_in(now, SPEC.dpid(h.switch), h.port, COOKIE_MISS, frame)


def populated_core(**kw) -> Core:
    core = build_core(**kw)
    for h in SPEC.hosts:
        learn(core, h)
    igmp_join(core, host("h1"), G)  # h1 learned with its IPv4 address too
    igmp_join(core, host("h2"), "239.2.2.2")
    send_first_packet(core, host("h3"), G)
    return core


def make_wsgi(app) -> WSGIApplication:
    w = WSGIApplication()
    rest.attach(w, app)
    return w


class Client:
    def __init__(self, app, wsgi):
        self.app, self.wsgi = app, wsgi

    def __call__(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        req = Request.blank(path, method=method, headers=h, **({"body": data} if data is not None else {}))
        resp = req.get_response(self.wsgi)
        assert resp.content_type == "application/json", (method, path, resp.status, resp.body[:200])
        return resp.status_int, json.loads(resp.body), resp

    def get(self, path, **kw):
        return self("GET", path, **kw)

    def w(self, method, path, body=None, **kw):
        return self(method, path, body, headers=AUTH, **kw)


@pytest.fixture
def env():
    core = populated_core()
    app = FakeApp(core, host_names={"camera": host("h2").mac, "h3name": ip(host("h3"))})
    return Client(app, make_wsgi(app))


def state_of(core: Core) -> dict:
    """Everything an API write may change (to show that refused writes change nothing)."""
    return {
        "static": dict(core.static_joins),
        "trees": copy.deepcopy(core.tree_config),
        "membership": core.members.config,
        "groups": {str(g): core.group_view(g) for g in set(core.routes) | set(core.members.groups())},
        "installed": {d: (dict(s.flows), dict(s.groups)) for d, s in core.installed.items()},
        "immediate": {k: core.members.port_state(*k)["immediate_leave"] for k in core.members.ports()},
    }


# ------------------------------------------------------------------ OpenAPI helpers
def response_schema(method: str, template: str, status: int) -> dict:
    op = DOC["paths"][template][method.lower()]
    resp = op["responses"][str(status)]
    if "$ref" in resp:
        resp = DOC["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    return resp["content"]["application/json"]["schema"]


def validate(method: str, template: str, status: int, body) -> None:
    schema = dict(response_schema(method, template, status))
    schema["components"] = DOC["components"]
    jsonschema.Draft202012Validator(schema).validate(body)


# ================================================================== routes and document
def test_routes_equal_openapi_document():
    doc = {(m.upper(), p) for p, ops in DOC["paths"].items() for m in ops if m in ("get", "put", "post", "delete", "patch")}
    assert doc == rest.routes()
    assert len(doc) == 20


def test_every_operation_documents_its_errors():
    for p, ops in DOC["paths"].items():
        for m, op in ops.items():
            codes = set(op["responses"])
            if m != "get":
                assert {"401", "403", "400"} <= codes, (m, p)
                assert op.get("security") == [{"bearerAuth": []}]
            if "{" in p:
                assert {"400", "404"} <= codes, (m, p)
            if "requestBody" in op:
                assert "413" in codes


def test_document_examples_validate_against_their_schemas():
    comps = DOC["components"]
    n = 0
    for p, ops in DOC["paths"].items():
        for m, op in ops.items():
            rb = op.get("requestBody", {}).get("content", {}).get("application/json")
            if rb and "example" in rb:
                jsonschema.Draft202012Validator({**rb["schema"], "components": comps}).validate(rb["example"])
                n += 1
    for name, r in comps["responses"].items():
        c = r["content"]["application/json"]
        if "example" in c:
            jsonschema.Draft202012Validator({**c["schema"], "components": comps}).validate(c["example"])
            n += 1
    assert n >= 8


def test_route_requirements_match_document_patterns():
    params = DOC["components"]["parameters"]
    assert params["Dpid"]["schema"]["pattern"] == f"^{rest.DPID_RE}$"
    assert params["Port"]["schema"]["pattern"] == f"^{rest.PORT_RE}$"
    assert params["Group"]["schema"]["pattern"] == f"^{rest.GROUP_RE}$"


# ================================================================== reads
READS = [
    ("/mcast/v1/topology", "/mcast/v1/topology"),
    ("/mcast/v1/stats", "/mcast/v1/stats"),
    ("/mcast/v1/counters", "/mcast/v1/counters"),
    ("/mcast/v1/membership", "/mcast/v1/membership"),
    ("/mcast/v1/groups", "/mcast/v1/groups"),
    ("/mcast/v1/groups/239.1.1.1", "/mcast/v1/groups/{group}"),
    ("/mcast/v1/switches", "/mcast/v1/switches"),
    ("/mcast/v1/switches/1", "/mcast/v1/switches/{dpid}"),
    ("/mcast/v1/switches/0x2?verify=1", "/mcast/v1/switches/{dpid}"),
    ("/mcast/v1/ports", "/mcast/v1/ports"),
    ("/mcast/v1/ports/1/2", "/mcast/v1/ports/{dpid}/{port}"),
    ("/mcast/v1/ports/1/1", "/mcast/v1/ports/{dpid}/{port}"),
    ("/mcast/v1/router-ports", "/mcast/v1/router-ports"),
    ("/mcast/v1/static", "/mcast/v1/static"),
    ("/mcast/v1/policy/trees", "/mcast/v1/policy/trees"),
    ("/mcast/v1/policy/limits", "/mcast/v1/policy/limits"),
]


@pytest.mark.parametrize("path,template", READS)
def test_reads_are_open_and_match_the_document(env, path, template):
    env.app.settings.rest = settings.RestSettings(None)  # reads need no token at all
    status, body, _ = env.get(path)
    assert status == 200, body
    validate("GET", template, 200, body)


def test_group_view_members_senders_tree(env):
    s, body, _ = env.get("/mcast/v1/groups")
    assert [g["group"] for g in body["groups"]] == [G, "239.2.2.2"]
    s, g, _ = env.get(f"/mcast/v1/groups/{G}")
    assert s == 200
    h1, h3 = host("h1"), host("h3")
    assert g["mode"] == "spt" and g["family"] == 4 and g["ssm"] is False
    assert g["members"] == [{"dpid": 1, "port": h1.port, "mode": "exclude", "sources": [], "static": False, "hosts": [h1.mac]}]
    assert g["sources"] == [{"address": ip(h3), "dpid": 3, "port": h3.port}]
    # tree from s3 (the sender's switch) to s1: s3 -> s2 -> s1, with the link ports
    edges = {(tuple(e["from"]), tuple(e["to"])) for e in g["trees"][ip(h3)]}
    assert edges == {((3, 1), (2, 2)), ((2, 1), (1, 1))}
    assert g["static_joins"] == []


@pytest.mark.parametrize("path,status", [
    ("/mcast/v1/groups/239.9.9.9", 404),  # multicast, unknown
    ("/mcast/v1/groups/10.0.0.1", 400),  # not multicast
    ("/mcast/v1/groups/1.2.3", 400),  # not an address
    ("/mcast/v1/groups/ff0e::1", 404),
    ("/mcast/v1/groups/nope", 404),  # fails the route requirement: unknown resource
    ("/mcast/v1/switches/9", 404),
    ("/mcast/v1/switches/0", 400),
    ("/mcast/v1/switches/99999999999999999999", 400),
    ("/mcast/v1/switches/0x", 404),
    ("/mcast/v1/switches/1?verify=maybe", 400),
    ("/mcast/v1/ports/1/77", 404),
    ("/mcast/v1/ports/9/1", 404),
    ("/mcast/v1/ports/1/0", 400),
    ("/mcast/v1/ports/1/9999999999", 400),
    ("/mcast/v1/nothing/here", 404),
    ("/mcast/v1/groups/", 404),
])
def test_read_errors(env, path, status):
    s, body, _ = env.get(path)
    assert (s, body["status"]) == (status, status), body
    assert isinstance(body["error"], str) and body["error"]


def test_switch_view_lists_installed_entries_and_verify_agrees(env):
    s, sw, _ = env.get("/mcast/v1/switches/2?verify=1")
    assert s == 200
    inst = env.app.core.installed[2]
    assert len(sw["flows"]) == len(inst.flows) and len(sw["groups"]) == len(inst.groups) >= 1
    assert sw["multicast_groups"] == [G]
    assert sw["verify"]["ok"] is True, sw["verify"]
    assert sw["verify"]["flows"]["switch"] == len(inst.flows)
    s, sw, _ = env.get("/mcast/v1/switches/0x0000000000000002")
    assert s == 200 and sw["dpid"] == 2 and "verify" not in sw


def test_verify_reports_missing_extra_different(env):
    core = env.app.core
    inst = core.installed[2]
    mc = next(f for f in inst.flows.values() if any(isinstance(a, ToGroup) for a in f.actions))
    gid = next(iter(inst.groups))

    def tamper(flows, groups):
        flows = [f for f in flows if rest.flow_from_stats(f).key != rest._norm_flow(mc).key]
        extra = FlowEntry(0, 7, (("in_port", 9),), (Output(1),), cookie=mc.cookie)
        flows.append(wire_flow(extra))
        g0 = groups[0]
        groups = [ofparser.OFPGroupDescStats(type_=ofp.OFPGT_ALL, group_id=g0.group_id,
                                             buckets=[_roundtrip(ofparser.OFPBucket(0, ofp.OFPP_ANY, ofp.OFPG_ANY, [ofparser.OFPActionOutput(42, 0)]), ofparser.OFPBucket)])]
        groups.append(wire_group(type(inst.groups[gid])(999, ((Output(5),),))))
        return flows, groups

    env.app.tamper = tamper
    s, sw, _ = env.get("/mcast/v1/switches/2?verify=true")
    assert s == 200
    v = sw["verify"]
    validate("GET", "/mcast/v1/switches/{dpid}", 200, sw)
    assert v["ok"] is False
    assert [f["priority"] for f in v["flows"]["missing"]] == [mc.priority]
    assert [(f["table"], f["priority"]) for f in v["flows"]["extra"]] == [(0, 7)]
    assert [g["group_id"] for g in v["groups"]["extra"]] == [999]
    assert len(v["groups"]["different"]) == 1 and v["groups"]["different"][0]["switch"]["buckets"] == [["output:42"]]


def test_verify_flags_a_changed_action_as_different(env):
    inst = env.app.core.installed[1]
    victim = next(f for f in inst.flows.values() if f.actions and isinstance(f.actions[0], Output))

    def tamper(flows, groups):
        out = []
        for st in flows:
            e = rest.flow_from_stats(st)
            if e.key == rest._norm_flow(victim).key:
                st = wire_flow(FlowEntry(victim.table, victim.priority, victim.match, (Output(99),), victim.goto, victim.cookie))
            out.append(st)
        return out, groups

    env.app.tamper = tamper
    s, sw, _ = env.get("/mcast/v1/switches/1?verify=1")
    diffs = sw["verify"]["flows"]["different"]
    assert len(diffs) == 1 and diffs[0]["switch"]["actions"] == ["output:99"]


def test_verify_expired_hard_timeout_entries_are_not_failures(env):
    core = env.app.core
    # a sender nobody wants: negative-cache entry with a hard timeout at its first hop
    send_first_packet(core, host("h2"), "239.5.5.5", now=0.7)
    neg = [f for f in core.installed[2].flows.values() if f.hard_timeout]
    assert neg
    env.app.tamper = lambda flows, groups: ([f for f in flows if not f.hard_timeout], groups)
    s, sw, _ = env.get("/mcast/v1/switches/2?verify=1")
    assert sw["verify"]["ok"] is True and len(sw["verify"]["flows"]["expired"]) == len(neg)


@pytest.mark.parametrize("error,status", [(KeyError(2), 409), (TimeoutError(), 504), (RuntimeError("OFError"), 502)])
def test_verify_switch_read_failures(env, error, status):
    env.app.read_error = error
    s, body, _ = env.get("/mcast/v1/switches/2?verify=1")
    assert s == status and body["status"] == status
    validate("GET", "/mcast/v1/switches/{dpid}", status, body)
    s, _, _ = env.get("/mcast/v1/switches/2")  # without verify: no read
    assert s == 200


def test_port_view_querier_state(env):
    h1 = host("h1")
    s, p, _ = env.get(f"/mcast/v1/ports/1/{h1.port}")
    assert s == 200
    assert p["kind"] == "edge" and p["hosts"] == [h1.mac] and p["immediate_leave"] is False
    assert set(p["membership"]["queriers"]) == {"ipv4", "ipv6"}
    assert p["membership"]["queriers"]["ipv4"]["querier"] is True
    assert G in p["membership"]["groups"]
    s, ports, _ = env.get("/mcast/v1/ports")
    row = next(r for r in ports["ports"] if (r["dpid"], r["port"]) == (1, h1.port))
    assert row["groups"] == 1 and row["querier"] == {"ipv4": True, "ipv6": True}
    link = next(r for r in ports["ports"] if (r["dpid"], r["port"]) == (1, 1))
    assert link["kind"] == "link" and link["groups"] == 0


def test_router_ports_static_and_learned():
    core = populated_core(membership=MembershipConfig(static_router_ports=frozenset({(2, 3)})))
    h3 = host("h3")
    frame = packets.build_pim_hello(h3.mac, ip(h3))
    core.packet_in(0.8, 3, h3.port, COOKIE_PUNT, frame)
    app = FakeApp(core)
    c = Client(app, make_wsgi(app))
    s, body, _ = c.get("/mcast/v1/router-ports")
    assert body["router_ports"] == [
        {"dpid": 2, "port": 3, "static": True, "families": [4, 6]},
        {"dpid": 3, "port": h3.port, "static": False, "families": [4]},
    ]


def test_counters_separate_drop_reasons(env):
    env.app.core.packet_in(0.9, 1, host("h1").port, COOKIE_PUNT, b"\x01" * 10)  # runt
    s, body, _ = env.get("/mcast/v1/counters")
    assert body["drops"].get("core.drop_runt") == 1
    assert all(k in body["counters"] for k in body["drops"])
    assert all("drop" in k for k in body["drops"])


def test_stats_and_topology_keep_their_shape(env):
    s, st, _ = env.get("/mcast/v1/stats")
    assert st["switches"] == [1, 2, 3] and "core.packet_in" in st["counters"]
    s, topo, _ = env.get("/mcast/v1/topology")
    assert set(topo["switches"]) == {"1", "2", "3"} and len(topo["links"]) == 2


# ================================================================== static joins
def test_static_join_and_leave_by_port(env):
    core, app = env.app.core, env.app
    h2 = host("h2")
    n = len(app.sent)
    s, body, _ = env.w("POST", "/mcast/v1/static", {"dpid": 2, "port": h2.port, "group": G})
    assert s == 201, body
    validate("POST", "/mcast/v1/static", 201, body)
    assert body["joined"] == {"dpid": 2, "port": h2.port, "group": G, "source": None}
    assert core.static_joins[(2, h2.port, ipaddress.ip_address(G))] is None
    assert len(app.sent) == n + 1 and body["changes"] == app.sent[-1].count() > 0
    m = {(x["dpid"], x["port"]): x for x in body["group"]["members"]}
    assert m[(2, h2.port)]["static"] is True and m[(2, h2.port)]["hosts"] == [h2.mac]
    # the sender's tree now also reaches s2's host port: group bucket on s2 includes h2.port
    s2_groups = [set(a.port for b in g.buckets for a in b) for g in core.installed[2].groups.values()]
    assert any(h2.port in ports for ports in s2_groups)
    s, lst, _ = env.get("/mcast/v1/static")
    assert lst["static"] == [body["joined"]]
    s, again, _ = env.w("POST", "/mcast/v1/static", {"dpid": 2, "port": h2.port, "group": G})
    assert s == 409 and "already present" in again["error"]
    # leave via the path form
    s, left, _ = env.w("DELETE", f"/mcast/v1/static/2/{h2.port}/{G}")
    assert s == 200, left
    validate("DELETE", "/mcast/v1/static/{dpid}/{port}/{group}", 200, left)
    assert left["left"]["group"] == G and not core.static_joins
    assert all((x["dpid"], x["port"]) != (2, h2.port) for x in left["group"]["members"])
    s, again, _ = env.w("DELETE", f"/mcast/v1/static/2/{h2.port}/{G}")
    assert s == 409 and "no static join" in again["error"]


def test_static_source_specific_join_and_leave_by_body(env):
    core = env.app.core
    h2, h3 = host("h2"), host("h3")
    body = {"dpid": 2, "port": h2.port, "group": "232.1.1.1", "source": ip(h3)}
    s, r, _ = env.w("POST", "/mcast/v1/static", body)
    assert s == 201, r
    assert r["group"]["ssm"] is True and r["group"]["members"][0]["mode"] == "include"
    assert r["group"]["members"][0]["sources"] == [ip(h3)]
    s, r2, _ = env.w("POST", "/mcast/v1/static", {**body, "source": ip(host("h1"))})
    assert s == 201 and sorted(r2["group"]["members"][0]["sources"]) == sorted([ip(h3), ip(host("h1"))])
    s, r3, _ = env.w("DELETE", "/mcast/v1/static", body)
    assert s == 200 and r3["group"]["members"][0]["sources"] == [ip(host("h1"))]
    s, r4, _ = env.w("DELETE", "/mcast/v1/static", body)
    assert s == 409
    s, r5, _ = env.w("DELETE", "/mcast/v1/static", {"dpid": 2, "port": h2.port, "group": "232.1.1.1"})
    assert s == 200 and not core.static_joins


def test_static_star_g_covers_sources(env):
    h2 = host("h2")
    assert env.w("POST", "/mcast/v1/static", {"dpid": 2, "port": h2.port, "group": G})[0] == 201
    s, r, _ = env.w("POST", "/mcast/v1/static", {"dpid": 2, "port": h2.port, "group": G, "source": "10.0.0.3"})
    assert s == 409 and "(*, 239.1.1.1)" in r["error"]
    s, r, _ = env.w("DELETE", "/mcast/v1/static", {"dpid": 2, "port": h2.port, "group": G, "source": "10.0.0.3"})
    assert s == 409 and "leave without a source" in r["error"]
    # (*,G) over an existing (S,G): upgrade
    assert env.w("POST", "/mcast/v1/static", {"dpid": 1, "port": 2, "group": "239.3.3.3", "source": "10.0.0.3"})[0] == 201
    s, r, _ = env.w("POST", "/mcast/v1/static", {"dpid": 1, "port": 2, "group": "239.3.3.3"})
    assert s == 201 and r["group"]["members"][0]["mode"] == "exclude"


@pytest.mark.parametrize("ref", ["00:00:00:00:00:02", "00-00-00-00-00-02", "10.0.0.2", "camera"])
def test_static_join_by_host(env, ref):
    h2 = host("h2")
    # h2's IPv4 address is known because it sent an IGMP report
    s, r, _ = env.w("POST", "/mcast/v1/static", {"host": ref, "group": G})
    assert s == 201, r
    assert (r["joined"]["dpid"], r["joined"]["port"]) == (2, h2.port)
    s, r, _ = env.w("DELETE", "/mcast/v1/static", {"host": ref, "group": G})
    assert s == 200, r


def test_static_host_resolution_errors(env):
    core = env.app.core
    cases = [
        ({"host": "00:00:00:00:00:99", "group": G}, 404),
        ({"host": "10.9.9.9", "group": G}, 404),
        ({"host": "no such name", "group": G}, 400),
        ({"host": "", "group": G}, 400),
        ({"host": 5, "group": G}, 400),
        ({"host": "h3name", "group": G}, 404),  # a configured name whose address was never seen
        ({"host": "10.0.0.2", "dpid": 2, "port": 3, "group": G}, 400),
    ]
    for body, status in cases:
        s, r, _ = env.w("POST", "/mcast/v1/static", body)
        assert s == status, (body, r)
    # two hosts seen with the same address: ambiguous
    core.hosts.hosts[host("h1").mac].ipv4.add("10.0.0.77")
    core.hosts.hosts[host("h3").mac].ipv4.add("10.0.0.77")
    s, r, _ = env.w("POST", "/mcast/v1/static", {"host": "10.0.0.77", "group": G})
    assert s == 409 and "ambiguous" in r["error"]


BAD_STATIC = [
    ({"dpid": 1, "port": 2}, 400),  # no group
    ({"dpid": "1", "port": 2, "group": G}, 400),
    ({"dpid": 1, "port": True, "group": G}, 400),
    ({"dpid": 1.5, "port": 2, "group": G}, 400),
    ({"dpid": 0, "port": 2, "group": G}, 400),
    ({"dpid": 2**64, "port": 2, "group": G}, 400),
    ({"dpid": 1, "port": 0, "group": G}, 400),
    ({"dpid": 1, "port": 2, "group": 239}, 400),
    ({"dpid": 1, "port": 2, "group": "10.0.0.1"}, 400),
    ({"dpid": 1, "port": 2, "group": "224.0.0.5"}, 400),  # link-local
    ({"dpid": 1, "port": 2, "group": "ff02::1:3"}, 400),
    ({"dpid": 1, "port": 2, "group": "232.1.1.1"}, 400),  # SSM without a source
    ({"dpid": 1, "port": 2, "group": G, "source": "ff0e::1"}, 400),  # family mismatch
    ({"dpid": 1, "port": 2, "group": G, "source": "239.9.9.9"}, 400),
    ({"dpid": 1, "port": 2, "group": G, "source": "0.0.0.0"}, 400),
    ({"dpid": 1, "port": 2, "group": G, "source": 7}, 400),
    ({"dpid": 1, "port": 2, "group": G, "extra": 1}, 400),
    ({"port": 2, "group": G}, 400),
    ([], 400),
    ("239.1.1.1", 400),
    (None, 400),
    ({"dpid": 9, "port": 2, "group": G}, 404),
    ({"dpid": 1, "port": 77, "group": G}, 404),
    ({"dpid": 1, "port": 1, "group": G}, 409),  # inter-switch link
]


@pytest.mark.parametrize("body,status", BAD_STATIC)
def test_static_join_refusals_change_nothing(env, body, status):
    core, app = env.app.core, env.app
    before, sent = state_of(core), len(app.sent)
    raw = b"null" if body is None else None
    s, r, _ = env("POST", "/mcast/v1/static", body, headers=AUTH, raw=raw)
    assert (s, r["status"]) == (status, status), r
    validate("POST", "/mcast/v1/static", status, r)
    assert state_of(core) == before and len(app.sent) == sent


def test_static_limit(env, monkeypatch):
    monkeypatch.setattr(rest, "MAX_STATIC_JOINS", 2)
    assert env.w("POST", "/mcast/v1/static", {"dpid": 1, "port": 2, "group": "239.7.7.1"})[0] == 201
    assert env.w("POST", "/mcast/v1/static", {"dpid": 1, "port": 2, "group": "239.7.7.2"})[0] == 201
    s, r, _ = env.w("POST", "/mcast/v1/static", {"dpid": 1, "port": 2, "group": "239.7.7.3"})
    assert s == 409 and "too many" in r["error"]


def test_delete_static_path_errors(env):
    for path, status in [
        ("/mcast/v1/static/1/2/10.0.0.1", 400),
        ("/mcast/v1/static/1/2/239.1.1.1?source=nope", 400),
        ("/mcast/v1/static/1/2/239.1.1.1?source=ff0e::1", 400),
        ("/mcast/v1/static/0/2/239.1.1.1", 400),
        ("/mcast/v1/static/1/2/239.1.1.1", 409),
        ("/mcast/v1/static/1/2/zz", 404),
    ]:
        s, r, _ = env.w("DELETE", path)
        assert s == status, (path, r)


def test_static_joins_from_settings_apply_at_start_before_switches_connect():
    h2 = host("h2")
    cfg = settings.from_dict({"static": [{"dpid": 2, "port": h2.port, "group": G},
                                         {"dpid": 3, "port": 2, "group": "232.1.1.1", "source": "10.0.0.1"}]})
    core = build_core(connect=False)
    app = FakeApp(core, static=cfg.static)
    c = Client(app, make_wsgi(app))  # attach applies them (no switch yet: nothing to send)
    assert len(core.static_joins) == 2 and all(not o for o in app.sent)
    s, lst, _ = c.get("/mcast/v1/static")
    assert [j["group"] for j in lst["static"]] == [G, "232.1.1.1"]
    connect_all(core)  # the switches arrive
    learn(core, host("h1"))
    send_first_packet(core, host("h1"), G, now=0.5)
    s, g, _ = c.get(f"/mcast/v1/groups/{G}")
    assert {(m["dpid"], m["port"], m["static"]) for m in g["members"]} == {(2, h2.port, True)}
    edges = {(tuple(e["from"]), tuple(e["to"])) for e in g["trees"][ip(host("h1"))]}
    assert edges == {((1, 1), (2, 1))}


# ================================================================== policy
def test_tree_policy_put_changes_modes(env):
    core, app = env.app.core, env.app
    body = {"default_mode": "spt", "negative_cache_seconds": 5,
            "policies": [{"prefix": "239.1.0.0/16", "mode": "shared", "rp": 2}]}
    s, r, _ = env.w("PUT", "/mcast/v1/policy/trees", body)
    assert s == 200, r
    validate("PUT", "/mcast/v1/policy/trees", 200, r)
    assert r["trees"] == {"default_mode": "spt", "negative_cache_seconds": 5.0,
                          "policies": [{"prefix": "239.1.0.0/16", "mode": "shared", "rp": 2}]}
    modes = {g["group"]: (g["mode"], g["root"]) for g in r["groups"]}
    assert modes[G] == ("shared", 2) and modes["239.2.2.2"][0] == "spt"
    # on a line there is one tree: shared mode's RPF-checked per-source entries on the
    # RP tree are the SPT's entries, so the mode change rightly changes no switch
    assert r["changes"] == 0
    s, g, _ = env.get(f"/mcast/v1/groups/{G}")
    assert g["mode"] == "shared" and g["root"] == 2 and "*" in g["trees"]
    s, t, _ = env.get("/mcast/v1/policy/trees")
    assert t == r["trees"]
    # the settings-file shape with defaults
    s, r, _ = env.w("PUT", "/mcast/v1/policy/trees", {})
    assert s == 200 and r["trees"] == {"default_mode": "spt", "negative_cache_seconds": 10.0, "policies": []}


BAD_TREES = [
    {"default_mode": "flood"},
    {"default_mode": 3},
    {"negative_cache_seconds": 0},
    {"negative_cache_seconds": "10"},
    {"negative_cache_seconds": True},
    {"policies": {}},
    {"policies": [{"prefix": "10.0.0.0/8", "mode": "spt"}]},
    {"policies": [{"prefix": "nope", "mode": "spt"}]},
    {"policies": [{"prefix": "239.0.0.0/8", "mode": "spt", "rp": 2}]},
    {"policies": [{"prefix": "239.0.0.0/8", "mode": "shared", "rp": 9}]},  # unknown switch
    {"policies": [{"prefix": "239.0.0.0/8", "mode": "shared", "rp": True}]},
    {"policies": [{"prefix": "239.0.0.0/8", "mode": "shared"}, {"prefix": "239.0.0.0/8", "mode": "spt"}]},
    {"policies": ["239.0.0.0/8"]},
    {"bogus": 1},
    [],
]


@pytest.mark.parametrize("body", BAD_TREES)
def test_tree_policy_refusals_change_nothing(env, body):
    core, app = env.app.core, env.app
    before, sent = state_of(core), len(app.sent)
    s, r, _ = env.w("PUT", "/mcast/v1/policy/trees", body)
    assert s == 400, r
    assert state_of(core) == before and len(app.sent) == sent


def test_limits(env):
    s, r, _ = env.w("PUT", "/mcast/v1/policy/limits", {"max_groups_per_port": 1})
    assert s == 200 and r == {"max_groups_per_port": 1, "max_sources_per_group": 256}
    assert env.app.core.members.config.max_groups_per_port == 1
    # the limit applies to the next report: h1 already has 239.1.1.1, a second group is dropped
    igmp_join(env.app.core, host("h1"), "239.4.4.4", now=0.9)
    s, p, _ = env.get(f"/mcast/v1/ports/1/{host('h1').port}")
    assert list(p["membership"]["groups"]) == [G]
    s, c, _ = env.get("/mcast/v1/counters")
    assert c["drops"].get("membership.drop.limit_groups") == 1
    s, r, _ = env.w("PUT", "/mcast/v1/policy/limits", {"max_sources_per_group": 0, "max_groups_per_port": 7})
    assert r == {"max_groups_per_port": 7, "max_sources_per_group": 0}
    s, g, _ = env.get("/mcast/v1/policy/limits")
    assert g == r


@pytest.mark.parametrize("body", [{}, {"max_groups_per_port": 0}, {"max_groups_per_port": True},
                                  {"max_groups_per_port": "5"}, {"max_sources_per_group": -1},
                                  {"max_sources_per_group": 10**7}, {"query_interval": 5}, [1]])
def test_limits_refusals_change_nothing(env, body):
    before = state_of(env.app.core)
    s, r, _ = env.w("PUT", "/mcast/v1/policy/limits", body)
    assert s == 400, r
    assert state_of(env.app.core) == before


def test_port_immediate_leave(env):
    core = env.app.core
    h1 = host("h1")
    path = f"/mcast/v1/ports/1/{h1.port}"
    s, p, _ = env.w("PUT", path, {"immediate_leave": True})
    assert s == 200, p
    validate("PUT", "/mcast/v1/ports/{dpid}/{port}", 200, p)
    assert p["immediate_leave"] is True and p["membership"]["immediate_leave"] is True
    assert (1, h1.port) in core.members.config.immediate_leave_ports
    # immediate leave in action: an IGMPv2 leave removes the member at once (no LMQT wait)
    frame = packets.build_igmp_report(2, h1.mac, ip(h1), G, leave=True)
    core.packet_in(1.0, 1, h1.port, COOKIE_PUNT, frame)
    s, g, _ = env.get(f"/mcast/v1/groups/{G}")
    assert g["members"] == []
    s, p, _ = env.w("PUT", path, {"immediate_leave": False})
    assert p["immediate_leave"] is False and (1, h1.port) not in core.members.config.immediate_leave_ports


@pytest.mark.parametrize("path,body,status", [
    ("/mcast/v1/ports/1/2", {"immediate_leave": "yes"}, 400),
    ("/mcast/v1/ports/1/2", {"immediate_leave": 1}, 400),
    ("/mcast/v1/ports/1/2", {}, 400),
    ("/mcast/v1/ports/1/2", {"immediate_leave": True, "max_groups": 3}, 400),
    ("/mcast/v1/ports/1/77", {"immediate_leave": True}, 404),
    ("/mcast/v1/ports/7/2", {"immediate_leave": True}, 404),
    ("/mcast/v1/ports/1/0", {"immediate_leave": True}, 400),
])
def test_port_refusals_change_nothing(env, path, body, status):
    before = state_of(env.app.core)
    s, r, _ = env.w("PUT", path, body)
    assert s == status, r
    assert state_of(env.app.core) == before


def test_membership_set_config_refuses_start_up_only_fields():
    core = build_core()
    cfg = core.members.config
    with pytest.raises(ValueError, match="query_interval"):
        core.members.set_config(cfg.with_changes(query_interval=60))
    assert core.members.config is cfg
    core.members.set_config(cfg.with_changes(max_groups_per_port=3))
    assert core.members.config.max_groups_per_port == 3


# ================================================================== auth
WRITES = [
    ("POST", "/mcast/v1/static", {"dpid": 2, "port": 3, "group": G}),
    ("DELETE", "/mcast/v1/static", {"dpid": 2, "port": 3, "group": G}),
    ("DELETE", "/mcast/v1/static/2/3/239.1.1.1", None),
    ("PUT", "/mcast/v1/policy/trees", {"default_mode": "shared"}),
    ("PUT", "/mcast/v1/policy/limits", {"max_groups_per_port": 3}),
    ("PUT", "/mcast/v1/ports/2/3", {"immediate_leave": True}),
]


@pytest.mark.parametrize("method,path,body", WRITES)
def test_writes_refused_without_configured_token(method, path, body):
    core = populated_core()
    app = FakeApp(core, token=None)
    c = Client(app, make_wsgi(app))
    before = state_of(core)
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        s, r, _ = c(method, path, body, headers=headers)
        assert s == 403 and r["status"] == 403
        assert "MCAST_SDN_TOKEN" in r["error"] and "rest" in r["error"]
    assert state_of(core) == before and not app.sent


@pytest.mark.parametrize("method,path,body", WRITES)
@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token-wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer"},
])
def test_writes_need_the_right_token(env, method, path, body, headers):
    before, sent = state_of(env.app.core), len(env.app.sent)
    s, r, resp = env(method, path, body, headers=headers)
    assert s == 401 and r["status"] == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert state_of(env.app.core) == before and len(env.app.sent) == sent


def test_bearer_scheme_is_case_insensitive(env):
    s, _, _ = env("PUT", "/mcast/v1/policy/limits", {"max_groups_per_port": 3},
                  headers={"Authorization": f"bearer {TOKEN}"})
    assert s == 200


def test_token_settings(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="16"):
        settings.from_dict({"rest": {"token": "short"}})
    with pytest.raises(ValueError, match="characters"):
        settings.from_dict({"rest": {"token": "has spaces in it, 16+ chars"}})
    with pytest.raises(ValueError, match="unknown"):
        settings.from_dict({"rest": {"tokn": "x" * 20}})
    with pytest.raises(ValueError, match="host_names"):
        settings.from_dict({"rest": {"host_names": {"a": "not-an-address"}}})
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps({"rest": {"token": "f" * 20}}))
    monkeypatch.delenv(settings.TOKEN_ENV, raising=False)
    assert settings.load(str(p)).rest.token == "f" * 20
    monkeypatch.setenv(settings.TOKEN_ENV, "e" * 24)
    assert settings.load(str(p)).rest.token == "e" * 24  # the environment wins
    monkeypatch.setenv(settings.TOKEN_ENV, "short")
    with pytest.raises(ValueError, match=settings.TOKEN_ENV):
        settings.load(str(p))


@pytest.mark.parametrize("data,match", [
    ({"static": {}}, "list"),
    ({"static": [{"dpid": 1, "port": 2}]}, "group is required"),
    ({"static": [{"dpid": 1, "port": 2, "group": "10.1.1.1"}]}, "not a multicast"),
    ({"static": [{"dpid": 1, "port": 2, "group": G, "host": "h1"}]}, "unknown key"),
    ({"static": [{"dpid": "1", "port": 2, "group": G}]}, "dpid"),
])
def test_static_settings_validation(data, match):
    with pytest.raises(ValueError, match=match):
        settings.from_dict(data)


# ================================================================== transport-level errors
@pytest.mark.parametrize("raw,what", [
    (b"{bad json", "bad JSON"),
    (b"", "required"),
    (b"   ", "required"),
    (b'{"dpid": NaN}', "NaN"),
    (b'{"dpid": Infinity}', "Infinity"),
    (b"\xff\xfe{}", "bad JSON"),
    (b"[" * 20000 + b"]" * 20000, "bad JSON"),
])
def test_bad_json(env, raw, what):
    before = state_of(env.app.core)
    s, r, _ = env("POST", "/mcast/v1/static", headers=AUTH, raw=raw)
    assert s == 400 and what in r["error"], r
    assert state_of(env.app.core) == before


def test_huge_bodies_are_refused_before_reading(env):
    big = json.dumps({"dpid": 2, "port": 3, "group": G, "source": None, "pad": "x" * rest.MAX_BODY}).encode()
    s, r, _ = env("POST", "/mcast/v1/static", headers=AUTH, raw=big)
    assert s == 413 and r["status"] == 413
    validate("POST", "/mcast/v1/static", 413, r)
    # announced small but longer, or not announced at all (chunked): read is still bounded
    for length in (None, 10):
        req = Request.blank("/mcast/v1/policy/trees", method="PUT", headers=AUTH)
        req.body_file = io.BytesIO(b"{" + b" " * (rest.MAX_BODY + 10) + b"}")
        req.content_length = length
        req.environ["wsgi.input_terminated"] = True
        resp = req.get_response(env.wsgi)
        assert resp.status_int in (400, 413), resp.body  # a short announced length reads a truncated body
    s, r, _ = env("PUT", "/mcast/v1/policy/trees", headers=AUTH, raw=b" " * (rest.MAX_BODY - 2) + b"{}")
    assert s == 200  # exactly at the limit is fine


def test_unannounced_huge_body_is_413(env):
    req = Request.blank("/mcast/v1/policy/trees", method="PUT", headers=AUTH)
    req.environ["wsgi.input"] = io.BytesIO(b" " * (rest.MAX_BODY + 1) + b"{}")
    req.environ["wsgi.input_terminated"] = True
    req.environ.pop("CONTENT_LENGTH", None)
    resp = req.get_response(env.wsgi)
    assert resp.status_int == 413, resp.body


@pytest.mark.parametrize("method,path,allowed", [
    ("POST", "/mcast/v1/groups", "GET"),
    ("DELETE", "/mcast/v1/topology", "GET"),
    ("PUT", "/mcast/v1/static", "DELETE, GET, POST"),
    ("GET", "/mcast/v1/static/1/2/239.1.1.1", "DELETE"),
    ("POST", "/mcast/v1/ports/1/2", "GET, PUT"),
    ("PATCH", "/mcast/v1/policy/trees", "GET, PUT"),
    ("HEAD", "/mcast/v1/switches/1", "GET"),
])
def test_wrong_method_is_405(env, method, path, allowed):
    req = Request.blank(path, method=method, headers=AUTH)
    resp = req.get_response(env.wsgi)
    assert resp.status_int == 405
    assert resp.headers["Allow"] == allowed
    if method != "HEAD":
        assert json.loads(resp.body) == {"error": f"method {method} not allowed here; allowed: {allowed}", "status": 405}


def test_unexpected_exception_is_a_json_500_logged_once(env, monkeypatch, caplog):
    def boom(now):
        raise RuntimeError("bug in the core")

    monkeypatch.setattr(env.app.core, "snapshot", boom)
    with caplog.at_level(logging.INFO, logger="mcast_sdn.rest"):
        s, r, _ = env.get("/mcast/v1/topology")
    assert s == 500 and r == {"error": "internal error (the controller logged the details)", "status": 500}
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info and "bug in the core" in str(errors[0].exc_info[1])
    assert env.get("/mcast/v1/stats")[0] == 200  # the API goes on


def test_failing_write_is_500_and_the_api_goes_on(env, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("core bug")

    monkeypatch.setattr(env.app.core, "set_tree_config", boom)
    s, r, _ = env.w("PUT", "/mcast/v1/policy/trees", {})
    assert s == 500
    assert env.w("PUT", "/mcast/v1/policy/limits", {"max_groups_per_port": 5})[0] == 200


def test_client_mistakes_logged_at_info_without_traceback(env, caplog):
    with caplog.at_level(logging.DEBUG, logger="mcast_sdn.rest"):
        env.get("/mcast/v1/switches/9")
        env("POST", "/mcast/v1/static", headers=AUTH, raw=b"{oops")
        env("POST", "/mcast/v1/static", {"dpid": 1, "port": 2, "group": G})
        env("POST", "/mcast/v1/groups")
    recs = [r for r in caplog.records if r.name == "mcast_sdn.rest"]
    assert len(recs) == 4
    assert all(r.levelno == logging.INFO and not r.exc_info for r in recs)
    assert any("-> 404" in r.getMessage() for r in recs) and any("-> 401" in r.getMessage() for r in recs)


def test_responses_are_valid_json_for_unknown_paths_too(env):
    s, r, _ = env.get("/mcast/v1/")
    assert s == 404 and r["status"] == 404


# ================================================================== fuzz against the document
def _fuzz_app():
    core = populated_core()
    app = FakeApp(core)
    return app, make_wsgi(app)


def test_schemathesis_finds_no_server_errors():
    """Every operation of docs/openapi.yaml, positive and negative data, with the token:
    no 5xx, statuses and bodies as documented. Bounded: at most 150 examples per operation."""
    import schemathesis
    from hypothesis import given, seed
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    app, wsgi = _fuzz_app()
    schema = schemathesis.openapi.from_path(str(DOC_PATH))
    schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) == 20
    started = time.monotonic()
    calls = {"n": 0, "by_status": {}}
    for op in ops:
        strategy = op.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE) | op.as_strategy(
            generation_mode=schemathesis.GenerationMode.NEGATIVE
        )

        @seed(20261125)
        @hsettings(max_examples=150, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=strategy)
        def run(case):
            resp = case.call(app=wsgi, headers=AUTH)
            calls["n"] += 1
            calls["by_status"][resp.status_code] = calls["by_status"].get(resp.status_code, 0) + 1
            case.validate_response(resp, checks=checks)

        run()
    elapsed = time.monotonic() - started
    print(f"schemathesis: {calls['n']} requests over {len(ops)} operations in {elapsed:.1f}s; statuses {calls['by_status']}")
    assert calls["n"] >= 200
    assert not any(s >= 500 for s in calls["by_status"])
    assert elapsed < 60
