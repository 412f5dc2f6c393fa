"""Topologies as data: one description shared by the controller, Mininet and the tests.

Why a module of its own: the controller needs to know the intended topology (dpids,
which port leads where, link weights) to check what it discovers and to compute
trees; Mininet needs the same facts to build the network; the tests need them to know
what to expect. Writing the topology once, as frozen data, keeps the three in step.

This module is pure (stdlib + networkx): it never imports Mininet or Ryu, so the
controller and the unit tests can use it anywhere. `mcast_sdn.mntopo` turns a
`TopologySpec` into a Mininet `Topo` on the Mininet side.

A spec is validated when it is constructed (whatever built it: a JSON file, a
generator, `from_graph`), so any `TopologySpec` in hand is known to be something
Mininet can build and the controller can reason about: unique names and dpids, links
only between known switches, no self-loops or parallel links (the switch graph is
simple), each switch port used once, and interface names that fit the kernel limit.

The JSON format and the shipped files are described in ``topologies/README.md``.
"""
from __future__ import annotations

import inspect
import ipaddress
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import networkx as nx

__all__ = [
    "SwitchSpec", "HostSpec", "LinkSpec", "TopologySpec",
    "load", "from_dict", "from_graph", "default_host_addresses", "available",
    "linear", "ring", "tree", "fat_tree", "leaf_spine", "mesh",
    "GENERATORS", "TOPOLOGIES_ENV", "TOPOLOGY_DIR", "MAX_DPID", "MAX_IFNAME",
]

#: Environment variable naming a directory (or an ``os.pathsep``-separated list of
#: directories) searched for ``<name>.json`` before the repository's ``topologies/``.
TOPOLOGIES_ENV = "MCAST_SDN_TOPOLOGIES"

#: The repository's own topology directory (next to the package). Only present in a
#: source checkout; an installed package relies on ``MCAST_SDN_TOPOLOGIES``.
TOPOLOGY_DIR = Path(__file__).resolve().parent.parent / "topologies"

#: Highest dpid accepted. Datapath ids are 64-bit, but the low 48 bits are the
#: switch's MAC by convention and Mininet/OVS tooling prints 12-16 hex digits; keeping
#: to 48 bits avoids surprises (and sign issues) anywhere a dpid is shown or parsed.
MAX_DPID = 2 ** 48 - 1

#: Linux interface names are at most IFNAMSIZ-1 = 15 characters. Mininet names
#: interfaces "<node>-eth<port>", so that string must fit.
MAX_IFNAME = 15

# Names become interface prefixes, OVS bridge names and shell arguments inside
# Mininet; a hyphen would also make "<name>-eth<port>" ambiguous to split.
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


# ---------------------------------------------------------------------------
# Field checks shared by the dataclasses


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{what} name {name!r} is not valid: use a letter followed by letters, "
            f"digits or '_' (it becomes a Linux interface prefix '<name>-eth<port>')")
    # "<name>-eth0" is the shortest interface Mininet will create for the node.
    if len(name) + len("-eth0") > MAX_IFNAME:
        raise ValueError(
            f"{what} name {name!r} is too long: Mininet names its interfaces "
            f"'{name}-eth<port>', which must fit in {MAX_IFNAME} characters "
            f"(use at most {MAX_IFNAME - len('-eth0')} characters)")


def _check_port(port: Any, where: str) -> None:
    if not _is_int(port) or port < 1:
        raise ValueError(f"{where}: port {port!r} must be an integer >= 1 "
                         f"(port 0 is the host side; OpenFlow ports start at 1)")


def _check_ifname(node: str, port: int) -> None:
    ifname = f"{node}-eth{port}"
    if len(ifname) > MAX_IFNAME:
        raise ValueError(
            f"interface name {ifname!r} is {len(ifname)} characters; Linux allows at "
            f"most {MAX_IFNAME} (use a shorter switch name or lower port numbers)")


# ---------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class SwitchSpec:
    """One OpenFlow switch.

    ``name`` follows Mininet conventions (``s1``, ``s2``...) because it becomes the OVS
    bridge and interface prefix; ``dpid`` is always explicit so that nothing depends on
    Mininet deriving it from the name; ``label`` is free text for people (a city, a
    role such as ``core1``) and has no effect on the network.
    """

    name: str
    dpid: int
    label: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name, "switch")
        if not _is_int(self.dpid):
            raise ValueError(f"switch {self.name}: dpid {self.dpid!r} must be an integer")
        if not 1 <= self.dpid <= MAX_DPID:
            raise ValueError(f"switch {self.name}: dpid {self.dpid} is out of range "
                             f"1..2^48-1")
        if not isinstance(self.label, str):
            raise ValueError(f"switch {self.name}: label {self.label!r} must be a string")


