"""Integration test bed: real Ryu (stock ryu-manager), real Open vSwitch (userspace
datapath), real Mininet hosts with the Linux IGMP/MLD stack.

Fixtures:
  ovs           ensure ovs-vswitchd/ovsdb are running (starts them with ovs-ctl if not)
  controller    factory: start the app under ryu-manager on 127.0.0.1:free ports; log kept
                under artifacts/ when the test fails
  network       factory: build a Mininet network from a topology spec, attached to a
                controller; torn down in a finally even when the test fails
Waiting is always on a condition with a deadline (`mcast_sdn.mnet.wait_until`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests need root (Open vSwitch, Mininet)")
        for item in items:
            if "integration" in item.keywords:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _ovs_running() -> bool:
    return subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def ovs():
    if not _ovs_running():
        subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "start", "--system-id=random"], capture_output=True)
    from mcast_sdn.mnet import wait_until

    wait_until(_ovs_running, 15, what="Open vSwitch to answer")
    return True


def _failed(request) -> bool:
    for when in ("setup", "call"):
        rep = getattr(request.node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


@pytest.fixture
def controller(request, tmp_path):
    """Factory: controller(config=None) -> running ControllerProcess."""
    from mcast_sdn.ctlproc import ControllerProcess

    started = []

    def start(config: dict | None = None, extra_args: list[str] | None = None):
        c = ControllerProcess(tmp_path / f"controller{len(started)}.log", config=config, extra_args=extra_args)
        started.append(c)
        return c.start()

    yield start
    for c in started:
        c.stop()
    if _failed(request):
        dest = ARTIFACTS / request.node.name
        dest.mkdir(parents=True, exist_ok=True)
        for c in started:
            if c.log_path.exists():
                shutil.copy(c.log_path, dest / c.log_path.name)
        print(f"\ncontroller logs kept in {dest}")


@pytest.fixture
def network(ovs):
    """Factory: network(spec, ctl) -> started McastNet (stopped at teardown, always)."""
    from mcast_sdn.mnet import McastNet

    nets = []

    def build(spec, ctl, **kw):
        n = McastNet(spec, ctl.of_port, **kw)
        nets.append(n)
        return n.start()

    yield build
    for n in nets:
        n.stop()
