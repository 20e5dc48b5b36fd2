"""The reconciler's enforcement step with fake API server and OPA targets: what it reports in the
Enforced condition, when it records enforcement latency, and that both writes run at once.

The real programs are exercised in tests/integration/test_enforcement.py; these fakes let a test
hold one path while watching the other, or make one OPA target fail on demand.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from aitrust import metrics
from aitrust.api.v1alpha1 import Mode
from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Store

KEY = ("ml", "agent")
NP_PATH = "/apis/networking.k8s.io/v1/namespaces/ml/networkpolicies"
LATENCY = "aitrust_enforcement_latency_seconds"


class FakeAio:
    """The API server paths enforcement uses: NetworkPolicies and Events."""

    def __init__(self) -> None:
        self.policies: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.writes: list[str] = []
        self.versions = itertools.count(100)
        self.before_write: asyncio.Event | None = None  # a write waits for it, when set
        self.writing = asyncio.Event()

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        if path.endswith("/events"):
            self.events.append(body)
            return body
        if path == "/version":
            return {}
        name = path.removeprefix(NP_PATH).strip("/")
        if method == "GET":
            if name not in self.policies:
                raise ApiException(status=404)
            return copy.deepcopy(self.policies[name])
        if method == "DELETE":
            self.policies.pop(name, None)
            return {}
        self.writing.set()
        if self.before_write is not None:
            await self.before_write.wait()
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(next(self.versions))
        self.policies[stored["metadata"]["name"]] = stored
        self.writes.append(f"{method} {stored['metadata']['name']}")
        return copy.deepcopy(stored)


class FakeKube:
    def __init__(self, store: Store) -> None:
        self.aio = FakeAio()
        self.store = store
        self.status_writes = 0

    async def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        body = copy.deepcopy(self.store.get(kind, namespace, name))
        assert body is not None and body["metadata"]["resourceVersion"] == resource_version
        body["status"] = {**(body.get("status") or {}), **status}
        body["metadata"]["resourceVersion"] = str(int(resource_version or 0) + 1)
        self.status_writes += 1
        return body


class FakeOpa:
    """An OPA target: acknowledges pushes or not, as the test says."""

    def __init__(self, url: str, ok: bool = True) -> None:
        self.url = url
        self.ok = ok
        self.last_error: str | None = None if ok else "ConnectError: All connection attempts failed"
        self.pushes: list[tuple[str, ...]] = []
        self.before_ack: asyncio.Event | None = None
        self.pushing = asyncio.Event()

    async def push_document(self, path: list[str], document: dict[str, Any] | None) -> bool:
        self.pushes.append(tuple(path))
        self.pushing.set()
        if self.before_ack is not None:
            await self.before_ack.wait()
        return self.ok


def workload_body() -> dict[str, Any]:
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {
            "name": "agent",
            "namespace": "ml",
            "uid": "u-1",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {
            "kind": "agent",
            "selector": {"matchLabels": {"app": "agent"}},
            "access": {"modelEndpoints": [{"name": "llm"}]},
        },
    }


def endpoint_body() -> dict[str, Any]:
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "llm", "namespace": "ml", "uid": "u-2", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "provider": "in-cluster",
            "selector": {"matchLabels": {"app": "llm"}},
            "ports": [{"port": 8000}],
        },
    }


def setup(mode: Mode = Mode.ENFORCE, *opa: FakeOpa) -> tuple[Reconciler, FakeKube]:
    store = Store()
    store.upsert("AIWorkload", workload_body())
    store.upsert("ModelEndpoint", endpoint_body())
    kube = FakeKube(store)
    rec = Reconciler(kube, store, default_mode=mode)  # type: ignore[arg-type]
    rec.opa_targets = list(opa)  # type: ignore[arg-type]
    return rec, kube


def lower_trust(rec: Reconciler) -> None:
    """A critical signal in status, as the signal API records it: the workload is quarantined."""
    body = copy.deepcopy(rec.store.get("AIWorkload", *KEY))
    assert body is not None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "id": "s-1",
        "source": "custom",
        "rule": "hook",
        "severity": "critical",
        "points": 90,
        "time": now,
    }
    body["status"]["signals"] = [record]
    body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
    rec.store.upsert("AIWorkload", body)


def status(rec: Reconciler) -> dict[str, Any]:
    body = rec.store.get("AIWorkload", *KEY)
    assert body is not None
    result: dict[str, Any] = body["status"]
    return result


def enforced(rec: Reconciler) -> dict[str, Any]:
    return next(c for c in status(rec)["conditions"] if c["type"] == "Enforced")


def observations() -> float:
    return metrics.REGISTRY.get_sample_value(f"{LATENCY}_count") or 0.0


async def settle(rec: Reconciler) -> None:
    while rec._background:
        await asyncio.gather(*rec._background)


async def test_latency_is_observed_once_per_enforced_tier_change_from_the_trigger() -> None:
    rec, _ = setup(Mode.ENFORCE, FakeOpa("http://opa-a"), FakeOpa("http://opa-b"))
    start = observations()
    await rec._reconcile(KEY)
    assert observations() == start  # the first scoring is no trust change
    lower_trust(rec)
    # The trigger reached the queue 5 s (of the fake clock) before the pass ran.
    rec.queue.clock = lambda: time.monotonic() - 5.0
    rec.queue.add(KEY, urgent=True)
    rec.queue.clock = time.monotonic
    total = metrics.REGISTRY.get_sample_value(f"{LATENCY}_sum") or 0.0
    await rec.queue._serve(rec.queue._urgent.popleft(), rec._reconcile)
    assert status(rec)["tier"] == "quarantined"
    assert observations() == start + 1
    assert (metrics.REGISTRY.get_sample_value(f"{LATENCY}_sum") or 0.0) - total >= 5.0
    await rec._reconcile(KEY)  # nothing changed: nothing observed
    assert observations() == start + 1
    assert enforced(rec)["status"] == "True"
    await settle(rec)


async def test_latency_is_not_observed_in_audit_mode() -> None:
    rec, kube = setup(Mode.AUDIT, FakeOpa("http://opa-a"))
    start = observations()
    await rec._reconcile(KEY)
    lower_trust(rec)
    await rec._reconcile(KEY)
    assert status(rec)["tier"] == "quarantined"
    assert observations() == start
    assert kube.aio.policies == {}  # and nothing was written
    await settle(rec)


async def test_an_opa_target_that_does_not_acknowledge_makes_enforced_false_until_it_is_resynced() -> None:
    healthy, down = FakeOpa("http://opa-a"), FakeOpa("http://127.0.0.1:9", ok=False)
    rec, kube = setup(Mode.ENFORCE, healthy, down)
    await rec._reconcile(KEY)
    start = observations()
    lower_trust(rec)
    await rec._reconcile(KEY)
    cond = enforced(rec)
    assert (cond["status"], cond["reason"]) == ("False", "OPASyncFailed")
    assert "http://127.0.0.1:9" in cond["message"] and "All connection attempts failed" in cond["message"]
    assert "opa-a" not in cond["message"]
    # The other target and the NetworkPolicy got the change regardless.
    assert len(healthy.pushes) == len(down.pushes) >= 2
    egress = kube.aio.policies["aitrust-agent"]["spec"]["egress"]
    assert kube.aio.writes == ["POST aitrust-agent", "PUT aitrust-agent"]
    assert not any(
        peer.get("podSelector") == {"matchLabels": {"app": "llm"}} for r in egress for peer in r["to"]
    )
    assert observations() == start  # a tier change not fully enforced is not a latency sample

    # The target comes back and is fully synced: the workload is reconciled again, and says so.
    down.ok, down.last_error = True, None
    assert len(rec.queue) == 0
    rec._opa_synced(down.url)
    assert len(rec.queue) == 1
    await rec._reconcile(KEY)
    cond = enforced(rec)
    assert (cond["status"], cond["reason"]) == ("True", "Enforced")
    assert "2 targets" in cond["message"]
    # Only now is the tier change enforced on both paths: one sample, for the whole wait.
    assert observations() == start + 1
    await rec._reconcile(KEY)
    assert observations() == start + 1
    await settle(rec)


async def test_the_networkpolicy_and_opa_writes_run_at_the_same_time() -> None:
    opa = FakeOpa("http://opa-a")
    rec, kube = setup(Mode.ENFORCE, opa)
    # Each path waits until the other has started: done one after the other, neither finishes.
    opa.before_ack = kube.aio.writing
    kube.aio.before_write = opa.pushing
    await asyncio.wait_for(rec._reconcile(KEY), timeout=30)
    assert kube.aio.writes == ["POST aitrust-agent"] and opa.pushes
    assert enforced(rec)["status"] == "True"
    await settle(rec)


async def test_audit_mode_reports_the_plan_in_status_and_one_event_per_change() -> None:
    rec, kube = setup(Mode.AUDIT)
    await rec._reconcile(KEY)
    await settle(rec)
    assert status(rec)["grants"] == [
        {"target": "ModelEndpoint/ml/llm", "allowed": True, "reason": status(rec)["grants"][0]["reason"]}
    ]
    cond = enforced(rec)
    assert (cond["status"], cond["reason"]) == ("True", "AuditOnly")
    assert "would apply NetworkPolicy aitrust-agent" in cond["message"]
    assert "egress to DNS, ModelEndpoint/ml/llm" in cond["message"]
    [event] = [e for e in kube.aio.events if e["reason"] == "WouldEnforce"]
    assert event["note"] == cond["message"] and event["action"] == "Audit"

    writes = kube.status_writes
    await rec._reconcile(KEY)  # a resync: same plan, no status write, no event
    await settle(rec)
    assert kube.status_writes == writes
    assert len([e for e in kube.aio.events if e["reason"] == "WouldEnforce"]) == 1

    lower_trust(rec)
    await rec._reconcile(KEY)
    await settle(rec)
    plans = [e for e in kube.aio.events if e["reason"] == "WouldEnforce"]
    assert len(plans) == 2
    assert "quarantine" in plans[1]["note"] and "block ModelEndpoint/ml/llm" in plans[1]["note"]
    assert kube.aio.policies == {}


async def test_a_restarted_operator_does_not_repeat_the_plan_event() -> None:
    rec, _ = setup(Mode.AUDIT)
    await rec._reconcile(KEY)
    await settle(rec)
    stored = rec.store.get("AIWorkload", *KEY)
    fresh, fresh_kube = setup(Mode.AUDIT)
    fresh.store.upsert("AIWorkload", copy.deepcopy(stored))  # type: ignore[arg-type]
    fresh_kube.store = fresh.store
    await fresh._reconcile(KEY)
    await settle(fresh)
    assert fresh_kube.aio.events == []
    assert fresh_kube.status_writes == 0


async def test_a_tier_change_that_writes_nothing_leaves_no_stale_latency_start() -> None:
    rec, kube = setup(Mode.ENFORCE)  # no OPA target
    await rec._reconcile(KEY)
    start = observations()
    # trusted -> restricted: the endpoint's default minTier still admits it, the policy stays.
    body = copy.deepcopy(rec.store.get("AIWorkload", *KEY))
    assert body is not None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {"id": "s-2", "source": "custom", "rule": "hook", "severity": "medium", "points": 25}
    record["time"] = now
    body["status"]["signals"] = [record]
    body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
    rec.store.upsert("AIWorkload", body)
    await rec._reconcile(KEY)
    assert status(rec)["tier"] == "restricted"
    assert kube.aio.writes == ["POST aitrust-agent"]  # nothing to write for this change
    assert enforced(rec)["reason"] == "Enforced"
    assert KEY not in rec._latency_started and observations() == start
    # The next change is timed from its own trigger, not from the one above.
    lower_trust(rec)
    await rec._reconcile(KEY)
    assert status(rec)["tier"] == "quarantined" and observations() == start + 1
    await settle(rec)


async def test_an_adopted_workload_is_never_enforced_whatever_policy_it_resolves_to() -> None:
    # Default mode enforce, and no `aitrust-adopted` TrustPolicy (deleted, say): still audit.
    rec, kube = setup(Mode.ENFORCE, FakeOpa("http://opa-a"))
    body = copy.deepcopy(rec.store.get("AIWorkload", *KEY))
    assert body is not None
    body["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "aitrust", "aitrust.dev/adopted": "true"}
    body["spec"]["trustPolicyRef"] = {"name": "aitrust-adopted"}
    body["metadata"]["resourceVersion"] = "2"
    rec.store.upsert("AIWorkload", body)
    await rec._reconcile(KEY)
    assert status(rec)["mode"] == "audit"
    assert enforced(rec)["reason"] == "AuditOnly"
    assert kube.aio.policies == {}
    # The label alone is not enough: the operator must have made it.
    body = copy.deepcopy(rec.store.get("AIWorkload", *KEY))
    assert body is not None
    body["metadata"]["labels"] = {"aitrust.dev/adopted": "true"}
    body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
    assert rec.store.upsert("AIWorkload", body)
    await rec._reconcile(KEY)
    assert status(rec)["mode"] == "enforce" and "aitrust-agent" in kube.aio.policies
    await settle(rec)
