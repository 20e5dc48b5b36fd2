"""Cluster modes (kind, or any kubeconfig): the operator runs in the cluster, installed by the chart.

Each test's ``start_operator(*flags)`` becomes a ``helm upgrade --install`` of
``charts/aitrust-operator`` with values translated from the same flags the netns mode passes to
``aitrust run``; the signal port is then a ``kubectl port-forward`` to the chart's Service, so the
tests post to the same local URL in every mode.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aitrust.testing.processes import ManagedProcess, wait_for
from aitrust.testing.testbin import find_binary
from e2e.harness.kube import KubectlLike, apply

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "aitrust-operator"
RELEASE = "aitrust-e2e"
RELEASE_NAMESPACE = "aitrust-e2e-system"
TOKENS_SECRET = "aitrust-e2e-signal-tokens"
SIGNALS_SERVICE_PORT = 8443


@dataclass(frozen=True)
class ChartPlan:
    """What one ``start_operator(*flags)`` installs: chart values, and what the host side needs."""

    values: dict[str, Any]
    local_signal_port: int | None = None  # port-forward target of the tests' signal URL
    token_secret: tuple[str, str] | None = None  # (namespace, name) to copy into the release


def build_chart_values(flags: tuple[str, ...], image: str, pull_policy: str, namespace: str) -> ChartPlan:
    """Translate ``aitrust run`` flags into chart values; flags the chart has no value for go to extraArgs.

    The operator watches ``namespace`` only (the test's): on a cluster the user brings, it must
    not reconcile, report on or adopt anything else.
    """
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        raise ValueError(f"image {image!r} needs an explicit tag (repository:tag)")
    values: dict[str, Any] = {
        "fullnameOverride": RELEASE,
        "watchNamespaces": [namespace],
        "image": {"repository": repository, "tag": tag, "pullPolicy": pull_policy},
        "crds": {"enabled": False},  # the suite installs the CRDs before any test
        "trustPolicy": {"create": False},  # each test applies its own TrustPolicy
        "signals": {"enabled": False},
        "opa": {"targets": []},
        "operator": {"extraArgs": []},
    }
    local_port: int | None = None
    token_secret: tuple[str, str] | None = None
    for flag in flags:
        name, _, value = flag.partition("=")
        if name == "--signals-port":
            local_port = int(value)
            values["signals"] = {
                "enabled": True,
                "port": SIGNALS_SERVICE_PORT,
                # Reached through a port-forward from the test process; TLS is tested elsewhere.
                "tls": {"enabled": False},
                "auth": {"existingSecret": TOKENS_SECRET, "key": "tokens", "create": False},
            }
        elif name == "--signals-host":
            continue  # in the cluster the chart binds the pod's addresses
        elif name == "--signals-token-secret":
            namespace, _, secret = value.rpartition("/")
            token_secret = (namespace, secret)
        elif name == "--opa-url":
            values["opa"]["targets"].append(value)
        else:
            values["operator"]["extraArgs"].append(flag)
    if (local_port is None) != (token_secret is None):
        raise ValueError("--signals-port and --signals-token-secret go together in the e2e flags")
    return ChartPlan(values, local_port, token_secret)


def build_token_secret(source: dict[str, Any]) -> dict[str, Any]:
    """The test's Secret (caller name -> token) as the chart mounts it: one token per line."""
    tokens = [base64.b64decode(v).decode() for v in (source.get("data") or {}).values()]
    joined = "\n".join(tokens) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TOKENS_SECRET},
        "data": {"tokens": base64.b64encode(joined.encode()).decode()},
    }


@dataclass
class ChartOperator:
    """The operator as a Helm release; one per test, uninstalled afterwards."""

    kubectl: KubectlLike
    kubeconfig: Path
    image: str
    pull_policy: str
    log_dir: Path
    forwards: list[ManagedProcess] = field(default_factory=list)
    installed: bool = False

    def _helm(self, *args: str) -> None:
        proc = subprocess.run(
            [find_binary("helm"), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")

    def install(self, namespace: str, *flags: str) -> None:
        plan = build_chart_values(flags, self.image, self.pull_policy, namespace)
        self.kubectl.run("create", "namespace", RELEASE_NAMESPACE, check=False)
        if plan.token_secret is not None:
            namespace, name = plan.token_secret
            source = self.kubectl.json("get", "secret", name, "-n", namespace)
            apply(self.kubectl, RELEASE_NAMESPACE, build_token_secret(source))
        values_file = self.log_dir / f"values-{time.monotonic_ns()}.json"
        values_file.write_text(json.dumps(plan.values, indent=2))
        self.installed = True
        self._helm(
            "upgrade",
            "--install",
            RELEASE,
            str(CHART),
            f"--namespace={RELEASE_NAMESPACE}",
            f"--values={values_file}",
            "--wait",
            "--timeout=240s",
        )
        wait_for("operator sync (chart install)", self._synced, 120, [])
        if plan.local_signal_port is not None:
            forward = ManagedProcess(
                "port-forward-signals",
                [
                    find_binary("kubectl"),
                    f"--kubeconfig={self.kubeconfig}",
                    "port-forward",
                    f"--namespace={RELEASE_NAMESPACE}",
                    f"service/{RELEASE}",
                    f"{plan.local_signal_port}:{SIGNALS_SERVICE_PORT}",
                ],
                self.log_dir,
            ).start()
            self.forwards.append(forward)
            wait_for("port-forward to the signal Service", lambda: self._forwarding(forward), 60, [forward])

    def _synced(self) -> bool:
        proc = self.kubectl.run("logs", "-n", RELEASE_NAMESPACE, f"deployment/{RELEASE}", check=False)
        return "aitrust operator synced" in proc.stdout + proc.stderr

    @staticmethod
    def _forwarding(forward: ManagedProcess) -> bool:
        return "Forwarding from" in forward.log_path.read_text()

    def log_tail(self) -> str:
        proc = self.kubectl.run(
            "logs", "-n", RELEASE_NAMESPACE, f"deployment/{RELEASE}", "--tail=80", check=False
        )
        return f"--- operator (chart) log ---\n{proc.stdout}{proc.stderr}"

    def uninstall(self) -> None:
        for forward in self.forwards:
            forward.stop()
        self.forwards.clear()
        if self.installed:
            self._helm("uninstall", RELEASE, f"--namespace={RELEASE_NAMESPACE}", "--wait")
            self.installed = False


def delete_release_namespace(kubectl: KubectlLike) -> None:
    """At the end of the session: the token Secret, the Lease and journal records go with it."""
    kubectl.run("delete", "namespace", RELEASE_NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
