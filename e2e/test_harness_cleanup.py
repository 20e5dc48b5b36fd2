"""The harness undoes what it did on the host: after a failed setup, and after a SIGKILLed run."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from e2e.harness.cleanup import Cleanup, RunState, sweep_stale_runs
from e2e.harness.kuberouter import enable_bridge_netfilter, require_host_tools, restore_bridge_netfilter
from e2e.harness.netns import PodNetwork

REPO = Path(__file__).resolve().parents[1]


def free_subnet() -> ipaddress.IPv4Network:
    """A /30 no route on this host overlaps: room for the node address and exactly one pod."""
    for third in range(200, 250):
        subnet = ipaddress.IPv4Network(f"10.251.{third}.0/30")
        unused = RunState("probe", state_dir=Path("/nonexistent"))
        probe = PodNetwork("probe", subnet, Cleanup(), unused, Path())
        try:
            probe._check_subnet_free()
        except RuntimeError:
            continue
        return subnet
    raise RuntimeError("no free /30 in 10.251.200-249.0 for the harness test")


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def netns_exists(name: str) -> bool:
    return Path(f"/run/netns/{name}").exists()


def test_a_setup_that_fails_half_way_is_undone(tmp_path: Path) -> None:
    require_host_tools()
    cleanup = Cleanup()
    state = RunState(uuid.uuid4().hex[:8], state_dir=tmp_path / "state")
    network = PodNetwork(state.run_id, free_subnet(), cleanup, state, tmp_path).create()
    pod = network.add("ns", "first")
    sleeper = pod.spawn("sleeper", ["sleep", "300"])
    assert link_exists(network.bridge) and link_exists(pod.host_if) and netns_exists(pod.netns)
    assert sleeper.alive()

    with pytest.raises(RuntimeError, match="is full"):
        network.add("ns", "second")  # the /30 holds one pod: setup fails here
    cleanup.run()

    assert cleanup.errors == []
    assert not sleeper.alive()
    assert not link_exists(network.bridge)
    assert not link_exists(pod.host_if)
    assert not netns_exists(pod.netns)


_KILLED_RUN = """
import ipaddress, sys, time
from pathlib import Path
from e2e.harness.cleanup import Cleanup, RunState
from e2e.harness.netns import PodNetwork

state = RunState(sys.argv[1], state_dir=Path(sys.argv[2]))
state.bridge_nf_before = "0"
state.save()
network = PodNetwork(state.run_id, ipaddress.IPv4Network(sys.argv[3]), Cleanup(), state, Path(sys.argv[2]))
network.create()
pod = network.add("ns", "victim")
print(network.bridge, pod.host_if, pod.netns, flush=True)
time.sleep(300)
"""


def test_what_a_sigkilled_run_left_is_swept_by_the_next(tmp_path: Path) -> None:
    require_host_tools()
    state_dir = tmp_path / "state"
    run_id = uuid.uuid4().hex[:8]
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, run_id, str(state_dir), str(free_subnet())],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'operator'}"},
    )
    try:
        assert proc.stdout is not None
        bridge, host_if, netns = proc.stdout.readline().split()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert link_exists(bridge) and netns_exists(netns), "the killed run left nothing to sweep"
    recorded = json.loads((state_dir / f"{run_id}.json").read_text())
    assert recorded["bridge_nf_before"] == "0"

    flushed: list[bool] = []
    restored: list[str] = []
    swept = sweep_stale_runs(lambda: flushed.append(True), restored.append, state_dir=state_dir)

    assert f"netns {netns}" in swept and f"link {bridge}" in swept
    assert not link_exists(bridge) and not link_exists(host_if) and not netns_exists(netns)
    assert restored == ["0"]  # the sysctl the killed run had changed is put back
    assert flushed == []  # it never started kube-router
    assert list(state_dir.glob("*.json")) == []


def test_bridge_netfilter_is_restored_only_when_the_run_changed_it(tmp_path: Path) -> None:
    sysctl = tmp_path / "bridge-nf-call-iptables"
    sysctl.write_text("0\n")
    before = enable_bridge_netfilter(sysctl)
    assert before == "0" and sysctl.read_text() == "1\n"
    restore_bridge_netfilter(before, sysctl)
    assert sysctl.read_text() == "0\n"

    sysctl.write_text("1\n")
    assert enable_bridge_netfilter(sysctl) is None  # already on: nothing to put back
