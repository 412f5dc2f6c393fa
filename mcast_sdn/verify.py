"""Verification runs, the pure part: scenarios, expected delivery, analysis, verdict, formatting.

A *scenario* (JSON, ``mininet/scenarios/*.json``) says who joins which group when (with
which source filter and IGMP/MLD version), who sends what when, who leaves when, and
optionally which fault to inject. ``mininet/verify.py`` runs it on a Mininet network with
the real controller and hands the records of the traffic tools to `analyse`, which
decides, per host and stream, what should have arrived and what did.

Nothing here imports Mininet or Ryu, so the unit tests cover all of it.

Scenario format (every key but ``timeline`` optional)::

    {
      "name": "basic",
      "description": "free text",
      "topology": "ring4",                       # name in topologies/, or an inline topology object
      "controller": {"trees": {"default_mode": "steiner"}},   # MCAST_SDN_CONFIG contents
      "port": 5001,                              # UDP port of every stream
      "groups": {"G": "239.10.0.1", "G6": "ff15::10:1"},     # names for addresses
      "roles": {"src": "first", "members": "1:-1"},          # names for host selections ("@src")
      "expect": {"join_grace": 1.0, "leave_grace": 2.0, "leave_margin": 0.3, "link_slack": 10},
      "tail": 2.0,                               # longest wait for stragglers after the last stream
      "timeline": [
        {"at": 0,   "join": "G", "hosts": "@members"},                       # ASM (EXCLUDE {})
        {"at": 0,   "join": "G6", "hosts": "2", "mode": "include", "sources": ["@src"], "version": 2},
        {"at": 1.5, "send": "G", "hosts": "@src", "count": 300, "rate": 100, "size": 64},
        {"at": 3.0, "leave": "G", "hosts": "h2"},
        {"at": 2.5, "fault": "del_flows", "group": "G"}                      # break a tree on purpose
      ]
    }

Host selectors (``hosts``, ``roles``, host entries of ``sources``) refer to the topology's
hosts in file order, so a scenario runs on any topology with enough hosts: a host name
(``"h3"``), an index (``0``, ``-1`` or ``"2"``), ``"first"``, ``"last"``, ``"all"``, a
Python slice over the host list (``"1:-1"``, ``"::2"``), a role (``"@members"``), a list
of selectors (union, in order), or ``{"hosts": SEL, "except": SEL}``. An entry whose
selection is empty is an error unless it says ``"optional": true``.

Joins: ``mode`` is ``asm`` (default; EXCLUDE {}), ``include`` or ``exclude`` with
``sources`` (IP addresses or host selectors; a host stands for its address in the group's
family). SSM groups (232/8, ff3x::/32) need ``include``. ``version`` forces the host's
IGMP (IPv4 groups: 1, 2, 3) or MLD (IPv6 groups: 1, 2) version; it is host state, so every
join of one host and family must agree. IGMPv2/MLDv1 cannot carry source lists: the
network then delivers every source (not a leak) while the host's socket still filters.
A host holds at most one membership per group in a scenario; IGMPv1 has no leave
message, so a leave of an IGMPv1 host is refused.

What counts (see `analyse`):

* a member must receive, exactly once, every packet of an admitted stream sent from
  ``join_grace`` after its join until ``leave_margin`` before its leave (packets in those
  margins may or may not arrive);
* a packet reaching a host's interface (seen by a wire watcher on every host) while the
  host has no interest in it is a leak; after a leave the network has ``leave_grace``
  (default: last-member query time of the controller config + 1 s) to stop;
* a link may carry each packet of a stream at most once, and only if the link is on a
  tree the controller reported for that stream (OVS port counters, background traffic
  such as LLDP measured before the streams and subtracted, ``link_slack`` tolerated).
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import networkx as nx

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DIR = REPO_ROOT / "mininet" / "scenarios"

MAX_AT = 120.0  # seconds: every timeline entry happens within this
MAX_STREAM_SECONDS = 60.0
MAX_COUNT = 100_000
MAX_RATE = 5000.0
MIN_SIZE = 28  # traffic.HEADER_SIZE
MAX_SIZE = 1452  # largest UDP payload that fits a 1500-byte IPv6 packet: no fragments
DEFAULT_PORT = 5001
DEFAULT_COUNT = 200
DEFAULT_RATE = 100.0
DEFAULT_SIZE = 64
DEFAULT_EXPECT = {"join_grace": 1.0, "leave_grace": None, "leave_margin": 0.3, "link_slack": 10}
DEFAULT_TAIL = 2.0
EXACT_STEINER_MAX_TERMINALS = 9
FAULT_KINDS = ("del_flows", "no_forward")
JOIN_MODES = ("asm", "include", "exclude")

_TOP_KEYS = {"name", "description", "topology", "controller", "port", "groups", "roles", "expect", "tail", "timeline"}
_COMMON_KEYS = {"at", "optional", "note"}
_ACTION_KEYS = {
    "join": {"hosts", "mode", "sources", "version"},
    "leave": {"hosts"},
    "send": {"hosts", "count", "rate", "size"},
    "fault": {"group", "source", "switch"},
}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_SLICE_RE = re.compile(r"^(-?\d*):(-?\d*)(?::(-?\d*))?$")
_NOT_ROUTED = (ipaddress.ip_network("224.0.0.0/24"),)
_SSM = (ipaddress.ip_network("232.0.0.0/8"), ipaddress.ip_network("ff30::/12"))


class ScenarioError(ValueError):
    """A scenario that cannot run; the message says where (file, timeline index) and why."""


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def norm_addr(text: str) -> str:
    """Canonical text of an IP address (ValueError if it is none)."""
    return str(ipaddress.ip_address(text))


def family(addr: str) -> int:
    return ipaddress.ip_address(addr).version


def is_ssm(group: str) -> bool:
    a = ipaddress.ip_address(group)
    return any(a.version == n.version and a in n for n in _SSM)


def _check_group_addr(text: Any, where: str) -> str:
    if not isinstance(text, str):
        raise ScenarioError(f"{where}: group {text!r} must be a string (a name from \"groups\" or an address)")
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise ScenarioError(f"{where}: {text!r} is not an IP address") from None
    if not a.is_multicast:
        raise ScenarioError(f"{where}: {a} is not a multicast address")
    if a.version == 4 and any(a in n for n in _NOT_ROUTED):
        raise ScenarioError(f"{where}: {a} is link-local (224.0.0.0/24): it is flooded, never routed on a tree")
    if a.version == 6 and ((int(a) >> 112) & 0xF) in (0, 1, 2):
        raise ScenarioError(f"{where}: {a} has interface-/link-local scope: it is never routed on a tree")
    return str(a)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    vals = sorted(values)
    if not vals:
        return None
    k = max(1, math.ceil(q / 100.0 * len(vals)))
    return vals[min(k, len(vals)) - 1]


def stats(values: Iterable[float]) -> dict:
    vals = [float(v) for v in values]
    return {
        "n": len(vals),
        "median": statistics.median(vals) if vals else None,
        "p95": percentile(vals, 95),
        "max": max(vals) if vals else None,
    }


# ---------------------------------------------------------------------------
# Scenario: structure (topology-independent)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: checked structure, selectors not yet resolved against a topology."""

    name: str
    description: str
    topology: Any  # str name, dict (inline), or None (must come from the command line)
    controller: dict | None
    port: int
    groups: dict  # name -> normalised address
    roles: dict  # name -> selector
    expect: dict
    tail: float
    timeline: tuple  # of dicts (validated), in file order
    source: str = "<scenario>"


