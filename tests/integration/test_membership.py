"""Membership with the real Linux IGMP/MLD stack in Mininet hosts.

The hosts join with sockets (IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP,
IP_BLOCK_SOURCE, IPV6_JOIN_GROUP, MCAST_JOIN_SOURCE_GROUP) through mininet/mcast_recv.py;
the version they speak is forced per host (force_igmp_version / force_mld_version).
Timers are shortened through the controller's config so that ageing is observable.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from mcast_sdn import topofile, traffic
from mcast_sdn.ctlproc import ControllerProcess
from mcast_sdn.mnet import McastNet, wait_until

from .itutil import wait_topology

QI, QRI, LMQI = 3.0, 1.0, 0.5
GMI = 2 * QI + QRI  # 7 s
CONFIG = {
    "membership": {
        "query_interval": QI,
        "query_response_interval": QRI,
        "last_member_query_interval": LMQI,
        "startup_query_interval": 1.0,
    }
}


@pytest.fixture(scope="module")
def bed(ovs, tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("membership")
    spec = topofile.linear(3)
    ctl = ControllerProcess(tmp / "controller.log", config=CONFIG)
    net = None
    try:
        ctl.start()
        net = McastNet(spec, ctl.of_port).start()
        wait_topology(ctl, spec, timeout=40)
        yield spec, ctl, net, tmp
    finally:
        if net is not None:
            net.stop()
        ctl.stop()
        if request.session.testsfailed:
            dest = Path(__file__).resolve().parents[2] / "artifacts" / "test_membership"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(ctl.log_path, dest / "controller.log")


def member_view(ctl, group: str, dpid: int, port: int):
    for g in ctl.get("/mcast/v1/groups")["groups"]:
        if g["group"] == group:
            for m in g["members"]:
                if (m["dpid"], m["port"]) == (dpid, port):
                    return m
    return None


def counters(ctl) -> dict:
    return ctl.get("/mcast/v1/stats")["counters"]


class Receiver:
    """A receiver process on one host, stopped at the end of the test whatever happens."""

    def __init__(self, net, tmp, host_name, groups, **kw):
        self.host = net.host(host_name)
        self.out = tmp / f"{host_name}-{time.monotonic_ns()}.jsonl"
        self.ready = Path(str(self.out) + ".ready")
        self.proc = traffic.start_receiver(self.host, groups, out_path=self.out, ready_file=self.ready, **kw)
        traffic.wait_ready(self.ready, timeout=10, proc=self.proc)
        self.joined_at = time.monotonic()

    def stop(self):
        traffic.stop(self.proc)


@pytest.fixture
def receivers():
    started = []
    yield started
    for r in started:
        r.stop()


CASES = [
    # id, host, group, igmp, mld, kw, expected mode, expected sources
    ("igmpv2", "h2", "239.10.0.2", 2, None, {}, "exclude", []),
    ("igmpv3-asm", "h2", "239.10.0.3", 3, None, {}, "exclude", []),
    ("igmpv3-ssm", "h3", "232.10.0.3", 3, None, {"sources": ["10.0.0.1"]}, "include", ["10.0.0.1"]),
    ("igmpv3-block", "h3", "239.10.0.4", 3, None, {"blocks": ["10.0.0.1"]}, "exclude", ["10.0.0.1"]),
    ("mldv1", "h2", "ff15::10:1", None, 1, {}, "exclude", []),
    ("mldv2-asm", "h2", "ff15::10:2", None, 2, {}, "exclude", []),
    ("mldv2-ssm", "h3", "ff35::10:3", None, 2, {"sources": ["fc00::1"]}, "include", ["fc00::1"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_join_shows_up_within_one_second(bed, receivers, case):
    spec, ctl, net, tmp = bed
    name, host, group, igmp, mld, kw, mode, sources = case
    h = spec.host(host)
    traffic.set_host_versions(net.host(host), igmp=igmp if igmp else None, mld=mld if mld else None)
    try:
        r = Receiver(net, tmp, host, [group], duration=20, **kw)
        receivers.append(r)
        m = wait_until(lambda: member_view(ctl, group, spec.dpid(h.switch), h.port), 1.0, interval=0.05,
                       what=f"{name} membership of {host} in {group}")
        assert m["mode"] == mode and m["sources"] == sources
        proto = f"igmpv{igmp}" if igmp else f"mldv{mld}"
        assert any(k.startswith(f"membership.rx.{proto}.report") for k in counters(ctl)), counters(ctl)
    finally:
        traffic.set_host_versions(net.host(host), igmp=0 if igmp else None, mld=0 if mld else None)


@pytest.mark.parametrize("version", ["igmpv2", "igmpv3", "mldv1", "mldv2"])
def test_leave_processed_with_last_member_queries(bed, receivers, version):
    """A leave (v2 Leave, v3 TO_IN{}, MLD Done) triggers group-specific queries and the
    membership ends after the last member query time (2 x 0.5 s here), not at once."""
    spec, ctl, net, tmp = bed
    h = spec.host("h2")
    ipv6 = version.startswith("mld")
    group = {"igmpv2": "239.11.0.2", "igmpv3": "239.11.0.3", "mldv1": "ff15::11:1", "mldv2": "ff15::11:2"}[version]
    v = int(version[-1])
    traffic.set_host_versions(net.host("h2"), igmp=None if ipv6 else v, mld=v if ipv6 else None)
    try:
        r = Receiver(net, tmp, "h2", [group], duration=20, leave_after=2.0)
        receivers.append(r)
        wait_until(lambda: member_view(ctl, group, spec.dpid(h.switch), h.port), 2.0, what="join")
        before = counters(ctl).get("membership.tx.query.group", 0)
        # the receiver leaves 2 s after start; the state must outlive the leave by about LMQT
        wait_until(lambda: time.monotonic() >= r.joined_at + 2.0, 5, what="leave time")
        gone = wait_until(lambda: member_view(ctl, group, spec.dpid(h.switch), h.port) is None and time.monotonic(),
                          2 * LMQI * 2 + 2.0, interval=0.05, what="membership to end after the leave")
        assert gone - (r.joined_at + 2.0) >= 2 * LMQI * 0.8, "left before the last member query time"
        assert counters(ctl).get("membership.tx.query.group", 0) > before, "no group-specific query was sent"
    finally:
        traffic.set_host_versions(net.host("h2"), igmp=0 if not ipv6 else None, mld=0 if ipv6 else None)


def test_silent_host_ages_out_after_group_membership_interval(bed):
    """IGMPv1 has no leave: a receiver that disappears stops answering queries and its
    membership must age out after the group membership interval (7 s here), not before."""
    spec, ctl, net, tmp = bed
    h = spec.host("h3")
    group = "239.12.0.1"
    traffic.set_host_versions(net.host("h3"), igmp=1)
    try:
        r = Receiver(net, tmp, "h3", [group], duration=30)
        wait_until(lambda: member_view(ctl, group, spec.dpid(h.switch), h.port), 2.0, what="v1 join")
        r.stop()
        stopped = time.monotonic()
        wait_until(lambda: time.monotonic() - stopped > 2.0, 5, what="2 s of silence")
        assert member_view(ctl, group, spec.dpid(h.switch), h.port) is not None, "v1 host left without a leave message?"
        gone = wait_until(lambda: member_view(ctl, group, spec.dpid(h.switch), h.port) is None and time.monotonic(),
                          GMI + 4, interval=0.1, what="membership to age out")
        assert gone - stopped <= GMI + 2.0
    finally:
        traffic.set_host_versions(net.host("h3"), igmp=0)


def test_hosts_answer_queries_and_stay_members(bed, receivers):
    """With QI = 3 s the membership would expire after 7 s unless the host answers the
    controller's general queries; it must still be there after 2 x GMI."""
    spec, ctl, net, tmp = bed
    h = spec.host("h1")
    group, group6 = "239.13.0.1", "ff15::13:1"
    r = Receiver(net, tmp, "h1", [group, group6], duration=30)
    receivers.append(r)
    wait_until(lambda: member_view(ctl, group, spec.dpid(h.switch), h.port), 2.0, what="join")
    c0 = counters(ctl)
    wait_until(lambda: time.monotonic() - r.joined_at > 2 * GMI, 2 * GMI + 5, interval=0.5, what="two GMIs")
    assert member_view(ctl, group, spec.dpid(h.switch), h.port) is not None
    assert member_view(ctl, group6, spec.dpid(h.switch), h.port) is not None
    c1 = counters(ctl)
    assert c1.get("membership.tx.query.general", 0) > c0.get("membership.tx.query.general", 0)
    answered = sum(v for k, v in c1.items() if k.startswith("membership.rx.record.mode_is"))
    answered0 = sum(v for k, v in c0.items() if k.startswith("membership.rx.record.mode_is"))
    assert answered > answered0, "no current-state records: hosts did not answer the queries"