@dataclass(frozen=True)
class HostSpec:
    """One end host, attached by its ``eth0`` to ``port`` of ``switch``.

    Addresses are stored normalised (lower-case MAC, canonical IP text) so that two
    specs written differently compare equal and duplicates are caught. ``ipv6`` is
    kept here although Mininet's ``addHost`` cannot set it: the network runner
    configures it after start-up, and the tests need to know it.
    """

    name: str
    switch: str
    port: int
    mac: str
    ip: str
    ipv6: str

    def __post_init__(self) -> None:
        _check_name(self.name, "host")
        if not isinstance(self.switch, str):
            raise ValueError(f"host {self.name}: switch {self.switch!r} must be a name")
        _check_port(self.port, f"host {self.name}")
        object.__setattr__(self, "mac", _norm_mac(self.mac, self.name))
        object.__setattr__(self, "ip", _norm_ip(self.ip, 4, self.name))
        object.__setattr__(self, "ipv6", _norm_ip(self.ipv6, 6, self.name))

    @property
    def ip_address(self) -> ipaddress.IPv4Address:
        """The IPv4 address without its prefix length."""
        return ipaddress.IPv4Interface(self.ip).ip

    @property
    def ipv6_address(self) -> ipaddress.IPv6Address:
        """The IPv6 address without its prefix length."""
        return ipaddress.IPv6Interface(self.ipv6).ip


def _norm_mac(mac: Any, host: str) -> str:
    if not isinstance(mac, str) or not _MAC_RE.match(mac.lower()):
        raise ValueError(f"host {host}: mac {mac!r} is not of the form 00:00:00:00:00:01")
    mac = mac.lower()
    first = int(mac[:2], 16)
    if first & 1:
        raise ValueError(f"host {host}: mac {mac} is a multicast address (the low bit "
                         f"of the first octet is set); a host needs a unicast MAC")
    if mac == "00:00:00:00:00:00":
        raise ValueError(f"host {host}: mac 00:00:00:00:00:00 is not usable")
    return mac


def _norm_ip(value: Any, version: int, host: str) -> str:
    key = "ip" if version == 4 else "ipv6"
    example = "10.0.0.1/8" if version == 4 else "fc00::1/64"
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"host {host}: {key} {value!r} must be an address with a "
                         f"prefix length, like {example!r}")
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError as exc:
        raise ValueError(f"host {host}: {key} {value!r} is not valid: {exc}") from None
    if iface.version != version:
        raise ValueError(f"host {host}: {key} {value!r} is not an IPv{version} address")
    addr = iface.ip
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
        raise ValueError(f"host {host}: {key} {value!r} is not a unicast host address")
    net = iface.network
    if version == 4 and net.prefixlen < 31 and addr in (net.network_address,
                                                        net.broadcast_address):
        raise ValueError(f"host {host}: {key} {value!r} is the network or broadcast "
                         f"address of its subnet")
    return str(iface)


@dataclass(frozen=True)
class LinkSpec:
    """A switch-to-switch link (host attachments live in `HostSpec`).

    ``weight`` is the routing cost used for trees and shortest paths (hop count by
    default, distance for the WAN files). ``delay_ms`` and ``bw_mbps`` describe the
    link for emulation; Mininet only applies them when asked (``use_tc``).
    """

    a: str
    a_port: int
    b: str
    b_port: int
    weight: float = 1.0
    delay_ms: float | None = None
    bw_mbps: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.a, str) or not isinstance(self.b, str):
            raise ValueError(f"link {self.a!r}-{self.b!r}: ends must be switch names")
        where = f"link {self.a}-{self.b}"
        if self.a == self.b:
            raise ValueError(f"{where}: self-loop (a link must join two different "
                             f"switches)")
        _check_port(self.a_port, f"{where} at {self.a}")
        _check_port(self.b_port, f"{where} at {self.b}")
        if (not _is_number(self.weight) or not math.isfinite(self.weight)
                or self.weight <= 0):
            raise ValueError(f"{where}: weight {self.weight!r} must be a positive number")
        object.__setattr__(self, "weight", float(self.weight))
        if self.delay_ms is not None:
            if (not _is_number(self.delay_ms) or not math.isfinite(self.delay_ms)
                    or self.delay_ms < 0):
                raise ValueError(f"{where}: delay_ms {self.delay_ms!r} must be a "
                                 f"number >= 0 or null")
            object.__setattr__(self, "delay_ms", float(self.delay_ms))
        if self.bw_mbps is not None:
            if (not _is_number(self.bw_mbps) or not math.isfinite(self.bw_mbps)
                    or self.bw_mbps <= 0):
                raise ValueError(f"{where}: bw_mbps {self.bw_mbps!r} must be a "
                                 f"positive number or null")
            object.__setattr__(self, "bw_mbps", float(self.bw_mbps))

    def port_on(self, switch: str) -> int:
        """The port of this link on ``switch`` (one of its two ends)."""
        if switch == self.a:
            return self.a_port
        if switch == self.b:
            return self.b_port
        raise KeyError(f"link {self.a}-{self.b} does not touch switch {switch!r}")

    def other(self, switch: str) -> str:
        """The switch at the far end from ``switch``."""
        if switch == self.a:
            return self.b
        if switch == self.b:
            return self.a
        raise KeyError(f"link {self.a}-{self.b} does not touch switch {switch!r}")


