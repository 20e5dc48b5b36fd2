"""Fixtures that start real components: a control plane, OPA, and the operator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aitrust.api.crdgen import KINDS
from aitrust.testing.cluster import LocalControlPlane, OpaServer, wait_until
from aitrust.testing.processes import ManagedProcess, wait_for
from aitrust.testing.testbin import find_binary

ROOT = Path(__file__).resolve().parent.parent
CRDS = ROOT / "crds"
_facts: dict[str, str] = {}


class Kubectl:
    """The pinned kubectl, pointed at one kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.binary = find_binary("kubectl")
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, namespace: str, *objs: dict[str, Any]) -> None:
        """Client-side apply of ``objs`` into ``namespace``, in one call."""
        items = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})
        self.run("apply", "-n", namespace, "-f", "-", input=items)

    def patch_status(
        self, kind: str, name: str, namespace: str, status: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Merge-patch the status subresource, as the operator writes it."""
        return self.run(
            "patch",
            kind,
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
            check=check,
        )


def install_crds(kubectl: Kubectl) -> None:
    kubectl.run(
        "apply", "--server-side", "--field-manager=aitrust-tests", "-f", str(CRDS), "-f", str(CRDS / "kopf")
    )
    kubectl.run(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=aitrust",
    )
    # kubectl caches discovery from before the CRDs existed; `explain aiw` then finds no such
    # type. api-resources reads it afresh (and refreshes the cache) until every new kind shows.
    kinds = {f"{info.plural}.aitrust.dev" for info in KINDS}
    wait_until(
        lambda: (
            kinds <= set(kubectl.run("api-resources", "--api-group=aitrust.dev", "-o", "name").stdout.split())
        ),
        timeout=30,
    )


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalControlPlane]:
    started = time.monotonic()
    cp = LocalControlPlane(workdir=tmp_path_factory.mktemp("control-plane"))
    cp.start()
    _facts["control plane"] = f"kube-apiserver {cp.version}, ready in {time.monotonic() - started:.1f}s"
    try:
        install_crds(Kubectl(cp.kubeconfig))
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubectl(control_plane: LocalControlPlane) -> Kubectl:
    return Kubectl(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def kube_api(control_plane: LocalControlPlane) -> Any:
    from aitrust.kube.client import load_config

    return load_config(str(control_plane.kubeconfig))


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    # Pods are admitted only once the ServiceAccount controller made the default SA.
    wait_for(
        f"default ServiceAccount in {name}",
        lambda: kubectl.run("get", "sa", "default", "-n", name, check=False).returncode == 0,
        30,
    )
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def opa(tmp_path: Path) -> Iterator[OpaServer]:
    server = OpaServer(workdir=tmp_path / "opa").start()
    yield server
    server.stop()


OperatorFactory = Callable[..., ManagedProcess]


def operator_process(
    cp: LocalControlPlane,
    log_dir: Path,
    *extra: str,
    name: str = "aitrust-operator",
    env: dict[str, str] | None = None,
    wait: bool = True,
    kubeconfig: Path | None = None,
) -> ManagedProcess:
    """`aitrust run` as a real process against ``cp`` (as admin unless ``kubeconfig``); waits until synced."""
    proc = ManagedProcess(
        name,
        [sys.executable, "-m", "aitrust.cli", "run", f"--kubeconfig={kubeconfig or cp.kubeconfig}", *extra],
        log_dir,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    ).start()
    if wait:
        wait_for("operator sync", lambda: "aitrust operator synced" in proc.log_path.read_text(), 60, [proc])
    return proc


@pytest.fixture
def start_operator(control_plane: LocalControlPlane, tmp_path: Path) -> Iterator[OperatorFactory]:
    """Run `aitrust run` as a real process against the local control plane."""
    started: list[ManagedProcess] = []

    def start(
        *extra: str, name: str = "aitrust-operator", env: dict[str, str] | None = None
    ) -> ManagedProcess:
        proc = operator_process(control_plane, tmp_path, *extra, name=f"{name}-{len(started)}", env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
        # Shown by pytest only when the test fails.
        print(f"--- {proc.name} log ---\n{proc.log_tail(80)}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for key, value in _facts.items():
        terminalreporter.write_line(f"{key}: {value}")