def scenario_path(name_or_path: str | Path) -> Path:
    """A scenario file: an existing path, else ``mininet/scenarios/<name>[.json]``."""
    p = Path(name_or_path)
    if p.exists():
        return p
    for cand in (SCENARIO_DIR / str(name_or_path), SCENARIO_DIR / f"{name_or_path}.json"):
        if cand.exists():
            return cand
    known = ", ".join(available())
    raise ScenarioError(f"no scenario {str(name_or_path)!r} (a path, or one of: {known})")


def available() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json")) if SCENARIO_DIR.is_dir() else []


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and check a scenario file (by path or by name in mininet/scenarios)."""
    path = scenario_path(name_or_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{path}: not valid JSON: {e}") from None
    return parse_scenario(data, source=str(path), default_name=path.stem)


def _check_keys(obj: Mapping, allowed: set, where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                            f"(allowed: {', '.join(sorted(allowed))})")


def _check_selector_shape(sel: Any, where: str) -> None:
    if isinstance(sel, bool) or sel is None:
        raise ScenarioError(f"{where}: host selector {sel!r} is not valid")
    if _is_int(sel) or isinstance(sel, str):
        return
    if isinstance(sel, list):
        for i, s in enumerate(sel):
            _check_selector_shape(s, f"{where}[{i}]")
        return
    if isinstance(sel, dict):
        _check_keys(sel, {"hosts", "except"}, where)
        if "hosts" not in sel:
            raise ScenarioError(f"{where}: a selector object needs \"hosts\" (and optionally \"except\")")
        _check_selector_shape(sel["hosts"], f"{where}.hosts")
        if "except" in sel:
            _check_selector_shape(sel["except"], f"{where}.except")
        return
    raise ScenarioError(f"{where}: host selector {sel!r} must be a name, index, slice, role, list or object")


def _num_in(v: Any, lo: float, hi: float, what: str, where: str, integer: bool = False) -> float:
    if not (_is_int(v) if integer else _is_num(v)):
        raise ScenarioError(f"{where}: {what} {v!r} must be {'an integer' if integer else 'a number'}")
    if not lo <= v <= hi:
        raise ScenarioError(f"{where}: {what} {v} out of range [{lo}, {hi}]")
    return v


def parse_scenario(data: Any, source: str = "<scenario>", default_name: str = "scenario") -> Scenario:
    """Check a scenario's structure (keys, types, ranges, group addresses, one action per entry)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a JSON object, got {type(data).__name__}")
    _check_keys(data, _TOP_KEYS, source)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{source}: name must be a non-empty string")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ScenarioError(f"{source}: description must be a string")
    topo = data.get("topology")
    if topo is not None and not isinstance(topo, (str, dict)):
        raise ScenarioError(f"{source}: topology must be a name (e.g. \"ring4\") or an inline topology object")
    ctl = data.get("controller")
    if ctl is not None:
        if not isinstance(ctl, dict):
            raise ScenarioError(f"{source}: controller must be an object (the MCAST_SDN_CONFIG contents)")
        try:
            from mcast_sdn import settings  # pure; gives the controller's own error messages

            settings.from_dict(ctl)
        except ImportError:  # pragma: no cover - settings is part of the package
            pass
        except (ValueError, TypeError) as e:
            raise ScenarioError(f"{source}: controller config rejected: {e}") from None
    port = data.get("port", DEFAULT_PORT)
    _num_in(port, 1, 65535, "port", source, integer=True)

    groups: dict[str, str] = {}
    graw = data.get("groups", {})
    if not isinstance(graw, dict):
        raise ScenarioError(f"{source}: groups must be an object {{name: address}}")
    for gname, addr in graw.items():
        if not _NAME_RE.match(gname) or _looks_like_ip(gname):
            raise ScenarioError(f"{source}: group name {gname!r} must be an identifier (not an address)")
        groups[gname] = _check_group_addr(addr, f"{source}: groups.{gname}")
    if len(set(groups.values())) != len(groups):
        dup = [a for a, n in Counter(groups.values()).items() if n > 1]
        raise ScenarioError(f"{source}: groups: address(es) {', '.join(dup)} named twice")

    roles = data.get("roles", {})
    if not isinstance(roles, dict):
        raise ScenarioError(f"{source}: roles must be an object {{name: host selector}}")
    for rname, sel in roles.items():
        if not _NAME_RE.match(rname):
            raise ScenarioError(f"{source}: role name {rname!r} must be an identifier")
        _check_selector_shape(sel, f"{source}: roles.{rname}")

    expect = dict(DEFAULT_EXPECT)
    eraw = data.get("expect", {})
    if not isinstance(eraw, dict):
        raise ScenarioError(f"{source}: expect must be an object")
    _check_keys(eraw, set(DEFAULT_EXPECT), f"{source}: expect")
    for k, v in eraw.items():
        hi = 10_000 if k == "link_slack" else 60.0
        if k == "leave_grace" and v is None:
            continue
        expect[k] = _num_in(v, 0, hi, k, f"{source}: expect")
    tail = data.get("tail", DEFAULT_TAIL)
    _num_in(tail, 0, 30, "tail", source)

    tl = data.get("timeline")
    if not isinstance(tl, list) or not tl:
        raise ScenarioError(f"{source}: timeline must be a non-empty list of entries")
    entries = []
    for i, e in enumerate(tl):
        where = f"{source}: timeline[{i}]"
        if not isinstance(e, dict):
            raise ScenarioError(f"{where}: an entry is an object like {{\"at\": 0, \"join\": \"G\", \"hosts\": \"all\"}}")
        actions = [k for k in _ACTION_KEYS if k in e]
        if len(actions) != 1:
            raise ScenarioError(f"{where}: needs exactly one of {', '.join(_ACTION_KEYS)} (has {actions or 'none'})")
        act = actions[0]
        _check_keys(e, _COMMON_KEYS | {act} | _ACTION_KEYS[act], where)
        where = f"{where} ({act})"
        if "at" not in e:
            raise ScenarioError(f"{where}: \"at\" (seconds from the start) is required")
        _num_in(e["at"], 0, MAX_AT, "at", where)
        if "optional" in e and not isinstance(e["optional"], bool):
            raise ScenarioError(f"{where}: optional must be true or false")
        if act in ("join", "leave", "send"):
            _group_ref(e[act], groups, where)
            if "hosts" not in e:
                raise ScenarioError(f"{where}: \"hosts\" (a host selector) is required")
            _check_selector_shape(e["hosts"], f"{where}: hosts")
        if act == "join":
            mode = e.get("mode", "include" if e.get("sources") else "asm")
            if mode not in JOIN_MODES:
                raise ScenarioError(f"{where}: mode {mode!r} is not one of {', '.join(JOIN_MODES)}")
            srcs = e.get("sources", [])
            if not isinstance(srcs, list):
                raise ScenarioError(f"{where}: sources must be a list (of addresses or host selectors)")
            for j, s in enumerate(srcs):
                _check_selector_shape(s, f"{where}: sources[{j}]")
            if mode == "asm" and srcs:
                raise ScenarioError(f"{where}: mode asm takes no sources (use include or exclude)")
            if mode == "include" and not srcs:
                raise ScenarioError(f"{where}: mode include needs at least one source (INCLUDE {{}} is a leave)")
            if "version" in e:
                fam = family(_group_ref(e["join"], groups, where))
                hi = 3 if fam == 4 else 2
                _num_in(e["version"], 1, hi, f"{'IGMP' if fam == 4 else 'MLD'} version", where, integer=True)
        if act == "send":
            count = e.get("count", DEFAULT_COUNT)
            rate = e.get("rate", DEFAULT_RATE)
            _num_in(count, 1, MAX_COUNT, "count", where, integer=True)
            _num_in(rate, 0.1, MAX_RATE, "rate", where)
            _num_in(e.get("size", DEFAULT_SIZE), MIN_SIZE, MAX_SIZE, "size", where, integer=True)
            if count / rate > MAX_STREAM_SECONDS:
                raise ScenarioError(f"{where}: {count} packets at {rate}/s take {count / rate:.0f}s "
                                    f"(at most {MAX_STREAM_SECONDS:.0f}s per stream)")
        if act == "fault":
            if e["fault"] not in FAULT_KINDS:
                raise ScenarioError(f"{where}: fault {e['fault']!r} is not one of {', '.join(FAULT_KINDS)}")
            if "group" not in e:
                raise ScenarioError(f"{where}: \"group\" (whose tree to break) is required")
            _group_ref(e["group"], groups, where)
            if "source" in e:
                _check_selector_shape(e["source"], f"{where}: source")
            if "switch" in e and not isinstance(e["switch"], str):
                raise ScenarioError(f"{where}: switch must be a switch name")
        entries.append(dict(e))
    return Scenario(name, desc, topo, ctl, port, groups, dict(roles), expect, float(tail), tuple(entries), source)


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _group_ref(ref: Any, groups: Mapping[str, str], where: str) -> str:
    if isinstance(ref, str) and ref in groups:
        return groups[ref]
    if isinstance(ref, str) and not _looks_like_ip(ref):
        known = ", ".join(sorted(groups)) or "none defined"
        raise ScenarioError(f"{where}: unknown group {ref!r} (names: {known}; or give an address)")
    return _check_group_addr(ref, where)


