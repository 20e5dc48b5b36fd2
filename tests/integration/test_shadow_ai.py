"""Undeclared AI workloads are found, counted and reported; declaring them clears the finding."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aitrust.testing.cluster import wait_until
from aitrust.testing.processes import free_port
from tests.conftest import Kubectl, OperatorFactory

# A stand-in for the wg-policy PolicyReport CRD (shape only), so the report path runs for real.
POLICY_REPORT_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "policyreports.wgpolicyk8s.io"},
    "spec": {
        "group": "wgpolicyk8s.io",
        "names": {"kind": "PolicyReport", "plural": "policyreports", "singular": "policyreport"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha2",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}

OLLAMA = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "ollama"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "ollama"}},
        "template": {
            "metadata": {"labels": {"app": "ollama"}},
            "spec": {
                "containers": [
                    {
                        "name": "ollama",
                        "image": "ollama/ollama:0.5.7",
                        "ports": [{"containerPort": 11434}],
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    }
                ]
            },
        },
    },
}
NGINX = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]
            },
        },
    },
}


def _gauge(url: str, namespace: str) -> float | None:
    text = httpx.get(url).text
    match = re.search(rf'aitrust_shadow_ai_workloads{{namespace="{namespace}"}} ([0-9.]+)', text)
    return float(match.group(1)) if match else None


def test_shadow_ai_is_found_reported_and_cleared(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    kubectl.run("apply", "--server-side", "-f", "-", input=json.dumps(POLICY_REPORT_CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/policyreports.wgpolicyk8s.io")
    metrics_port = free_port()
    start_operator(f"--metrics-port={metrics_port}", "--metrics-host=127.0.0.1")
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    for obj in (OLLAMA, NGINX):
        kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))

    assert wait_until(lambda: _gauge(metrics_url, namespace) == 1.0, timeout=45, interval=0.5)

    def report() -> dict[str, Any] | None:
        proc = kubectl.run(
            "get", "policyreport", "aitrust-shadow-ai", "-n", namespace, "-o", "json", check=False
        )
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    doc = wait_until(report, timeout=20)
    assert [r["resources"][0]["name"] for r in doc["results"]] == ["ollama"]  # nginx is not AI
    assert doc["results"][0]["resources"][0]["kind"] == "Deployment"
    # The PolicyReport carries it: no ShadowAIReport besides.
    assert kubectl.json("get", "shadowaireports", "-n", namespace)["items"] == []
    # Without --shadow-adopt, the operator reports but declares nothing itself.
    assert kubectl.json("get", "aiworkloads,trustpolicies", "-n", namespace)["items"] == []

    declared = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "ollama"},
        "spec": {"kind": "inference", "selector": {"matchLabels": {"app": "ollama"}}},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(declared))
    assert wait_until(lambda: _gauge(metrics_url, namespace) == 0.0, timeout=30, interval=0.5)
    wait_until(lambda: (report() or {}).get("summary", {}).get("fail") == 0, timeout=20)


VLLM = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "vllm"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "vllm"}},
        "template": {
            "metadata": {"labels": {"app": "vllm", "team": "research"}},
            "spec": {
                "containers": [
                    {
                        "name": "vllm",
                        "image": "vllm/vllm-openai:v0.6.4",
                        "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
                        "ports": [{"containerPort": 8000}],
                    }
                ]
            },
        },
    },
}


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    wait_until(lambda: kubectl.run("get", "sa", "default", "-n", name, check=False).returncode == 0, 30)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def _apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def without_policy_report_crd(kubectl: Kubectl) -> None:
    """The session's cluster may carry the stand-in PolicyReport CRD from another test."""
    kubectl.run("delete", "crd", "policyreports.wgpolicyk8s.io", "--ignore-not-found", "--wait=true")
    wait_until(
        lambda: "policyreports" not in kubectl.run("api-resources", "--api-group=wgpolicyk8s.io").stdout,
        timeout=30,
    )