@dataclass(frozen=True)
class TopologySpec:
    """A whole topology: switches, switch-to-switch links and hosts, in file order.

    The order is kept (not sorted) because it is what the default port numbers and
    addresses were derived from, and so ``to_dict`` reproduces the file.
    """

    name: str
    description: str
    switches: tuple[SwitchSpec, ...]
    links: tuple[LinkSpec, ...]
    hosts: tuple[HostSpec, ...]

    def __post_init__(self) -> None:
        for attr in ("switches", "links", "hosts"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"topology name {self.name!r} must be a non-empty string")
        if not isinstance(self.description, str):
            raise ValueError(f"topology {self.name}: description must be a string")
        _validate(self)

    # -- lookups --------------------------------------------------------------

    def switch(self, key: str | int) -> SwitchSpec:
        """The switch called ``key``, or with dpid ``key`` when given an int."""
        index = self._by_dpid if _is_int(key) else self._by_switch
        try:
            return index[key]
        except KeyError:
            raise KeyError(f"topology {self.name}: no switch {key!r}") from None

    def dpid(self, name: str) -> int:
        """The dpid of switch ``name``."""
        return self.switch(name).dpid

    def host(self, name: str) -> HostSpec:
        """The host called ``name``."""
        try:
            return self._by_host[name]
        except KeyError:
            raise KeyError(f"topology {self.name}: no host {name!r}") from None

    def hosts_on(self, switch: str | int) -> tuple[HostSpec, ...]:
        """Hosts attached to ``switch`` (name or dpid), in file order."""
        name = self.switch(switch).name
        return tuple(h for h in self.hosts if h.switch == name)

    def ports(self, switch: str | int) -> dict[int, tuple[str, int]]:
        """What each used port of ``switch`` leads to: ``{port: (peer, peer_port)}``.

        The peer is a switch name or a host name; a host's peer port is 0 (its
        ``eth0``). Ports not listed are unused. This is the wiring the controller can
        compare with what LLDP discovery reports.
        """
        name = self.switch(switch).name
        out: dict[int, tuple[str, int]] = {}
        for link in self.links:
            if link.a == name:
                out[link.a_port] = (link.b, link.b_port)
            elif link.b == name:
                out[link.b_port] = (link.a, link.a_port)
        for h in self.hosts:
            if h.switch == name:
                out[h.port] = (h.name, 0)
        return dict(sorted(out.items()))

    # -- views ----------------------------------------------------------------

    def graph(self) -> nx.Graph:
        """The switch graph keyed by dpid, as the controller sees the network.

        Nodes are dpids (int) with attributes ``name`` and ``label``. Each edge has
        ``weight``, ``ports`` = ``{dpid: port on that switch}``, ``delay_ms`` and
        ``bw_mbps``. Hosts are not nodes (they are edge ports, see `hosts_on`). A new
        graph is returned each call, so callers may modify it.
        """
        g = nx.Graph(name=self.name)
        for s in self.switches:
            g.add_node(s.dpid, name=s.name, label=s.label)
        for link in self.links:
            da, db = self._by_switch[link.a].dpid, self._by_switch[link.b].dpid
            g.add_edge(da, db, weight=link.weight, ports={da: link.a_port, db: link.b_port},
                       delay_ms=link.delay_ms, bw_mbps=link.bw_mbps)
        return g

    def to_dict(self) -> dict[str, Any]:
        """The spec in the JSON file format, with every default made explicit.

        Explicit ports and addresses mean the output loads back to an equal spec even
        if the default rules change one day.
        """
        def switch(s: SwitchSpec) -> dict[str, Any]:
            d: dict[str, Any] = {"name": s.name, "dpid": s.dpid}
            if s.label:
                d["label"] = s.label
            return d

        def link(l: LinkSpec) -> dict[str, Any]:
            d: dict[str, Any] = {"a": l.a, "a_port": l.a_port, "b": l.b, "b_port": l.b_port,
                                 "weight": _num(l.weight)}
            if l.delay_ms is not None:
                d["delay_ms"] = _num(l.delay_ms)
            if l.bw_mbps is not None:
                d["bw_mbps"] = _num(l.bw_mbps)
            return d

        return {
            "name": self.name,
            "description": self.description,
            "switches": [switch(s) for s in self.switches],
            "links": [link(l) for l in self.links],
            "hosts": [{"name": h.name, "switch": h.switch, "port": h.port, "mac": h.mac,
                       "ip": h.ip, "ipv6": h.ipv6} for h in self.hosts],
        }

    def to_json(self) -> str:
        """`to_dict` as JSON text, one switch/link/host per line (diff-friendly)."""
        d = self.to_dict()
        lines = ["{"]
        lines.append(f'  "name": {json.dumps(d["name"])},')
        lines.append(f'  "description": {json.dumps(d["description"])},')
        for key in ("switches", "links", "hosts"):
            items = d[key]
            last = key == "hosts"
            if not items:
                lines.append(f'  "{key}": []' + ("" if last else ","))
                continue
            lines.append(f'  "{key}": [')
            for i, item in enumerate(items):
                comma = "," if i < len(items) - 1 else ""
                lines.append("    " + json.dumps(item) + comma)
            lines.append("  ]" + ("" if last else ","))
        lines.append("}")
        return "\n".join(lines) + "\n"


