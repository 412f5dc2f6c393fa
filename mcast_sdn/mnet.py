"""Build and tear down a Mininet network from a topology spec, the way our tests need it.

Mininet side only (imports mininet; used by tests/integration, mininet/*.py tools).

What this adds to plain Mininet, each for a reason found on these machines:

* switches are `OVSSwitch(datapath='user', protocols='OpenFlow13', failMode='secure')`:
  the kernel has no OVS module, and `secure` means a switch without a controller
  forwards nothing (no standalone flooding storms on looped topologies);
* the controller is a `RemoteController` that does not probe the port (Mininet's probe
  is a stray TCP connection that the controller would log as a broken switch);
* hosts get TX checksum offload off (otherwise UDP leaves with bad checksums through
  the userspace datapath), IPv6 enabled with a static address, and a route for
  224.0.0.0/4 and ff00::/8 on their interface so multicast sockets need no interface;
* root-namespace noise is silenced: the bridges' own internal ports are brought down
  and IPv6 is disabled on the switch-side ends of links (else router solicitations
  and MLD reports from the root namespace enter the switches as "hosts");
* a process-wide lock file serialises networks of concurrent runs (switch and
  interface names are global), and stale bridges/links of *our* names left by a
  crashed run are removed before building. Nothing else is touched (no `mn -c`).
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time
from functools import partial

from mininet.link import Link
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController

from mcast_sdn.mntopo import SpecTopo
from mcast_sdn.topofile import TopologySpec

LOCK_PATH = "/tmp/mcast-sdn-mininet.lock"


class QuietRemoteController(RemoteController):
    """A RemoteController that does not open a probe connection to the controller."""

    def checkListening(self):
        return


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)


def cleanup_stale(spec: TopologySpec) -> list[str]:
    """Remove bridges and switch-side interfaces with this spec's names (from a crashed run)."""
    removed = []
    for sw in spec.switches:
        if _run("ovs-vsctl", "--timeout=5", "br-exists", sw.name).returncode == 0:
            _run("ovs-vsctl", "--timeout=5", "del-br", sw.name)
            removed.append(sw.name)
    ifaces = _run("ip", "-o", "link", "show").stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in ifaces.splitlines() if ":" in line}
    for sw in spec.switches:
        prefix = sw.name + "-eth"
        for n in sorted(names):
            if n.startswith(prefix) and n[len(prefix):].isdigit():
                _run("ip", "link", "del", n)
                removed.append(n)
    return removed


class McastNet:
    """A running Mininet network for one spec, attached to a controller at ip:port."""

    def __init__(self, spec: TopologySpec, controller_port: int, controller_ip: str = "127.0.0.1", use_tc: bool = False, lock: bool = True):
        self.spec = spec
        self.controller_ip = controller_ip
        self.controller_port = controller_port
        self.use_tc = use_tc
        self.net: Mininet | None = None
        self._lock_fh = None
        self._want_lock = lock

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "McastNet":
        setLogLevel(os.environ.get("MCAST_SDN_MN_LOGLEVEL", "warning"))
        if self._want_lock:
            self._lock_fh = open(LOCK_PATH, "w")
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX)
        try:
            cleanup_stale(self.spec)
            switch = partial(OVSSwitch, datapath="user", protocols="OpenFlow13", failMode="secure")
            link_cls = Link
            if self.use_tc:
                from mininet.link import TCLink

                link_cls = TCLink
            self.net = Mininet(
                topo=SpecTopo(self.spec, use_tc=self.use_tc),
                switch=switch,
                controller=None,
                link=link_cls,
                autoSetMacs=False,
                build=False,
            )
            self.net.addController(QuietRemoteController("c0", ip=self.controller_ip, port=self.controller_port))
            self.net.build()
            self._quiet_root_namespace()
            self.net.start()
            self._configure_hosts()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            if self.net is not None:
                self.net.stop()
        finally:
            self.net = None
            cleanup_stale(self.spec)
            if self._lock_fh is not None:
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
                self._lock_fh.close()
                self._lock_fh = None

    def __enter__(self) -> "McastNet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ set-up details
    def _quiet_root_namespace(self) -> None:
        for sw in self.net.switches:
            for intf in sw.intfList():
                if intf.name == "lo":
                    continue
                _run("sysctl", "-q", "-w", f"net.ipv6.conf.{intf.name}.disable_ipv6=1")

    def _configure_hosts(self) -> None:
        for sw in self.net.switches:
            # the bridge's internal port: no traffic from the root namespace into the switch
            _run("ip", "link", "set", "dev", sw.name, "down")
        for hs in self.spec.hosts:
            h = self.net.get(hs.name)
            intf = h.defaultIntf().name
            cmds = [
                "sysctl -q -w net.ipv6.conf.all.disable_ipv6=0",
                "sysctl -q -w net.ipv6.conf.default.disable_ipv6=0",
                f"sysctl -q -w net.ipv6.conf.{intf}.disable_ipv6=0",
                f"sysctl -q -w net.ipv6.conf.{intf}.accept_dad=0",
                f"ethtool -K {intf} tx off >/dev/null 2>&1",
                f"ip -6 addr add {hs.ipv6} dev {intf} nodad 2>/dev/null",
                f"ip route replace 224.0.0.0/4 dev {intf}",
                f"ip -6 route replace ff00::/8 dev {intf} table local 2>/dev/null; true",
            ]
            h.cmd("; ".join(cmds))

    # ------------------------------------------------------------------ helpers
    def host(self, name: str):
        return self.net.get(name)

    def switch_ports(self, switch: str) -> list[str]:
        return [i.name for i in self.net.get(switch).intfList() if i.name != "lo"]

    def port_stats(self, switch: str) -> dict[int, dict[str, int]]:
        """OpenFlow port counters of one switch: {port_no: {rx_packets, tx_packets, ...}}."""
        out = _run("ovs-ofctl", "-O", "OpenFlow13", "dump-ports", switch).stdout
        stats: dict[int, dict[str, int]] = {}
        port = None
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("port"):
                head, _, rest = line.partition(":")
                p = head.split()[1]
                port = int(p) if p.isdigit() else None
                if port is not None:
                    stats[port] = {}
                    _parse_counts(rest, "rx_", stats[port])
            elif port is not None and line.startswith("tx"):
                _parse_counts(line.partition(" ")[2], "tx_", stats[port])
        return stats

    def dump_flows(self, switch: str) -> str:
        return _run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch).stdout

    def connected(self) -> bool:
        return all(s.connected() for s in self.net.switches)


def _parse_counts(text: str, prefix: str, into: dict[str, int]) -> None:
    for part in text.replace(",", " ").split():
        if "=" in part:
            k, v = part.split("=", 1)
            if v.isdigit():
                into[prefix + k] = int(v)


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value or `timeout` passes (then raise)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
