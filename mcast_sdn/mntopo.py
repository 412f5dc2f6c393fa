"""Build a Mininet `Topo` from a `TopologySpec`.

Why a module of its own: `mcast_sdn.topofile` must stay importable without Mininet
(the controller and the unit tests use it), while this module exists only for the
Mininet side. Everything Mininet needs is taken from the spec and passed explicitly,
so the emulated network is exactly the one the controller expects:

- dpids are passed as 16 hex digits, never derived by Mininet from the switch name;
- every switch speaks OpenFlow 1.3 (``protocols="OpenFlow13"``), which the
  controller's group-table replication needs;
- every link gets the spec's port numbers, and each host's side is port 0, so the
  host interface is ``eth0`` and the switch interfaces are ``<switch>-eth<port>``;
- hosts get their IPv4 address and MAC here; IPv6 is configured by the network
  runner after start-up (Mininet's ``addHost`` has no IPv6 option).

Traffic control (netem delay, htb bandwidth) is opt-in via ``use_tc=True``: it needs
the sch_netem/sch_htb modules, slows start-up, and shaping distorts the timing of
protocol tests that do not want it.

A `Topo` is plain data (no processes), so building one in a unit test is safe.
"""
from __future__ import annotations

import os
from typing import Any

from mininet.link import TCLink
from mininet.topo import Topo

from mcast_sdn.topofile import TopologySpec, load

__all__ = ["SpecTopo", "spec_topo", "OPENFLOW_PROTOCOLS"]

#: The OVS ``protocols`` option given to every switch.
OPENFLOW_PROTOCOLS = "OpenFlow13"


def _ms(value: float) -> str:
    """Mininet/tc delay text: 5.0 -> "5ms", 5.73 -> "5.73ms"."""
    return f"{int(value)}ms" if float(value).is_integer() else f"{value}ms"


class SpecTopo(Topo):
    """A Mininet topology built from a `TopologySpec` (or a name/path to load).

    ``SpecTopo(spec)`` or ``SpecTopo(spec, use_tc=True)``. The spec stays available
    as ``topo.spec`` so that scripts holding the Topo can still look up dpids,
    addresses and expected wiring.
    """

    spec: TopologySpec
    use_tc: bool

    def build(self, spec: TopologySpec | str | os.PathLike, use_tc: bool = False,
              **params: Any) -> None:  # pylint: disable=arguments-differ
        if not isinstance(spec, TopologySpec):
            spec = load(spec, **params)
        elif params:
            raise ValueError(f"SpecTopo: parameters {sorted(params)} only apply when "
                             f"loading a topology by name")
        self.spec = spec
        self.use_tc = bool(use_tc)

        for s in spec.switches:
            self.addSwitch(s.name, dpid="%016x" % s.dpid, protocols=OPENFLOW_PROTOCOLS)
        for h in spec.hosts:
            self.addHost(h.name, ip=h.ip, mac=h.mac)
        for link in spec.links:
            self.addLink(link.a, link.b, port1=link.a_port, port2=link.b_port,
                         **self._link_opts(link.delay_ms, link.bw_mbps))
        for h in spec.hosts:
            self.addLink(h.name, h.switch, port1=0, port2=h.port)

    def _link_opts(self, delay_ms: float | None, bw_mbps: float | None) -> dict[str, Any]:
        """TCLink options, only when tc is wanted and the link has something to shape.

        ``cls=TCLink`` is set per link so shaping works whatever ``--link`` the
        network was started with."""
        if not self.use_tc:
            return {}
        opts: dict[str, Any] = {}
        if delay_ms is not None:
            opts["delay"] = _ms(delay_ms)
        if bw_mbps is not None:
            opts["bw"] = bw_mbps
        if opts:
            opts["cls"] = TCLink
        return opts


def spec_topo(name_or_path: TopologySpec | str | os.PathLike, use_tc: bool = False,
              **params: Any) -> SpecTopo:
    """`SpecTopo` for a spec, a topology name/path, or a generator with ``params``
    (``spec_topo("linear", n=3)``)."""
    spec = name_or_path if isinstance(name_or_path, TopologySpec) else load(
        name_or_path, **params)
    if isinstance(name_or_path, TopologySpec) and params:
        raise ValueError(f"spec_topo: parameters {sorted(params)} only apply when "
                         f"loading a topology by name")
    return SpecTopo(spec, use_tc=use_tc)