# ---------------------------------------------------------------------------
# Host selectors (resolved against a topology's host list)
# ---------------------------------------------------------------------------


def select_hosts(sel: Any, names: list[str], roles: Mapping[str, Any] | None = None, where: str = "hosts",
                 _stack: tuple = ()) -> list[str]:
    """Host names picked by a selector, in topology order of the selection, duplicates removed."""
    roles = roles or {}
    n = len(names)

    def index(i: int) -> str:
        if not -n <= i < n:
            raise ScenarioError(f"{where}: host index {i} needs at least {i + 1 if i >= 0 else -i} hosts; "
                                f"the topology has {n}")
        return names[i]

    if _is_int(sel):
        return [index(sel)]
    if isinstance(sel, str):
        s = sel.strip()
        if s.startswith("@"):
            role = s[1:]
            if role not in roles:
                known = ", ".join(sorted(roles)) or "none defined"
                raise ScenarioError(f"{where}: unknown role {s!r} (roles: {known})")
            if role in _stack:
                raise ScenarioError(f"{where}: roles refer to each other in a cycle: {' -> '.join(_stack + (role,))}")
            return select_hosts(roles[role], names, roles, f"{where} (role {role})", _stack + (role,))
        if s == "all":
            return list(names)
        if s == "first":
            return [index(0)]
        if s == "last":
            return [index(-1)]
        if re.fullmatch(r"-?\d+", s):
            return [index(int(s))]
        m = _SLICE_RE.match(s)
        if m:
            parts = [int(x) if x not in (None, "") else None for x in m.groups()]
            if parts[2] == 0:
                raise ScenarioError(f"{where}: slice {s!r} has step 0")
            return list(names[slice(*parts)])
        if s in names:
            return [s]
        raise ScenarioError(f"{where}: no host {s!r} in the topology (hosts: {', '.join(names[:12])}"
                            f"{', ...' if n > 12 else ''}; or use an index, a slice like \"1:-1\", "
                            f"first, last, all, @role)")
    if isinstance(sel, list):
        out: list[str] = []
        for i, s in enumerate(sel):
            for h in select_hosts(s, names, roles, f"{where}[{i}]", _stack):
                if h not in out:
                    out.append(h)
        return out
    if isinstance(sel, dict):
        base = select_hosts(sel["hosts"], names, roles, f"{where}.hosts", _stack)
        drop = set(select_hosts(sel.get("except", []), names, roles, f"{where}.except", _stack))
        return [h for h in base if h not in drop]
    raise ScenarioError(f"{where}: host selector {sel!r} is not valid")


# ---------------------------------------------------------------------------
# Plan: a scenario resolved against a topology
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinPlan:
    index: int  # timeline index of the join
    host: str
    group: str
    mode: str  # asm | include | exclude
    sources: tuple  # normalised addresses
    version: int | None  # forced IGMP (IPv4) / MLD (IPv6) version, None = kernel default
    at: float
    leave_at: float | None = None
    leave_index: int | None = None


@dataclass(frozen=True)
class SendPlan:
    index: int
    stream: int  # stream id written in every datagram (unique in the scenario)
    host: str
    group: str
    src: str  # the host's address in the group's family
    at: float
    count: int
    rate: float
    size: int

    @property
    def seconds(self) -> float:
        return self.count / self.rate


@dataclass(frozen=True)
class FaultPlan:
    index: int
    at: float
    kind: str
    group: str
    source: str | None  # address of the stream whose tree is broken (None: the group's first stream)
    switch: str | None  # explicit switch (None: chosen on the tree)


@dataclass
class Plan:
    name: str
    description: str
    spec: Any  # TopologySpec
    controller: dict | None
    port: int
    joins: list
    sends: list
    faults: list
    versions: dict  # host -> {"igmp": int|None, "mld": int|None} (only hosts that join)
    expect: dict  # join_grace, leave_grace (resolved), leave_margin, link_slack
    tail: float
    groups: list  # addresses in first-use order
    group_names: dict  # address -> scenario name (for display)
    roles: dict  # role -> host names

    @property
    def end(self) -> float:
        """Scenario time when the last action is over (last stream sent, last join/leave/fault done)."""
        t = 0.0
        for j in self.joins:
            t = max(t, j.at, j.leave_at or 0.0)
        for s in self.sends:
            t = max(t, s.at + s.seconds)
        for f in self.faults:
            t = max(t, f.at)
        return t

    def host_names(self) -> list[str]:
        return [h.name for h in self.spec.hosts]

    def addr(self, host: str, fam: int) -> str:
        h = self.spec.host(host)
        return str(h.ip_address if fam == 4 else h.ipv6_address)

    def host_of_addr(self) -> dict[str, str]:
        out = {}
        for h in self.spec.hosts:
            out[str(h.ip_address)] = h.name
            out[str(h.ipv6_address)] = h.name
        return out


def leave_grace_for(controller: Mapping | None) -> float:
    """Time the network may take to stop a stream after a leave: the controller's last-member
    query time (LMQI x LMQC, RFC 3376 §8.9/§8.8) plus 1 s for reports, timers and flow changes."""
    lmqi, lmqc = 1.0, None
    rob = 2
    mem = (controller or {}).get("membership") or {}
    if isinstance(mem, Mapping):
        lmqi = float(mem.get("last_member_query_interval", lmqi) or lmqi)
        rob = int(mem.get("robustness", rob) or rob)
        lmqc = mem.get("last_member_query_count")
    return lmqi * (lmqc if lmqc else rob) + 1.0