def shadow_ai_report(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    """The namespace's ShadowAIReport, or None."""
    proc = kubectl.run("get", "shadowaireport", "shadow-ai", "-n", namespace, "-o", "json", check=False)
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return None
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _metrics(start_operator: OperatorFactory, *extra: str) -> str:
    port = free_port()
    start_operator(f"--metrics-port={port}", "--metrics-host=127.0.0.1", *extra)
    return f"http://127.0.0.1:{port}/metrics"


def _report_writes(kubectl: Kubectl) -> dict[str, float]:
    """kube-apiserver's count of writes to ShadowAIReports (all namespaces), by verb and subresource.

    A patch that changes nothing leaves the resourceVersion alone, so only this shows whether the
    operator sent one."""
    found: dict[str, float] = {}
    for line in kubectl.run("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="shadowaireports"' in line:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            if labels["verb"] in ("POST", "PATCH", "PUT", "DELETE"):
                key = f"{labels['verb']} {labels.get('subresource', '')}".strip()
                found[key] = found.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def _reported(kubectl: Kubectl, namespace: str, count: int) -> dict[str, Any] | None:
    report = shadow_ai_report(kubectl, namespace)
    return report if report is not None and report.get("status", {}).get("count") == count else None


DECLARED_OLLAMA = {
    "apiVersion": "aitrust.dev/v1alpha1",
    "kind": "AIWorkload",
    "metadata": {"name": "ollama"},
    "spec": {"kind": "inference", "selector": {"matchLabels": {"app": "ollama"}}},
}


def test_without_the_policy_report_crd_a_shadow_ai_report_holds_the_findings(
    kubectl: Kubectl, namespace: str, other_namespace: str, start_operator: OperatorFactory
) -> None:
    without_policy_report_crd(kubectl)
    # No TrustPolicy anywhere (a cluster-wide install creates none): the report needs none.
    metrics_url = _metrics(start_operator)
    _apply(kubectl, namespace, OLLAMA, NGINX)
    assert wait_until(lambda: _gauge(metrics_url, namespace) == 1.0, timeout=45, interval=0.5)

    report = wait_until(lambda: _reported(kubectl, namespace, 1), timeout=20)
    assert report["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "aitrust"}
    assert report["spec"] == {}
    [entry] = report["status"]["workloads"]  # nginx is not AI
    assert (entry["kind"], entry["name"], entry["pods"], entry["category"]) == (
        "Deployment",
        "ollama",
        1,
        "inference",
    )
    assert entry["confidence"] >= 0.6 and any("Ollama" in e for e in entry["evidence"])
    [ready] = report["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "ShadowAIFound")
    # No PolicyReport API, so none was written; and no TrustPolicy was created to carry it.
    assert kubectl.run("get", "policyreports", "-n", namespace, check=False).returncode != 0
    assert kubectl.json("get", "trustpolicies", "-n", namespace)["items"] == []
    # `kubectl get sair` shows the count.
    listed = kubectl.run("get", "sair", "-n", namespace).stdout.splitlines()
    assert listed[0].split() == ["NAME", "COUNT", "AGE"] and listed[1].split()[:2] == ["shadow-ai", "1"]

    # Later passes that change nothing here write nothing here: another namespace's finding
    # comes and goes (two passes, the second ending after the first), and this report keeps
    # its resourceVersion.
    version = report["metadata"]["resourceVersion"]
    writes = _report_writes(kubectl)
    _apply(kubectl, other_namespace, OLLAMA)  # one replica: one pod, so one set of findings
    wait_until(lambda: _reported(kubectl, other_namespace, 1), timeout=45, interval=0.5)
    kubectl.run("delete", "deployment", "ollama", "-n", other_namespace)
    # The workload is gone (its pods garbage-collected): its namespace's report is deleted.
    wait_until(lambda: shadow_ai_report(kubectl, other_namespace) is None, timeout=45, interval=0.5)
    assert (shadow_ai_report(kubectl, namespace) or {})["metadata"]["resourceVersion"] == version
    # The only writes meanwhile were the other namespace's: create, status, delete.
    after = _report_writes(kubectl)
    assert {k: after[k] - writes.get(k, 0.0) for k in after if after[k] != writes.get(k, 0.0)} == {
        "POST": 1.0,
        "PATCH status": 1.0,
        "DELETE": 1.0,
    }

    # Declared: no shadow AI left in the namespace, so no report either.
    _apply(kubectl, namespace, DECLARED_OLLAMA)
    wait_until(lambda: shadow_ai_report(kubectl, namespace) is None, timeout=30, interval=0.5)
    assert _gauge(metrics_url, namespace) == 0.0


def test_once_the_policy_report_crd_exists_policy_reports_replace_shadow_ai_reports(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    without_policy_report_crd(kubectl)
    first = start_operator()
    _apply(kubectl, namespace, OLLAMA)
    wait_until(lambda: _reported(kubectl, namespace, 1), timeout=45, interval=0.5)
    first.stop()

    kubectl.run("apply", "--server-side", "-f", "-", input=json.dumps(POLICY_REPORT_CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/policyreports.wgpolicyk8s.io")
    try:
        start_operator()

        def policy_report() -> dict[str, Any] | None:
            proc = kubectl.run(
                "get", "policyreport", "aitrust-shadow-ai", "-n", namespace, "-o", "json", check=False
            )
            return json.loads(proc.stdout) if proc.returncode == 0 else None

        doc = wait_until(policy_report, timeout=45, interval=0.5)
        assert [r["resources"][0]["name"] for r in doc["results"]] == ["ollama"]
        # The PolicyReport carries the finding now: the ShadowAIReport left from before goes.
        wait_until(lambda: shadow_ai_report(kubectl, namespace) is None, timeout=30, interval=0.5)
        assert kubectl.json("get", "shadowaireports", "-n", namespace)["items"] == []
    finally:
        without_policy_report_crd(kubectl)


def test_shadow_adopt_declares_undeclared_ai_in_audit_mode_and_never_overwrites(
    kubectl: Kubectl, namespace: str, other_namespace: str, start_operator: OperatorFactory
) -> None:
    # In the other namespace an AIWorkload already has the name adoption would use, but selects
    # something else: it must stay exactly as its owner wrote it.
    theirs = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "vllm"},
        "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "something-else"}}},
    }
    _apply(kubectl, other_namespace, theirs)
    before = kubectl.json("get", "aiworkload", "vllm", "-n", other_namespace)
    metrics_url = _metrics(start_operator, "--shadow-adopt")
    _apply(kubectl, namespace, VLLM, NGINX)
    _apply(kubectl, other_namespace, VLLM)

    def adopted() -> dict[str, Any] | None:
        proc = kubectl.run("get", "aiworkload", "vllm", "-n", namespace, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    wl = wait_until(adopted, timeout=60, interval=0.5)
    meta = wl["metadata"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "aitrust"
    assert meta["labels"]["aitrust.dev/adopted"] == "true"
    assert meta["annotations"]["aitrust.dev/adopted-from"] == "Deployment/vllm"
    evidence = json.loads(meta["annotations"]["aitrust.dev/shadow-ai-evidence"])
    assert evidence["category"] == "inference" and any("vLLM" in e for e in evidence["evidence"])
    # The pod template's labels, without the ReplicaSet's pod-template-hash.
    assert wl["spec"]["selector"] == {"matchLabels": {"app": "vllm", "team": "research"}}
    assert wl["spec"]["kind"] == "inference"
    assert wl["spec"]["trustPolicyRef"] == {"name": "aitrust-adopted"}
    policy = kubectl.json("get", "trustpolicy", "aitrust-adopted", "-n", namespace)
    assert policy["spec"]["mode"] == "audit"

    # The operator's reconciler scores it in audit mode, matching both replicas' pods ...
    def scored() -> dict[str, Any] | None:
        st: dict[str, Any] = (adopted() or {}).get("status") or {}
        return st if st.get("mode") and st.get("matchedPods") == 2 else None

    assert wait_until(scored, timeout=60, interval=0.5)["mode"] == "audit"
    # ... so it is no longer shadow, and audit mode wrote no NetworkPolicy.
    assert wait_until(lambda: _gauge(metrics_url, namespace) == 0.0, timeout=30, interval=0.5)
    assert kubectl.json("get", "networkpolicies", "-n", namespace)["items"] == []
    names = [i["metadata"]["name"] for i in kubectl.json("get", "aiworkloads", "-n", namespace)["items"]]
    assert names == ["vllm"]  # nginx is not AI: nothing adopted for it

    # The other namespace: the name is taken, so nothing is created or changed; still shadow.
    assert _gauge(metrics_url, other_namespace) == 1.0
    after = kubectl.json("get", "aiworkload", "vllm", "-n", other_namespace)
    assert after["spec"] == before["spec"] and after["metadata"].get("labels") == before["metadata"].get(
        "labels"
    )
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert len(kubectl.json("get", "aiworkloads", "-n", other_namespace)["items"]) == 1
    assert kubectl.json("get", "trustpolicies", "-n", other_namespace)["items"] == []


def test_a_namespaced_operator_counts_shadow_ai_only_in_its_namespaces(
    kubectl: Kubectl, namespace: str, other_namespace: str, start_operator: OperatorFactory
) -> None:
    metrics_url = _metrics(start_operator, f"--namespace={namespace}")
    _apply(kubectl, namespace, OLLAMA)
    _apply(kubectl, other_namespace, OLLAMA, VLLM)
    assert wait_until(lambda: _gauge(metrics_url, namespace) == 1.0, timeout=45, interval=0.5)
    # The other namespace's pods exist (the ReplicaSet controller made them) but are not watched.
    wait_until(lambda: len(kubectl.json("get", "pods", "-n", other_namespace)["items"]) == 3, timeout=30)
    assert _gauge(metrics_url, other_namespace) is None
    assert f'namespace="{other_namespace}"' not in httpx.get(metrics_url).text