def _num(x: float) -> int | float:
    """Write 1.0 as 1 in JSON: weights and delays are usually whole numbers."""
    return int(x) if float(x).is_integer() else x


def _validate(spec: TopologySpec) -> None:
    """Cross-record checks; the records already checked their own fields."""
    for kind, items, cls in (("switches", spec.switches, SwitchSpec),
                             ("links", spec.links, LinkSpec),
                             ("hosts", spec.hosts, HostSpec)):
        for item in items:
            if not isinstance(item, cls):
                raise ValueError(f"topology {spec.name}: {kind} must hold {cls.__name__} "
                                 f"records, got {item!r}")
    if not spec.switches:
        raise ValueError(f"topology {spec.name}: at least one switch is required")

    by_switch: dict[str, SwitchSpec] = {}
    by_dpid: dict[int, SwitchSpec] = {}
    for s in spec.switches:
        if s.name in by_switch:
            raise ValueError(f"duplicate switch name {s.name!r}")
        if s.dpid in by_dpid:
            raise ValueError(
                f"duplicate dpid {s.dpid}: switches {by_dpid[s.dpid].name} and {s.name} "
                f"(a dpid left out defaults to the number in the switch name; give "
                f"\"dpid\" explicitly)")
        by_switch[s.name] = s
        by_dpid[s.dpid] = s

    # Which (switch, port) is taken, and by what, for the duplicate-port message.
    users: dict[tuple[str, int], str] = {}

    def take(switch: str, port: int, user: str) -> None:
        key = (switch, port)
        if key in users:
            raise ValueError(f"duplicate port: port {port} on switch {switch} is used by "
                             f"{users[key]} and by {user}")
        users[key] = user
        _check_ifname(switch, port)

    pairs: dict[frozenset[str], LinkSpec] = {}
    for link in spec.links:
        where = f"link {link.a}-{link.b}"
        for end in (link.a, link.b):
            if end not in by_switch:
                raise ValueError(f"{where}: unknown switch {end!r}")
        pair = frozenset((link.a, link.b))
        if pair in pairs:
            first = pairs[pair]
            raise ValueError(
                f"{where}: parallel link (switches {link.a} and {link.b} are already "
                f"joined by link {first.a}-{first.b}); the switch graph must be simple")
        pairs[pair] = link
        take(link.a, link.a_port, where)
        take(link.b, link.b_port, where)

    by_host: dict[str, HostSpec] = {}
    macs: dict[str, str] = {}
    ips: dict[Any, str] = {}
    for h in spec.hosts:
        if h.name in by_switch:
            raise ValueError(f"duplicate name {h.name!r}: used by a switch and a host "
                             f"(Mininet nodes share one namespace)")
        if h.name in by_host:
            raise ValueError(f"duplicate host name {h.name!r}")
        if h.switch not in by_switch:
            raise ValueError(f"host {h.name}: unknown switch {h.switch!r}")
        take(h.switch, h.port, f"host {h.name}")
        if h.mac in macs:
            raise ValueError(f"duplicate mac {h.mac}: hosts {macs[h.mac]} and {h.name}")
        macs[h.mac] = h.name
        for addr in (h.ip_address, h.ipv6_address):
            if addr in ips:
                raise ValueError(f"duplicate address {addr}: hosts {ips[addr]} and {h.name}")
            ips[addr] = h.name
        by_host[h.name] = h

    object.__setattr__(spec, "_by_switch", by_switch)
    object.__setattr__(spec, "_by_dpid", by_dpid)
    object.__setattr__(spec, "_by_host", by_host)


# ---------------------------------------------------------------------------
# Defaults


