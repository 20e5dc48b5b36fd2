"""Fixtures of the data-path suite: a control plane, a data plane with a real enforcer, the operator.

Default (netns) mode: a local control plane, pods simulated as network namespaces on a bridge,
kube-router enforcing the NetworkPolicies, and the operator as a process. It needs root, iptables
and ipset and FAILS when they are missing. The cluster modes run the same tests on real pods with
the operator installed by the chart: ``--kind`` on a new kind cluster (SKIPS when Docker is
unavailable, the one skip this suite allows), ``--e2e-kubeconfig=PATH`` on any cluster whose CNI
enforces NetworkPolicy.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Kubectl, install_crds, namespace, operator_process

from aitrust.testing.cluster import LocalControlPlane
from aitrust.testing.testbin import find_binary
from e2e.harness import TIMINGS
from e2e.harness.chart import ChartOperator, delete_release_namespace
from e2e.harness.dataplane import DataPlane, NetnsDataPlane
from e2e.harness.kind import ExistingCluster, KindCluster, KindDataPlane
from e2e.harness.kuberouter import require_host_tools

__all__ = ["namespace"]  # re-exported fixtures
Cluster = LocalControlPlane | KindCluster | ExistingCluster
_facts: dict[str, str] = {}
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kind",
        action="store_true",
        default=False,
        help="e2e: run the data-path tests on a new kind cluster (needs Docker and kind) instead of netns",
    )
    parser.addoption(
        "--e2e-kubeconfig",
        default="",
        help="e2e: run the data-path tests on the cluster of this kubeconfig (its CNI must enforce "
        "NetworkPolicy; AITRUST_E2E_IMAGE names the operator image) instead of netns",
    )


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"`docker info` failed: {lines[-1] if lines else f'exit {proc.returncode}'}"
    return None


@pytest.fixture(scope="session")
def kind_mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--kind"))


@pytest.fixture(scope="session")
def existing_kubeconfig(request: pytest.FixtureRequest) -> Path | None:
    value = str(request.config.getoption("--e2e-kubeconfig"))
    return Path(value) if value else None


@pytest.fixture(scope="session")
def control_plane(
    kind_mode: bool, existing_kubeconfig: Path | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Overrides tests/conftest.py's: in the cluster modes the API server is the cluster's."""
    started = time.monotonic()
    cluster: Cluster
    if kind_mode and existing_kubeconfig:
        raise pytest.UsageError("--kind and --e2e-kubeconfig exclude each other")
    if kind_mode:
        reason = _docker_unavailable()
        if reason:
            pytest.skip(f"--kind needs a working Docker daemon: {reason}")
        cluster = KindCluster(workdir=tmp_path_factory.mktemp("kind")).start()
    elif existing_kubeconfig:
        if not existing_kubeconfig.is_file():
            raise pytest.UsageError(f"--e2e-kubeconfig {existing_kubeconfig}: no such file")
        cluster = ExistingCluster(existing_kubeconfig).start()
    else:
        require_host_tools()  # fail before the slow part, never skip
        find_binary("kube-router")
        cluster = LocalControlPlane(workdir=tmp_path_factory.mktemp("control-plane")).start()
    _facts["e2e control plane"] = f"{type(cluster).__name__} ready in {time.monotonic() - started:.1f}s"
    try:
        install_crds(Kubectl(cluster.kubeconfig))
        yield cluster
    finally:
        if not isinstance(cluster, LocalControlPlane):
            delete_release_namespace(Kubectl(cluster.kubeconfig))
        cluster.stop()


@pytest.fixture(scope="session")
def kubectl(control_plane: Cluster) -> Kubectl:
    return Kubectl(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def dataplane(
    control_plane: Cluster,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DataPlane]:
    logs = tmp_path_factory.mktemp("dataplane")
    plane: DataPlane
    started = time.monotonic()
    if not isinstance(control_plane, LocalControlPlane):
        plane = KindDataPlane(kubectl, control_plane, logs).start()
    else:
        plane = NetnsDataPlane(kubectl, control_plane.kubeconfig, logs).start()
    _facts["e2e data plane"] = f"{plane.describe()}, ready in {time.monotonic() - started:.1f}s"
    try:
        yield plane
    finally:
        plane.close()


@pytest.fixture
def start_operator(
    control_plane: Cluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    """The operator for one test: a process in netns mode, a Helm release in the cluster modes."""
    if isinstance(control_plane, LocalControlPlane):
        cp = control_plane
        started: list[Any] = []

        def start_process(*flags: str) -> Any:
            proc = operator_process(cp, tmp_path, *flags, name=f"aitrust-operator-{len(started)}")
            started.append(proc)
            return proc

        yield start_process
        for proc in started:
            proc.stop()
            print(f"--- {proc.name} log ---\n{proc.log_tail(80)}")  # shown when the test fails
        return
    cluster = control_plane
    release = ChartOperator(kubectl, cluster.kubeconfig, cluster.image, cluster.pull_policy, tmp_path)

    def install(*flags: str) -> ChartOperator:
        release.install(namespace, *flags)
        return release

    try:
        yield install
    finally:
        print(release.log_tail())
        release.uninstall()


@pytest.fixture
def pod_scope(dataplane: DataPlane, namespace: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """Release the test's pods afterwards; on failure, show the enforcer's log next to the operator's."""
    yield
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is not None and report.failed:
        print(dataplane.log_tail())
    dataplane.release(namespace)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for key, value in _facts.items():
        terminalreporter.write_line(f"{key}: {value}")
    for line in TIMINGS:
        terminalreporter.write_line(line)
