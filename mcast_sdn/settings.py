"""Start-up settings of the running controller, from one JSON file.

Why a file named by an environment variable (MCAST_SDN_CONFIG) and not ryu-manager
flags: ryu-manager parses its command line before it imports applications, so an
application cannot add command-line flags of its own. The file is optional; every
value has a default.

Format (every key optional):
    {"core": {"settle": 3.0, "max_hosts_per_port": 64},
     "membership": {"query_interval": 125, "robustness": 2, ...},      # see mcast_sdn.config
     "trees": {"default_mode": "spt", "negative_cache_seconds": 10,
               "policies": [{"prefix": "239.1.0.0/16", "mode": "shared", "rp": 3}]},
     "static": [{"dpid": 1, "port": 3, "group": "239.1.1.1"},                # (*,G)
                {"dpid": 2, "port": 1, "group": "232.1.1.1", "source": "10.0.0.1"}],  # (S,G)
     "rest": {"token": "<at least 16 characters>",
              "host_names": {"camera1": "00:00:00:00:00:05"}}}

"static": static joins (ports that receive a group without IGMP/MLD). They are applied
when the application starts, before any switch connects; the core keeps them, and a
join takes effect once its switch connects (the group's tree is recomputed on every
topology change). Joins added or removed through the REST API are not written back.

"rest": the bearer token that write requests of the REST API must present, and optional
names for hosts (a name maps to a MAC or IP address that is resolved through the learned
hosts). The environment variable MCAST_SDN_TOKEN, when set, overrides the file's token.
Without a token the API is read-only.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field, fields

from mcast_sdn.config import MembershipConfig
from mcast_sdn.core import CoreConfig
from mcast_sdn.forwarding import RangePolicy, TreeConfig

ENV = "MCAST_SDN_CONFIG"
TOKEN_ENV = "MCAST_SDN_TOKEN"
MIN_TOKEN_LEN = 16
OFPP_MAX = 0xFFFFFF00  # highest physical port number in OpenFlow 1.3
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]+$")  # RFC 6750 b64token
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NOT_ROUTED = (
    ipaddress.ip_network("224.0.0.0/24"),  # link-local: flooded, never on a tree
    ipaddress.ip_network("ff01::/16"),
    ipaddress.ip_network("ff02::/16"),
)
_SSM = (ipaddress.ip_network("232.0.0.0/8"), ipaddress.ip_network("ff30::/12"))


@dataclass(frozen=True)
class StaticJoin:
    """Port (dpid, port) receives `group` from `source` (None: from every source, (*,G))."""

    dpid: int
    port: int
    group: ipaddress.IPv4Address | ipaddress.IPv6Address
    source: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None

    def to_dict(self) -> dict:
        return {"dpid": self.dpid, "port": self.port, "group": str(self.group),
                "source": None if self.source is None else str(self.source)}


@dataclass(frozen=True)
class RestSettings:
    token: str | None = None  # None: write requests are refused (403)
    host_names: dict = field(default_factory=dict)  # name -> MAC or IP address


@dataclass
class Settings:
    core: CoreConfig = field(default_factory=CoreConfig)
    membership: MembershipConfig = field(default_factory=MembershipConfig)
    trees: TreeConfig = field(default_factory=TreeConfig)
    static: tuple = ()  # StaticJoin, in file order
    rest: RestSettings = field(default_factory=RestSettings)
    raw: dict = field(default_factory=dict)


def _dataclass_from(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    names = {f.name: f for f in fields(cls)}
    kwargs = {}
    for k, v in data.items():
        if k not in names:
            raise ValueError(f"{where}: unknown setting {k!r}")
        kwargs[k] = v
    return cls(**kwargs)


def from_dict(data: dict) -> Settings:
    if not isinstance(data, dict):
        raise ValueError("settings: expected a JSON object")
    unknown = set(data) - {"core", "membership", "trees", "static", "rest"}
    if unknown:
        raise ValueError(f"settings: unknown section(s) {sorted(unknown)}")
    s = Settings(raw=data)
    if "core" in data:
        s.core = _dataclass_from(CoreConfig, data["core"], "core")
    if "membership" in data:
        s.membership = MembershipConfig.from_dict(data["membership"])
    if "trees" in data:
        s.trees = trees_from_dict(data["trees"])
    if "static" in data:
        if not isinstance(data["static"], list):
            raise ValueError("static: expected a list of {dpid, port, group, source?} objects")
        joins = [static_from_dict(d, f"static[{i}]") for i, d in enumerate(data["static"])]
        s.static = tuple(dict.fromkeys(joins))
    if "rest" in data:
        s.rest = rest_from_dict(data["rest"])
    return s


def parse_int(v, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{what} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def parse_group(v, what: str = "group"):
    """A routable multicast group address (not link-local, which is flooded)."""
    if not isinstance(v, str):
        raise ValueError(f"{what} must be a string (an IPv4 or IPv6 multicast address), got {v!r}")
    try:
        g = ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"{what} {v!r} is not an IP address") from None
    if not g.is_multicast:
        raise ValueError(f"{what} {g} is not a multicast address")
    if any(g.version == n.version and g in n for n in _NOT_ROUTED):
        raise ValueError(f"{what} {g} is link-local (flooded like broadcast; it has no tree to join)")
    return g


def parse_source(v, group, what: str = "source"):
    """A unicast source address of the group's family (None: any source)."""
    if v is None:
        if any(group.version == n.version and group in n for n in _SSM):
            raise ValueError(f"group {group} is source-specific (RFC 4607): a source is required")
        return None
    if not isinstance(v, str):
        raise ValueError(f"{what} must be a string (an IP address) or null, got {v!r}")
    try:
        a = ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"{what} {v!r} is not an IP address") from None
    if a.version != group.version:
        raise ValueError(f"{what} {a} and group {group} are of different IP versions")
    if a.is_multicast or a.is_unspecified or (a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255")):
        raise ValueError(f"{what} {a} is not a unicast address")
    return a


def static_from_dict(d, where: str = "static") -> StaticJoin:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object with dpid, port, group and optional source")
    unknown = set(d) - {"dpid", "port", "group", "source"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
    for k in ("dpid", "port", "group"):
        if k not in d:
            raise ValueError(f"{where}: {k} is required")
    dpid = parse_int(d["dpid"], f"{where}: dpid", 1, 2**64 - 1)
    port = parse_int(d["port"], f"{where}: port", 1, OFPP_MAX)
    try:
        group = parse_group(d["group"])
        source = parse_source(d.get("source"), group)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    return StaticJoin(dpid, port, group, source)


def parse_mac(v: str) -> str | None:
    """Lower-case aa:bb:cc:dd:ee:ff, or None if `v` is not a MAC address."""
    m = v.strip().lower().replace("-", ":")
    return m if _MAC_RE.match(m) else None


def rest_from_dict(d) -> RestSettings:
    if not isinstance(d, dict):
        raise ValueError("rest: expected an object")
    unknown = set(d) - {"token", "host_names"}
    if unknown:
        raise ValueError(f"rest: unknown setting(s) {sorted(unknown)}")
    token = d.get("token")
    if token is not None:
        token = check_token(token, "rest: token")
    names = d.get("host_names", {})
    if not isinstance(names, dict):
        raise ValueError("rest: host_names must be an object {name: MAC or IP address}")
    clean = {}
    for name, addr in names.items():
        if not name or not isinstance(addr, str):
            raise ValueError(f"rest: host_names: {name!r} must map to a MAC or IP address string")
        mac = parse_mac(addr)
        if mac is None:
            try:
                mac = str(ipaddress.ip_address(addr))
            except ValueError:
                raise ValueError(f"rest: host_names: {addr!r} ({name}) is neither a MAC nor an IP address") from None
        clean[name] = mac
    return RestSettings(token, clean)


def check_token(token, what: str = "token") -> str:
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LEN or not _TOKEN_RE.match(token):
        raise ValueError(
            f"{what} must be a string of at least {MIN_TOKEN_LEN} characters from A-Z a-z 0-9 . _ ~ + / = - "
            "(e.g. the output of `openssl rand -hex 16`)"
        )
    return token


def trees_from_dict(d: dict) -> TreeConfig:
    if not isinstance(d, dict):
        raise ValueError("trees: expected an object")
    unknown = set(d) - {"default_mode", "negative_cache_seconds", "policies"}
    if unknown:
        raise ValueError(f"trees: unknown setting(s) {sorted(unknown)}")
    mode = d.get("default_mode", "spt")
    if mode not in ("spt", "shared", "steiner"):
        raise ValueError(f"trees: unknown default_mode {mode!r}")
    neg = d.get("negative_cache_seconds", 10.0)
    if not isinstance(neg, (int, float)) or isinstance(neg, bool) or not 1 <= neg <= 3600:
        raise ValueError("trees: negative_cache_seconds must be a number in [1, 3600]")
    pols = d.get("policies", [])
    if not isinstance(pols, list):
        raise ValueError("trees: policies must be a list")
    return TreeConfig(tuple(RangePolicy.from_dict(p) for p in pols), mode, float(neg))


def load(path: str | None = None) -> Settings:
    path = path or os.environ.get(ENV)
    if not path:
        s = Settings()
    else:
        with open(path, encoding="utf-8") as fh:
            s = from_dict(json.load(fh))
    token = os.environ.get(TOKEN_ENV)
    if token:  # the environment wins over the file (keeps secrets out of config files)
        s.rest = RestSettings(check_token(token, TOKEN_ENV), s.rest.host_names)
    return s
