"""Throughput of `aitrust scan` over many manifests (target: 10,000 in under 10 s).

Generates N manifests in a temporary directory, one object per file, varied like a real
repository: model servers, agents, training jobs, notebooks, vector stores and ordinary
services across 50 namespaces, with an AIWorkload, a ModelEndpoint and a Service every so
often, so that classification, posture, scoring, the AIWorkload evaluation and the
NetworkPolicy/OPA rendering all run. Timed: reading and parsing the files, the scan, and
serialising the JSON report (what `aitrust scan DIR -o json` does, minus the terminal).

Run: ``.venv/bin/python bench/bench_scan.py [--manifests 10000] [--profile]``.
Prints JSON: {"scan_manifests": N, "seconds": s, "manifests_per_sec": r, ...}; ``cpu_seconds``
is this process's CPU time, a steadier figure than wall time on a busy machine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from aitrust.cli_tools.scan_cmd import bulk_allocation, scan_paths, write_report  # noqa: E402

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

_CONTAINERS: list[dict[str, Any]] = [
    {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.6.4",
        "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}],
        "ports": [{"containerPort": 8000}],
        "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "8", "memory": "32Gi"}},
        "volumeMounts": [{"name": "cache", "mountPath": "/root/.cache/huggingface"}],
    },
    {
        "name": "agent",
        "image": "registry.acme.io/agents/support-bot:5.1.0",
        "env": [
            {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "openai", "key": "key"}}},
            {"name": "QDRANT_URL", "value": "http://qdrant.vector.svc:6333"},
        ],
        "ports": [{"containerPort": 8080}],
    },
    {"name": "web", "image": "nginx:1.27.3", "ports": [{"containerPort": 80}]},
    {
        "name": "api",
        "image": "python:3.12-slim",
        "command": ["uvicorn", "app.main:app", "--port", "8000"],
        "ports": [{"containerPort": 8000}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
    },
    {
        "name": "trainer",
        "image": "pytorch/pytorch:2.4.1-cuda12.1-cudnn9-runtime",
        "command": ["torchrun", "--nproc_per_node=4", "train.py"],
        "resources": {"limits": {"nvidia.com/gpu": "4"}},
    },
    {"name": "db", "image": "postgres:16.6", "ports": [{"containerPort": 5432}]},
    {
        "name": "notebook",
        "image": "quay.io/jupyter/pytorch-notebook:2024-10-07",
        "ports": [{"containerPort": 8888}],
        "securityContext": {"privileged": True},
    },
    {"name": "qdrant", "image": "qdrant/qdrant:v1.12.5", "ports": [{"containerPort": 6333}]},
    {
        "name": "app",
        "image": "registry.acme.io/orders/orders-service:4.12.0@sha256:" + "ab" * 32,
        "command": ["java", "-jar", "/app/orders.jar"],
        "ports": [{"containerPort": 8080}],
    },
    {"name": "redis", "image": "redis:7.4.1", "args": ["--appendonly", "yes"]},
]
_KINDS = ("Deployment", "StatefulSet", "Job", "Deployment", "CronJob", "DaemonSet", "Pod")


def _workload(i: int) -> dict[str, Any]:
    container = _CONTAINERS[i % len(_CONTAINERS)]
    kind = _KINDS[i % len(_KINDS)]
    ns = f"team-{i % 50}"
    name = f"{container['name']}-{i}"
    labels = {"app": name}
    pod_spec: dict[str, Any] = {"containers": [container]}
    if "volumeMounts" in container:
        pod_spec["volumes"] = [{"name": "cache", "emptyDir": {}}]
    meta = {"name": name, "namespace": ns, "labels": labels}
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
    if kind == "CronJob":
        spec: dict[str, Any] = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": spec}
    api = "batch/v1" if kind == "Job" else "apps/v1"
    spec = {"selector": {"matchLabels": labels}, "template": template}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}


def _extras(i: int, workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every 20th workload gets an AIWorkload and a ModelEndpoint it may call, behind a Service."""
    if i % 20:
        return []
    ns = workload["metadata"]["namespace"]
    name = workload["metadata"]["name"]
    return [
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "kind": "inference",
                "selector": {"matchLabels": {"app": name}},
                "access": {"modelEndpoints": [{"name": f"llm-{i}"}]},
            },
        },
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "ModelEndpoint",
            "metadata": {"name": f"llm-{i}", "namespace": ns},
            "spec": {
                "provider": "in-cluster",
                "service": {"name": f"llm-{i}", "port": 80},
                "ports": [{"port": 8000}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"llm-{i}", "namespace": ns},
            "spec": {"selector": {"app": f"vllm-{i}"}, "ports": [{"port": 80, "targetPort": 8000}]},
        },
    ]


def generate(directory: Path, count: int) -> int:
    """Write ``count`` manifest files (workloads, plus their extras); returns the documents written."""
    documents = 0
    for i in range(count):
        workload = _workload(i)
        docs = [workload, *_extras(i, workload)]
        text = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
        (directory / f"m{i:05d}.yaml").write_text(text)
        documents += len(docs)
    return documents


def scan(directory: Path) -> tuple[int, int]:
    """What `aitrust scan DIR -o json` does, writing into memory instead of a terminal."""
    report, errors = scan_paths([str(directory)], NOW)
    assert not errors, errors[:3]
    out = io.StringIO()
    with bulk_allocation():
        write_report(report, "json", out, no_color=True)
    return len(report.workloads), len(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aitrust-bench-scan-") as tmp:
        directory = Path(tmp)
        documents = generate(directory, args.manifests)
        profiler = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        cpu_start = time.process_time()
        if profiler:
            profiler.enable()
        workloads, size = scan(directory)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    assert workloads == args.manifests
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue(), file=sys.stderr)
    print(
        json.dumps(
            {
                "scan_manifests": args.manifests,
                "documents": documents,
                "seconds": round(seconds, 3),
                "manifests_per_sec": round(args.manifests / seconds, 1),
                # CPU time of this process: what the wall time would be on an idle core.
                "cpu_seconds": round(cpu_seconds, 3),
                "report_bytes": size,
            }
        )
    )


if __name__ == "__main__":
    main()