def resolve(sc: Scenario, spec) -> Plan:
    """Resolve a scenario's selectors and references on a topology; cross-entry checks."""
    names = [h.name for h in spec.hosts]
    src_name = sc.source
    roles = {r: select_hosts(sel, names, sc.roles, f"{src_name}: roles.{r}") for r, sel in sc.roles.items()}
    group_names = {a: n for n, a in sc.groups.items()}
    order: list[str] = []

    def use(g: str) -> str:
        if g not in order:
            order.append(g)
        return g

    def pick(e: dict, key: str, where: str) -> list[str]:
        hosts = select_hosts(e[key], names, sc.roles, f"{where}: {key}")
        if not hosts and not e.get("optional"):
            raise ScenarioError(f"{where}: {key} {e[key]!r} selects no host on topology {spec.name} "
                                f"({len(names)} hosts); mark the entry \"optional\": true if that is fine")
        return hosts

    joins: dict[tuple[str, str], JoinPlan] = {}
    sends: list[SendPlan] = []
    faults: list[FaultPlan] = []
    versions: dict[str, dict] = {}
    version_src: dict[tuple[str, int], tuple[int | None, int]] = {}
    stream_id = 0
    # joins first (leaves refer to them), then the rest, all in timeline order
    for i, e in enumerate(sc.timeline):
        if "join" not in e:
            continue
        where = f"{src_name}: timeline[{i}] (join)"
        g = use(_group_ref(e["join"], sc.groups, where))
        fam = family(g)
        mode = e.get("mode", "include" if e.get("sources") else "asm")
        srcs: list[str] = []
        for j, ref in enumerate(e.get("sources", [])):
            srcs += _source_addrs(ref, fam, names, sc.roles, spec, f"{where}: sources[{j}]")
        srcs = sorted(set(srcs), key=lambda a: ipaddress.ip_address(a))
        if mode == "exclude" and not srcs:
            mode = "asm"
        if is_ssm(g) and mode != "include":
            raise ScenarioError(f"{where}: {g} is in the SSM range (232/8, ff3x::/32): joins there must "
                                f"be mode include with sources (RFC 4607)")
        version = e.get("version")
        for h in pick(e, "hosts", where):
            key = (h, g)
            if key in joins:
                raise ScenarioError(f"{where}: {h} already joins {g} at timeline[{joins[key].index}]; "
                                    f"a host holds one membership per group in a scenario")
            prev = version_src.get((h, fam))
            if prev is not None and prev[0] != version:
                proto = "IGMP" if fam == 4 else "MLD"
                show = lambda v: "the kernel default" if v is None else f"v{v}"  # noqa: E731
                raise ScenarioError(f"{where}: the {proto} version is host state: {h} gets {show(version)} here "
                                    f"but {show(prev[0])} at timeline[{prev[1]}]; give every "
                                    f"IPv{fam} join of {h} the same version")
            version_src[(h, fam)] = (version, i)
            if version is not None:
                versions.setdefault(h, {"igmp": None, "mld": None})["igmp" if fam == 4 else "mld"] = version
            else:
                versions.setdefault(h, {"igmp": None, "mld": None})
            joins[key] = JoinPlan(i, h, g, mode, tuple(srcs), version, float(e["at"]))
    for i, e in enumerate(sc.timeline):
        if "leave" in e:
            where = f"{src_name}: timeline[{i}] (leave)"
            g = _group_ref(e["leave"], sc.groups, where)
            for h in pick(e, "hosts", where):
                j = joins.get((h, g))
                if j is None:
                    raise ScenarioError(f"{where}: {h} leaves {g} but never joins it")
                if j.leave_at is not None:
                    raise ScenarioError(f"{where}: {h} already leaves {g} at timeline[{j.leave_index}]")
                if not e["at"] > j.at:
                    raise ScenarioError(f"{where}: {h} leaves {g} at {e['at']}s, not after its join at {j.at}s")
                if family(g) == 4 and j.version == 1:
                    raise ScenarioError(f"{where}: {h} speaks IGMPv1, which has no leave message (the "
                                        f"membership only times out); drop the leave or use version 2 or 3")
                joins[(h, g)] = JoinPlan(j.index, h, g, j.mode, j.sources, j.version, j.at, float(e["at"]), i)
        elif "send" in e:
            where = f"{src_name}: timeline[{i}] (send)"
            g = use(_group_ref(e["send"], sc.groups, where))
            fam = family(g)
            for h in pick(e, "hosts", where):
                stream_id += 1
                sends.append(SendPlan(i, stream_id, h, g, _host_addr(spec, h, fam), float(e["at"]),
                                      int(e.get("count", DEFAULT_COUNT)), float(e.get("rate", DEFAULT_RATE)),
                                      int(e.get("size", DEFAULT_SIZE))))
    for i, e in enumerate(sc.timeline):
        if "fault" in e:
            where = f"{src_name}: timeline[{i}] (fault)"
            g = _group_ref(e["group"], sc.groups, where)
            src = None
            if "source" in e:
                hs = select_hosts(e["source"], names, sc.roles, f"{where}: source")
                if len(hs) != 1:
                    raise ScenarioError(f"{where}: source must select exactly one host (got {len(hs)})")
                src = _host_addr(spec, hs[0], family(g))
            cands = [s for s in sends if s.group == g and (src is None or s.src == src)]
            if not cands:
                raise ScenarioError(f"{where}: nobody sends to {g}{' from ' + src if src else ''}: no tree to break")
            if not any(s.at < e["at"] < s.at + s.seconds for s in cands):
                raise ScenarioError(f"{where}: at {e['at']}s no stream of {g} is running (the tree only "
                                    f"exists while a source sends)")
            if "switch" in e:
                try:
                    spec.switch(e["switch"])
                except KeyError:
                    raise ScenarioError(f"{where}: no switch {e['switch']!r} in topology {spec.name}") from None
            faults.append(FaultPlan(i, float(e["at"]), e["fault"], g, src, e.get("switch")))
    if not sends:
        raise ScenarioError(f"{src_name}: nothing is sent: a verification needs at least one send")
    expect = dict(sc.expect)
    if expect.get("leave_grace") is None:
        expect["leave_grace"] = leave_grace_for(sc.controller)
    return Plan(sc.name, sc.description, spec, sc.controller, sc.port,
                sorted(joins.values(), key=lambda j: (j.at, j.index, names.index(j.host))),
                sends, faults, versions, expect, sc.tail, order, group_names, roles)


def _host_addr(spec, host: str, fam: int) -> str:
    h = spec.host(host)
    return str(h.ip_address if fam == 4 else h.ipv6_address)


def _source_addrs(ref: Any, fam: int, names, roles, spec, where: str) -> list[str]:
    if isinstance(ref, str) and _looks_like_ip(ref):
        a = ipaddress.ip_address(ref)
        if a.version != fam:
            raise ScenarioError(f"{where}: source {a} is IPv{a.version}, the group is IPv{fam}")
        if a.is_multicast or a.is_unspecified:
            raise ScenarioError(f"{where}: source {a} is not a unicast address")
        return [str(a)]
    hosts = select_hosts(ref, names, roles, where)
    if not hosts:
        raise ScenarioError(f"{where}: source {ref!r} selects no host")
    return [_host_addr(spec, h, fam) for h in hosts]


# ---------------------------------------------------------------------------
# Interests and streams (plan times or observed times), expected delivery
# ---------------------------------------------------------------------------


