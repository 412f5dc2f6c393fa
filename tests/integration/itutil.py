"""Shared waits and probes for integration tests (conditions with deadlines, no sleeps)."""
from __future__ import annotations

from mcast_sdn.mnet import wait_until


def wait_topology(ctl, spec, timeout: float = 30.0) -> dict:
    """Until the controller sees every switch, every link and every host port as an edge port."""
    want_sw = {s.dpid for s in spec.switches}
    want_links = len(spec.links)
    host_ports = {(spec.dpid(h.switch), h.port) for h in spec.hosts}

    def ready():
        snap = ctl.get("/mcast/v1/topology")
        sw = {int(d) for d in snap["switches"]}
        if sw != want_sw or len(snap["links"]) != want_links:
            return False
        for d, p in host_ports:
            if snap["switches"][str(d)].get(str(p), {}).get("kind") != "edge":
                return False
        return snap

    return wait_until(ready, timeout, interval=0.2, what=f"topology of {spec.name} discovered")
