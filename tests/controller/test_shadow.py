"""The shadow inventory's writes: adoption (create only, policy first, 409s not retried) and the
reports: a PolicyReport where its CRD is served, else a ShadowAIReport per namespace with shadow
AI (written only when it differs from what is stored, deleted once there is none)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aitrust.controller import shadow as shadow_module
from aitrust.controller.options import OperatorOptions, add_run_arguments
from aitrust.controller.shadow import ShadowInventory
from aitrust.controller.store import Store


class Raw:
    def __init__(self, doc: Any) -> None:
        self.data = json.dumps(doc).encode()


class FakeCustom:
    """Just enough of the API server: objects by (plural, namespace, name); status is a
    subresource of ShadowAIReports (dropped on create, written by a status merge patch)."""

    def __init__(self, *, policy_reports: bool = False, taken: set[str] | None = None) -> None:
        self.policy_reports = policy_reports
        self.policy_report_crd_gone = False  # served in discovery, but writes answer 404
        self.taken = taken or set()
        self.calls: list[tuple[str, ...]] = []
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.terminating: set[str] = set()  # namespaces being deleted

    def get_api_resources(self, group: str, version: str, **_: Any) -> Raw:
        if not self.policy_reports:
            raise ApiException(status=404)
        return Raw({"resources": [{"name": "policyreports"}]})

    def create_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        name = body["metadata"]["name"]
        self.calls.append(("create", plural, ns, name))
        if plural == "policyreports" and self.policy_report_crd_gone:
            raise ApiException(status=404)
        if ns in self.terminating:  # as the API server's NamespaceLifecycle admission answers
            exc = ApiException(status=403, reason="Forbidden")
            exc.body = json.dumps(
                {"reason": "Forbidden", "details": {"causes": [{"reason": "NamespaceTerminating"}]}}
            )
            raise exc
        if f"{plural}/{name}" in self.taken or (plural, ns, name) in self.objects:
            raise ApiException(status=409)
        stored: dict[str, Any] = json.loads(json.dumps(body))
        if plural == "shadowaireports":
            stored.pop("status", None)
        self.objects[(plural, ns, name)] = stored
        return stored

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> Any:
        if (plural, ns, name) not in self.objects:
            raise ApiException(status=404)
        return self.objects[(plural, ns, name)]

    def patch_namespaced_custom_object_status(
        self, group: str, version: str, ns: str, plural: str, name: str, body: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        self.calls.append(("patch-status", plural, ns, name))
        assert kw["_content_type"] == "application/merge-patch+json"
        if (plural, ns, name) not in self.objects:
            raise ApiException(status=404)
        obj = self.objects[(plural, ns, name)]
        obj["status"] = {**(obj.get("status") or {}), **json.loads(json.dumps(body["status"]))}
        return obj

    def delete_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, name: str
    ) -> Any:
        self.calls.append(("delete", plural, ns, name))
        if self.objects.pop((plural, ns, name), None) is None:
            raise ApiException(status=404)
        return {}


class FakeKube:
    def __init__(self, custom: FakeCustom, *, shadow_crd: bool = True) -> None:
        self.custom = custom
        self.shadow_crd = shadow_crd
        self.listed: list[tuple[str, tuple[str, ...]]] = []

    def list_custom(self, kind: str, namespaces: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        assert kind == "ShadowAIReport"
        self.listed.append((kind, namespaces))
        if not self.shadow_crd:
            raise ApiException(status=404)
        for (plural, ns, _), obj in sorted(self.custom.objects.items()):
            if plural == "shadowaireports" and (not namespaces or ns in namespaces):
                yield json.loads(json.dumps(obj))


def _vllm_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": name,
            "labels": {"app": "vllm", "pod-template-hash": "7d9f"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "vllm-7d9f", "controller": True}],
        },
        "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.6.4"}]},
    }


def _inventory(custom: FakeCustom, *, adopt: bool = True) -> tuple[ShadowInventory, Store]:
    store = Store()
    store.upsert("Pod", _vllm_pod("vllm-7d9f-a"))
    store.upsert("Pod", _vllm_pod("vllm-7d9f-b"))
    inv = ShadowInventory(FakeKube(custom), store, adopt=adopt)  # type: ignore[arg-type]
    inv.refresh()
    return inv, store


def _policy(name: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name, "namespace": "ml", "resourceVersion": "1"},
        "spec": {"mode": "audit"},
    }
    if status is not None:
        body["status"] = status
    return body


def test_adoption_creates_the_audit_policy_first_and_the_workload_once_it_is_stored() -> None:
    custom = FakeCustom()
    inv, store = _inventory(custom)
    assert inv.apply_adoptions() == []
    assert custom.calls == [("create", "trustpolicies", "ml", "aitrust-adopted")]
    store.upsert("TrustPolicy", _policy("aitrust-adopted"))  # the watch event arrives
    assert inv.apply_adoptions() == [("ml", "vllm")]
    assert custom.calls[-1] == ("create", "aiworkloads", "ml", "vllm")
    assert [c for c in custom.calls if c[0] == "create"] == [
        ("create", "trustpolicies", "ml", "aitrust-adopted"),
        ("create", "aiworkloads", "ml", "vllm"),
    ]


def test_adoption_never_touches_an_existing_workload_and_does_not_retry_a_conflict() -> None:
    custom = FakeCustom(taken={"aiworkloads/vllm"})
    inv, store = _inventory(custom)
    store.upsert("TrustPolicy", _policy("aitrust-adopted"))
    assert inv.apply_adoptions() == []  # 409: someone else was first
    assert inv.apply_adoptions() == []
    assert custom.calls.count(("create", "aiworkloads", "ml", "vllm")) == 1

    custom = FakeCustom()
    inv, store = _inventory(custom)
    store.upsert("TrustPolicy", _policy("aitrust-adopted"))
    theirs = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "vllm", "namespace": "ml", "resourceVersion": "2"},
        "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "other"}}},
    }
    store.upsert("AIWorkload", theirs)
    inv.refresh()
    assert [s.name for s in inv.current] == ["vllm"]  # still shadow: theirs selects other pods
    assert inv.apply_adoptions() == [] and custom.calls == []


def _writes(custom: FakeCustom) -> list[tuple[str, ...]]:
    return [c for c in custom.calls if c[1] == "shadowaireports"]


def test_without_policy_reports_a_shadow_ai_report_is_written_once_and_kept_unchanged() -> None:
    custom = FakeCustom(policy_reports=False)
    inv, store = _inventory(custom, adopt=False)
    inv.report()
    # Created (the API server drops status on create), then its status patched.
    assert _writes(custom) == [
        ("create", "shadowaireports", "ml", "shadow-ai"),
        ("patch-status", "shadowaireports", "ml", "shadow-ai"),
    ]
    stored = custom.objects[("shadowaireports", "ml", "shadow-ai")]
    assert stored["spec"] == {} and stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aitrust"
    status = stored["status"]
    assert status["count"] == 1 and [(w["kind"], w["name"], w["pods"]) for w in status["workloads"]] == [
        ("Deployment", "vllm", 2)
    ]
    assert status["conditions"][0]["type"] == "Ready" and status["conditions"][0]["status"] == "True"
    # A TrustPolicy is neither needed nor written.
    assert not [c for c in custom.calls if c[1] == "trustpolicies"]

    # Another pass with the same findings writes nothing; nor does a restarted operator, which
    # lists what is stored and compares.
    inv.refresh()
    inv.report()
    restarted = ShadowInventory(FakeKube(custom), store)  # type: ignore[arg-type]
    restarted.refresh()
    restarted.report()
    assert len(_writes(custom)) == 2
    assert custom.objects[("shadowaireports", "ml", "shadow-ai")]["status"] == status


def test_a_shadow_ai_report_follows_its_findings_and_goes_when_none_are_left() -> None:
    custom = FakeCustom(policy_reports=False)
    inv, store = _inventory(custom, adopt=False)
    inv.report()
    store.delete("Pod", "ml", "vllm-7d9f-b")
    inv.refresh()
    inv.report()
    assert _writes(custom)[-1] == ("patch-status", "shadowaireports", "ml", "shadow-ai")
    assert custom.objects[("shadowaireports", "ml", "shadow-ai")]["status"]["workloads"][0]["pods"] == 1
    # Declared: nothing left to report, so the report is deleted, once.
    store.upsert(
        "AIWorkload",
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "vllm", "namespace": "ml", "resourceVersion": "3"},
            "spec": {"kind": "inference", "selector": {"matchLabels": {"app": "vllm"}}},
        },
    )
    inv.refresh()
    assert inv.current == []
    inv.report()
    inv.report()
    assert _writes(custom)[-1] == ("delete", "shadowaireports", "ml", "shadow-ai")
    assert _writes(custom).count(("delete", "shadowaireports", "ml", "shadow-ai")) == 1
    assert ("shadowaireports", "ml", "shadow-ai") not in custom.objects


def test_a_report_deleted_by_someone_else_is_recreated_rather_than_failing() -> None:
    custom = FakeCustom(policy_reports=False)
    inv, store = _inventory(custom, adopt=False)
    inv.report()
    del custom.objects[("shadowaireports", "ml", "shadow-ai")]  # the cached view is stale now
    store.delete("Pod", "ml", "vllm-7d9f-b")
    inv.refresh()
    inv.report()
    assert custom.objects[("shadowaireports", "ml", "shadow-ai")]["status"]["workloads"][0]["pods"] == 1


def test_a_terminating_namespace_gets_no_report_and_no_error_but_others_do() -> None:
    custom = FakeCustom(policy_reports=False)
    custom.terminating.add("ml")
    inv, store = _inventory(custom, adopt=False)
    other = _vllm_pod("vllm-7d9f-c")
    other["metadata"]["namespace"] = "team-b"
    store.upsert("Pod", other)
    inv.refresh()
    inv.report()  # no exception
    assert set(custom.objects) == {("shadowaireports", "team-b", "shadow-ai")}
    assert ("patch-status", "shadowaireports", "ml", "shadow-ai") not in custom.calls
    # Not remembered as written: once the namespace is back (recreated), it is reported.
    custom.terminating.clear()
    inv.report()
    assert custom.objects[("shadowaireports", "ml", "shadow-ai")]["status"]["count"] == 1


def test_other_refusals_to_create_a_report_are_errors_for_the_loop_to_log() -> None:
    custom = FakeCustom(policy_reports=False)
    inv, _ = _inventory(custom, adopt=False)

    def refuse(*_: Any, **__: Any) -> Any:
        raise ApiException(status=403, reason="Forbidden")  # RBAC, say

    custom.create_namespaced_custom_object = refuse  # type: ignore[method-assign]
    with pytest.raises(ApiException):
        inv.report()
    assert inv._shadow_reports is None  # listed afresh next time


def test_a_stale_report_left_in_a_namespace_without_shadow_ai_is_deleted() -> None:
    custom = FakeCustom(policy_reports=False)
    custom.objects[("shadowaireports", "gone", "shadow-ai")] = {
        "metadata": {"name": "shadow-ai", "namespace": "gone"},
        "status": {"count": 1, "workloads": []},
    }
    inv, _ = _inventory(custom, adopt=False)
    inv.report()
    assert ("delete", "shadowaireports", "gone", "shadow-ai") in custom.calls
    assert set(custom.objects) == {("shadowaireports", "ml", "shadow-ai")}


def test_with_policy_reports_they_are_written_first_and_shadow_ai_reports_deleted() -> None:
    custom = FakeCustom(policy_reports=False)
    inv, _ = _inventory(custom, adopt=False)
    inv.report()
    assert ("shadowaireports", "ml", "shadow-ai") in custom.objects
    # The PolicyReport CRD appears (seen at the next discovery look-up).
    custom.policy_reports = True
    inv._report_api = None
    inv._shadow_reports = None  # as after the once-a-minute listing
    custom.calls.clear()
    inv.report()
    assert custom.calls == [
        ("create", "policyreports", "ml", "aitrust-shadow-ai"),
        ("delete", "shadowaireports", "ml", "shadow-ai"),
    ]
    assert set(custom.objects) == {("policyreports", "ml", "aitrust-shadow-ai")}
    inv.report()
    assert len(custom.calls) == 2  # nothing changed: nothing written, nothing to delete


def test_when_the_policy_report_crd_vanishes_mid_pass_the_shadow_ai_report_takes_over() -> None:
    custom = FakeCustom(policy_reports=True)
    custom.policy_report_crd_gone = True
    inv, _ = _inventory(custom, adopt=False)
    inv.report()
    assert ("shadowaireports", "ml", "shadow-ai") in custom.objects


def test_a_namespaced_inventory_lists_reports_in_its_namespaces_only() -> None:
    custom = FakeCustom(policy_reports=False)
    store = Store()
    store.upsert("Pod", _vllm_pod("vllm-7d9f-a"))
    kube = FakeKube(custom)
    inv = ShadowInventory(kube, store, namespaces=("ml", "team-b"))  # type: ignore[arg-type]
    inv.refresh()
    inv.report()
    assert kube.listed == [("ShadowAIReport", ("ml", "team-b"))]
    inv.report()
    assert len(kube.listed) == 1  # the listing is reused between passes (re-listed each minute)


def test_without_the_shadow_ai_report_crd_nothing_is_written_and_nothing_fails() -> None:
    custom = FakeCustom(policy_reports=False)
    store = Store()
    store.upsert("Pod", _vllm_pod("vllm-7d9f-a"))
    inv = ShadowInventory(FakeKube(custom, shadow_crd=False), store)  # type: ignore[arg-type]
    inv.refresh()
    inv.report()
    inv.report()
    assert custom.calls == []
    assert [s.name for s in inv.current] == ["vllm"]  # the inventory itself is unaffected


def test_a_namespace_without_shadow_ai_gets_no_report() -> None:
    custom = FakeCustom(policy_reports=False)
    store = Store()
    inv = ShadowInventory(FakeKube(custom), store)  # type: ignore[arg-type]
    inv.refresh()
    inv.report()
    assert custom.calls == []


def test_the_adopt_option_is_off_unless_the_flag_or_its_env_turns_it_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse(*argv: str) -> OperatorOptions:
        parser = argparse.ArgumentParser()
        add_run_arguments(parser)
        return OperatorOptions.from_args(parser.parse_args(list(argv)))

    monkeypatch.delenv("AITRUST_SHADOW_ADOPT", raising=False)
    assert parse().shadow_adopt is False
    assert parse("--shadow-adopt").shadow_adopt is True
    monkeypatch.setenv("AITRUST_SHADOW_ADOPT", "true")
    assert parse().shadow_adopt is True


def test_a_failed_pass_is_retried_after_a_backoff_without_waiting_for_a_change() -> None:
    custom = FakeCustom(policy_reports=False)
    inv, _ = _inventory(custom, adopt=False)
    inv.interval = 0.001  # backoff 2 ms, then 4 ms, ...
    report, failures = inv.report, [ApiException(status=500)]

    def flaky() -> None:
        if failures:
            raise failures.pop()
        report()

    inv.report = flaky  # type: ignore[method-assign]

    async def run() -> None:
        await inv.run_pass()
        assert ("shadowaireports", "ml", "shadow-ai") not in custom.objects
        await asyncio.sleep(0.05)
        await inv.run_pass()  # the store did not change: retried all the same
        assert ("shadowaireports", "ml", "shadow-ai") in custom.objects

    asyncio.run(run())


@pytest.mark.parametrize("policy_reports", [True, False])
def test_reports_removed_by_hand_come_back_at_the_next_repair_pass(
    policy_reports: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shadow_module, "SHADOW_RELIST", 0.0)  # no listing cache
    custom = FakeCustom(policy_reports=policy_reports)
    inv, _ = _inventory(custom, adopt=False)
    inv.repair_interval = 0.5
    key = (
        ("policyreports", "ml", "aitrust-shadow-ai")
        if policy_reports
        else ("shadowaireports", "ml", "shadow-ai")
    )

    async def run() -> None:
        await inv.run_pass()
        assert key in custom.objects
        del custom.objects[key]
        await inv.run_pass()  # nothing changed and no repair due: nothing done
        assert key not in custom.objects
        await asyncio.sleep(0.6)
        await inv.run_pass()
        assert key in custom.objects

    asyncio.run(run())
