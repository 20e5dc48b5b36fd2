"""Cluster modes: the same scenarios on real pods, on a new kind cluster or any cluster by kubeconfig.

kind's kindnet enforces NetworkPolicy (kind >= v0.24). Pods are real containers (a Python image
running ``apps.py`` from a ConfigMap, plus the OPA image as the data store's sidecar); clients
run ``apps.py connect|http|probe`` through ``kubectl exec``. The operator runs in the cluster,
installed by the chart (``e2e/harness/chart.py``), and publishes to the OPA sidecar by pod IP.
kind mode builds the operator image with Docker and loads it into the cluster; with an existing
cluster the image comes from ``AITRUST_E2E_IMAGE``. The suite skips only when ``--kind`` finds
no Docker daemon.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aitrust.testing.testbin import testbin_dir
from e2e.harness.cleanup import sh
from e2e.harness.dataplane import (
    GATEWAY_PORT,
    MODEL_PORT,
    OPA_PORT,
    PROBE_CONNECT_TIMEOUT,
    STORE_PORT,
    ProbeResult,
)
from e2e.harness.kube import KubectlLike, apply
from e2e.harness.netns import HttpResult, Outcome

APPS = Path(__file__).with_name("apps.py")
REPO = Path(__file__).resolve().parents[2]
PYTHON_IMAGE = os.environ.get("AITRUST_E2E_KIND_PYTHON_IMAGE", "python:3.12-alpine")
APPS_CONFIGMAP = "aitrust-e2e-apps"


def _opa_image() -> str:
    if image := os.environ.get("AITRUST_E2E_KIND_OPA_IMAGE"):
        return image
    stamp = testbin_dir() / ".opa.version"  # the OPA the rest of the suite pins
    version = stamp.read_text().strip().lstrip("v") if stamp.exists() else "latest"
    return f"openpolicyagent/opa:{version}"


@dataclass
class KindCluster:
    """A throwaway kind cluster with its own kubeconfig file, and the operator image loaded into it."""

    workdir: Path
    name: str = field(default_factory=lambda: f"aitrust-e2e-{uuid.uuid4().hex[:6]}")
    kubeconfig: Path = Path()
    created: bool = False
    pull_policy: str = "Never"  # the image exists only on the nodes, loaded by `kind load`

    @property
    def image(self) -> str:
        return f"aitrust-operator:e2e-{self.name}"

    def start(self) -> KindCluster:
        kind = shutil.which("kind")
        if kind is None:
            raise RuntimeError("--kind needs the kind CLI (>= v0.24, for NetworkPolicy) on PATH")
        self.kubeconfig = self.workdir / "kubeconfig"
        self.created = True
        sh(kind, "create", "cluster", f"--name={self.name}", f"--kubeconfig={self.kubeconfig}", "--wait=180s")
        build = subprocess.run(
            ["docker", "build", "--tag", self.image, str(REPO)], capture_output=True, text=True, timeout=1800
        )
        if build.returncode != 0:
            raise RuntimeError(f"docker build of the operator image failed:\n{build.stderr[-3000:]}")
        sh(kind, "load", "docker-image", self.image, f"--name={self.name}")
        return self

    def stop(self) -> None:
        kind = shutil.which("kind")
        if self.created and kind is not None:
            sh(kind, "delete", "cluster", f"--name={self.name}", check=False)


@dataclass
class ExistingCluster:
    """A cluster the user brings (``--e2e-kubeconfig``); its CNI must enforce NetworkPolicy.

    Left as found, except for the test namespaces (deleted) and the chart release (uninstalled).
    """

    kubeconfig: Path
    name: str = "existing cluster"
    pull_policy: str = "IfNotPresent"

    @property
    def image(self) -> str:
        image = os.environ.get("AITRUST_E2E_IMAGE", "")
        if not image:
            raise RuntimeError(
                "--e2e-kubeconfig needs AITRUST_E2E_IMAGE: the operator image (repository:tag) the "
                "cluster can pull, built from this checkout's Dockerfile"
            )
        return image

    def start(self) -> ExistingCluster:
        _ = self.image  # fail before any test when it is missing
        return self

    def stop(self) -> None:
        return None


@dataclass
class KindPod:
    namespace: str
    name: str
    kubectl: KubectlLike
    pod_ip: str = ""

    @property
    def ip(self) -> str:
        return self.pod_ip

    def _exec(self, *args: str) -> str:
        proc = self.kubectl.run(
            "exec", "-n", self.namespace, self.name, "-c", "main", "--", "python", "/apps/apps.py", *args
        )
        return proc.stdout.strip()

    def connect(self, target: Any, port: int, timeout: float = 0.5) -> Outcome:
        return Outcome(self._exec("connect", f"--host={target.ip}", f"--port={port}", f"--timeout={timeout}"))

    def http(
        self, target: Any, port: int, method: str = "GET", path: str = "/", body: Any = None
    ) -> HttpResult:
        args = ["http", f"--host={target.ip}", f"--port={port}", f"--method={method}", f"--path={path}"]
        if body is not None:
            args.append(f"--body={json.dumps(body)}")
        result = json.loads(self._exec(*args))
        return HttpResult(result["status"], result["body"])


@dataclass
class KindDataPlane:
    kubectl: KubectlLike
    cluster: KindCluster | ExistingCluster
    log_dir: Path
    _namespaces: set[str] = field(default_factory=set)

    def start(self) -> KindDataPlane:
        return self

    def describe(self) -> str:
        if isinstance(self.cluster, KindCluster):
            return f"kind cluster {self.cluster.name}, NetworkPolicy enforced by kindnet"
        return f"{self.cluster.name} ({self.cluster.kubeconfig}), NetworkPolicy enforced by its CNI"

    def log_tail(self) -> str:
        proc = self.kubectl.run(
            "logs", "-n", "kube-system", "-l", "app=kindnet", "--tail=40", "--all-containers", check=False
        )
        return f"--- kindnet log ---\n{proc.stdout}{proc.stderr}"

    def close(self) -> None:
        return None

    def release(self, namespace: str) -> None:
        return None  # real pods go with their namespace

    # --- pods ------------------------------------------------------------------------

    def _ensure_apps(self, namespace: str) -> None:
        if namespace in self._namespaces:
            return
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": APPS_CONFIGMAP},
            "data": {"apps.py": APPS.read_text()},
        }
        apply(self.kubectl, namespace, cm)
        self._namespaces.add(namespace)

    def _create(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str],
        spec: dict[str, Any] | None,
        command: list[str],
        extra_containers: Sequence[dict[str, Any]] = (),
        extra_volumes: Sequence[dict[str, Any]] = (),
    ) -> KindPod:
        self._ensure_apps(namespace)
        pod_spec = copy.deepcopy(spec or {})
        main = (pod_spec.get("containers") or [{}])[0]
        main.update(
            {
                "name": "main",
                "image": PYTHON_IMAGE,
                "command": command,
                "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
            }
        )
        main.setdefault("volumeMounts", []).append({"name": "apps", "mountPath": "/apps", "readOnly": True})
        pod_spec["containers"] = [main, *extra_containers]
        pod_spec.setdefault("volumes", []).append({"name": "apps", "configMap": {"name": APPS_CONFIGMAP}})
        pod_spec["volumes"].extend(extra_volumes)
        pod_spec["terminationGracePeriodSeconds"] = 1
        apply(
            self.kubectl,
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": labels},
                "spec": pod_spec,
            },
        )
        self.kubectl.run("wait", "-n", namespace, "--for=condition=Ready", "--timeout=110s", f"pod/{name}")
        ip = self.kubectl.json("get", "pod", name, "-n", namespace)["status"]["podIP"]
        return KindPod(namespace, name, self.kubectl, ip)

    def add_pod(
        self, namespace: str, name: str, labels: dict[str, str], spec: dict[str, Any] | None = None
    ) -> KindPod:
        idle = ["python", "-c", "import time\nwhile True: time.sleep(3600)"]
        return self._create(namespace, name, labels, spec, idle)

    def add_model_server(self, namespace: str, name: str, labels: dict[str, str]) -> KindPod:
        cmd = ["python", "/apps/apps.py", "model", "--bind=0.0.0.0", f"--port={MODEL_PORT}"]
        pod = self._create(
            namespace, name, labels, {"containers": [{"readinessProbe": _tcp(MODEL_PORT)}]}, cmd
        )
        return pod

    def add_datastore(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str],
        resource: tuple[str, str],
        peers: dict[str, dict[str, str]],
    ) -> tuple[KindPod, str]:
        peers_cm = f"{name}-peers"
        apply(
            self.kubectl,
            namespace,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": peers_cm},
                "data": {"peers.json": json.dumps(peers)},
            },
        )
        apps_cmd = ["python", "/apps/apps.py"]
        store = {
            "name": "store",
            "image": PYTHON_IMAGE,
            "command": [*apps_cmd, "store", "--bind=127.0.0.1", f"--port={STORE_PORT}"],
            "volumeMounts": [{"name": "apps", "mountPath": "/apps", "readOnly": True}],
        }
        opa = {
            "name": "opa",
            "image": _opa_image(),
            "args": [
                "run",
                "--server",
                f"--addr=0.0.0.0:{OPA_PORT}",
                "--log-level=error",
                "--disable-telemetry",
            ],
            "readinessProbe": {"httpGet": {"path": "/health", "port": OPA_PORT}},
        }
        gateway_cmd = [
            *apps_cmd,
            "gateway",
            "--bind=0.0.0.0",
            f"--port={GATEWAY_PORT}",
            f"--upstream=http://127.0.0.1:{STORE_PORT}",
            f"--opa=http://127.0.0.1:{OPA_PORT}",
            "--peers=/peers/peers.json",
            f"--resource-namespace={resource[0]}",
            f"--resource-name={resource[1]}",
        ]
        spec = {"containers": [{"readinessProbe": _tcp(GATEWAY_PORT), "volumeMounts": [_peers_mount()]}]}
        pod = self._create(
            namespace,
            name,
            labels,
            spec,
            gateway_cmd,
            extra_containers=[store, opa],
            extra_volumes=[{"name": "peers", "configMap": {"name": peers_cm}}],
        )
        # The operator runs in the cluster (chart): it publishes to the sidecar by pod IP. The
        # sidecar's readinessProbe on /health held _create until OPA answered.
        return pod, f"http://{pod.ip}:{OPA_PORT}"

    @contextmanager
    def probe_until_blocked(self, client: Any, target: Any, port: int) -> Iterator[ProbeResult]:
        """``apps.py probe`` in the client pod; its wall-clock stamps map onto this host's clock.

        kind nodes share the host's kernel, hence its clock.
        """
        result = ProbeResult(started=time.monotonic())
        proc = subprocess.Popen(
            [
                _kubectl_binary(self.kubectl),
                f"--kubeconfig={self.cluster.kubeconfig}",
                "exec",
                "-n",
                client.namespace,
                client.name,
                "-c",
                "main",
                "--",
                "python",
                "/apps/apps.py",
                "probe",
                f"--host={target.ip}",
                f"--port={port}",
                f"--timeout={PROBE_CONNECT_TIMEOUT}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        live = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                stamp, outcome = line.split()
                result.attempts += 1
                if outcome != "connected":
                    offset = time.time() - time.monotonic()
                    result.first_blocked, result.outcome = float(stamp) - offset, Outcome(outcome)
                    live.set()
                    return
                result.connected += 1
                live.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not live.wait(60) or result.connected == 0:
                raise AssertionError(
                    f"{client.name} -> {target.name}:{port} was not open when the probe began"
                )
            yield result
        finally:
            proc.kill()
            proc.wait()
            reader.join(5)


def _tcp(port: int) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, "periodSeconds": 1}


def _peers_mount() -> dict[str, Any]:
    return {"name": "peers", "mountPath": "/peers", "readOnly": True}


def _kubectl_binary(kubectl: KubectlLike) -> str:
    binary = getattr(kubectl, "binary", None)
    return str(binary) if binary else "kubectl"