@dataclass
class Interest:
    """One host's membership of one group, with the times it held it."""

    host: str
    group: str
    mode: str
    sources: frozenset
    version: int  # effective IGMP (IPv4) / MLD (IPv6) version
    t_join: float | None  # None: never joined (receiver failed)
    t_leave: float | None = None

    def socket_admits(self, src: str) -> bool:
        if self.mode == "include":
            return src in self.sources
        return src not in self.sources  # asm: no sources; exclude: blocked ones

    def network_admits(self, src: str) -> bool:
        """What the network can know: IGMPv1/v2 and MLDv1 reports carry no sources."""
        fam = family(self.group)
        if (fam == 4 and self.version < 3) or (fam == 6 and self.version < 2):
            return True
        return self.socket_admits(src)

    def filter_text(self) -> str:
        srcs = ",".join(sorted(self.sources))
        if self.mode == "asm":
            txt = "ASM"
        else:
            txt = f"{self.mode.upper()}{{{srcs}}}"
        proto = "IGMPv" if family(self.group) == 4 else "MLDv"
        return f"{proto}{self.version} {txt}"


@dataclass
class StreamInfo:
    stream: int
    host: str
    group: str
    src: str
    first_seq: int
    count: int  # datagrams attempted
    rate: float
    t_first: float | None
    t_last: float | None
    errors: int = 0
    sent: int = 0

    def t_of(self, seq: int) -> float:
        return self.t_first + (seq - self.first_seq) / self.rate

    def seqs_between(self, lo_t: float, hi_t: float | None) -> range:
        """Sequence numbers sent (by the schedule) at or after lo_t and at or before hi_t."""
        if self.t_first is None or self.count <= 0:
            return range(0)
        k_lo = max(0, math.ceil((lo_t - self.t_first) * self.rate - 1e-9))
        k_hi = self.count - 1 if hi_t is None else min(self.count - 1, math.floor((hi_t - self.t_first) * self.rate + 1e-9))
        if k_hi < k_lo:
            return range(0)
        return range(self.first_seq + k_lo, self.first_seq + k_hi + 1)


def effective_version(fam: int, forced: int | None) -> int:
    return forced if forced else (3 if fam == 4 else 2)


def plan_interests(plan: Plan) -> list[Interest]:
    return [Interest(j.host, j.group, j.mode, frozenset(j.sources), effective_version(family(j.group), j.version),
                     j.at, j.leave_at) for j in plan.joins]


def plan_streams(plan: Plan) -> list[StreamInfo]:
    return [StreamInfo(s.stream, s.host, s.group, s.src, 0, s.count, s.rate, s.at,
                       s.at + (s.count - 1) / s.rate, 0, s.count) for s in plan.sends]


def must_receive(interest: Interest | None, stream: StreamInfo, expect: Mapping,
                 sent_at: Mapping[int, float] | None = None) -> range | list:
    """The packets of `stream` that the host of `interest` must get exactly once.

    A packet's send time is the schedule's (first send + k / rate) unless `sent_at`
    ({seq: time stamped in the datagram}, from any host that saw it) knows better: a
    sender the CPU held up sends late, and a late packet near a leave is not owed.
    """
    if interest is None or interest.t_join is None or interest.host == stream.host:
        return range(0)
    if interest.group != stream.group or not interest.socket_admits(stream.src):
        return range(0)
    lo = interest.t_join + float(expect.get("join_grace", 1.0))
    hi = None if interest.t_leave is None else interest.t_leave - float(expect.get("leave_margin", 0.3))
    if not sent_at:
        return stream.seqs_between(lo, hi)
    wide = stream.seqs_between(lo - 1.0, None if hi is None else hi + 1.0)
    return [k for k in wide if lo <= sent_at.get(k, stream.t_of(k)) and (hi is None or sent_at.get(k, stream.t_of(k)) <= hi)]


def expected_delivery(plan: Plan) -> list[dict]:
    """Who should get which (S,G) when, from the plan's own times (seconds from the start).

    One entry per (host, stream) with something to receive: the stream, the time window
    whose packets are owed, the first and last sequence number and how many.
    """
    interests = {(i.host, i.group): i for i in plan_interests(plan)}
    out = []
    for s in plan_streams(plan):
        for h in plan.host_names():
            i = interests.get((h, s.group))
            r = must_receive(i, s, plan.expect)
            if len(r) == 0:
                continue
            out.append({
                "host": h, "group": s.group, "source": s.src, "stream": s.stream,
                "from": round(s.t_of(r.start), 6), "until": round(s.t_of(r.stop - 1), 6),
                "first_seq": r.start, "last_seq": r.stop - 1, "packets": len(r),
                "filter": i.filter_text(),
            })
    return out


# ---------------------------------------------------------------------------
# Analysis of a run
# ---------------------------------------------------------------------------


@dataclass
class Observed:
    """What a run produced (records as the traffic tools wrote them, see mcast_sdn.traffic).

    members: {(host, group): receiver records} for every planned join;
    watch:   {host: records of the wire watcher on that host} (``wire`` events);
    senders: {stream id: sender records};
    links:   None, or the inputs of `link_report` (see there);
    errors:  problems of the run itself (a tool that failed, a fault that could not be applied).
    """

    members: dict = field(default_factory=dict)
    watch: dict = field(default_factory=dict)
    senders: dict = field(default_factory=dict)
    links: dict | None = None
    errors: list = field(default_factory=list)
    faults: list = field(default_factory=list)
    trees: dict = field(default_factory=dict)  # stream id -> {"edges": [...], "size": n}


def _float(x) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def observed_streams(plan: Plan, senders: Mapping[int, list]) -> tuple[list[StreamInfo], list[str]]:
    out, problems = [], []
    for s in plan.sends:
        recs = senders.get(s.stream, [])
        sent = next((r for r in recs if r.get("event") == "sent"), None)
        err = next((r for r in recs if r.get("event") == "error"), None)
        if sent is None:
            why = f": {err.get('msg')}" if err else " (no summary record)"
            problems.append(f"{s.host}: sender of stream {s.stream} to {s.group} failed{why}")
            out.append(StreamInfo(s.stream, s.host, s.group, s.src, 0, 0, s.rate, None, None, 0, 0))
            continue
        first, last = sent.get("first_seq"), sent.get("last_seq")
        count = 0 if first is None or last is None else int(last) - int(first) + 1
        src = sent.get("src") or s.src
        try:
            src = norm_addr(src)
        except ValueError:
            src = s.src
        if src != s.src:
            problems.append(f"{s.host}: stream {s.stream} to {s.group} left with source {src}, expected {s.src}")
        errors = int(sent.get("errors") or 0)
        if errors:
            problems.append(f"{s.host}: {errors} of {count} sends of stream {s.stream} to {s.group} were refused "
                            f"by the kernel ({sent.get('last_error')})")
        if count < s.count:
            problems.append(f"{s.host}: stream {s.stream} to {s.group} sent {count} of {s.count} packets "
                            f"({sent.get('reason')})")
        out.append(StreamInfo(s.stream, s.host, s.group, src, int(first or 0), count, float(sent.get("rate") or s.rate),
                              _float(sent.get("t_first")), _float(sent.get("t_last")), errors,
                              int(sent.get("count") or 0)))
    return out, problems


