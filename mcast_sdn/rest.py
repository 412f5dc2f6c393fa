"""The operator REST API (`/mcast/v1/...`), served by Ryu's WSGI server (`ryu.app.wsgi`).

It listens where ryu-manager's ``--wsapi-host`` / ``--wsapi-port`` say. Reads are open;
writes (POST/PUT/DELETE) need ``Authorization: Bearer <token>`` with the token configured
at start-up (``MCAST_SDN_TOKEN`` or ``{"rest": {"token": ...}}`` in the settings file);
without a configured token every write is refused with 403. The reference, with curl
examples, is docs/rest.md; the contract is docs/openapi.yaml (a unit test keeps the two
route sets equal).

Every handler goes through one decorator, `api`, which does the common parts: the token
check for writes, reading the body (at most `MAX_BODY` bytes, else 413) and decoding it as
JSON (400), turning `ApiError` into a JSON error ``{"error": ..., "status": N}`` logged at
INFO without a traceback, and turning any other exception into a JSON 500 logged once
with its traceback (the controller goes on). Writes validate everything first and only
then call the core once, so a refused write changes nothing; the core's returned changes
are sent with ``app.send(out)`` and the response carries the resulting state.

`app` is the Ryu application (`mcast_sdn.app.McastSdn`) or, in tests, any object with:
``core`` (`mcast_sdn.core.Core`), ``settings`` (`mcast_sdn.settings.Settings`), ``dps``
(connected dpids), ``now()``, ``send(out)`` and ``read_switch(dpid, timeout)``.
"""
from __future__ import annotations

import functools
import hmac
import inspect
import ipaddress
import json
import logging

from mcast_sdn import compat

compat.install()  # before ryu.app.wsgi is imported

from ryu.app.wsgi import ControllerBase, Response, route  # noqa: E402
from ryu.ofproto import ofproto_v1_3 as ofp  # noqa: E402
from ryu.ofproto import ofproto_v1_3_parser as ofparser  # noqa: E402

from mcast_sdn import settings as settings_mod  # noqa: E402
from mcast_sdn.forwarding import is_ssm  # noqa: E402
from mcast_sdn.ofmodel import (  # noqa: E402
    FlowEntry,
    GroupEntry,
    Output,
    SwitchState,
    ToController,
    ToGroup,
)

LOG = logging.getLogger("mcast_sdn.rest")

API = "/mcast/v1"
REST_NAME = "mcast_sdn_app"
MAX_BODY = 64 * 1024  # bytes; a larger body is refused with 413 before it is read
MAX_STATIC_JOINS = 4096  # (port, group, source) entries in all; beyond: 409
MAX_LIMIT = 1_000_000  # upper bound accepted for the membership limits
READ_TIMEOUT = 5.0  # seconds to wait for a switch's flows/groups (?verify=1)

# path parameters (route requirements): anything else falls through to a JSON 404
DPID_RE = r"(?:0x[0-9a-fA-F]{1,16}|[0-9]{1,20})"
PORT_RE = r"[0-9]{1,10}"
GROUP_RE = r"[0-9a-fA-F.:]{2,45}"
SW = {"dpid": DPID_RE}
PORT = {"dpid": DPID_RE, "port": PORT_RE}
GRP = {"group": GROUP_RE}
STATIC = {"dpid": DPID_RE, "port": PORT_RE, "group": GROUP_RE}

NO_TOKEN = (
    "writes are disabled: no API token is configured. Start the controller with the environment "
    "variable MCAST_SDN_TOKEN=<token> or with {\"rest\": {\"token\": \"<token>\"}} in the settings file "
    "named by MCAST_SDN_CONFIG (at least 16 characters, e.g. `openssl rand -hex 16`)"
)


