"""Cold start: time from `aitrust run` to every status, NetworkPolicy and OPA document in place."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from bench.lib import estate
from bench.lib.harness import Cluster, memory_kb
from bench.lib.kubehttp import ApiServer
from bench.lib.latency import MANAGED, NP_PATH

AIW_PATH = f"{estate.GROUP_PATH}/aiworkloads"
OPA_COUNT = "n := sum([count(docs) | docs := data.aitrust_data.workloads[_]])"


@dataclass
class ColdStart:
    workloads: int
    synced_s: float  # process start -> "operator synced" (initial list done, signal API up)
    status_s: float  # -> every AIWorkload has observedGeneration == generation
    networkpolicies_s: float  # -> every workload NetworkPolicy exists, egress as rendered
    opa_s: float  # -> OPA holds a document for every workload
    total_s: float  # the latest of the three (the give-up time when not converged)
    peak_rss_mb: float
    rss_mb: float
    converged: bool
    statuses_done: int
    progress: str  # how far it got


class _Counter:
    """Keys seen in a wanted state via list+watch, and when the count reached ``target``."""

    def __init__(
        self, api: ApiServer, path: str, target: int, done: Callable[[dict[str, Any]], bool], **q: str
    ):
        self.api, self.path, self.target, self.done, self.q = api, path, target, done, q
        self.keys: set[tuple[str, str]] = set()
        self.finished_at: float | None = None
        self.rv = ""

    async def prime(self) -> None:
        listing = await self.api.get(self.path, **self.q)
        for item in listing["items"]:
            self._see(item)
        self.rv = listing["metadata"]["resourceVersion"]

    def _see(self, obj: dict[str, Any]) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if self.done(obj):
            self.keys.add(key)
        else:
            self.keys.discard(key)
        if self.finished_at is None and len(self.keys) >= self.target:
            self.finished_at = time.perf_counter()

    async def run(self) -> None:
        while self.finished_at is None:
            with contextlib.suppress(httpx.HTTPError):
                async for event in self.api.watch(self.path, self.rv, **self.q):
                    if event["type"] == "ERROR":
                        await self.prime()
                        break
                    self.rv = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._see(event["object"])
                    if self.finished_at is not None:
                        return


def _status_current(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation") and bool(status.get("tier"))


def _workload_policy(obj: dict[str, Any]) -> bool:
    return "aitrust.dev/workload" in (obj["metadata"].get("labels") or {})


async def measure(
    cluster: Cluster,
    log: Callable[[str], None],
    wait_s: float = 600,
    on_spawn: Callable[[int], None] = lambda _pid: None,
) -> ColdStart:
    """Start the operator against the existing estate (nothing computed yet) and time convergence.

    Gives up after ``wait_s``: the result then says ``converged=False`` and what was done by then.
    """
    n = cluster.workloads
    statuses = _Counter(cluster.api, AIW_PATH, n, _status_current)
    policies = _Counter(cluster.api, NP_PATH, n, _workload_policy, labelSelector=MANAGED)
    await statuses.prime()
    await policies.prime()
    assert not statuses.keys and not policies.keys, "cold start needs an estate the operator never saw"
    opa = cluster.start_opa()
    watchers = [asyncio.create_task(statuses.run()), asyncio.create_task(policies.run())]
    t0 = time.perf_counter()
    proc = cluster.spawn_operator()
    on_spawn(proc.pid)
    synced_s = await cluster.wait_synced(proc, wait_s)
    log(f"  operator synced after {synced_s:.1f}s")
    opa_done: float | None = None
    peak = 0
    async with httpx.AsyncClient(base_url=opa.url, timeout=10.0) as client:
        last_report = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now - t0 > wait_s:
                log(f"  gave up after {wait_s:.0f}s")
                break
            if not proc.alive():
                raise RuntimeError(f"operator exited:\n{proc.log_tail()}")
            peak = max(peak, memory_kb(proc.pid)["VmHWM"])
            if opa_done is None:
                # Count inside OPA: fetching every document each poll cost OPA most of a core at 5,000.
                r = await client.post("/v1/query", json={"query": OPA_COUNT})
                rows = r.json().get("result") or []
                if rows and rows[0].get("n", 0) >= n:
                    opa_done = time.perf_counter()
            if opa_done and statuses.finished_at and policies.finished_at:
                break
            if now - last_report > 10:
                last_report = now
                log(
                    f"  {now - t0:.0f}s: {len(statuses.keys)}/{n} statuses, {len(policies.keys)}/{n} policies"
                )
            await asyncio.sleep(0.25)
    for task in watchers:
        task.cancel()
    mem = memory_kb(proc.pid)
    gave_up = time.perf_counter()
    ends = [statuses.finished_at or gave_up, policies.finished_at or gave_up, opa_done or gave_up]
    return ColdStart(
        workloads=n,
        synced_s=synced_s,
        status_s=ends[0] - t0,
        networkpolicies_s=ends[1] - t0,
        opa_s=ends[2] - t0,
        total_s=max(ends) - t0,
        peak_rss_mb=max(peak, mem["VmHWM"]) / 1024,
        rss_mb=mem["VmRSS"] / 1024,
        converged=None not in (statuses.finished_at, policies.finished_at, opa_done),
        statuses_done=len(statuses.keys),
        progress=f"{len(statuses.keys)}/{n} statuses, {len(policies.keys)}/{n} policies",
    )
