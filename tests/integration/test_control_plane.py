"""The local control plane is real: RBAC is on, and the controller manager collects garbage."""

from __future__ import annotations

import json

from aitrust.testing.cluster import LocalControlPlane, wait_until
from aitrust.testing.testbin import K8S_VERSION
from tests.conftest import Kubectl


def test_apiserver_reports_pinned_version(control_plane: LocalControlPlane) -> None:
    assert control_plane.version == K8S_VERSION


def test_rbac_denies_an_unbound_identity(kubectl: Kubectl, namespace: str) -> None:
    proc = kubectl.run(
        "auth",
        "can-i",
        "list",
        "secrets",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:default",
        check=False,
    )
    assert proc.stdout.strip() == "no"
    proc = kubectl.run(
        "get", "secrets", "-n", namespace, f"--as=system:serviceaccount:{namespace}:default", check=False
    )
    assert proc.returncode != 0 and "forbidden" in proc.stderr


def test_garbage_collector_deletes_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "configmap", "owner", "-n", namespace)
    owner = kubectl.json("get", "configmap", "owner", "-n", namespace)
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
            ],
        },
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(dependent))
    kubectl.run("delete", "configmap", "owner", "-n", namespace)
    wait_until(
        lambda: kubectl.run("get", "configmap", "dependent", "-n", namespace, check=False).returncode != 0,
        timeout=30,
    )


def test_namespace_deletion_completes(kubectl: Kubectl) -> None:
    kubectl.run("create", "namespace", "doomed")
    kubectl.run("create", "configmap", "x", "-n", "doomed")
    kubectl.run(
        "apply",
        "-n",
        "doomed",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "aitrust.dev/v1alpha1",
                "kind": "AIWorkload",
                "metadata": {"name": "w"},
                "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "w"}}},
            }
        ),
    )
    kubectl.run("delete", "namespace", "doomed", "--timeout=60s")
    assert kubectl.run("get", "namespace", "doomed", check=False).returncode != 0
