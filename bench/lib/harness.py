"""Start the real pieces (control plane, OPA, operator), build the estate, read process facts."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench.lib import estate
from bench.lib.kubehttp import ApiServer

from aitrust.testing.cluster import LocalControlPlane, OpaServer
from aitrust.testing.processes import ManagedProcess, free_port
from aitrust.testing.testbin import find_binary

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
TOKEN = "bench-signal-token-0123456789abcdef"  # noqa: S105 - a throwaway local cluster's
SECRETS_NS = "aitrust-bench"
Log = Callable[[str], None]


def kubectl(cp: LocalControlPlane, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        [find_binary("kubectl"), f"--kubeconfig={cp.kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a live process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Cluster:
    """One control plane with CRDs, the signal token Secret, an OPA and (at most) one operator."""

    workdir: Path
    log: Log
    cp: LocalControlPlane = field(init=False)
    api: ApiServer = field(init=False)
    opa: OpaServer | None = None
    operator: ManagedProcess | None = None
    signals_port: int = 0
    workloads: int = 0
    per_namespace: int = 100
    operator_src: Path | None = None  # run the operator from this source tree instead (A/B a change)
    namespaces: set[str] = field(default_factory=set)
    token_file: Path = field(init=False)

    async def start(self) -> Cluster:
        started = time.monotonic()
        self.cp = LocalControlPlane(workdir=self.workdir / "cp")
        await asyncio.to_thread(self.cp.start)
        await asyncio.to_thread(
            kubectl, self.cp, "apply", "--server-side", "--field-manager=aitrust-bench", "-f", str(CRDS)
        )
        await asyncio.to_thread(
            kubectl,
            self.cp,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=aitrust",
        )
        assert self.cp.workdir is not None
        self.api = ApiServer(self.cp.server, self.cp.workdir / "pki")
        await self.api.create("/api/v1/namespaces", {"metadata": {"name": SECRETS_NS}})
        await self.api.create(
            f"/api/v1/namespaces/{SECRETS_NS}/secrets",
            {
                "metadata": {"name": "signal-tokens"},
                "data": {"bench": base64.b64encode(TOKEN.encode()).decode()},
            },
        )
        self.token_file = self.workdir / "token"
        self.token_file.write_text(TOKEN)
        self.log(f"control plane {self.cp.version} ready in {time.monotonic() - started:.1f}s")
        return self

    async def stop(self) -> None:
        self.stop_operator()
        if self.opa is not None:
            self.opa.stop()
        await self.api.aclose()
        await asyncio.to_thread(self.cp.stop)

    def start_opa(self) -> OpaServer:
        if self.opa is not None:
            self.opa.stop()
        self.opa = OpaServer(workdir=self.workdir / f"opa-{time.monotonic_ns()}").start()
        return self.opa

    async def grow(self, count: int) -> None:
        """Create workloads (with pods) until the estate holds ``count``."""
        if count <= self.workloads:
            return
        started = time.monotonic()
        wanted = [estate.workload(i, self.per_namespace) for i in range(self.workloads, count)]
        new_ns = sorted({w.namespace for w in wanted} - self.namespaces)
        await asyncio.gather(
            *(self.api.create("/api/v1/namespaces", {"metadata": {"name": ns}}) for ns in new_ns)
        )
        # Pods are admitted only once the ServiceAccount controller made the namespace's default SA.
        for ns in new_ns:
            deadline = time.monotonic() + 60
            while not await self.api.exists(f"/api/v1/namespaces/{ns}/serviceaccounts/default"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no default ServiceAccount in {ns}")
                await asyncio.sleep(0.1)
        items = [obj for ns in new_ns for obj in estate.namespace_objects(ns)]
        await self.api.create_many(items)
        items = [obj for w in wanted for obj in estate.workload_objects(w)]
        await self.api.create_many(items, progress=lambda n: self.log(f"  created {n}/{len(items)} objects"))
        self.namespaces.update(new_ns)
        self.workloads = count
        took = time.monotonic() - started
        self.log(f"estate: {count} AIWorkloads with pods in {len(self.namespaces)} namespaces (+{took:.1f}s)")

    def operator_args(self) -> list[str]:
        assert self.opa is not None
        self.signals_port = self.signals_port or free_port()
        return [
            f"--opa-url={self.opa.url}",
            f"--signals-port={self.signals_port}",
            "--signals-host=127.0.0.1",
            f"--signals-token-secret={SECRETS_NS}/signal-tokens",
            "--signals-rate-limit=0",  # off: the bench measures the operator, not its limiter
        ]

    def spawn_operator(self, env: dict[str, str] | None = None) -> ManagedProcess:
        self.stop_operator()
        proc = ManagedProcess(
            f"operator-{time.monotonic_ns()}",
            [
                sys.executable,
                "-m",
                "aitrust.cli",
                "run",
                f"--kubeconfig={self.cp.kubeconfig}",
                *self.operator_args(),
            ],
            self.workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self._pythonpath(), **(env or {})},
        ).start()
        self.operator = proc
        return proc

    def _pythonpath(self) -> dict[str, str]:
        if self.operator_src is None:
            return {}
        return {"PYTHONPATH": str(self.operator_src), "AITRUST_POLICY_DIR": str(ROOT / "policies")}

    async def wait_synced(self, proc: ManagedProcess, wait_s: float = 300) -> float:
        """Seconds from now until the operator logs that it synced (its signal API is up then)."""
        started = time.monotonic()
        while "aitrust operator synced" not in proc.log_path.read_text(errors="replace"):
            if not proc.alive():
                raise RuntimeError(f"operator exited:\n{proc.log_tail()}")
            if time.monotonic() - started > wait_s:
                raise TimeoutError(f"operator not synced after {wait_s}s:\n{proc.log_tail()}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None

    @property
    def signals_url(self) -> str:
        return f"http://127.0.0.1:{self.signals_port}"


def accepted_signals(metrics_text: str) -> float:
    """``aitrust_signals_total{result="accepted"}`` summed over sources, from a /metrics page."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("aitrust_signals_total{") and 'result="accepted"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def sample_value(metrics_text: str, name: str) -> float:
    """The value of the unlabelled sample ``name`` (e.g. a histogram's ``_sum``), 0 when absent."""
    prefix = name + " "
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@dataclass
class OperatorCounters:
    accepted: float
    commits: float  # journal records written
    commit_seconds: float  # their total write time


def fetch_metrics_text(signals_url: str) -> str:
    response = httpx.get(f"{signals_url}/metrics", timeout=10)
    response.raise_for_status()
    return response.text


def fetch_operator_counters(signals_url: str) -> OperatorCounters:
    """The operator's accepted-signal and journal-commit counters, from /metrics on its signal API."""
    text = fetch_metrics_text(signals_url)
    return OperatorCounters(
        accepted_signals(text),
        sample_value(text, "aitrust_signal_commit_seconds_count"),
        sample_value(text, "aitrust_signal_commit_seconds_sum"),
    )


def opa_decision_body(w: estate.Workload) -> dict[str, Any]:
    return {
        "input": {
            "subject": {"namespace": w.namespace, "workload": w.name},
            "resource": {"kind": "ModelEndpoint", "namespace": w.namespace, "name": "llm"},
            "action": "invoke",
        }
    }


def request_latency(metrics_text: str, verb: str, resource: str) -> tuple[float, float]:
    """(count, seconds) of kube-apiserver's ``apiserver_request_duration_seconds`` for ``verb`` on
    ``resource``, summed over the other labels: its own share of a request's latency."""
    count = total = 0.0
    wanted = (f'verb="{verb}"', f'resource="{resource}"')
    for line in metrics_text.splitlines():
        if not line.startswith("apiserver_request_duration_seconds_"):
            continue
        name, _, value = line.rpartition(" ")
        if not all(w in name for w in wanted):
            continue
        if name.startswith("apiserver_request_duration_seconds_count{"):
            count += float(value)
        elif name.startswith("apiserver_request_duration_seconds_sum{"):
            total += float(value)
    return count, total