def observed_interests(plan: Plan, members: Mapping[tuple, list]) -> tuple[dict, list[str]]:
    out, problems = {}, []
    for j in plan.joins:
        recs = members.get((j.host, j.group), [])
        joined = next((r for r in recs if r.get("event") == "joined" and norm_addr(r["group"]) == j.group), None)
        left = next((r for r in recs if r.get("event") == "left" and not r.get("final")
                     and norm_addr(r["group"]) == j.group), None)
        tj = _float(joined.get("t")) if joined else None
        tl = _float(left.get("t")) if left else None
        if joined is None:
            err = next((r for r in recs if r.get("event") == "error"), None)
            why = f": {err.get('msg')}" if err else " (no join record)"
            problems.append(f"{j.host}: receiver for {j.group} never joined{why}")
        elif j.leave_at is not None and left is None:
            problems.append(f"{j.host}: receiver for {j.group} never left (planned at {j.leave_at}s)")
        out[(j.host, j.group)] = Interest(j.host, j.group, j.mode, frozenset(j.sources),
                                          effective_version(family(j.group), j.version), tj, tl)
    return out, problems


def _ev(recs: Iterable[Mapping], event: str, group: str, src: str, stream: int) -> list[tuple[float, int]]:
    out = []
    for r in recs:
        if r.get("event") != event:
            continue
        try:
            if int(r["stream"]) != stream or norm_addr(r["group"]) != group or norm_addr(r["src"]) != src:
                continue
            out.append((float(r["t"]), int(r["seq"])))
        except (KeyError, TypeError, ValueError):
            continue
    out.sort()
    return out


def _ranges(seqs: list[int], limit: int = 4) -> str:
    """'3-9,15,20-22' (at most `limit` runs, then '...')."""
    runs = []
    for q in sorted(seqs):
        if runs and q == runs[-1][1] + 1:
            runs[-1][1] = q
        else:
            runs.append([q, q])
    txt = ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs[:limit])
    return txt + (",..." if len(runs) > limit else "")


def analyse(plan: Plan, obs: Observed) -> dict:
    """Per host and stream: owed, received, duplicates, missing, leaks; latencies; links; verdict."""
    expect = plan.expect
    streams, problems = observed_streams(plan, obs.senders)
    interests, p2 = observed_interests(plan, obs.members)
    problems += p2
    problems += list(obs.errors)
    join_grace = float(expect["join_grace"])
    leave_grace = float(expect["leave_grace"])
    rows: list[dict] = []
    # when each packet really left (stamped in the datagram), from every host that saw it
    sent_at: dict[int, dict[int, float]] = defaultdict(dict)
    for recs in list(obs.members.values()) + list(obs.watch.values()):
        for r in recs:
            if r.get("event") in ("rx", "wire"):
                try:
                    sent_at[int(r["stream"])][int(r["seq"])] = float(r["sent"])
                except (KeyError, TypeError, ValueError):
                    continue
    join_lat: dict[tuple, float] = {}
    leave_lat: dict[tuple, float] = {}
    censored: list[str] = []
    for h in plan.host_names():
        for s in streams:
            i = interests.get((h, s.group))
            must = must_receive(i, s, expect, sent_at.get(s.stream))
            member_recs = obs.members.get((h, s.group), [])
            rx = _ev(member_recs, "rx", s.group, s.src, s.stream)
            wire = _ev(obs.watch.get(h, []), "wire", s.group, s.src, s.stream)
            if i is None and not rx and not wire and h != s.host:
                continue
            seqs = [q for _t, q in rx]
            uniq = set(seqs)
            ooo, high = 0, -1
            for q in seqs:  # arrival order: a packet below one already seen came late (not a failure)
                if q < high:
                    ooo += 1
                high = max(high, q)
            dups = len(seqs) - len(uniq)
            wire_counts = Counter(q for _t, q in wire)
            wire_dups = sum(n - 1 for n in wire_counts.values() if n > 1)
            missing = sorted(set(must) - uniq)
            leaks = []
            for t, q in wire:
                why = _leak_reason(i, s, h, t, leave_grace)
                if why:
                    leaks.append((t, q, why))
            row = {
                "host": h,
                "role": "sender" if h == s.host else ("member" if i is not None else "non-member"),
                "group": s.group,
                "source": s.src,
                "stream": s.stream,
                "filter": i.filter_text() if i is not None else "-",
                "joined": i.t_join if i else None,
                "left": i.t_leave if i else None,
                "expected": len(must),
                "received": len(seqs),
                "unique": len(uniq),
                "duplicates": dups,
                "out_of_order": ooo,
                "wire": len(wire),
                "wire_duplicates": wire_dups,
                "missing": len(missing),
                "missing_seqs": _ranges(missing) if missing else "",
                "leaked": len(leaks),
                "leak_reasons": sorted({w for *_x, w in leaks}),
                "join_latency": None,
                "leave_latency": None,
            }
            # join latency: the join happened while the stream was flowing (join -> first packet)
            if i is not None and i.t_join is not None and s.t_first is not None and h != s.host \
                    and i.socket_admits(s.src) and s.t_first <= i.t_join <= (s.t_last or s.t_first) - join_grace / 2:
                after = [t for t, _q in rx if t >= i.t_join]
                if after:
                    row["join_latency"] = after[0] - i.t_join
                    key = (h, s.group)
                    join_lat[key] = min(join_lat.get(key, math.inf), row["join_latency"])
            # leave latency: the leave happened while the stream was flowing (leave -> last packet)
            if i is not None and i.t_leave is not None and s.t_first is not None and h != s.host \
                    and i.network_admits(s.src) and s.t_first <= i.t_leave <= (s.t_last or s.t_first):
                after = [t for t, _q in wire + rx if t >= i.t_leave]
                lat = (max(after) - i.t_leave) if after else 0.0
                if (s.t_last or 0) >= i.t_leave + lat + 0.3:
                    row["leave_latency"] = lat
                    key = (h, s.group)
                    leave_lat[key] = max(leave_lat.get(key, 0.0), lat)
                else:
                    censored.append(f"{h}/{s.group}")
            issues = []
            if missing:
                issues.append(f"MISS {len(missing)}")
            if dups or wire_dups:
                issues.append(f"DUP {max(dups, wire_dups)}")
            if leaks:
                issues.append(f"LEAK {len(leaks)}")
            row["status"] = ", ".join(issues) if issues else "ok"
            rows.append(row)
            who = f"{h} ({row['role']}, {row['filter']})" if i is not None else f"{h} ({row['role']})"
            what = f"{s.group} from {s.src} (stream {s.stream})"
            if missing:
                problems.append(f"{who}: missed {len(missing)} of {len(must)} packets of {what}: seq {_ranges(missing)}")
            if dups:
                problems.append(f"{who}: {dups} duplicate packets of {what}")
            elif wire_dups:
                problems.append(f"{who}: {wire_dups} packets of {what} reached the interface twice")
            if leaks:
                problems.append(f"{who}: {len(leaks)} packets of {what} leaked to it "
                                f"({'; '.join(row['leak_reasons'])})")
    # hosts with nothing at all: shown as quiet non-members
    seen_hosts = {r["host"] for r in rows}
    quiet = [h for h in plan.host_names() if h not in seen_hosts]
    links = None
    if obs.links is not None:
        links = link_report(**obs.links)
        problems += links["problems"]
    report = {
        "scenario": plan.name,
        "description": plan.description,
        "topology": plan.spec.name,
        "verdict": not problems,
        "problems": problems,
        "rows": rows,
        "quiet_hosts": quiet,
        "latency": {
            "join": {**stats(join_lat.values()), "per_host": {f"{h}/{g}": v for (h, g), v in sorted(join_lat.items())}},
            "leave": {**stats(leave_lat.values()), "per_host": {f"{h}/{g}": v for (h, g), v in sorted(leave_lat.items())},
                      "censored": censored},
        },
        "streams": [
            {"stream": s.stream, "host": s.host, "group": s.group, "source": s.src, "count": s.count,
             "sent": s.sent, "errors": s.errors, "t_first": s.t_first, "t_last": s.t_last,
             **obs.trees.get(s.stream, {})}
            for s in streams
        ],
        "links": links,
        "faults": list(obs.faults),
        "expect": dict(expect),
    }
    return report


