"""Keep the shadow-AI inventory current: metrics always; a PolicyReport where its CRD exists, else
a ShadowAIReport per namespace with shadow AI; with ``--shadow-adopt``, an AIWorkload in audit
mode for each shadow workload."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from aitrust import metrics
from aitrust.api.v1alpha1 import GROUP, VERSION
from aitrust.controller.specs import WorkloadSpecs
from aitrust.controller.store import Store
from aitrust.core.classify import Classification, classify_workload
from aitrust.core.compact import share_field_sets
from aitrust.core.shadow import (
    ADOPTED_POLICY,
    SHADOW_REPORT,
    ShadowWorkload,
    adopted_name,
    build_adopted_policy,
    build_adopted_workload,
    build_shadow_inventory,
    render_policy_report,
    render_shadow_ai_report,
)
from aitrust.kube.client import FIELD_MANAGER, PLURALS, Kube, raw_json

log = logging.getLogger("aitrust.shadow")
REPORT_GROUP, REPORT_VERSION, REPORT_PLURAL = "wgpolicyk8s.io", "v1alpha2", "policyreports"
REPORT_API_RECHECK = 60.0  # seconds between looks for a PolicyReport CRD installed meanwhile
SHADOW_PLURAL = PLURALS["ShadowAIReport"]
SHADOW_RELIST = 60.0  # seconds between listings of the ShadowAIReports (repairs edits, deletions)


class ShadowInventory:
    def __init__(
        self,
        kube: Kube,
        store: Store,
        interval: float = 5.0,
        specs: WorkloadSpecs | None = None,
        adopt: bool = False,
        namespaces: tuple[str, ...] = (),
        repair_interval: float = 300.0,
    ) -> None:
        self.kube = kube
        self.store = store
        self.specs = specs or WorkloadSpecs()
        self.interval = interval
        self.repair_interval = repair_interval
        self.adopt = adopt
        self.namespaces = namespaces  # empty: cluster-wide
        self.current: list[ShadowWorkload] = []
        self._verdicts: dict[tuple[str, str], tuple[str, Classification]] = {}
        self._reported: dict[str, str] = {}
        self._namespaces_counted: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._version = -1
        self._next_pass = 0.0  # monotonic: the next pass whatever the store does
        self._failures = 0
        self._report_api: bool | None = None
        self._report_api_checked = 0.0
        self._not_adopted: set[tuple[str, str]] = set()  # logged once; refused creates not retried
        # The ShadowAIReports that exist, namespace -> stored status; None: list them first.
        self._shadow_reports: dict[str, dict[str, Any]] | None = None
        self._shadow_reports_listed = 0.0
        self._shadow_api_missing = False  # the ShadowAIReport CRD is not installed (warned once)

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
            verdict = classify_workload(pod)
            share_field_sets(verdict)  # one per pod, kept for the pod's life
            cached = (uid, verdict)
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

    # --- reports ---------------------------------------------------------------------

    def report_api_available(self) -> bool:
        """Whether the cluster serves wgpolicyk8s.io/v1alpha2 PolicyReports (looked up once a minute)."""
        now = time.monotonic()
        if self._report_api is not None and now - self._report_api_checked < REPORT_API_RECHECK:
            return self._report_api
        try:
            found = raw_json(
                self.kube.custom.get_api_resources(REPORT_GROUP, REPORT_VERSION, _preload_content=False)
            )
            available = any(r.get("name") == REPORT_PLURAL for r in found.get("resources") or [])
        except ApiException as exc:
            if exc.status != 404:
                raise
            available = False
        if available != self._report_api:
            log.info(
                "shadow AI reported in %s",
                "PolicyReports" if available else "ShadowAIReports (no PolicyReport CRD)",
            )
            if available:
                self._reported.clear()  # a CRD installed (again) holds none of ours yet
        self._report_api, self._report_api_checked = available, now
        return available

    def report(self) -> None:
        """PolicyReports where their CRD is served, ShadowAIReports otherwise. On the switch, the
        PolicyReports are written before the ShadowAIReports they replace are deleted."""
        by_ns: dict[str, list[ShadowWorkload]] = {}
        for s in self.current:
            by_ns.setdefault(s.namespace, []).append(s)
        if self.report_api_available() and self._report_policy_reports(by_ns):
            self._report_shadow_ai_reports({})
        else:
            self._report_shadow_ai_reports(by_ns)

    def _report_policy_reports(self, by_ns: dict[str, list[ShadowWorkload]]) -> bool:
        """Write each namespace's PolicyReport that changed; False when the CRD has gone away."""
        for ns in set(by_ns) | set(self._reported):
            doc = render_policy_report(ns, by_ns.get(ns, []))
            fingerprint = json.dumps(doc, sort_keys=True)
            if self._reported.get(ns) == fingerprint:
                continue
            try:
                self._apply_policy_report(ns, doc)
                self._reported[ns] = fingerprint
            except ApiException as exc:
                if exc.status == 404:
                    self._report_api = None  # the CRD went away: look again next time
                    return False
                raise
        return True

    # --- ShadowAIReports (no PolicyReport CRD) -----------------------------------------

    def _report_shadow_ai_reports(self, by_ns: dict[str, list[ShadowWorkload]]) -> None:
        """One ShadowAIReport per namespace with shadow AI; deleted where there is none (any
        more). Compared with the stored status first: nothing is written when nothing changed."""
        stored = self._stored_shadow_reports()
        if stored is None:
            return  # no ShadowAIReport CRD: the metric and /v1/inventory/shadow carry it
        now = datetime.now(UTC)
        for ns in sorted(set(by_ns) | set(stored)):
            shadows = by_ns.get(ns)
            if not shadows:
                self._delete_shadow_report(ns)
                stored.pop(ns, None)
                continue
            doc = render_shadow_ai_report(ns, shadows, now, stored.get(ns))
            if stored.get(ns) == doc["status"]:
                continue
            if self._apply_shadow_report(doc, exists=ns in stored):
                stored[ns] = doc["status"]

    def _stored_shadow_reports(self) -> dict[str, dict[str, Any]] | None:
        """The operator's ShadowAIReports by namespace, listed at most once a minute (and after a
        failed write); None while the ShadowAIReport CRD is not installed."""
        now = time.monotonic()
        if self._shadow_reports is not None and now - self._shadow_reports_listed < SHADOW_RELIST:
            return self._shadow_reports
        if self._shadow_api_missing and now - self._shadow_reports_listed < SHADOW_RELIST:
            return None
        self._shadow_reports_listed = now
        try:
            items = list(self.kube.list_custom("ShadowAIReport", self.namespaces))
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise
            if not self._shadow_api_missing:
                log.warning(
                    "cannot list %s.%s (%s: %s): ShadowAIReports (the report where no PolicyReport "
                    "CRD exists) are neither written nor cleaned up; install this version's CRDs "
                    "(crds/, or the chart's) and RBAC",
                    SHADOW_PLURAL,
                    GROUP,
                    exc.status,
                    "no such CRD" if exc.status == 404 else "forbidden",
                )
            self._shadow_api_missing, self._shadow_reports = True, None
            return None
        self._shadow_api_missing = False
        self._shadow_reports = {
            item["metadata"]["namespace"]: item.get("status") or {}
            for item in items
            if item["metadata"]["name"] == SHADOW_REPORT
        }
        return self._shadow_reports

    def _apply_shadow_report(self, doc: dict[str, Any], exists: bool) -> bool:
        """Create the report if it is not there (status is not taken on create: the status
        subresource is enabled), then merge-patch its status. False: its namespace is being
        deleted, and the report with it."""
        ns = doc["metadata"]["namespace"]
        body = {k: v for k, v in doc.items() if k != "status"}
        try:
            if not exists and not self._push_new_shadow_report(body):
                return False
            try:
                self._patch_shadow_status(ns, doc["status"])
            except ApiException as exc:
                if exc.status != 404:
                    raise
                # Deleted by someone since the listing: made again.
                if not self._push_new_shadow_report(body):
                    return False
                self._patch_shadow_status(ns, doc["status"])
        except ApiException:
            self._shadow_reports = None  # list again next time rather than trust the cache
            raise
        return True

    def _push_new_shadow_report(self, body: dict[str, Any]) -> bool:
        """True: created, or it exists already (409; its status is patched next). False: the
        namespace is terminating (403 NamespaceTerminating), nothing to report there."""
        try:
            self.kube.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                body["metadata"]["namespace"],
                SHADOW_PLURAL,
                body,
                field_manager=FIELD_MANAGER,
            )
        except ApiException as exc:
            if exc.status == 403 and "NamespaceTerminating" in str(exc.body or ""):
                log.debug("not reporting shadow AI in %s: terminating", body["metadata"]["namespace"])
                return False
            if exc.status != 409:
                raise
        return True

    def _patch_shadow_status(self, namespace: str, status: dict[str, Any]) -> None:
        self.kube.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            SHADOW_PLURAL,
            SHADOW_REPORT,
            {"status": status},
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )

    def _delete_shadow_report(self, namespace: str) -> None:
        try:
            self.kube.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, SHADOW_PLURAL, SHADOW_REPORT
            )
        except ApiException as exc:
            if exc.status != 404:  # gone already
                self._shadow_reports = None
                raise

    def _apply_policy_report(self, namespace: str, doc: dict[str, Any]) -> None:
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

    # --- adoption --------------------------------------------------------------------

    def apply_adoptions(self) -> list[tuple[str, str]]:
        """Create an audit-mode AIWorkload for each shadow workload; the (namespace, name) created.

        Never overwrites or deletes: an existing AIWorkload of that name is left alone (and the
        workload stays shadow), a 409 means someone else was first. The audit TrustPolicy is
        created first, and the AIWorkload only once the store holds that policy, so the
        reconciler never scores an adopted workload under an enforcing policy, even briefly.
        """
        created: list[tuple[str, str]] = []
        self._not_adopted &= {(s.namespace, adopted_name(s)) for s in self.current}
        for shadow in self.current:
            key = (shadow.namespace, adopted_name(shadow))
            if key in self._not_adopted:
                continue
            doc = build_adopted_workload(shadow)
            if doc is None:
                self._skip(key, "no pod label to select it by, or a vector store (declare a DataSource)")
                continue
            if self.store.get("AIWorkload", *key) is not None:
                self._skip(key, "an AIWorkload of that name exists and does not select it")
                continue
            if self.store.get("TrustPolicy", shadow.namespace, ADOPTED_POLICY) is None:
                if self._create("trustpolicies", build_adopted_policy(shadow.namespace)) is False:
                    self._not_adopted.add(key)
                continue  # the AIWorkload follows once the policy is in the store
            if self._create("aiworkloads", doc):
                log.info("adopted %s %s/%s as AIWorkload %s (audit)", shadow.kind, *key, key[1])
                created.append(key)
            else:
                self._not_adopted.add(key)
        return created

    def _skip(self, key: tuple[str, str], why: str) -> None:
        log.info("not adopting shadow AI %s/%s: %s", *key, why)
        self._not_adopted.add(key)

    def _create(self, plural: str, doc: dict[str, Any]) -> bool | None:
        """True: created; None: it exists (never overwritten); False: refused (logged)."""
        meta = doc["metadata"]
        try:
            self.kube.custom.create_namespaced_custom_object(
                GROUP, VERSION, meta["namespace"], plural, doc, field_manager=FIELD_MANAGER
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            if exc.status in (403, 422):
                log.warning("cannot create %s %s/%s: %s", plural, meta["namespace"], meta["name"], exc.reason)
                return False
            raise
        return True

    async def _loop(self) -> None:
        while True:
            await self.run_pass()
            await asyncio.sleep(self.interval)

    async def run_pass(self) -> None:
        """Refresh, report and adopt when the store changed, and every ``repair_interval`` anyway
        (reports deleted or edited by hand come back). A failed pass is retried with backoff
        even if nothing changes, rather than waiting for the next change."""
        now = time.monotonic()
        version = self.store.version
        if now < self._next_pass and (self._failures or version == self._version):
            return
        try:
            await asyncio.to_thread(self.refresh)
            if now >= self._next_pass:
                self._reported.clear()  # rewrite PolicyReports too (no-op updates store nothing)
            await asyncio.to_thread(self.report)
            if self.adopt:
                await asyncio.to_thread(self.apply_adoptions)
        except Exception:
            self._failures += 1
            delay = min(self.repair_interval, self.interval * 2**self._failures)
            log.exception("shadow AI inventory failed; retrying in %.0f s", delay)
            self._next_pass = now + delay
            return
        self._failures = 0
        self._version = version
        self._next_pass = now + self.repair_interval
