"""Signal -> enforcement trials: POST a quarantining Falco alert, watch the NetworkPolicy and poll OPA."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from bench.lib import estate
from bench.lib.harness import TOKEN, opa_decision_body
from bench.lib.kubehttp import ApiServer

NP_PATH = "/apis/networking.k8s.io/v1/networkpolicies"
MANAGED = "app.kubernetes.io/managed-by=aitrust"
TRIAL_TIMEOUT_S = 5.0  # 20x the target: a trial slower than this counts as this
Key = tuple[str, str]


class PolicyTracker:
    """Whether each aitrust NetworkPolicy allows egress to the ModelEndpoint, from a watch."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.state: dict[Key, bool] = {}
        self.changed_at: dict[Key, float] = {}
        self._waiters: dict[Key, list[tuple[bool, asyncio.Future[float]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listing = await self.api.get(NP_PATH, labelSelector=MANAGED)
        for item in listing["items"]:
            self._update(item)
        self._task = asyncio.create_task(self._run(listing["metadata"]["resourceVersion"]))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, rv: str) -> None:
        while True:
            try:
                async for event in self.api.watch(NP_PATH, rv, labelSelector=MANAGED):
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        listing = await self.api.get(NP_PATH, labelSelector=MANAGED)
                        for item in listing["items"]:
                            self._update(item)
                        rv = listing["metadata"]["resourceVersion"]
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._update(obj)
            except httpx.HTTPError:
                await asyncio.sleep(0.1)

    def _update(self, obj: dict[str, Any]) -> None:
        now = time.perf_counter()
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        value = estate.egress_to_llm(obj)
        if self.state.get(key) != value:
            self.state[key] = value
            self.changed_at[key] = now
        for want, fut in self._waiters.pop(key, []):
            if want == value and not fut.done():
                fut.set_result(self.changed_at[key])
            elif not fut.done():
                self._waiters.setdefault(key, []).append((want, fut))

    async def wait_for(self, key: Key, want: bool, wait_s: float) -> float:
        """The moment the policy was seen in state ``want`` (perhaps before this call)."""
        if self.state.get(key) == want:
            return self.changed_at[key]
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append((want, fut))
        return await asyncio.wait_for(fut, wait_s)


class OpaProbe:
    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=5.0)

    async def allow(self, w: estate.Workload) -> bool:
        r = await self.client.post("/v1/data/aitrust/authz/decision", json=opa_decision_body(w))
        return bool(r.json().get("result", {}).get("allow"))

    async def wait_for(self, w: estate.Workload, want: bool, wait_s: float, interval: float = 0.005) -> float:
        deadline = time.perf_counter() + wait_s
        while True:
            if await self.allow(w) == want:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"OPA decision for {w.namespace}/{w.name} never became allow={want}")
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class TrialResults:
    total_ms: list[float] = field(default_factory=list)
    networkpolicy_ms: list[float] = field(default_factory=list)
    opa_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    recovery_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


async def run_trials(
    api: ApiServer,
    tracker: PolicyTracker,
    opa: OpaProbe,
    signals_url: str,
    pool: list[estate.Workload],
    trials: int,
    log: Callable[[str], None],
    wait_s: float = TRIAL_TIMEOUT_S,
    budget_s: float = 300.0,
) -> TrialResults:
    """Sequential trials over ``pool``; a workload used twice is reset (its signals cleared) in between.

    A trial not enforced within ``wait_s`` counts as ``wait_s``; after ``budget_s`` no new trial starts,
    so a badly backlogged operator cannot stretch `make bench` past its time budget.
    """
    out = TrialResults()
    reuse = len(pool) < trials
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=signals_url, headers=headers, timeout=30.0) as client:
        for i in range(trials):
            if time.perf_counter() - started > budget_s:
                out.stopped_early = True
                log(f"  time budget of {budget_s:.0f}s spent: stopping after {i} of {trials} trials")
                break
            w = pool[i % len(pool)]
            key = (w.namespace, w.policy)
            await _ready(tracker, opa, w, wait_s=60)
            body = estate.falco_event(w, estate.TRIAL_RULE, "Critical")

            async def post(body: dict[str, Any] = body) -> tuple[httpx.Response, float]:
                r = await client.post("/v1/signals/falco", json=body)
                return r, time.perf_counter()

            t0 = time.perf_counter()
            post_task = asyncio.create_task(post())
            try:
                t_opa = await opa.wait_for(w, False, wait_s)
                t_np = await tracker.wait_for(key, False, max(0.1, wait_s - (time.perf_counter() - t0)))
                r, t_post = await post_task
                if r.status_code != 200 or r.json().get("accepted") != 1:
                    raise RuntimeError(f"POST -> {r.status_code} {r.text[:200]}")
            except (TimeoutError, RuntimeError) as exc:
                out.failures.append(f"{w.namespace}/{w.name}: {exc}")
                out.total_ms.append(wait_s * 1000)
                log(f"  trial {i + 1} FAILED: {exc}")
                with contextlib.suppress(Exception):
                    await post_task
            else:
                out.total_ms.append((max(t_opa, t_np) - t0) * 1000)
                out.networkpolicy_ms.append((t_np - t0) * 1000)
                out.opa_ms.append((t_opa - t0) * 1000)
                out.post_ms.append((t_post - t0) * 1000)
            if reuse:
                out.recovery_ms.append(await _reset(api, tracker, opa, w, body["uuid"]) * 1000)
            else:
                await asyncio.sleep(0.02)
            if (i + 1) % 50 == 0:
                recent = sorted(out.total_ms[-50:])
                log(f"  {i + 1}/{trials} trials; last 50: p50 {recent[24]:.0f} ms, max {recent[-1]:.0f} ms")
    out.seconds = time.perf_counter() - started
    return out


async def _ready(tracker: PolicyTracker, opa: OpaProbe, w: estate.Workload, wait_s: float) -> None:
    await tracker.wait_for((w.namespace, w.policy), True, wait_s)
    await opa.wait_for(w, True, wait_s, interval=0.01)


async def _reset(
    api: ApiServer, tracker: PolicyTracker, opa: OpaProbe, w: estate.Workload, signal_id: str
) -> float:
    """Acknowledge the quarantine (clear the signals); seconds until egress and OPA allow again.

    Enforcement comes before the status write, so first wait until status holds the trial's
    signal: clearing it earlier races that write, and the operator rightly re-applies the
    acknowledged signal that is still in its journal.
    """
    path = f"{estate.GROUP_PATH}/namespaces/{w.namespace}/aiworkloads/{w.name}"
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        status = (await api.get(path)).get("status") or {}
        if any(s.get("id") == signal_id for s in status.get("signals") or []):
            break
        await asyncio.sleep(0.02)
    t0 = time.perf_counter()
    await api.merge_patch_status(path, {"signals": None, "quarantine": None})
    await _ready(tracker, opa, w, wait_s=60)
    return time.perf_counter() - t0


def dumps(results: TrialResults) -> str:
    return json.dumps(results.__dict__)