def default_host_addresses(i: int) -> tuple[str, str, str]:
    """(mac, ip, ipv6) for the ``i``-th host (1-based, file order).

    Mininet-like and readable: ``00:00:00:00:00:01``, ``10.0.0.1/8``, ``fc00::1/64``.
    The IPv4 host part skips .0 and .255 so that every address looks like an
    ordinary host address: hosts 1..254 are 10.0.0.1..254, host 255 is 10.0.1.1.
    """
    if not _is_int(i) or not 1 <= i <= 254 * 256 * 256:
        raise ValueError(f"host index {i!r} out of range for default addresses")
    mac = "00:00:00:%02x:%02x:%02x" % ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)
    n = i - 1
    y = n % 254 + 1
    x = (n // 254) % 256
    w = n // (254 * 256)
    return mac, f"10.{w}.{x}.{y}/8", f"fc00::{i:x}/64"


def _dpid_from_name(name: str, index: int) -> int:
    """Mininet's rule (first run of digits in the name), else the 1-based position."""
    digits = re.findall(r"\d+", name)
    return int(digits[0]) if digits else index + 1


# ---------------------------------------------------------------------------
# JSON / dict loading

_TOP_KEYS = {"name", "description", "switches", "links", "hosts"}
_SWITCH_KEYS = {"name", "dpid", "label"}
_LINK_KEYS = {"a", "b", "a_port", "b_port", "weight", "delay_ms", "bw_mbps"}
_HOST_KEYS = {"name", "switch", "port", "mac", "ip", "ipv6"}


def _check_keys(obj: Any, allowed: set[str], required: Iterable[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {obj!r}")
    # Keys starting with "_" are comments; anything else unknown is most likely a
    # typo ("wieght") that would otherwise be silently ignored.
    unknown = sorted(k for k in obj if not (isinstance(k, str) and k.startswith("_"))
                     and k not in allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in obj:
            raise ValueError(f"{where}: missing required key {key!r}")


def _opt_int(obj: dict, key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not _is_int(value):
        raise ValueError(f"{where}.{key}: {value!r} must be an integer")
    return value


def _parse_dpid(value: Any, where: str) -> int:
    if _is_int(value):
        return value
    if isinstance(value, str):
        text = value.replace(":", "")
        try:
            return int(text, 16)
        except ValueError:
            pass
    raise ValueError(f"{where}.dpid: {value!r} must be an integer or a hex string "
                     f"like \"00:00:00:00:00:00:00:01\"")


def from_dict(data: Mapping[str, Any], *, default_name: str | None = None,
              source: str = "topology") -> TopologySpec:
    """Build a spec from the JSON format, filling defaults.

    Defaults, in the order they are applied:
    - a switch's dpid: the first number in its name (Mininet's rule), else its
      1-based position;
    - ports: per switch, the next free port number from 1, given first to links in
      list order and then to hosts in list order (ports written explicitly are never
      reused);
    - a host's mac/ip/ipv6: from its 1-based position (`default_host_addresses`).

    Errors are ValueErrors prefixed with ``source`` (the file name when loading).
    """
    try:
        return _from_dict(data, default_name)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def _from_dict(data: Mapping[str, Any], default_name: str | None) -> TopologySpec:
    _check_keys(data, _TOP_KEYS, ["switches"] + ([] if default_name else ["name"]),
                "top level")
    name = data.get("name", default_name)
    description = data.get("description") or ""
    raw_switches = data["switches"]
    raw_links = data.get("links", [])
    raw_hosts = data.get("hosts", [])
    for key, value in (("switches", raw_switches), ("links", raw_links),
                       ("hosts", raw_hosts)):
        if not isinstance(value, list):
            raise ValueError(f"{key!r} must be a list")

    switches = []
    for i, s in enumerate(raw_switches):
        where = f"switches[{i}]"
        _check_keys(s, _SWITCH_KEYS, ["name"], where)
        sname = s["name"]
        if "dpid" in s and s["dpid"] is not None:
            dpid = _parse_dpid(s["dpid"], where)
        elif isinstance(sname, str):
            dpid = _dpid_from_name(sname, i)
        else:
            dpid = i + 1
        label = s.get("label", "")
        if label is None:
            label = ""
        try:
            switches.append(SwitchSpec(sname, dpid, label))
        except ValueError as exc:
            if "dpid" not in s and "dpid" in str(exc):
                raise ValueError(f"{exc} (derived from the number in the name; give "
                                 f"\"dpid\" explicitly)") from None
            raise

    links = []
    for i, l in enumerate(raw_links):
        where = f"links[{i}]"
        _check_keys(l, _LINK_KEYS, ["a", "b"], where)
        links.append({"a": l["a"], "b": l["b"],
                      "a_port": _opt_int(l, "a_port", where),
                      "b_port": _opt_int(l, "b_port", where),
                      "weight": 1.0 if l.get("weight") is None else l["weight"],
                      "delay_ms": l.get("delay_ms"), "bw_mbps": l.get("bw_mbps")})
    hosts = []
    for i, h in enumerate(raw_hosts):
        where = f"hosts[{i}]"
        _check_keys(h, _HOST_KEYS, ["name", "switch"], where)
        mac, ip, ipv6 = default_host_addresses(i + 1)
        hosts.append({"name": h["name"], "switch": h["switch"],
                      "port": _opt_int(h, "port", where),
                      "mac": h.get("mac") or mac, "ip": h.get("ip") or ip,
                      "ipv6": h.get("ipv6") or ipv6})

    # Port assignment: explicit ports are reserved first, so a default never
    # collides with a port written further down the file.
    used: dict[Any, set[int]] = {}
    for l in links:
        for end, key in (("a", "a_port"), ("b", "b_port")):
            if l[key] is not None:
                used.setdefault(l[end], set()).add(l[key])
    for h in hosts:
        if h["port"] is not None:
            used.setdefault(h["switch"], set()).add(h["port"])
    next_free: dict[Any, int] = {}

    def alloc(switch: Any) -> int:
        taken = used.setdefault(switch, set())
        port = next_free.get(switch, 1)
        while port in taken:
            port += 1
        taken.add(port)
        next_free[switch] = port + 1
        return port

    for l in links:
        for end, key in (("a", "a_port"), ("b", "b_port")):
            if l[key] is None:
                l[key] = alloc(l[end])
    for h in hosts:
        if h["port"] is None:
            h["port"] = alloc(h["switch"])

    return TopologySpec(
        name=name, description=description, switches=tuple(switches),
        links=tuple(LinkSpec(**l) for l in links),
        hosts=tuple(HostSpec(**h) for h in hosts))


def _search_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get(TOPOLOGIES_ENV, "").split(os.pathsep) if p]
    dirs.append(TOPOLOGY_DIR)
    return dirs


def available() -> dict[str, Path | Callable[..., TopologySpec]]:
    """Every name `load` accepts without a path: JSON files (first found wins, so the
    environment directory overrides the repository) and then the generators."""
    out: dict[str, Any] = {}
    for d in _search_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.json")):
                out.setdefault(p.stem, p)
    for name, gen in GENERATORS.items():
        out.setdefault(name, gen)
    return out


def _load_file(path: Path) -> TopologySpec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"topology file {str(path)!r} does not exist") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    return from_dict(data, default_name=path.stem, source=str(path))


def load(name_or_path: str | os.PathLike, **params: Any) -> TopologySpec:
    """Load a topology by name, by path, or from a generator.

    - A path (contains a directory separator, ends in ``.json``, or is a PathLike)
      loads that file.
    - A bare name loads ``<name>.json`` from ``$MCAST_SDN_TOPOLOGIES`` and then from
      the repository's ``topologies/``.
    - Otherwise a generator name (`GENERATORS`) is called with ``params``, e.g.
      ``load("linear", n=3)``. A file always wins over a generator of the same name,
      so ``params`` with a file name is an error rather than silently ignored.
    """
    text = os.fspath(name_or_path)
    is_path = (not isinstance(name_or_path, str) or os.sep in text or "/" in text
               or text.endswith(".json"))
    if is_path:
        path = Path(text)
        if not path.exists() and path.parent == Path("."):
            # "abilene.json" given bare: also look where bare names are looked up.
            for d in _search_dirs():
                if (d / path.name).is_file():
                    path = d / path.name
                    break
        if params:
            raise ValueError(f"{text}: a topology file takes no parameters "
                             f"(got {sorted(params)})")
        return _load_file(path)

    for d in _search_dirs():
        path = d / f"{text}.json"
        if path.is_file():
            if params:
                raise ValueError(
                    f"{text!r} is the topology file {path}, which takes no parameters "
                    f"(got {sorted(params)}); generators are: {', '.join(GENERATORS)}")
            return _load_file(path)

    gen = GENERATORS.get(text)
    if gen is None:
        names = ", ".join(sorted(available()))
        raise ValueError(f"unknown topology {text!r}: no {text}.json in "
                         f"{', '.join(map(str, _search_dirs()))} and no generator of that "
                         f"name (known: {names})")
    try:
        inspect.signature(gen).bind(**params)
    except TypeError as exc:
        raise ValueError(f"generator {text!r}{inspect.signature(gen)}: bad parameters "
                         f"{params}: {exc}") from None
    return gen(**params)


# ---------------------------------------------------------------------------
# Generators. Each builds the JSON-format dict and goes through `from_dict`, so a
# generated topology gets exactly the ports and addresses its JSON file would.


def _count(value: Any, what: str, minimum: int = 1) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _hosts_for(switches: list[str], per_switch: int) -> list[dict[str, str]]:
    """Mininet LinearTopo naming: h<i> with one host per switch, else h<j>s<i>."""
    hosts = []
    for i, s in enumerate(switches, 1):
        for j in range(1, per_switch + 1):
            name = f"h{i}" if per_switch == 1 else f"h{j}s{i}"
            hosts.append({"name": name, "switch": s})
    return hosts


def linear(n: int, hosts_per_switch: int = 1) -> TopologySpec:
    """``n`` switches in a chain s1-s2-...-sn, like Mininet's LinearTopo."""
    _count(n, "linear: n")
    _count(hosts_per_switch, "linear: hosts_per_switch", 0)
    sw = [f"s{i}" for i in range(1, n + 1)]
    suffix = "" if hosts_per_switch == 1 else f"x{hosts_per_switch}"
    return from_dict({
        "name": f"linear{n}{suffix}",
        "description": f"Linear chain of {n} switches, {hosts_per_switch} host(s) each "
                       f"(Mininet LinearTopo naming).",
        "switches": [{"name": s} for s in sw],
        "links": [{"a": a, "b": b} for a, b in zip(sw, sw[1:])],
        "hosts": _hosts_for(sw, hosts_per_switch),
    })


def ring(n: int, hosts_per_switch: int = 1) -> TopologySpec:
    """``n`` >= 3 switches in a cycle: the smallest topology with a redundant path,
    for testing loop-free trees and failover."""
    _count(n, "ring: n", 3)
    _count(hosts_per_switch, "ring: hosts_per_switch", 0)
    sw = [f"s{i}" for i in range(1, n + 1)]
    suffix = "" if hosts_per_switch == 1 else f"x{hosts_per_switch}"
    return from_dict({
        "name": f"ring{n}{suffix}",
        "description": f"Ring of {n} switches, {hosts_per_switch} host(s) each.",
        "switches": [{"name": s} for s in sw],
        "links": [{"a": a, "b": b} for a, b in zip(sw, sw[1:] + sw[:1])],
        "hosts": _hosts_for(sw, hosts_per_switch),
    })


def tree(depth: int, fanout: int) -> TopologySpec:
    """Mininet TreeTopo: switches s1.. and hosts h1.. numbered depth-first, hosts
    only at the leaves (``fanout`` per leaf switch). Each non-root switch's uplink is
    port 1, its children use ports 2..fanout+1 (the root uses 1..fanout)."""
    _count(depth, "tree: depth")
    _count(fanout, "tree: fanout")
    switches: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    hosts: list[dict[str, Any]] = []

    def add(level: int) -> str:
        name = f"s{len(switches) + 1}"
        switches.append({"name": name, "label": f"level{level}"})
        for _ in range(fanout):
            if level < depth:
                link = {"a": name, "b": None}
                links.append(link)  # listed before the child's own links: uplink = 1
                link["b"] = add(level + 1)
            else:
                hosts.append({"name": f"h{len(hosts) + 1}", "switch": name})
        return name

    add(1)
    return from_dict({
        "name": f"tree{depth}x{fanout}",
        "description": f"Tree of depth {depth} and fanout {fanout} (Mininet TreeTopo "
                       f"naming): {len(switches)} switches, {len(hosts)} hosts at the "
                       f"leaves.",
        "switches": switches, "links": links, "hosts": hosts,
    })


def fat_tree(k: int) -> TopologySpec:
    """k-ary fat-tree (Al-Fares et al., SIGCOMM 2008): (k/2)^2 core switches and k
    pods of k/2 aggregation + k/2 edge switches, k/2 hosts per edge switch.

    Numbering: core switches first (s1..), then pod by pod, aggregation before edge.
    Aggregation switch j of every pod connects to core switches j*k/2 .. j*k/2+k/2-1.
    Ports: core port p+1 leads to pod p; aggregation ports 1..k/2 go up, k/2+1..k
    down; edge ports 1..k/2 go up, k/2+1..k to hosts.
    """
    if not _is_int(k) or k < 2 or k % 2:
        raise ValueError(f"fat_tree: k must be an even integer >= 2, got {k!r}")
    half = k // 2
    switches: list[dict[str, Any]] = []

    def new(label: str) -> str:
        name = f"s{len(switches) + 1}"
        switches.append({"name": name, "label": label})
        return name

    core = [new(f"core{c}") for c in range(half * half)]
    links: list[dict[str, Any]] = []
    hosts: list[dict[str, Any]] = []
    for pod in range(k):
        aggs = [new(f"p{pod}_agg{j}") for j in range(half)]
        edges = [new(f"p{pod}_edge{j}") for j in range(half)]
        for j, agg in enumerate(aggs):
            for c in range(half):
                links.append({"a": agg, "b": core[j * half + c]})
        for edge in edges:
            for agg in aggs:
                links.append({"a": edge, "b": agg})
            for _ in range(half):
                hosts.append({"name": f"h{len(hosts) + 1}", "switch": edge})
    return from_dict({
        "name": f"fattree{k}",
        "description": f"k={k} fat-tree (Al-Fares et al. 2008): {half * half} core, "
                       f"{k} pods of {half} aggregation + {half} edge switches, {half} "
                       f"hosts per edge switch; {len(switches)} switches, {len(hosts)} "
                       f"hosts.",
        "switches": switches, "links": links, "hosts": hosts,
    })


def leaf_spine(spines: int, leaves: int, hosts_per_leaf: int = 1) -> TopologySpec:
    """Two-tier Clos: every leaf linked to every spine, hosts on the leaves.

    Spines are s1..s<spines>, leaves follow. Leaf ports 1..spines go to the spines in
    order, hosts follow; spine port i leads to leaf i.
    """
    _count(spines, "leaf_spine: spines")
    _count(leaves, "leaf_spine: leaves")
    _count(hosts_per_leaf, "leaf_spine: hosts_per_leaf", 0)
    sp = [f"s{i}" for i in range(1, spines + 1)]
    lf = [f"s{spines + i}" for i in range(1, leaves + 1)]
    hosts = []
    for leaf in lf:
        for _ in range(hosts_per_leaf):
            hosts.append({"name": f"h{len(hosts) + 1}", "switch": leaf})
    return from_dict({
        "name": f"leafspine{spines}x{leaves}x{hosts_per_leaf}",
        "description": f"Leaf-spine: {spines} spines, {leaves} leaves each linked to "
                       f"every spine, {hosts_per_leaf} host(s) per leaf.",
        "switches": [{"name": s, "label": f"spine{i}"} for i, s in enumerate(sp, 1)]
                    + [{"name": s, "label": f"leaf{i}"} for i, s in enumerate(lf, 1)],
        "links": [{"a": leaf, "b": spine} for leaf in lf for spine in sp],
        "hosts": hosts,
    })


def mesh(n: int, hosts_per_switch: int = 1) -> TopologySpec:
    """Full mesh of ``n`` switches: many equal-cost paths, the worst case for loops."""
    _count(n, "mesh: n")
    _count(hosts_per_switch, "mesh: hosts_per_switch", 0)
    sw = [f"s{i}" for i in range(1, n + 1)]
    suffix = "" if hosts_per_switch == 1 else f"x{hosts_per_switch}"
    return from_dict({
        "name": f"mesh{n}{suffix}",
        "description": f"Full mesh of {n} switches, {hosts_per_switch} host(s) each.",
        "switches": [{"name": s} for s in sw],
        "links": [{"a": a, "b": b} for i, a in enumerate(sw) for b in sw[i + 1:]],
        "hosts": _hosts_for(sw, hosts_per_switch),
    })


def from_graph(G: nx.Graph, hosts: int | Mapping[Any, int] | Iterable[Any] = 1, *,
               name: str = "graph", description: str = "") -> TopologySpec:
    """A spec from any networkx graph of switches (e.g. one read from GraphML).

    Nodes become switches: a str node is the switch name (dpid from its number, or
    position); an int node ``n`` becomes ``s<n>`` with dpid ``n`` (so
    ``from_graph(spec.graph())`` rebuilds the switch graph). Node attributes ``name``,
    ``dpid`` and ``label`` override. Edge attributes ``weight``, ``delay_ms``,
    ``bw_mbps`` and ``ports`` (``{node: port}``) are used when present.

    ``hosts``: an int = hosts on every switch; a mapping = ``{node: count}``; any
    other iterable = one host on each listed node. Hosts are named h1, h2, ... in
    switch order.
    """
    switches: list[dict[str, Any]] = []
    names: dict[Any, str] = {}
    for node, attrs in G.nodes(data=True):
        entry: dict[str, Any] = {}
        if isinstance(node, str):
            entry["name"] = node
        elif _is_int(node):
            entry["name"] = f"s{node}"
            entry["dpid"] = node
        else:
            raise ValueError(f"from_graph: node {node!r} must be a str name or an int")
        for key in ("name", "dpid", "label"):
            if attrs.get(key) not in (None, ""):
                entry[key] = attrs[key]
        names[node] = entry["name"]
        switches.append(entry)

    links = []
    for u, v, attrs in G.edges(data=True):
        link: dict[str, Any] = {"a": names[u], "b": names[v]}
        for key in ("weight", "delay_ms", "bw_mbps"):
            if attrs.get(key) is not None:
                link[key] = attrs[key]
        ports = attrs.get("ports") or {}
        if ports:
            link["a_port"] = ports.get(u)
            link["b_port"] = ports.get(v)
        links.append(link)

    if _is_int(hosts):
        counts = {node: hosts for node in G.nodes}
    elif isinstance(hosts, Mapping):
        unknown = [n for n in hosts if n not in names]
        if unknown:
            raise ValueError(f"from_graph: hosts on unknown node(s) {unknown!r}")
        counts = dict(hosts)
    else:
        wanted = list(hosts)
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ValueError(f"from_graph: hosts on unknown node(s) {unknown!r}")
        counts = {n: wanted.count(n) for n in wanted}
    host_list: list[dict[str, Any]] = []
    for node in G.nodes:
        count = counts.get(node, 0)
        if not _is_int(count) or count < 0:
            raise ValueError(f"from_graph: host count for {node!r} must be an integer "
                             f">= 0, got {count!r}")
        for _ in range(count):
            host_list.append({"name": f"h{len(host_list) + 1}", "switch": names[node]})

    return from_dict({"name": name, "description": description, "switches": switches,
                      "links": links, "hosts": host_list}, source=f"from_graph({name})")


#: Generator names accepted by `load` when no JSON file of that name exists.
GENERATORS: dict[str, Callable[..., TopologySpec]] = {
    "linear": linear,
    "ring": ring,
    "tree": tree,
    "fat_tree": fat_tree,
    "leaf_spine": leaf_spine,
    "mesh": mesh,
}
