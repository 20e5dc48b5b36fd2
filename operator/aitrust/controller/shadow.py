"""Keep the shadow-AI inventory current: metrics always, PolicyReports where their CRD exists."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from aitrust import metrics
from aitrust.controller.specs import WorkloadSpecs
from aitrust.controller.store import Store
from aitrust.core.classify import Classification, classify_workload
from aitrust.core.shadow import ShadowWorkload, build_shadow_inventory, render_policy_report
from aitrust.kube.client import FIELD_MANAGER, Kube

log = logging.getLogger("aitrust.shadow")
REPORT_GROUP, REPORT_VERSION, REPORT_PLURAL = "wgpolicyk8s.io", "v1alpha2", "policyreports"


class ShadowInventory:
    def __init__(
        self, kube: Kube, store: Store, interval: float = 5.0, specs: WorkloadSpecs | None = None
    ) -> None:
        self.kube = kube
        self.store = store
        self.specs = specs or WorkloadSpecs()
        self.interval = interval
        self.current: list[ShadowWorkload] = []
        self._verdicts: dict[tuple[str, str], tuple[str, Classification]] = {}
        self._reported: dict[str, str] = {}
        self._namespaces_counted: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._version = -1

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="shadow AI inventory")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def classify(self, pod: dict[str, Any]) -> Classification:
        """Cached per pod uid: a pod's spec does not change."""
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        uid = meta.get("uid", "")
        cached = self._verdicts.get(key)
        if cached is None or cached[0] != uid:
            cached = (uid, classify_workload(pod))
            self._verdicts[key] = cached
        return cached[1]

    def refresh(self) -> list[ShadowWorkload]:
        pods = list(self.store.all("Pod"))
        live = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
        for key in set(self._verdicts) - live:
            del self._verdicts[key]
        verdicts = {(p["metadata"]["namespace"], p["metadata"]["name"]): self.classify(p) for p in pods}
        workloads = self.specs.parse_all(self.store.all("AIWorkload"))
        self.current = build_shadow_inventory(pods, verdicts, workloads)
        counts: dict[str, int] = {}
        for s in self.current:
            counts[s.namespace] = counts.get(s.namespace, 0) + 1
        for ns in self._namespaces_counted | set(counts):
            metrics.SHADOW_AI.labels(ns).set(counts.get(ns, 0))
        self._namespaces_counted |= set(counts)
        return self.current

    def report(self) -> None:
        by_ns: dict[str, list[ShadowWorkload]] = {}
        for s in self.current:
            by_ns.setdefault(s.namespace, []).append(s)
        for ns in set(by_ns) | set(self._reported):
            doc = render_policy_report(ns, by_ns.get(ns, []))
            fingerprint = json.dumps(doc, sort_keys=True)
            if self._reported.get(ns) == fingerprint:
                continue
            try:
                self._apply_report(ns, doc)
                self._reported[ns] = fingerprint
            except ApiException as exc:
                if exc.status == 404:
                    return  # no PolicyReport CRD: the metric and the API carry the inventory
                raise

    def _apply_report(self, namespace: str, doc: dict[str, Any]) -> None:
        api = self.kube.custom
        try:
            live = api.get_namespaced_custom_object(
                REPORT_GROUP, REPORT_VERSION, namespace, REPORT_PLURAL, doc["metadata"]["name"]
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            api.create_namespaced_custom_object(
                REPORT_GROUP, REPORT_VERSION, namespace, REPORT_PLURAL, doc, field_manager=FIELD_MANAGER
            )
            return
        doc["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]  # type: ignore[index]
        api.replace_namespaced_custom_object(
            REPORT_GROUP,
            REPORT_VERSION,
            namespace,
            REPORT_PLURAL,
            doc["metadata"]["name"],
            doc,
            field_manager=FIELD_MANAGER,
        )

    async def _loop(self) -> None:
        while True:
            try:
                if self.store.version != self._version:
                    self._version = self.store.version
                    await asyncio.to_thread(self.refresh)
                    await asyncio.to_thread(self.report)
            except Exception:
                log.exception("shadow AI inventory failed; retrying")
            await asyncio.sleep(self.interval)