class ApiError(Exception):
    """A client mistake or a refused request: becomes a JSON error with `status`."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _json(body, status: int = 200, headers: dict | None = None) -> Response:
    r = Response(status=status, content_type="application/json", charset="utf-8",
                 body=json.dumps(body, sort_keys=True, allow_nan=False))
    for k, v in (headers or {}).items():
        r.headers[k] = v
    return r


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return _json({"error": message, "status": status}, status, headers)


def _where(req) -> str:
    where = f"{req.method} {req.path_qs}"
    return where if len(where) <= 200 else where[:200] + "..."


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _read_json(req):
    n = req.content_length
    if n is not None and n > MAX_BODY:
        raise ApiError(413, f"request body too large ({n} bytes; at most {MAX_BODY})")
    raw = req.body_file.read(MAX_BODY + 1)  # bounded also when the length is not announced
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"request body too large (more than {MAX_BODY} bytes)")
    if not raw.strip():
        raise ApiError(400, "a JSON object is required as the request body")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "bad JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise ApiError(400, f"bad JSON: {e}") from None


def api(write: bool = False, body: bool = False):
    """The common parts of every endpoint (see the module docstring).

    The handler gets the parsed JSON body as ``body=`` when `body` is set, and returns
    a JSON-serialisable value or ``(status, value)``.
    """

    def deco(fn):
        @functools.wraps(fn)
        def handler(self, req, **kwargs):
            try:
                if write:
                    self._authorize(req)
                if body:
                    kwargs["body"] = _read_json(req)
                result = fn(self, req, **kwargs)
                status = 200
                if isinstance(result, tuple):
                    status, result = result
                return _json(result, status)
            except ApiError as e:
                LOG.info("REST %s -> %d: %s", _where(req), e.status, e.message)
                return _error(e.status, e.message, e.headers)
            except Exception:  # a bug: one traceback in the log, a JSON 500 to the client
                LOG.exception("REST %s failed", _where(req))
                return _error(500, "internal error (the controller logged the details)")

        handler.api_write = write
        return handler

    return deco


# ---------------------------------------------------------------------- value parsing
def _dpid(text: str) -> int:
    v = int(text, 16) if text[:2].lower() == "0x" else int(text, 10)
    if not 0 < v < 2**64:
        raise ApiError(400, f"dpid {text} out of range (1 .. 2^64-1)")
    return v


def _port(text: str) -> int:
    v = int(text, 10)
    if not 0 < v <= settings_mod.OFPP_MAX:
        raise ApiError(400, f"port {text} out of range (1 .. {settings_mod.OFPP_MAX})")
    return v


def _any_group(text: str):
    """A multicast address from a path (400 if it is not one)."""
    try:
        g = ipaddress.ip_address(text)
    except ValueError:
        raise ApiError(400, f"{text!r} is not an IP address") from None
    if not g.is_multicast:
        raise ApiError(400, f"{g} is not a multicast address")
    return g


def _flag(req, name: str) -> bool:
    v = req.GET.get(name)
    if v is None:
        return False
    v = v.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ApiError(400, f"query parameter {name} must be 1/true/yes or 0/false/no, got {v!r}")


def _object(body, allowed: set, required: set = frozenset()) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(body).__name__}")
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(400, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = set(required) - set(body)
    if missing:
        raise ApiError(400, f"missing key(s) {sorted(missing)}")
    return body


def _bad(fn, *args):
    """Run a validator; its ValueError becomes a 400."""
    try:
        return fn(*args)
    except ValueError as e:
        raise ApiError(400, str(e)) from None


def _gkey(g) -> tuple:
    return (g.version, int(g))


# ---------------------------------------------------------------------- switch read-back
_IP_FIELDS = {"ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst", "arp_spa", "arp_tpa", "ipv6_nd_target"}
_MAC_FIELDS = {"eth_src", "eth_dst", "arp_sha", "arp_tha", "ipv6_nd_sll", "ipv6_nd_tll"}


def _norm_field(name: str, value):
    """One match field in a canonical form (the switch may print masks and addresses differently)."""
    val, mask = (value if isinstance(value, (tuple, list)) and len(value) == 2 else (value, None))
    try:
        if name in _IP_FIELDS:
            a = ipaddress.ip_address(val)
            full = (1 << a.max_prefixlen) - 1
            if mask is not None:
                m = int(ipaddress.ip_address(mask))
                a = ipaddress.ip_address(int(a) & m) if a.version == 4 else ipaddress.IPv6Address(int(a) & m)
                mask = None if m == full else str(ipaddress.ip_address(m) if a.version == 4 else ipaddress.IPv6Address(m))
            return str(a) if mask is None else (str(a), mask)
        if name in _MAC_FIELDS:
            val = str(val).lower()
            if mask is not None:
                mask = str(mask).lower()
                if mask == "ff:ff:ff:ff:ff:ff":
                    mask = None
            return val if mask is None else (val, mask)
    except (ValueError, TypeError):
        pass
    return value if mask is None else (val, mask)


def _norm_match(items) -> tuple:
    return tuple(sorted((k, _norm_field(k, v)) for k, v in items))


def _norm_action(a):
    if isinstance(a, Output):
        return ToController(a.max_len) if a.port == ofp.OFPP_CONTROLLER else Output(a.port)
    return a


def _norm_flow(f: FlowEntry) -> FlowEntry:
    return FlowEntry(table=f.table, priority=f.priority, match=_norm_match(f.match),
                     actions=tuple(_norm_action(a) for a in f.actions), goto=f.goto, cookie=f.cookie,
                     idle_timeout=f.idle_timeout, hard_timeout=f.hard_timeout, meter=f.meter)


def _action_from_ofp(a):
    if isinstance(a, ofparser.OFPActionOutput):
        return ToController(a.max_len) if a.port == ofp.OFPP_CONTROLLER else Output(a.port)
    if isinstance(a, ofparser.OFPActionGroup):
        return ToGroup(a.group_id)
    return f"unsupported:{type(a).__name__}"


def flow_from_stats(st) -> FlowEntry:
    """An OFPFlowStats (as read back from the switch) as an `ofmodel.FlowEntry`."""
    actions: tuple = ()
    goto = meter = None
    for ins in st.instructions:
        if isinstance(ins, ofparser.OFPInstructionActions) and ins.type == ofp.OFPIT_APPLY_ACTIONS:
            actions += tuple(_action_from_ofp(a) for a in ins.actions)
        elif isinstance(ins, ofparser.OFPInstructionGotoTable):
            goto = ins.table_id
        elif isinstance(ins, ofparser.OFPInstructionMeter):
            meter = ins.meter_id
        else:
            actions += (f"unsupported:{type(ins).__name__}",)
    return FlowEntry(table=st.table_id, priority=st.priority, match=_norm_match(st.match.items()), actions=actions,
                     goto=goto, cookie=st.cookie, idle_timeout=st.idle_timeout, hard_timeout=st.hard_timeout,
                     meter=meter)


_GROUP_TYPES = {ofp.OFPGT_ALL: "all", ofp.OFPGT_SELECT: "select", ofp.OFPGT_INDIRECT: "indirect", ofp.OFPGT_FF: "ff"}


def group_from_desc(g) -> GroupEntry:
    """An OFPGroupDescStats as an `ofmodel.GroupEntry`."""
    buckets = tuple(tuple(_action_from_ofp(a) for a in b.actions) for b in g.buckets)
    return GroupEntry(group_id=g.group_id, buckets=buckets, type=_GROUP_TYPES.get(g.type, str(g.type)))


def _norm_group(g: GroupEntry):
    return (g.type, tuple(sorted((tuple(_norm_action(a) for a in b) for b in g.buckets), key=repr)))


def _describe_flow(f: FlowEntry) -> dict:
    d = f.describe()
    d["hard_timeout"] = f.hard_timeout
    d["idle_timeout"] = f.idle_timeout
    return d


def _flow_order(f: FlowEntry):
    return (f.table, -f.priority, repr(f.match))


def compare(installed: SwitchState, flows: list, groups: list) -> dict:
    """What the controller installed vs what the switch holds (flows of our cookie prefix, groups).

    Flows are matched by (table, priority, match); a flow the controller installed with a
    hard timeout that the switch no longer has is "expired", not missing (the negative
    cache lets such entries lapse on purpose).
    """
    want = {}
    for f in installed.flows.values():
        n = _norm_flow(f)
        want[n.key] = (f, n)
    have = {}
    for f in flows:
        n = _norm_flow(f)
        have[n.key] = (f, n)
    missing, expired, extra, different = [], [], [], []
    for k, (f, n) in sorted(want.items(), key=lambda kv: _flow_order(kv[1][0])):
        if k not in have:
            (expired if f.hard_timeout else missing).append(_describe_flow(f))
        elif have[k][1] != n:
            different.append({"installed": _describe_flow(f), "switch": _describe_flow(have[k][0])})
    for k, (f, n) in sorted(have.items(), key=lambda kv: _flow_order(kv[1][0])):
        if k not in want:
            extra.append(_describe_flow(f))
    gwant = dict(installed.groups)
    ghave = {g.group_id: g for g in groups}
    gmissing = [gwant[i].describe() for i in sorted(gwant) if i not in ghave]
    gextra = [ghave[i].describe() for i in sorted(ghave) if i not in gwant]
    gdiff = [{"installed": gwant[i].describe(), "switch": ghave[i].describe()} for i in sorted(gwant)
             if i in ghave and _norm_group(gwant[i]) != _norm_group(ghave[i])]
    ok = not (missing or extra or different or gmissing or gextra or gdiff)
    return {
        "ok": ok,
        "flows": {"installed": len(want), "switch": len(have), "missing": missing, "extra": extra,
                  "different": different, "expired": expired},
        "groups": {"installed": len(gwant), "switch": len(ghave), "missing": gmissing, "extra": gextra,
                   "different": gdiff},
    }


# ---------------------------------------------------------------------- the API
class McastRest(ControllerBase):
    """Routes of the API. Each handler: parse, validate, (for writes) one core call, view."""

    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[REST_NAME]

    # ------------------------------------------------------------ helpers
    @property
    def core(self):
        return self.app.core

    def _authorize(self, req) -> None:
        token = self.app.settings.rest.token
        if not token:
            raise ApiError(403, NO_TOKEN)
        header = req.headers.get("Authorization")
        challenge = 'Bearer realm="mcast-sdn"'
        if not header:
            raise ApiError(401, "missing Authorization: Bearer <token> header", {"WWW-Authenticate": challenge})
        scheme, _, cred = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            cred.strip().encode("utf-8", "replace"), token.encode("utf-8")
        ):
            raise ApiError(401, "invalid bearer token",
                           {"WWW-Authenticate": challenge + ', error="invalid_token"'})

    def _switches(self) -> set[int]:
        return set(self.core.installed) | set(self.core.topo.switches)

    def _known_switch(self, dpid: int) -> None:
        if dpid not in self._switches():
            raise ApiError(404, f"unknown switch {dpid}")

    def _known_port(self, dpid: int, port: int) -> None:
        self._known_switch(dpid)
        if port not in self.core.topo.switches.get(dpid, {}) and self.core.members.port_state(dpid, port) is None:
            raise ApiError(404, f"switch {dpid} has no port {port}")

    def _groups(self) -> set:
        core = self.core
        return set(core.members.groups()) | set(core.routes) | set(core.sources) | {k[2] for k in core.static_joins}

    def _static_list(self, pred=lambda d, p, g: True) -> list[dict]:
        out = []
        for (d, p, g), srcs in sorted(self.core.static_joins.items(), key=lambda kv: (kv[0][0], kv[0][1], _gkey(kv[0][2]))):
            if not pred(d, p, g):
                continue
            if srcs is None:
                out.append(settings_mod.StaticJoin(d, p, g).to_dict())
            else:
                out.extend(settings_mod.StaticJoin(d, p, g, s).to_dict() for s in sorted(srcs, key=_gkey))
        return out

    def _group_view(self, g) -> dict:
        v = self.core.group_view(g)
        per_port = self.core.hosts.per_port
        for m in v["members"]:
            m["hosts"] = sorted(per_port.get((m["dpid"], m["port"]), ()))
        v["family"] = g.version
        v["ssm"] = is_ssm(g)
        v["static_joins"] = self._static_list(lambda d, p, gg: gg == g)
        return v

    def _port_view(self, dpid: int, port: int) -> dict:
        core, now = self.core, self.app.now()
        info = core.topo.switches.get(dpid, {}).get(port)
        cfg = core.members.config
        state = core.members.port_state(dpid, port)
        router = (dpid, port) in core.members.router_ports()
        return {
            "dpid": dpid,
            "port": port,
            "up": bool(info and info.up),
            "kind": core.topo.port_kind(now, dpid, port),
            "immediate_leave": (dpid, port) in cfg.immediate_leave_ports,
            "router_port": router,
            "static_router_port": (dpid, port) in cfg.static_router_ports,
            "hosts": sorted(core.hosts.per_port.get((dpid, port), ())),
            "static_joins": self._static_list(lambda d, p, g: (d, p) == (dpid, port)),
            "membership": state,
        }

    def _tree_config(self) -> dict:
        tc = self.core.tree_config
        return {"default_mode": tc.default_mode, "negative_cache_seconds": tc.negative_cache_seconds,
                "policies": [p.to_dict() for p in tc.policies]}

    def _limits(self) -> dict:
        cfg = self.core.members.config
        return {"max_groups_per_port": cfg.max_groups_per_port, "max_sources_per_group": cfg.max_sources_per_group}

    def _send(self, out) -> int:
        self.app.send(out)
        return out.count()

    # ------------------------------------------------------------ reads
    @route("mcast", API + "/topology", methods=["GET"])
    @api()
    def get_topology(self, req, **_):
        return self.core.snapshot(self.app.now())

    @route("mcast", API + "/stats", methods=["GET"])
    @api()
    def get_stats(self, req, **_):
        return {"counters": self.core.all_counters(), "switches": sorted(self.app.dps),
                "timings": dict(self.core.timings)}

    @route("mcast", API + "/counters", methods=["GET"])
    @api()
    def get_counters(self, req, **_):
        c = self.core.all_counters()
        drops = {k: v for k, v in c.items() if k.startswith("core.drop_") or k.startswith("membership.drop.")}
        return {"counters": c, "drops": drops}

    @route("mcast", API + "/membership", methods=["GET"])
    @api()
    def get_membership(self, req, **_):
        return self.core.members.snapshot()

    @route("mcast", API + "/groups", methods=["GET"])
    @api()
    def get_groups(self, req, **_):
        return {"groups": [self._group_view(g) for g in sorted(self._groups(), key=_gkey)]}

    @route("mcast", API + "/groups/{group}", methods=["GET"], requirements=GRP)
    @api()
    def get_group(self, req, group, **_):
        g = _any_group(group)
        if g not in self._groups():
            raise ApiError(404, f"unknown group {g} (no members, static joins or senders)")
        return self._group_view(g)

    @route("mcast", API + "/switches", methods=["GET"])
    @api()
    def get_switches(self, req, **_):
        core, now = self.core, self.app.now()
        out = []
        for d in sorted(self._switches()):
            inst = core.installed.get(d)
            ports = core.topo.switches.get(d, {})
            out.append({
                "dpid": d,
                "dpid_hex": f"{d:016x}",
                "connected": d in self.app.dps,
                "ports": {str(p): core.topo.port_kind(now, d, p) for p in sorted(ports)},
                "flows": len(inst.flows) if inst else 0,
                "groups": len(inst.groups) if inst else 0,
            })
        return {"switches": out}

    @route("mcast", API + "/switches/{dpid}", methods=["GET"], requirements=SW)
    @api()
    def get_switch(self, req, dpid, **_):
        d = _dpid(dpid)
        verify = _flag(req, "verify")
        self._known_switch(d)
        core, now = self.core, self.app.now()
        read = None
        if verify:
            try:
                read = self.app.read_switch(d, READ_TIMEOUT)
            except KeyError:
                raise ApiError(409, f"switch {d} is not connected: nothing to read back") from None
            except TimeoutError:
                raise ApiError(504, f"switch {d} did not answer within {READ_TIMEOUT:.0f} s") from None
            except ApiError:
                raise
            except Exception as e:  # noqa: BLE001  (an OpenFlow error or a closed connection)
                raise ApiError(502, f"reading switch {d} failed: {type(e).__name__}: {e}") from None
        inst = core.installed.get(d) or SwitchState()
        ports = core.topo.switches.get(d, {})
        view = {
            "dpid": d,
            "dpid_hex": f"{d:016x}",
            "connected": d in self.app.dps,
            "ports": [{"port": p, "up": i.up, "kind": core.topo.port_kind(now, d, p)} for p, i in sorted(ports.items())],
            "flows": [_describe_flow(f) for f in sorted(inst.flows.values(), key=_flow_order)],
            "groups": [g.describe() for _, g in sorted(inst.groups.items())],
            "multicast_groups": sorted((str(g) for g, r in core.routes.items() if d in r.entries),
                                       key=lambda s: _gkey(ipaddress.ip_address(s))),
        }
        if read is not None:
            flows = [flow_from_stats(s) for s in read["flows"]]
            groups = [group_from_desc(g) for g in read["groups"]]
            view["verify"] = compare(inst, flows, groups)
        return view

    @route("mcast", API + "/ports", methods=["GET"])
    @api()
    def get_ports(self, req, **_):
        core, now = self.core, self.app.now()
        cfg = core.members.config
        routers = core.members.router_ports()
        out = []
        keys = {(d, p) for d, ports in core.topo.switches.items() for p in ports} | set(core.members.ports())
        for d, p in sorted(keys):
            state = core.members.port_state(d, p)
            out.append({
                "dpid": d, "port": p, "kind": core.topo.port_kind(now, d, p),
                "immediate_leave": (d, p) in cfg.immediate_leave_ports,
                "router_port": (d, p) in routers,
                "querier": {f: q["querier"] for f, q in state["queriers"].items()} if state else {},
                "groups": len(state["groups"]) if state else 0,
            })
        return {"ports": out}

    @route("mcast", API + "/ports/{dpid}/{port}", methods=["GET"], requirements=PORT)
    @api()
    def get_port(self, req, dpid, port, **_):
        d, p = _dpid(dpid), _port(port)
        self._known_port(d, p)
        return self._port_view(d, p)

    @route("mcast", API + "/router-ports", methods=["GET"])
    @api()
    def get_router_ports(self, req, **_):
        m = self.core.members
        static = m.config.static_router_ports
        fam = {f: m.router_ports(f) for f in (4, 6)}
        return {"router_ports": [
            {"dpid": d, "port": p, "static": (d, p) in static,
             "families": [f for f in (4, 6) if (d, p) in fam[f]]}
            for d, p in sorted(m.router_ports())
        ]}

    @route("mcast", API + "/static", methods=["GET"])
    @api()
    def get_static(self, req, **_):
        return {"static": self._static_list()}

    @route("mcast", API + "/policy/trees", methods=["GET"])
    @api()
    def get_tree_policy(self, req, **_):
        return self._tree_config()

    @route("mcast", API + "/policy/limits", methods=["GET"])
    @api()
    def get_limits(self, req, **_):
        return self._limits()

    # ------------------------------------------------------------ writes
    def _parse_static(self, body, for_join: bool) -> settings_mod.StaticJoin:
        _object(body, {"dpid", "port", "group", "source", "host"}, {"group"})
        group = _bad(settings_mod.parse_group, body["group"])
        source = _bad(settings_mod.parse_source, body.get("source"), group) if for_join else None
        if not for_join and body.get("source") is not None:
            # a leave names a source that was joined; the SSM rule is for joins only
            src = body["source"]
            if not isinstance(src, str):
                raise ApiError(400, f"source must be a string (an IP address) or null, got {src!r}")
            source = _bad(settings_mod.parse_source, src, group)
        if "host" in body:
            if "dpid" in body or "port" in body:
                raise ApiError(400, "give either host or dpid and port, not both")
            dpid, port = self._resolve_host(body["host"])
        else:
            if "dpid" not in body or "port" not in body:
                raise ApiError(400, "dpid and port (or host) are required")
            dpid = _bad(settings_mod.parse_int, body["dpid"], "dpid", 1, 2**64 - 1)
            port = _bad(settings_mod.parse_int, body["port"], "port", 1, settings_mod.OFPP_MAX)
        return settings_mod.StaticJoin(dpid, port, group, source)

    def _resolve_host(self, ref) -> tuple[int, int]:
        if not isinstance(ref, str) or not ref.strip() or len(ref) > 256:
            raise ApiError(400, f"host must be a MAC address, an IP address or a configured host name, got {ref!r}")
        target = self.app.settings.rest.host_names.get(ref, ref)
        hosts = self.core.hosts.hosts
        mac = settings_mod.parse_mac(target)
        if mac is not None:
            h = hosts.get(mac)
            if h is None:
                raise ApiError(404, f"unknown host {ref}: no host with MAC {mac} has been learned")
            return h.dpid, h.port
        try:
            ip = str(ipaddress.ip_address(target))
        except ValueError:
            raise ApiError(400, f"host {ref!r} is not a MAC address, an IP address or a configured host name") from None
        found = [h for h in hosts.values() if ip in h.ipv4 or ip in h.ipv6]
        if not found:
            raise ApiError(404, f"unknown host {ref}: no learned host has the address {ip}")
        if len({(h.dpid, h.port) for h in found}) > 1:
            raise ApiError(409, f"host {ref} is ambiguous: {ip} was seen on " +
                           ", ".join(f"{h.dpid}/{h.port} ({h.mac})" for h in sorted(found, key=lambda h: h.mac)))
        return found[0].dpid, found[0].port

    def _leave(self, j: settings_mod.StaticJoin):
        key = (j.dpid, j.port, j.group)
        cur = self.core.static_joins.get(key, False)
        what = f"({j.source or '*'}, {j.group}) on {j.dpid}/{j.port}"
        if cur is False:
            raise ApiError(409, f"no static join {what}")
        if j.source is not None and cur is None:
            raise ApiError(409, f"no static join {what}: the port has joined (*, {j.group}); leave without a source")
        if j.source is not None and j.source not in cur:
            raise ApiError(409, f"no static join {what}")
        found, out = self.core.static_leave(self.app.now(), j.dpid, j.port, j.group, j.source)
        if not found:  # checked above; the core disagrees: a bug, not a client mistake
            raise RuntimeError(f"core refused the static leave {what}")
        n = self._send(out)
        return {"left": j.to_dict(), "group": self._group_view(j.group), "changes": n}

    @route("mcast", API + "/static", methods=["POST"])
    @api(write=True, body=True)
    def post_static(self, req, body, **_):
        j = self._parse_static(body, for_join=True)
        core = self.core
        self._known_port(j.dpid, j.port)
        kind = core.topo.port_kind(self.app.now(), j.dpid, j.port)
        if kind == "link":
            raise ApiError(409, f"port {j.port} of switch {j.dpid} is an inter-switch link, not a host port")
        key = (j.dpid, j.port, j.group)
        what = f"({j.source or '*'}, {j.group}) on {j.dpid}/{j.port}"
        if key in core.static_joins:
            cur = core.static_joins[key]
            if cur is None:
                raise ApiError(409, f"static join {what} already present" +
                               ("" if j.source is None else f" (the port has joined (*, {j.group}))"))
            if j.source is not None and j.source in cur:
                raise ApiError(409, f"static join {what} already present")
        if sum(1 if s is None else len(s) for s in core.static_joins.values()) >= MAX_STATIC_JOINS:
            raise ApiError(409, f"too many static joins (at most {MAX_STATIC_JOINS})")
        out = core.static_join(self.app.now(), j.dpid, j.port, j.group, j.source)
        n = self._send(out)
        LOG.info("REST static join %s (%d changes)", what, n)
        return 201, {"joined": j.to_dict(), "group": self._group_view(j.group), "changes": n}

    @route("mcast", API + "/static", methods=["DELETE"])
    @api(write=True, body=True)
    def delete_static(self, req, body, **_):
        j = self._parse_static(body, for_join=False)
        res = self._leave(j)
        LOG.info("REST static leave (%s, %s) on %d/%d", j.source or "*", j.group, j.dpid, j.port)
        return res

    @route("mcast", API + "/static/{dpid}/{port}/{group}", methods=["DELETE"], requirements=STATIC)
    @api(write=True)
    def delete_static_path(self, req, dpid, port, group, **_):
        d, p = _dpid(dpid), _port(port)
        g = _bad(settings_mod.parse_group, group)
        src = req.GET.get("source")
        s = _bad(settings_mod.parse_source, src, g) if src else None
        j = settings_mod.StaticJoin(d, p, g, s)
        res = self._leave(j)
        LOG.info("REST static leave (%s, %s) on %d/%d", s or "*", g, d, p)
        return res

    @route("mcast", API + "/policy/trees", methods=["PUT"])
    @api(write=True, body=True)
    def put_tree_policy(self, req, body, **_):
        if not isinstance(body, dict):
            raise ApiError(400, f"the body must be a JSON object, got {type(body).__name__}")
        tc = _bad(settings_mod.trees_from_dict, body)
        seen = set()
        switches = self._switches()
        for p in tc.policies:
            if p.prefix in seen:
                raise ApiError(400, f"tree policy: prefix {p.prefix} given twice")
            seen.add(p.prefix)
            if p.rp is not None and p.rp not in switches:
                raise ApiError(400, f"tree policy: rp {p.rp} is not a known switch")
        out = self.core.set_tree_config(self.app.now(), tc)
        n = self._send(out)
        LOG.info("REST tree policy replaced: %s (%d changes)", json.dumps(self._tree_config(), sort_keys=True), n)
        return {"trees": self._tree_config(), "changes": n,
                "groups": [{"group": str(g), "mode": v["mode"], "root": v["root"]}
                           for g in sorted(self._groups(), key=_gkey) for v in [self.core.group_view(g)]]}

    @route("mcast", API + "/policy/limits", methods=["PUT"])
    @api(write=True, body=True)
    def put_limits(self, req, body, **_):
        _object(body, {"max_groups_per_port", "max_sources_per_group"})
        if not body:
            raise ApiError(400, "give max_groups_per_port and/or max_sources_per_group")
        lows = {"max_groups_per_port": 1, "max_sources_per_group": 0}
        for k, v in body.items():
            if isinstance(v, bool) or not isinstance(v, int) or not lows[k] <= v <= MAX_LIMIT:
                raise ApiError(400, f"{k} must be an integer in [{lows[k]}, {MAX_LIMIT}], got {v!r}")
        members = self.core.members
        cfg = _bad(lambda: members.config.with_changes(**body))
        _bad(members.set_config, cfg)
        LOG.info("REST membership limits: %s", self._limits())
        return self._limits()

    @route("mcast", API + "/ports/{dpid}/{port}", methods=["PUT"], requirements=PORT)
    @api(write=True, body=True)
    def put_port(self, req, dpid, port, body, **_):
        d, p = _dpid(dpid), _port(port)
        _object(body, {"immediate_leave"}, {"immediate_leave"})
        il = body["immediate_leave"]
        if not isinstance(il, bool):
            raise ApiError(400, f"immediate_leave must be true or false, got {il!r}")
        self._known_port(d, p)
        members = self.core.members
        ports = set(members.config.immediate_leave_ports)
        (ports.add if il else ports.discard)((d, p))
        cfg = _bad(lambda: members.config.with_changes(immediate_leave_ports=[list(k) for k in sorted(ports)]))
        _bad(members.set_config, cfg)
        LOG.info("REST port %d/%d immediate_leave=%s", d, p, il)
        return self._port_view(d, p)


class _Fallback(ControllerBase):
    """JSON 405 for known paths with another method, JSON 404 for unknown paths under the API."""

    def not_allowed(self, req, allowed="", **_):
        LOG.info("REST %s -> 405", _where(req))
        return _error(405, f"method {req.method} not allowed here; allowed: {allowed}", {"Allow": allowed})

    def not_found(self, req, **_):
        LOG.info("REST %s -> 404", _where(req))
        return _error(404, f"no such resource: {req.path} (see docs/openapi.yaml)")


def _route_table(cls=McastRest) -> dict[str, tuple[dict, list[str]]]:
    """path -> (requirements, methods) of the API."""
    table: dict[str, tuple[dict, list[str]]] = {}
    for _, fn in inspect.getmembers(cls, inspect.isfunction):
        info = getattr(fn, "routing_info", None)
        if info is None:
            continue
        reqs, methods = table.setdefault(info["path"], (dict(info.get("requirements") or {}), []))
        methods.extend(info["methods"])
    return table


def routes() -> set[tuple[str, str]]:
    """Every (method, path) of the API, for the OpenAPI consistency test."""
    return {(m, path) for path, (_, methods) in _route_table().items() for m in methods}


class _ForeignBarrierFilter(logging.Filter):
    """ryu.app.ofctl.service (used for ?verify=1) sees every barrier reply, including those
    of the barriers the app sends itself between flow changes, and logs each of them as an
    error ("unknown barrier xid"). They are ours and expected: drop just those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("unknown barrier xid")