def _leak_reason(i: Interest | None, s: StreamInfo, host: str, t: float, leave_grace: float) -> str | None:
    """Why a datagram of `s` seen on `host`'s interface at `t` should not have been there (None: fine)."""
    if host == s.host:
        return "sent back to its own sender"
    if i is None or i.t_join is None:
        return "never a member"
    if not i.network_admits(s.src):
        return f"source {s.src} filtered out ({i.filter_text()})"
    if t < i.t_join - 0.01:
        return "before its join"
    if i.t_leave is not None and t > i.t_leave + leave_grace:
        return f"more than {leave_grace:g}s after its leave"
    return None


# ---------------------------------------------------------------------------
# Links: OVS port counters against the controller's trees
# ---------------------------------------------------------------------------


def directed_tree_edges(view_trees: Mapping[str, list], src: str, src_dpid: int | None) -> set[tuple[int, int, int, int]]:
    """Directed edges (from dpid, from port, to dpid, to port) one stream's packets take.

    Source trees (keyed by the source address) are already directed; a shared tree
    (key "*") is bidirectional, so it is oriented away from the source's switch.
    """
    if src in view_trees:
        return {(e["from"][0], e["from"][1], e["to"][0], e["to"][1]) for e in view_trees[src]}
    if "*" in view_trees and src_dpid is not None:
        return orient(view_trees["*"], src_dpid)
    return set()


def orient(edges: Iterable[Mapping], root: int) -> set[tuple[int, int, int, int]]:
    adj: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for e in edges:
        (a, ap), (b, bp) = e["from"], e["to"]
        adj[a].append((ap, b, bp))
        adj[b].append((bp, a, ap))
    out, seen, todo = set(), {root}, [root]
    while todo:
        n = todo.pop()
        for p, m, mp in adj[n]:
            if m not in seen:
                seen.add(m)
                out.add((n, p, m, mp))
                todo.append(m)
    return out


def subtree(edges: Iterable[tuple[int, int, int, int]], top: int) -> set[int]:
    """Switches at and below `top` in a directed tree."""
    kids: dict[int, list[int]] = defaultdict(list)
    for a, _ap, b, _bp in edges:
        kids[a].append(b)
    out, todo = {top}, [top]
    while todo:
        n = todo.pop()
        for c in kids[n]:
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def pick_fault_edge(edges: set, member_ports: Iterable[tuple[int, int]], root: int | None = None):
    """The tree edge whose loss cuts off the most members (ties: nearest the root, then lowest).

    Returns (edge, switches below it) or None when no edge leads to a member.
    """
    members = list(member_ports)
    depth = {}
    if root is not None:
        depth[root] = 0
        changed = True
        for _ in range(len(edges) + 1):
            if not changed:
                break
            changed = False
            for a, _ap, b, _bp in edges:
                if a in depth and b not in depth:
                    depth[b] = depth[a] + 1
                    changed = True
    best = None
    for e in sorted(edges):
        below = subtree(edges, e[2])
        n = sum(1 for d, _p in members if d in below)
        if n == 0:
            continue
        key = (-n, depth.get(e[2], 99), e)
        if best is None or key < best[0]:
            best = (key, e, below)
    return None if best is None else (best[1], best[2])


def optimal_links(graph: nx.Graph, terminals: Iterable[int]) -> int | None:
    """Fewest links connecting `terminals` (exact on small sets, a Steiner heuristic beyond)."""
    terms = sorted(set(terminals))
    if len(terms) < 2:
        return 0
    try:
        if len(terms) <= EXACT_STEINER_MAX_TERMINALS:
            from mcast_sdn.trees_exact import exact_steiner_cost

            return int(round(exact_steiner_cost(graph, terms, weight=None)))
        from mcast_sdn.trees import steiner_tree

        return steiner_tree(graph, terms, weight=None).number_of_edges()
    except (nx.NetworkXException, KeyError, ValueError):
        return None


def link_report(links: list, tx: Mapping, background: Mapping, trees: Mapping, packets: Mapping,
                slack: float = 10, names: Mapping | None = None, optimal: Mapping | None = None,
                window: float = 0.0, hosts: int = 0) -> dict:
    """Copies carried per link direction against the trees.

    links: [(a dpid, a port, b dpid, b port)] one entry per link (both directions are checked);
    tx: {(dpid, port): tx packets over the streaming window}; background: {(dpid, port):
    packets expected anyway in that window (LLDP...)}; trees: {stream: set of directed edges
    it used}; packets: {stream: packets sent}; optimal: {stream: fewest links for its members}.
    A direction may carry, per stream on it, each packet once: carried <= allowed + slack
    + 2% of allowed + 1 packet per second of the `window` + 2 per host (what the background
    estimate, taken before the streams, may miss: LLDP, and the bursts of unicast ARP/ND
    re-validation each host sends to the peers it talked to). A stream that crosses a link
    twice, or a link off its trees, shows up as soon as it has more packets than that.
    """
    names = names or {}
    optimal = optimal or {}

    def nm(d):
        return names.get(d, f"s{d}")

    rows, problems = [], []
    total, expected = 0.0, 0.0
    for a, ap, b, bp in links:
        for (x, xp, y, yp) in ((a, ap, b, bp), (b, bp, a, ap)):
            allowed = sum(packets.get(s, 0) for s, es in trees.items() if (x, xp, y, yp) in es)
            raw = tx.get((x, xp))
            if raw is None:
                continue
            bg = float(background.get((x, xp), 0.0))
            carried = max(0.0, raw - bg)
            limit = allowed + slack + 0.02 * allowed + window + 2 * hosts
            ok = carried <= limit
            streams = sorted(s for s, es in trees.items() if (x, xp, y, yp) in es)
            rows.append({"link": f"{nm(x)}:{xp}->{nm(y)}:{yp}", "from": [x, xp], "to": [y, yp], "tx": raw,
                         "background": round(bg, 1), "carried": round(carried, 1), "allowed": allowed,
                         "streams": streams, "per_packet": round(carried / allowed, 3) if allowed else None,
                         "ok": ok})
            total += carried
            if not ok:
                if allowed:
                    problems.append(f"link {nm(x)}:{xp}->{nm(y)}:{yp} carried {carried:.0f} packets; its "
                                    f"trees allow {allowed} (each packet once): a stream crossed it more than once")
                else:
                    problems.append(f"link {nm(x)}:{xp}->{nm(y)}:{yp} is on no tree but carried {carried:.0f} packets")
    tree_links = {s: len(es) for s, es in trees.items()}
    for s, n in packets.items():
        expected += n * tree_links.get(s, 0)
    opt_copies = sum(n * (optimal.get(s) or 0) for s, n in packets.items())
    return {
        "rows": rows,
        "problems": problems,
        "carried": round(total, 1),
        "tree_copies": expected,
        "optimal_copies": opt_copies,
        "stress": round(total / expected, 3) if expected else None,
        "tree_vs_optimal": round(expected / opt_copies, 3) if opt_copies else None,
        "tree_links": tree_links,
        "optimal_links": dict(optimal),
        "slack": round(slack + window + 2 * hosts, 1),
        "ok": not problems,
    }


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def _fmt_ms(v) -> str:
    return "-" if v is None else f"{v * 1000:.0f}ms"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return out


