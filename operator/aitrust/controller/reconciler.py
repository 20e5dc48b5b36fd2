"""Reconcile AIWorkloads: read the cache, call the pure core, write status (and, later, enforcement)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from aitrust.api.v1alpha1 import (
    AccessRef,
    AIWorkload,
    AIWorkloadStatus,
    DataSource,
    ModelEndpoint,
    TrustPolicy,
    TrustPolicySpec,
)
from aitrust.controller.queue import WorkQueue
from aitrust.controller.store import Key, Store
from aitrust.core.conditions import build_condition, merge_conditions
from aitrust.core.selectors import selector_matches
from aitrust.kube.client import Kube

log = logging.getLogger("aitrust.reconciler")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class Reconciler:
    def __init__(self, kube: Kube, store: Store, *, workers: int = 8, clock: Clock = _utcnow) -> None:
        self.kube = kube
        self.store = store
        self.queue: WorkQueue[Key] = WorkQueue()
        self.clock = clock
        self.synced = asyncio.Event()
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.initial_sync)
        self.synced.set()
        for body in self.store.all("AIWorkload"):
            self.queue.add(_key(body))
        self._tasks = [asyncio.create_task(self.queue.worker(self.reconcile)) for _ in range(self._workers)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def initial_sync(self) -> None:
        """List everything once so that the first reconcile sees complete references."""
        for kind in ("TrustPolicy", "ModelEndpoint", "DataSource", "AIWorkload"):
            for item in self.kube.list_custom(kind):
                self.store.upsert(kind, item)
        for pod in self.kube.list_pods():
            self.store.upsert("Pod", pod)

    # --- triggers ------------------------------------------------------------------

    def on_workload_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        if deleted:
            self.store.delete("AIWorkload", meta["namespace"], meta["name"])
            return
        if self.store.upsert("AIWorkload", body):
            self.queue.add((meta["namespace"], meta["name"]))

    def on_target_event(self, kind: str, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if deleted:
            self.store.delete(kind, ns, name)
        else:
            self.store.upsert(kind, body)
        for wl in self.store.all("AIWorkload"):
            if any(_ref_key(wl, kind, ref) == (ns, name) for ref in _refs(wl, kind)):
                self.queue.add(_key(wl))

    def on_policy_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if deleted:
            self.store.delete("TrustPolicy", ns, name)
        else:
            self.store.upsert("TrustPolicy", body)
        for wl in self.store.in_namespace("AIWorkload", ns):
            ref = ((wl.get("spec") or {}).get("trustPolicyRef") or {}).get("name", "default")
            if ref == name:
                self.queue.add(_key(wl))

    def on_pod_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        ns = meta["namespace"]
        if deleted:
            self.store.delete("Pod", ns, meta["name"])
        else:
            self.store.upsert("Pod", body)
        labels = meta.get("labels") or {}
        for wl in self.store.in_namespace("AIWorkload", ns):
            try:
                workload = AIWorkload.model_validate(wl)
            except ValidationError:
                continue
            if selector_matches(workload.spec.selector, labels):
                self.queue.add((ns, workload.metadata.name))

    # --- reconcile -----------------------------------------------------------------

    def resolve_policy(self, namespace: str, ref_name: str | None) -> tuple[TrustPolicySpec, str, list[str]]:
        """The effective policy spec, its name, and any problems with it (defaults apply then)."""
        name = ref_name or "default"
        body = self.store.get("TrustPolicy", namespace, name)
        if body is None:
            if ref_name:
                return TrustPolicySpec(), "(built-in)", [f"TrustPolicy {namespace}/{ref_name} not found"]
            return TrustPolicySpec(), "(built-in)", []
        try:
            return TrustPolicy.model_validate(body).spec, name, []
        except ValidationError as exc:
            return TrustPolicySpec(), "(built-in)", [f"TrustPolicy {name}: {describe_validation_error(exc)}"]

    def resolve_targets(
        self, workload: AIWorkload
    ) -> tuple[dict[tuple[str, str, str], ModelEndpoint | DataSource], list[str]]:
        found: dict[tuple[str, str, str], ModelEndpoint | DataSource] = {}
        missing: list[str] = []
        ns = workload.metadata.namespace
        refs: list[tuple[str, AccessRef]] = [
            ("ModelEndpoint", r) for r in workload.spec.access.model_endpoints
        ]
        refs += [("DataSource", r) for r in workload.spec.access.data_sources]
        for kind, ref in refs:
            target_ns = ref.namespace or ns
            body = self.store.get(kind, target_ns, ref.name)
            if body is None:
                missing.append(f"{kind} {target_ns}/{ref.name}")
                continue
            try:
                model = ModelEndpoint if kind == "ModelEndpoint" else DataSource
                found[(kind, target_ns, ref.name)] = model.model_validate(body)
            except ValidationError as exc:
                missing.append(f"{kind} {target_ns}/{ref.name} is invalid: {describe_validation_error(exc)}")
        return found, missing

    def matching_pods(self, workload: AIWorkload) -> list[dict[str, Any]]:
        return [
            pod
            for pod in self.store.in_namespace("Pod", workload.metadata.namespace)
            if selector_matches(workload.spec.selector, pod["metadata"].get("labels") or {})
        ]

    async def reconcile(self, key: Key) -> None:
        try:
            await self._reconcile(key)
        except Exception:
            log.exception("reconcile of %s/%s failed; will retry", *key)
            await asyncio.sleep(1.0)
            self.queue.add(key)

    async def _reconcile(self, key: Key) -> None:
        body = self.store.get("AIWorkload", *key)
        if body is None:
            return
        now = self.clock()
        generation = body["metadata"].get("generation")
        try:
            workload = AIWorkload.model_validate(body)
        except ValidationError as exc:
            # The CRD schema should prevent this; report rather than crash.
            previous = _previous_conditions(body)
            cond = build_condition(
                "Ready", False, "InvalidSpec", describe_validation_error(exc), generation, now, previous
            )
            status = {
                "observedGeneration": generation,
                "conditions": [
                    c.model_dump(by_alias=True, exclude_none=True) for c in merge_conditions(previous, [cond])
                ],
            }
            await self._write_status(key, body, status)
            return
        new_status = self.build_status(workload, now)
        await self._write_status(
            key, body, new_status.model_dump(by_alias=True, exclude_none=True, mode="json")
        )

    def build_status(self, workload: AIWorkload, now: datetime) -> AIWorkloadStatus:
        previous = workload.status.conditions
        generation = workload.metadata.generation
        _, policy_name, policy_errors = self.resolve_policy(
            workload.metadata.namespace,
            workload.spec.trust_policy_ref.name if workload.spec.trust_policy_ref else None,
        )
        _, missing = self.resolve_targets(workload)
        pods = self.matching_pods(workload)
        if missing:
            ready = build_condition(
                "Ready", False, "TargetNotFound", "missing: " + ", ".join(missing), generation, now, previous
            )
        elif policy_errors:
            ready = build_condition(
                "Ready", False, "InvalidPolicy", "; ".join(policy_errors), generation, now, previous
            )
        elif not pods:
            ready = build_condition(
                "Ready", True, "NoMatchingPods", "no pod matches the selector yet", generation, now, previous
            )
        else:
            ready = build_condition(
                "Ready",
                True,
                "Reconciled",
                f"{len(pods)} pod(s) under policy {policy_name}",
                generation,
                now,
                previous,
            )
        status = workload.status.model_copy(
            update={
                "conditions": merge_conditions(previous, [ready]),
                "observed_generation": generation,
                "matched_pods": len(pods),
            }
        )
        return status

    async def _write_status(self, key: Key, body: dict[str, Any], status: dict[str, Any]) -> None:
        current = body.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return  # nothing changed: no write, no churn
        updated = await asyncio.to_thread(self.kube.patch_status, "AIWorkload", key[0], key[1], status)
        self.store.upsert("AIWorkload", updated)


def _key(body: dict[str, Any]) -> Key:
    return (body["metadata"]["namespace"], body["metadata"]["name"])


def _refs(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    access = (body.get("spec") or {}).get("access") or {}
    refs = access.get("modelEndpoints" if kind == "ModelEndpoint" else "dataSources") or []
    return [r for r in refs if isinstance(r, dict)]


def _ref_key(body: dict[str, Any], kind: str, ref: dict[str, Any]) -> tuple[str, str]:
    return (ref.get("namespace") or body["metadata"]["namespace"], ref.get("name", ""))


def _previous_conditions(body: dict[str, Any]) -> list[Any]:
    from aitrust.api.v1alpha1 import Condition

    out = []
    for c in (body.get("status") or {}).get("conditions") or []:
        with contextlib.suppress(ValidationError):
            out.append(Condition.model_validate(c))
    return out