def attach(wsgi, app) -> None:
    """Register the API on Ryu's WSGI application and apply the start-up static joins.

    Static joins from the settings file are applied here, when the application starts
    (before any switch has connected): the core keeps them and the trees include them as
    soon as their switch is there.
    """
    wsgi.register(McastRest, {REST_NAME: app})
    for path, (reqs, methods) in sorted(_route_table().items()):
        wsgi.mapper.connect("mcast-405", path, controller=_Fallback, action="not_allowed",
                            requirements=reqs, conditions={}, allowed=", ".join(sorted(set(methods))))
    wsgi.mapper.connect("mcast-404", API + "/{tail:[\\s\\S]*}", controller=_Fallback, action="not_found", conditions={})
    flt = _ForeignBarrierFilter()
    if not any(isinstance(f, _ForeignBarrierFilter) for f in logging.getLogger("OfctlService").filters):
        logging.getLogger("OfctlService").addFilter(flt)
    static = getattr(app.settings, "static", ())
    if static:
        now = app.now()
        for j in static:
            app.send(app.core.static_join(now, j.dpid, j.port, j.group, j.source))
        LOG.info("applied %d static join(s) from the settings file", len(static))
    if not app.settings.rest.token:
        LOG.info("REST API is read-only: no token configured (MCAST_SDN_TOKEN or rest.token in the settings file)")