def format_report(report: Mapping, links: bool = True) -> str:
    """The terminal table: per host and stream, latencies, links, verdict and problems."""
    lines = [f"scenario {report['scenario']} on {report['topology']}"]
    rows = []
    for r in report["rows"]:
        rows.append([r["host"], r["role"], r["group"], r["source"], str(r["stream"]), r["filter"],
                     str(r["expected"]), str(r["unique"]), str(max(r["duplicates"], r["wire_duplicates"])),
                     str(r["missing"]), str(r["leaked"]), _fmt_ms(r["join_latency"]), _fmt_ms(r["leave_latency"]),
                     r["status"]])
    for h in report.get("quiet_hosts", []):
        rows.append([h, "non-member", "*", "*", "-", "-", "0", "0", "0", "0", "0", "-", "-", "ok"])
    lines += _table(["host", "role", "group", "source", "st", "filter", "owed", "got", "dup", "miss", "leak",
                     "join", "leave", "status"], rows)
    lat = report["latency"]
    for kind in ("join", "leave"):
        s = lat[kind]
        if s["n"]:
            lines.append(f"{kind} latency over {s['n']} mid-stream {kind}s: median {_fmt_ms(s['median'])}, "
                         f"p95 {_fmt_ms(s['p95'])}, max {_fmt_ms(s['max'])}")
        else:
            lines.append(f"{kind} latency: no mid-stream {kind}s in this scenario")
    ooo = [(r["host"], r["stream"], r["out_of_order"]) for r in report["rows"] if r.get("out_of_order")]
    if ooo:
        lines.append(f"out of order (informational): {sum(n for *_x, n in ooo)} packets, "
                     + ", ".join(f"{h}/stream {st}: {n}" for h, st, n in ooo[:8]) + (", ..." if len(ooo) > 8 else ""))
    lk = report.get("links")
    if lk and links:
        lrows = [[r["link"], str(r["tx"]), f"{r['background']:g}", f"{r['carried']:g}", str(r["allowed"]),
                  ",".join(map(str, r["streams"])) or "-", "-" if r["per_packet"] is None else f"{r['per_packet']:.2f}",
                  "ok" if r["ok"] else "OVER"]
                 for r in lk["rows"] if r["tx"] > 0 or r["allowed"]]
        if lrows:
            lines.append("")
            lines += _table(["link", "tx", "bg", "carried", "allowed", "streams", "per pkt", ""], lrows)
        per = ", ".join(f"stream {s}: tree {lk['tree_links'].get(s)} links, optimum {lk['optimal_links'].get(s)}"
                        for s in sorted(lk["tree_links"]))
        if per:
            lines.append(per)
        lines.append(f"link copies: carried {lk['carried']:g}, trees {lk['tree_copies']:g}, optimum {lk['optimal_copies']:g}"
                     f" -> stress {lk['stress']} (copies carried / tree size), trees vs optimum {lk['tree_vs_optimal']}")
    for f in report.get("faults", []):
        lines.append(f"fault at {f.get('at')}s: {f.get('kind')} on {f.get('switch')} ({f.get('command')}); "
                     f"hosts cut off: {', '.join(f.get('affected', [])) or 'none'}")
    lines.append("")
    lines.append(f"verdict: {'TRUE' if report['verdict'] else 'FALSE'}")
    for p in report["problems"]:
        lines.append(f"  - {p}")
    return "\n".join(lines)


def report_json(report: Mapping) -> str:
    return json.dumps(report, indent=1, sort_keys=False, default=_json_default)


def _json_default(o):
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, range):
        return [o.start, o.stop - 1] if len(o) else []
    return str(o)


def format_trees(view: Mapping, spec=None) -> str:
    """The controller's trees (GET /mcast/v1/groups) as ASCII: per group and source, the
    edges ``s1:1 -> s2:1`` as an indented tree, and the member ports with their hosts."""
    names: dict[int, str] = {}
    port_host: dict[tuple[int, int], str] = {}
    if spec is not None:
        names = {s.dpid: s.name for s in spec.switches}
        for h in spec.hosts:
            port_host[(spec.dpid(h.switch), h.port)] = h.name

    def sw(d):
        return names.get(d, f"s{d}")

    lines = []
    for g in view.get("groups", []):
        mode = g.get("mode")
        root = g.get("root")
        lines.append(f"group {g['group']}  (mode {mode}{', root ' + sw(root) if root else ''})")
        members = g.get("members", [])
        local: dict[int, list[str]] = defaultdict(list)
        for m in members:
            who = port_host.get((m["dpid"], m["port"]), "?")
            srcs = ",".join(m.get("sources", []))
            filt = "ASM" if m.get("mode") == "exclude" and not srcs else f"{str(m.get('mode', '')).upper()}{{{srcs}}}"
            local[m["dpid"]].append(f"{sw(m['dpid'])}:{m['port']} {who} {filt}")
        if members:
            lines.append("  members: " + "; ".join(x for d in sorted(local) for x in local[d]))
        else:
            lines.append("  members: none")
        srcs = {s["address"]: s for s in g.get("sources", [])}
        trees = g.get("trees", {})
        for key in sorted(trees, key=str):
            edges = trees[key]
            if key == "*":
                lines.append(f"  shared tree ({len(edges)} links, bidirectional):")
                roots = [root] if root else []
                es = orient(edges, root) if root else set()
            else:
                s = srcs.get(key, {})
                where = f" enters at {sw(s['dpid'])}:{s['port']}" if s else ""
                host = port_host.get((s.get("dpid"), s.get("port")), "") if s else ""
                lines.append(f"  source {key}{' (' + host + ')' if host else ''}{where}: "
                             f"{len(edges)} links" + ("" if edges else " (nobody wants it: dropped at the first hop)"))
                es = {(e["from"][0], e["from"][1], e["to"][0], e["to"][1]) for e in edges}
                roots = [s["dpid"]] if s else []
            if not es:
                continue
            kids: dict[int, list] = defaultdict(list)
            for a, ap, b, bp in sorted(es):
                kids[a].append((ap, b, bp))
            if not roots:
                heads = {a for a, *_ in es} - {b for _a, _ap, b, _bp in es}
                roots = sorted(heads)
            member_ports = {(m["dpid"], m["port"]) for m in members}

            def leaf_text(d):
                hs = [f"{port_host.get((d, p), '?')}@{p}" for dd, p in sorted(member_ports) if dd == d]
                return f"  [{', '.join(hs)}]" if hs else ""

            def walk(d, prefix, seen):
                for n, (ap, b, bp) in enumerate(kids.get(d, [])):
                    last = n == len(kids[d]) - 1
                    lines.append(f"{prefix}{'`-' if last else '|-'} {sw(d)}:{ap} -> {sw(b)}:{bp}{leaf_text(b)}")
                    if b not in seen:
                        walk(b, prefix + ("   " if last else "|  "), seen | {b})

            for r in roots:
                lines.append(f"    {sw(r)}{leaf_text(r)}")
                walk(r, "    ", {r})
    return "\n".join(lines) if lines else "(no groups)"
