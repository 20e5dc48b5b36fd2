"""Reconcile AIWorkloads: read the cache, call the pure core, then enforce and write status.

Order matters for zero trust: NetworkPolicies and OPA are written first (in parallel), then
status; a failure to enforce is reported in the ``Enforced`` condition and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from aitrust import metrics
from aitrust.api.v1alpha1 import (
    AccessRef,
    AIWorkload,
    Condition,
    DataSource,
    Mode,
    ModelEndpoint,
    TrustPolicy,
    TrustPolicySpec,
)
from aitrust.controller.gcpolicy import GcPolicy
from aitrust.controller.journal import PROVISIONAL, Inbox, parse_journal_record
from aitrust.controller.queue import Debouncer, WorkQueue
from aitrust.controller.specs import WorkloadSpecs
from aitrust.controller.store import Key, Store
from aitrust.core.compact import share_field_sets
from aitrust.core.conditions import (
    build_condition,
    build_enforced_condition,
    build_kstatus_conditions,
    build_ready_after_enforcement,
    merge_conditions,
)
from aitrust.core.effective import EffectiveTrust, InClusterDestination, resolve_destination
from aitrust.core.evaluate import Evaluation, Inputs, build_evaluation
from aitrust.core.ingest import Ingestion, build_ingestion_steps, is_listed
from aitrust.core.objstatus import build_object_status, describe_validation_error, status_differs
from aitrust.core.posture import validate_posture_settings
from aitrust.core.rules import validate_policy_rules
from aitrust.core.selectors import selector_matches
from aitrust.core.shadow import is_adopted
from aitrust.core.signal import Signal
from aitrust.kube.client import Kube
from aitrust.kube.events import push_event
from aitrust.kube.journal import delete_journal_record, list_journal_records
from aitrust.kube.networkpolicies import (
    apply_networkpolicy,
    delete_networkpolicy,
    list_managed_networkpolicies,
)
from aitrust.kube.opa import OpaTarget
from aitrust.render.drift import desired_fingerprint, is_ours, policy_fingerprint
from aitrust.render.events import build_plan_note, render_tier_event, render_would_enforce_event
from aitrust.render.networkpolicy import (
    endpoint_policy_labels,
    endpoint_policy_name,
    owner_reference,
    render_endpoint_ingress_policy,
    render_workload_policy,
    workload_policy_labels,
    workload_policy_name,
)
from aitrust.render.opa import opa_subjects_path, render_opa_data, render_opa_subjects, render_opa_workload

log = logging.getLogger("aitrust.reconciler")

Clock = Callable[[], datetime]
ENDPOINT_COALESCE_SECONDS = 0.5
SUBJECTS_COALESCE_SECONDS = 0.05
ABSENT = "absent"  # a policy verified deleted (audit mode, or nobody enforcing uses the endpoint)
TargetKey = tuple[str, str, str]


RESYNC_TICK_S = 1.0
FIRST_OPA_SYNC_WAIT_S = 2.0


@dataclass(frozen=True)
class Enforcement:
    condition: Condition  # Enforced
    acknowledged: float  # time.monotonic() once both paths answered
    # Enforce mode, both paths acknowledged, and there was something to write (NetworkPolicy
    # created or updated, or OPA targets to hold the new document).
    applied: bool


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        store: Store,
        *,
        workers: int = 8,
        startup_workers: int = 32,
        clock: Clock = _utcnow,
        opa_urls: tuple[str, ...] = (),
        opa_policies: dict[str, str] | None = None,
        opa_token_file: str | None = None,
        resync_seconds: float = 30.0,
        default_mode: Mode = Mode.ENFORCE,
        namespaces: tuple[str, ...] = (),
        journal_namespace: str | None = None,
    ) -> None:
        self.kube = kube
        self.store = store
        self.queue: WorkQueue[Key] = WorkQueue()
        self.endpoint_queue: WorkQueue[TargetKey] = WorkQueue()
        # ModelEndpoints, DataSources and TrustPolicies whose own status may need a write.
        self.object_queue: WorkQueue[TargetKey] = WorkQueue()
        self.clock = clock
        self.synced = asyncio.Event()
        self.effective: dict[Key, EffectiveTrust] = {}
        self.specs = WorkloadSpecs()
        # Workloads whose free signals wait for a scheduled fold (signal ingestion), and those
        # whose fold is due: other reconciles (resyncs) leave held signals waiting.
        self.holding: set[Key] = set()
        self.fold_due: set[Key] = set()
        # resourceVersion of each policy as our last write stored it (namespace, policy name).
        self._written_versions: dict[tuple[str, str], str] = {}
        self.resync_seconds = resync_seconds
        self._sleep = asyncio.sleep
        self.default_mode = default_mode
        self.opa_policies = opa_policies or {}
        self.namespaces = namespaces
        self.journal_namespace = journal_namespace
        self.inbox = Inbox()
        # What each workload's NetworkPolicy was last written or verified as; the watch on our
        # policies drops an entry when the live object stops matching it (manual edit, deletion).
        self.applied_policies: dict[Key, str] = {}
        self.applied_endpoint_policies: dict[TargetKey, str] = {}
        # Why each target's ingress policy could not be written ("" once it could), for its status.
        self.endpoint_conflicts: dict[TargetKey, str] = {}
        # Which workloads hold a grant to each target: endpoint policies render without a scan.
        self.granted: dict[TargetKey, set[Key]] = {}
        self._namespaces: dict[str, set[Key]] = {}
        # Parsed TrustPolicies by namespace and name, keyed on resourceVersion.
        self._policies: dict[str, dict[str, tuple[Any, tuple[TrustPolicySpec, str, list[str]]]]] = {}
        # Our policies as listed at start (kept current by the watch) until each is first
        # reconciled: a cold start then needs no read per workload. None: known absent.
        self._listed_policies: dict[Key, dict[str, Any] | None] | None = None
        self._workers = workers
        self._startup_workers = startup_workers
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()  # record deletions, events
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()
        self._population_due = True
        # Workloads whose last push a target did not acknowledge (url -> keys): their Enforced
        # condition says so, and they are reconciled again once that target is fully synced.
        self._opa_unacked: dict[str, set[Key]] = {}
        # Tier changes not yet enforced on both paths: when their trigger reached the queue.
        self._latency_started: dict[Key, float] = {}
        self._endpoints_due: Debouncer[TargetKey] = Debouncer(
            ENDPOINT_COALESCE_SECONDS, self.endpoint_queue.add
        )
        self._subjects_due: Debouncer[str] = Debouncer(
            SUBJECTS_COALESCE_SECONDS, lambda ns: self._in_background(self._push_subjects(ns))
        )
        self.opa_targets = [
            OpaTarget(
                url,
                opa_policies or {},
                self.build_full_opa_data,
                on_error=lambda u: metrics.OPA_SYNC_ERRORS.labels(u).inc(),
                on_synced=self._opa_synced,
                token_file=opa_token_file,
            )
            for url in opa_urls
        ]

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.initial_sync)
        self.delete_records(await asyncio.to_thread(self.replay_journal))
        await self._warm_up()
        self.synced.set()
        for key in self.inbox.workloads():
            self.queue.add(key, urgent=True)
        for body in self.store.all("AIWorkload"):
            self.queue.add(_key(body))
        for kind in OBJECT_KINDS:
            for body in self.store.all(kind):
                self.object_queue.add((kind, *_key(body)))
        for target in self.opa_targets:
            target.start()
        await self._first_opa_sync()
        self._tasks = [asyncio.create_task(self.queue.worker(self.reconcile)) for _ in range(self._workers)]
        # Many writers for the first pass only: afterwards, concurrent routine writes slow the API
        # server's answers to the urgent ones (enforcement p99 at 1,000 workloads: 1,058 ms with 32
        # permanent workers, 636 ms with 8).
        self._tasks += [
            asyncio.create_task(self.queue.burst_worker(self.reconcile))
            for _ in range(max(0, self._startup_workers - self._workers))
        ]
        self._tasks += [asyncio.create_task(self.queue.urgent_worker(self.reconcile)) for _ in range(2)]
        self._tasks += [
            asyncio.create_task(self.endpoint_queue.worker(self.reconcile_endpoint)) for _ in range(2)
        ]
        self._tasks.append(asyncio.create_task(self.object_queue.worker(self.reconcile_object)))
        self._tasks.append(asyncio.create_task(self._periodic_resync()))
        self._tasks.append(asyncio.create_task(GcPolicy().run(), name="gc policy"))

    async def _first_opa_sync(self) -> None:
        """Give the targets a moment to take the policy before the first reconciles: a workload
        pushed before that would report OPASyncFailed, and cost a second status write once the
        sync lands. An OPA that is down does not hold the NetworkPolicy path up for longer."""
        pending = [asyncio.ensure_future(t.synced.wait()) for t in self.opa_targets]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=FIRST_OPA_SYNC_WAIT_S)
        for waiter in late:
            waiter.cancel()

    async def _warm_up(self) -> None:
        """Open a connection for ``Kube.aio`` now: the first signal must not pay for the TLS handshake."""
        try:
            await self.kube.aio.request("GET", "/version")
        except Exception as exc:  # a cold connection later is only slower
            log.warning("could not reach the API server ahead of time: %s", exc)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for target in self.opa_targets:
            await target.stop()
        await self.kube.aio.close()

    def initial_sync(self) -> None:
        """List everything once so that the first reconcile sees complete references."""
        for kind in ("TrustPolicy", "ModelEndpoint", "DataSource", "AIWorkload"):
            for item in self.kube.list_custom(kind, self.namespaces):
                self.store.upsert(kind, item)
        for kind in ("Pod", "Service", "ServiceAccount"):
            for item in self.kube.list_core(kind, self.namespaces):
                self.store.upsert(kind, item)
        listed: dict[Key, dict[str, Any] | None] = {
            (p["metadata"]["namespace"], p["metadata"]["name"]): p
            for p in list_managed_networkpolicies(self.kube, self.namespaces)
        }
        self._listed_policies = listed

    def replay_journal(self) -> list[str]:
        """Signals a killed predecessor acknowledged but had not yet put into status; returns the
        records that hold nothing left to apply (to delete)."""
        if self.journal_namespace is None:
            return []
        records = list_journal_records(self.kube, self.journal_namespace)
        for record in records:
            entries = [
                (key, signal)
                for key, signal in parse_journal_record(record)
                if self.store.get("AIWorkload", *key) is not None  # deleted workloads need nothing
            ]
            self.inbox.add(record["metadata"]["name"], entries)
        names = [r["metadata"]["name"] for r in records]
        empty = self.inbox.empty_records(names)
        if records:
            log.info("journal: %d signal(s) from %d record(s) to apply", len(self.inbox), len(records))
        return empty

    def _settle(self, key: Key, signal_ids: list[str]) -> None:
        done = [r for r in self.inbox.settle(key, signal_ids) if not r.startswith(PROVISIONAL)]
        metrics.SIGNAL_BACKLOG.set(len(self.inbox))
        self.delete_records(done)

    def delete_records(self, done: list[str]) -> None:
        if done and self.journal_namespace is not None:
            self._in_background(self._delete_records(done))

    async def _delete_records(self, names: list[str]) -> None:
        assert self.journal_namespace is not None
        for name in names:
            try:
                await delete_journal_record(self.kube, self.journal_namespace, name)
            except Exception as exc:  # left over: replayed (and de-duplicated) on the next start
                log.warning("journal record %s not deleted: %s", name, exc)

    async def _periodic_resync(self) -> None:
        """Recompute every workload once per ``resync_seconds``: signal penalties decay with time.

        The workloads are queued a slice at a time over the period, not all at once: a burst of
        thousands of reconciles would hold up the urgent ones for seconds every period.
        """
        while True:
            keys = [_key(body) for body in self.store.all("AIWorkload")]
            slices = max(1, min(len(keys), round(self.resync_seconds / RESYNC_TICK_S)))
            for i in range(slices):
                await self._sleep(self.resync_seconds / slices)
                for key in keys[i::slices]:
                    if self.store.get("AIWorkload", *key) is not None:
                        self.queue.add(key)
            # A foreign policy squatting on an ingress policy's name is not watched: look again.
            for target, conflict in list(self.endpoint_conflicts.items()):
                if conflict:
                    self.endpoint_queue.add(target)
            log.debug("resync: %d workload(s) queued over %.1fs", len(keys), self.resync_seconds)
            await self._warm_up()  # an idle operator still keeps a connection for the next signal

    # --- triggers ------------------------------------------------------------------

    def on_workload_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if deleted:
            self.store.delete("AIWorkload", *key)
            self.specs.forget(*key)
            self.queue.add(key)  # runs the clean-up path
            return
        if self.store.upsert("AIWorkload", body):
            self.queue.add(key)

    def on_target_event(self, kind: str, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if deleted:
            self.store.delete(kind, ns, name)
        elif not self._upsert_spec(kind, body):
            return
        for wl in self.store.all("AIWorkload"):
            if any(_ref_key(wl, ref) == (ns, name) for ref in _refs(wl, kind)):
                self.queue.add(_key(wl))
        self.endpoint_queue.add((kind, ns, name))

    def on_policy_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if deleted:
            self.store.delete("TrustPolicy", ns, name)
        elif not self._upsert_spec("TrustPolicy", body):
            return
        for wl in self.store.in_namespace("AIWorkload", ns):
            ref = ((wl.get("spec") or {}).get("trustPolicyRef") or {}).get("name", "default")
            if ref == name:
                self.queue.add(_key(wl))

    def _upsert_spec(self, kind: str, body: dict[str, Any]) -> bool:
        """Store a target or policy and queue its own status; True when its spec or identity
        changed. A status-only change, such as the echo of our own status write, must not
        re-reconcile every workload that refers to it."""
        meta = body["metadata"]
        old = self.store.get(kind, meta["namespace"], meta["name"])
        if not self.store.upsert(kind, body):
            return False
        self.object_queue.add((kind, meta["namespace"], meta["name"]))
        if old is None:
            return True
        old_uid = (old.get("metadata") or {}).get("uid")
        return old.get("spec") != body.get("spec") or old_uid != meta.get("uid")

    def on_pod_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        ns = meta["namespace"]
        if deleted:
            self.store.delete("Pod", ns, meta["name"])
        elif not self.store.upsert("Pod", body):
            return
        self._requeue_selecting(ns, meta.get("labels") or {})

    def on_service_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        if deleted:
            self.store.delete("Service", meta["namespace"], meta["name"])
        elif not self.store.upsert("Service", body):
            return
        for wl in self.store.in_namespace("AIWorkload", meta["namespace"]):
            self.queue.add(_key(wl))
        for kind in ("ModelEndpoint", "DataSource"):
            for target in self.store.in_namespace(kind, meta["namespace"]):
                if ((target.get("spec") or {}).get("service") or {}).get("name") == meta["name"]:
                    self.on_target_event(kind, target, False)

    def on_serviceaccount_event(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        if deleted:
            self.store.delete("ServiceAccount", meta["namespace"], meta["name"])
        else:
            self.store.upsert("ServiceAccount", body)

    def on_networkpolicy_event(self, body: dict[str, Any], deleted: bool) -> None:
        """A generated policy changed or vanished: re-render it (reverting manual edits)."""
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        listed = self._listed_policies
        if listed is not None and (meta["namespace"], meta["name"]) in listed:
            listed[(meta["namespace"], meta["name"])] = None if deleted else body
        if not deleted and meta.get("resourceVersion") == self._written_versions.get(
            (meta["namespace"], meta["name"])
        ):
            return  # the echo of our own last write: no need to compare the spec
        if "aitrust.dev/workload" in labels:
            key = (meta["namespace"], labels["aitrust.dev/workload"])
            if not deleted and is_ours(body) and self.applied_policies.get(key) == policy_fingerprint(body):
                return  # the echo of our own write
            self.applied_policies.pop(key, None)
            self.queue.add(key)
        elif "aitrust.dev/endpoint" in labels:
            kind = labels.get("aitrust.dev/endpoint-kind", "ModelEndpoint")
            target = (kind, meta["namespace"], labels["aitrust.dev/endpoint"])
            fingerprint = self.applied_endpoint_policies.get(target)
            if not deleted and is_ours(body) and fingerprint == policy_fingerprint(body):
                return  # the echo of our own write
            self.applied_endpoint_policies.pop(target, None)
            self.endpoint_queue.add(target)

    def _requeue_selecting(self, namespace: str, labels: dict[str, str]) -> None:
        for wl in self.store.in_namespace("AIWorkload", namespace):
            workload = self.specs.parse(wl)
            if workload is not None and selector_matches(workload.spec.selector, labels):
                self.queue.add((namespace, workload.metadata.name))

    # --- inputs --------------------------------------------------------------------

    def resolve_policy(self, namespace: str, ref_name: str | None) -> tuple[TrustPolicySpec, str, list[str]]:
        """The effective policy spec, its name, and any problems with it (defaults apply then)."""
        body = self.store.get("TrustPolicy", namespace, ref_name or "default")
        version = (ref_name, body["metadata"].get("resourceVersion") if body else None)
        cached = self._policies.get(namespace, {}).get(ref_name or "default")
        if cached is not None and cached[0] == version:
            return cached[1]
        resolved = self._resolve_policy(namespace, ref_name, body)
        self._policies.setdefault(namespace, {})[ref_name or "default"] = (version, resolved)
        return resolved

    def policy_for(self, key: Key) -> TrustPolicySpec | None:
        body = self.store.get("AIWorkload", *key)
        if body is None:
            return None
        ref = (body.get("spec") or {}).get("trustPolicyRef") or {}
        return self.resolve_policy(key[0], ref.get("name"))[0]

    def _resolve_policy(
        self, namespace: str, ref_name: str | None, body: dict[str, Any] | None
    ) -> tuple[TrustPolicySpec, str, list[str]]:
        name = ref_name or "default"
        builtin = TrustPolicySpec(mode=self.default_mode)
        if body is None:
            if ref_name:
                return builtin, "(built-in)", [f"TrustPolicy {namespace}/{ref_name} not found"]
            return builtin, "(built-in)", []
        try:
            spec = TrustPolicy.model_validate(body).spec
        except ValidationError as exc:
            return builtin, "(built-in)", [f"TrustPolicy {name}: {describe_validation_error(exc)}"]
        problems = validate_policy_rules(spec) + validate_posture_settings(spec)
        if problems:
            # A policy we cannot fully apply still applies its mode and thresholds; bad rules are skipped.
            return spec, name, [f"TrustPolicy {name}: {p}" for p in problems]
        return spec, name, []

    def resolve_targets(
        self, workload: AIWorkload
    ) -> tuple[dict[TargetKey, ModelEndpoint | DataSource], list[str]]:
        found: dict[TargetKey, ModelEndpoint | DataSource] = {}
        missing: list[str] = []
        ns = workload.metadata.namespace
        refs: list[tuple[str, AccessRef]] = [
            ("ModelEndpoint", r) for r in workload.spec.access.model_endpoints
        ]
        refs += [("DataSource", r) for r in workload.spec.access.data_sources]
        for kind, ref in refs:
            target_ns = ref.namespace or ns
            target = self.target(kind, target_ns, ref.name)
            if isinstance(target, str):
                missing.append(target)
            else:
                found[(kind, target_ns, ref.name)] = target
        return found, missing

    def target(self, kind: str, namespace: str, name: str) -> ModelEndpoint | DataSource | str:
        body = self.store.get(kind, namespace, name)
        if body is None:
            return f"{kind} {namespace}/{name}"
        try:
            model = ModelEndpoint if kind == "ModelEndpoint" else DataSource
            return model.model_validate(body)
        except ValidationError as exc:
            return f"{kind} {namespace}/{name} is invalid: {describe_validation_error(exc)}"

    def service_selectors(self, namespaces: set[str]) -> dict[tuple[str, str], dict[str, str]]:
        out = {}
        for ns in namespaces:
            for svc in self.store.in_namespace("Service", ns):
                selector = (svc.get("spec") or {}).get("selector")
                if selector:
                    out[(ns, svc["metadata"]["name"])] = dict(selector)
        return out

    def matching_pods(self, workload: AIWorkload) -> list[dict[str, Any]]:
        return [
            pod
            for pod in self.store.pods_labelled(
                workload.metadata.namespace, workload.spec.selector.match_labels or {}
            )
            if selector_matches(workload.spec.selector, pod["metadata"].get("labels") or {})
        ]

    def gather_inputs(self, workload: AIWorkload) -> Inputs:
        ns = workload.metadata.namespace
        policy, policy_name, policy_errors = self.resolve_policy(
            ns, workload.spec.trust_policy_ref.name if workload.spec.trust_policy_ref else None
        )
        stored = self.store.get("AIWorkload", ns, workload.metadata.name) or {}
        # From the stored body: the parsed spec is cached per generation, and labels are not spec.
        labels = (stored.get("metadata") or {}).get("labels") or {}
        if is_adopted(labels) and policy.mode is not Mode.AUDIT:
            # Adopted shadow AI is observed, never enforced: not even when its audit policy was
            # deleted, edited, or is someone else's of the same name.
            policy = policy.model_copy(update={"mode": Mode.AUDIT})
        targets, missing = self.resolve_targets(workload)
        namespaces = {ns} | {k[1] for k in targets}
        return Inputs(
            workload=workload,
            policy=policy,
            policy_name=policy_name,
            policy_errors=tuple(policy_errors),
            targets=targets,
            missing_targets=tuple(missing),
            pods=tuple(self.matching_pods(workload)),
            services=tuple(self.store.in_namespace("Service", ns)),
            service_selectors=self.service_selectors(namespaces),
        )

    def evaluate(self, key: Key, now: datetime | None = None) -> Evaluation | None:
        body = self.store.get("AIWorkload", *key)
        if body is None:
            return None
        workload = AIWorkload.model_validate(body)
        return build_evaluation(self.gather_inputs(workload), now or self.clock())

    # --- reconcile -----------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        if await _guarded("AIWorkload", key, self._reconcile(key)):
            self.queue.add(key)

    async def _reconcile(self, key: Key) -> None:
        body = self.store.get("AIWorkload", *key)
        if body is None:
            await self._forget(key)
            return
        now = self.clock()
        try:
            workload = AIWorkload.model_validate(body)
        except ValidationError as exc:
            await self._report_invalid(key, body, exc, now)
            return
        # The latency clock starts when the trigger reached the reconciler (the signal accepted,
        # the watch event seen: the queue add this pass serves), not when this pass began.
        started = self.queue.queued_at(key) or time.monotonic()
        inputs = self.gather_inputs(workload)
        waiting = self.inbox.pending(key)
        if waiting and key in self.holding:
            if key in self.fold_due or self.inbox.has_provisional(key):
                self.holding.discard(key)
                self.fold_due.discard(key)
            else:
                waiting = []  # noise only, and its fold is scheduled: no status write for it now
        added: list[dict[str, Any]] = []
        if waiting:
            ingestion = await self._fold(workload, waiting, inputs, now)
            added = [
                r.model_dump(by_alias=True, exclude_none=True, mode="json")
                for r in ingestion.added
                if is_listed(r)
            ]
            status_in = workload.status.model_copy(
                update={"signals": ingestion.signals, "baseline": ingestion.baseline}
            )
            inputs = inputs.model_copy(update={"workload": workload.model_copy(update={"status": status_in})})
        evaluation = build_evaluation(inputs, now)
        before = workload.status.tier
        # The tier last enforced: ours, or after a restart the one status reports (None: never
        # scored, so no change to time). A retry after a failed status write is no new change.
        enforced_tier = self.effective[key].tier if key in self.effective else before
        if enforced_tier is not None and enforced_tier is not evaluation.result.tier:
            # A trust change: its clock runs from the trigger of the pass that computed it until
            # both paths acknowledge it, in this pass or, after a failure, a later one. The
            # earliest start wins while it is pending.
            self._latency_started.setdefault(key, started)
        enforcement = await self.enforce(workload, evaluation, now)
        enforced = enforcement.condition
        ready = build_ready_after_enforcement(
            evaluation.status.conditions,
            enforced,
            workload.metadata.generation,
            now,
            workload.status.conditions,
        )
        conditions = merge_conditions(evaluation.status.conditions, [enforced, *ready])
        status = evaluation.status.model_copy(
            update={"conditions": build_kstatus_conditions(conditions, workload.metadata.generation, now)}
        ).model_dump(by_alias=True, exclude_none=True, mode="json")
        if added:
            # Keep every new record even if pruning would drop one: it was acknowledged.
            kept = {r["id"] for r in status.get("signals", [])}
            missing = [r for r in added if r["id"] not in kept]
            status["signals"] = (status.get("signals", []) + missing)[-100:]
        written = await self._write_status(key, body, status)
        if written and waiting:
            self._settle(key, [s.id for s in waiting])
        if written and before is not None and before is not evaluation.result.tier:
            event = render_tier_event(
                before, evaluation.effective, evaluation.result.factors, now, self.instance
            )
            self._in_background(self._push_event(key, event))
        if written and _plan_changed(body, enforced):
            plan = render_would_enforce_event(evaluation.effective, enforced.message, now, self.instance)
            self._in_background(self._push_event(key, plan))
        if key in self._latency_started:
            if evaluation.effective.mode is Mode.AUDIT:
                del self._latency_started[key]  # nothing is enforced in audit mode
            elif enforcement.applied:
                metrics.ENFORCEMENT_LATENCY.observe(enforcement.acknowledged - self._latency_started.pop(key))
            elif enforced.reason == "Enforced":
                # In force with nothing to write (no OPA, NetworkPolicy as it was): no sample, and
                # no stale start for the next change to inherit.
                del self._latency_started[key]
        if before is not evaluation.result.tier:
            log.log(
                logging.DEBUG if before is None else logging.INFO,  # first scoring: thousands at start
                "%s/%s: tier %s -> %s (score %d)",
                *key,
                before,
                evaluation.result.tier,
                evaluation.result.score,
            )
        metrics.record_workload(*key, evaluation.result.score, evaluation.result.tier.value)
        self._record_population()

    async def _fold(
        self, workload: AIWorkload, waiting: list[Signal], inputs: Inputs, now: datetime
    ) -> Ingestion:
        # A second's worth of signals of one busy workload would stall the loop for tens of
        # milliseconds in one piece: signal requests are answered between its steps instead.
        for step in build_ingestion_steps(workload.status, waiting, inputs.policy, now):
            if step is not None:
                return step
            await asyncio.sleep(0)
        raise AssertionError("build_ingestion_steps ends with the Ingestion")

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _push_event(self, key: Key, event: dict[str, Any]) -> None:
        """Best effort: an event lost to an API error is only a notification."""
        try:
            await push_event(self.kube, event)
        except Exception as exc:
            log.warning("%s/%s: could not record event %s: %s", *key, event["reason"], exc)

    async def enforce(self, workload: AIWorkload, evaluation: Evaluation, now: datetime) -> Enforcement:
        """Write the NetworkPolicy and the OPA document in parallel; report the outcome."""
        key = (workload.metadata.namespace, workload.metadata.name)
        eff = evaluation.effective
        previous_eff = self.effective.get(key)
        share_field_sets(eff)  # kept until the next pass, for every workload
        self.effective[key] = eff
        self._index_grants(key, previous_eff, eff)
        np_result, opa_acks = await asyncio.gather(
            self._apply_workload_policy(workload, eff),
            self._push_opa(key, eff, previous_eff),
            return_exceptions=True,
        )
        acknowledged = time.monotonic()
        if previous_eff is None or previous_eff.grants != eff.grants or previous_eff.tier is not eff.tier:
            for grant in eff.grants:
                self._endpoint_changed((grant.kind, grant.namespace, grant.name))
        if isinstance(opa_acks, BaseException):  # not expected: push_document reports, never raises
            log.error("%s/%s: OPA push failed: %s", *key, opa_acks, exc_info=opa_acks)
            opa_acks = [(t.url, False) for t in self.opa_targets]
        opa_failures = [(url, self._opa_failure(url)) for url, ok in opa_acks if not ok]
        policy_error = str(np_result) if isinstance(np_result, BaseException) else None
        outcome = "" if isinstance(np_result, BaseException) else np_result
        condition = build_enforced_condition(
            mode=eff.mode,
            policy=workload_policy_name(key[1]),
            policy_outcome=outcome,
            policy_error=policy_error,
            opa_targets=len(self.opa_targets),
            opa_failures=opa_failures,
            audit_note=build_plan_note(eff) if eff.mode is Mode.AUDIT else "",
            generation=workload.metadata.generation,
            now=now,
            previous=workload.status.conditions,
        )
        # A tier change always changes the OPA document; the NetworkPolicy may stay as it was.
        changed = outcome in ("created", "updated") or bool(self.opa_targets)
        return Enforcement(condition, acknowledged, changed and condition.reason == "Enforced")

    async def _apply_workload_policy(self, workload: AIWorkload, eff: EffectiveTrust) -> str:
        key = (workload.metadata.namespace, workload.metadata.name)
        name = workload_policy_name(workload.metadata.name)
        if eff.mode is Mode.AUDIT:
            if self.applied_policies.get(key) != ABSENT:
                await delete_networkpolicy(
                    self.kube,
                    workload.metadata.namespace,
                    name,
                    workload_policy_labels(workload.metadata.name),
                )
                self.applied_policies[key] = ABSENT
            return "audit"
        owner = owner_reference("AIWorkload", workload.metadata.name, workload.metadata.uid or "")
        desired = render_workload_policy(eff, owner)
        fingerprint = desired_fingerprint(desired)
        if self.applied_policies.get(key) == fingerprint:
            return "unchanged"  # as last written, and the watch has seen no change since
        listed = self._listed_policies
        if listed is not None and key not in self.applied_policies:
            result = await apply_networkpolicy(self.kube, desired, listed.pop((key[0], name), None))
        else:
            result = await apply_networkpolicy(self.kube, desired)
        if result.outcome in ("created", "updated", "unchanged"):
            self.applied_policies[key] = fingerprint
            self._note_written(key[0], name, result.resource_version)
        return result.outcome

    async def _push_opa(
        self, key: Key, eff: EffectiveTrust, previous: EffectiveTrust | None
    ) -> list[tuple[str, bool]]:
        """Push the workload's document to every target at once; (url, acknowledged) for each."""
        if not self.opa_targets:
            return []
        if previous is None or previous.service_accounts != eff.service_accounts:
            self._subjects_changed(eff.namespace)
        path, document = render_opa_workload(eff)

        async def push(target: OpaTarget) -> tuple[str, bool]:
            ok = await target.push_document(path, document)
            # Noted before anything else runs: a full sync completing next must see it.
            waiting = self._opa_unacked.setdefault(target.url, set())
            if ok:
                waiting.discard(key)
            else:
                waiting.add(key)  # re-queued once the target is fully synced again
            return target.url, ok

        return list(await asyncio.gather(*(push(t) for t in self.opa_targets)))

    def _opa_failure(self, url: str) -> str:
        target = next(t for t in self.opa_targets if t.url == url)
        return target.last_error or "not synced yet"

    def _opa_synced(self, url: str) -> None:
        """A target holds everything again: reconcile the workloads whose Enforced said it did not."""
        for key in self._opa_unacked.pop(url, set()):
            if self.store.get("AIWorkload", *key) is not None:
                self.queue.add(key)

    def _subjects_changed(self, namespace: str) -> None:
        """The service accounts of a namespace's workloads changed: its subjects document is
        re-rendered a moment later, once for many changes. A cold start adds hundreds of
        workloads to a namespace within seconds, and each render walks all of them. A tier
        change never touches it: decisions on the workload's own document flip at once."""
        if self.opa_targets:
            self._subjects_due.touch(namespace)

    async def _push_subjects(self, namespace: str) -> None:
        document = render_opa_subjects(self._in_namespace(namespace)).get(namespace, {})
        path = opa_subjects_path(namespace)
        await asyncio.gather(*(t.push_document(path, document) for t in self.opa_targets))

    def build_full_opa_data(self) -> dict[str, Any]:
        return render_opa_data(self.effective.values(), revision="")

    async def _forget(self, key: Key) -> None:
        """The AIWorkload is gone: its NetworkPolicy is garbage-collected; drop OPA data and metrics."""
        self._settle(key, [s.id for s in self.inbox.pending(key)])
        self.applied_policies.pop(key, None)
        self._written_versions.pop((key[0], workload_policy_name(key[1])), None)
        self.holding.discard(key)
        self.fold_due.discard(key)
        self._latency_started.pop(key, None)
        for waiting in self._opa_unacked.values():
            waiting.discard(key)
        eff = self.effective.pop(key, None)
        self._index_grants(key, eff, None)
        metrics.forget_workload(*key)
        if eff is None:
            return
        path, _ = render_opa_workload(eff)
        self._subjects_changed(key[0])
        await asyncio.gather(*(t.push_document(path, None) for t in self.opa_targets))
        for grant in eff.grants:
            self._endpoint_changed((grant.kind, grant.namespace, grant.name))
        self._record_population()

    def _record_population(self) -> None:
        # A scan of every workload: at most once a second, not once per reconcile.
        if not self._population_due:
            return
        self._population_due = False
        counts = Counter((e.tier.value, e.mode.value) for e in self.effective.values())
        metrics.record_population(dict(counts))
        asyncio.get_running_loop().call_later(1.0, self._population_tick)

    def _population_tick(self) -> None:
        self._population_due = True
        self._record_population()

    async def reconcile_endpoint(self, key: TargetKey) -> None:
        work = self._reconcile_endpoint(key)
        if await _guarded(key[0], key[1:], work):
            self.endpoint_queue.add(key)

    async def reconcile_object(self, key: TargetKey) -> None:
        if await _guarded(key[0], key[1:], self._reconcile_object(key)):
            self.object_queue.add(key)

    async def _reconcile_object(self, key: TargetKey) -> None:
        """Report in its own status whether a ModelEndpoint, DataSource or TrustPolicy is valid."""
        kind, ns, name = key
        body = self.store.get(kind, ns, name)
        if body is None:
            return
        status = build_object_status(kind, body, self.clock(), self.endpoint_conflicts.get(key))
        if not status_differs(body, status):
            return
        try:
            updated = await self.kube.patch_status(
                kind, ns, name, status, body["metadata"].get("resourceVersion")
            )
        except ApiException as exc:
            if exc.status == 409:
                return  # changed meanwhile: its watch event queues it again
            raise
        self.store.upsert(kind, updated)

    def _endpoint_changed(self, target: TargetKey) -> None:
        """A grant to ``target`` changed. Its ingress policy is re-rendered a moment later, once
        for many changes (a cold start changes 100 grants of one endpoint within seconds): the
        workload's own egress policy, written at once, already enforces the new tier."""
        self._endpoints_due.touch(target)

    def _in_namespace(self, namespace: str) -> list[EffectiveTrust]:
        return [self.effective[k] for k in self._namespaces.get(namespace, ()) if k in self.effective]

    def _index_grants(self, key: Key, old: EffectiveTrust | None, new: EffectiveTrust | None) -> None:
        if new is not None:
            self._namespaces.setdefault(key[0], set()).add(key)
        elif key[0] in self._namespaces:
            self._namespaces[key[0]].discard(key)
        before = {g.key for g in old.grants} if old is not None else set()
        after = {g.key for g in new.grants} if new is not None else set()
        for target in before - after:
            holders = self.granted.get(target)
            if holders is not None:
                holders.discard(key)
                if not holders:
                    del self.granted[target]
        for target in after - before:
            self.granted.setdefault(target, set()).add(key)

    async def _reconcile_endpoint(self, key: TargetKey) -> None:
        kind, ns, name = key
        target = self.target(kind, ns, name)
        if isinstance(target, str):
            self.endpoint_conflicts.pop(key, None)
            return  # gone or invalid: an owned policy is garbage-collected with its owner
        selectors = self.service_selectors({ns})
        if not isinstance(resolve_destination(target, selectors), InClusterDestination):
            return
        referencing = [self.effective[k] for k in sorted(self.granted.get(key, ())) if k in self.effective]
        if not any(e.mode is Mode.ENFORCE for e in referencing):
            # No enforcing workload uses it: do not fence off an endpoint nobody manages.
            if self.applied_endpoint_policies.get(key) != ABSENT:
                await delete_networkpolicy(
                    self.kube, ns, endpoint_policy_name(name), endpoint_policy_labels(kind, name)
                )
                self.applied_endpoint_policies[key] = ABSENT
            self._note_conflict(key, "")
            return
        owner = owner_reference(kind, name, target.metadata.uid or "")
        desired = render_endpoint_ingress_policy(target, referencing, owner, selectors)
        fingerprint = desired_fingerprint(desired)
        if self.applied_endpoint_policies.get(key) == fingerprint:
            return  # as last written, and the watch has seen no change since
        result = await apply_networkpolicy(self.kube, desired)
        if result.outcome == "foreign":
            log.warning(
                "%s %s/%s: NetworkPolicy %s exists and belongs to something else; not written",
                kind,
                ns,
                name,
                result.name,
            )
            self._note_conflict(
                key,
                f"NetworkPolicy {result.name} exists and is not this {kind}'s; ingress not enforced",
            )
        if result.outcome in ("created", "updated", "unchanged"):
            self.applied_endpoint_policies[key] = fingerprint
            self._note_written(ns, endpoint_policy_name(name), result.resource_version)
            self._note_conflict(key, "")

    def _note_conflict(self, key: TargetKey, conflict: str) -> None:
        """Record whether the target's ingress policy clashes; its own status follows."""
        if self.endpoint_conflicts.get(key) != conflict:
            self.endpoint_conflicts[key] = conflict
            self.object_queue.add(key)

    def _note_written(self, namespace: str, name: str, resource_version: str | None) -> None:
        if resource_version is None:
            self._written_versions.pop((namespace, name), None)
        else:
            self._written_versions[(namespace, name)] = resource_version

    async def _report_invalid(
        self, key: Key, body: dict[str, Any], exc: ValidationError, now: datetime
    ) -> None:
        # The CRD schema should prevent this; report rather than crash.
        generation = body["metadata"].get("generation")
        previous = _previous_conditions(body)
        cond = build_condition(
            "Ready", False, "InvalidSpec", describe_validation_error(exc), generation, now, previous
        )
        conditions = build_kstatus_conditions(merge_conditions(previous, [cond]), generation, now)
        status = {
            "observedGeneration": generation,
            "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
        }
        await self._write_status(key, body, status)

    async def _write_status(self, key: Key, body: dict[str, Any], status: dict[str, Any]) -> bool:
        """True when the status now holds ``status`` (written, or already equal)."""
        current = body.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return True  # nothing changed: no write, no churn
        try:
            updated = await self.kube.patch_status(
                "AIWorkload", key[0], key[1], status, body["metadata"].get("resourceVersion")
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status == 409:
                # Someone wrote first (a user, another replica); recompute from the newer object.
                log.info("%s/%s: status changed meanwhile (409); recomputing", *key)
                fresh = await asyncio.to_thread(self.kube.get_custom, "AIWorkload", key[0], key[1])
                if fresh is not None:
                    self.store.upsert("AIWorkload", fresh)
                self.queue.add(key, urgent=bool(self.inbox.pending(key)))
                return False
            raise
        self.store.upsert("AIWorkload", updated)
        return True


async def _guarded(kind: str, key: tuple[str, ...], work: Awaitable[None]) -> bool:
    """Run one reconcile; True when it failed and should be retried (after a pause)."""
    try:
        await work
        return False
    except ApiException as exc:
        if exc.status == 404 or (exc.status == 403 and "being terminated" in str(exc.body)):
            log.debug("%s %s: namespace or object going away; not retrying", kind, "/".join(key))
            return False
        error: Exception = exc
    except Exception as exc:
        error = exc
    metrics.RECONCILE_ERRORS.labels(kind).inc()
    log.error("reconcile of %s %s failed; will retry: %s", kind, "/".join(key), error, exc_info=error)
    await asyncio.sleep(1.0)
    return True


OBJECT_KINDS = ("ModelEndpoint", "DataSource", "TrustPolicy")


def _key(body: dict[str, Any]) -> Key:
    return (body["metadata"]["namespace"], body["metadata"]["name"])


def _refs(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    access = (body.get("spec") or {}).get("access") or {}
    refs = access.get("modelEndpoints" if kind == "ModelEndpoint" else "dataSources") or []
    return [r for r in refs if isinstance(r, dict)]


def _ref_key(body: dict[str, Any], ref: dict[str, Any]) -> tuple[str, str]:
    return (ref.get("namespace") or body["metadata"]["namespace"], ref.get("name", ""))


def _plan_changed(body: dict[str, Any], enforced: Condition) -> bool:
    """An audit-mode workload whose would-be plan differs from the one its stored status reports."""
    if enforced.reason != "AuditOnly":
        return False
    old = next(
        (c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == "Enforced"), None
    )
    return old is None or old.get("reason") != "AuditOnly" or old.get("message") != enforced.message


def _previous_conditions(body: dict[str, Any]) -> list[Condition]:
    out = []
    for c in (body.get("status") or {}).get("conditions") or []:
        with contextlib.suppress(ValidationError):
            out.append(Condition.model_validate(c))
    return out
