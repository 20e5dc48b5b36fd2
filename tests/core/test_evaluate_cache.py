"""The operator's evaluation path caches pod views per (uid, resourceVersion): never stale, bounded."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.api.v1alpha1 import AIWorkload, TrustPolicySpec
from aitrust.core import posture
from aitrust.core.evaluate import Evaluation, Inputs, build_evaluation
from aitrust.core.workloads import POD_VIEWS, PodViewCache, build_pod_specs, object_version, pod_views
from tests.core.conftest import T0

MANIFEST = Path(__file__).parent / "manifests" / "vllm-deployment.yaml"


def _docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _live_pod(i: int, version: str = "100", **spec: Any) -> dict[str, Any]:
    """A Pod as the operator's store keeps it (``compact_pod``), from the vLLM Deployment template."""
    template = next(d for d in _docs() if d["kind"] == "Deployment")["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"llama-vllm-{i}",
            "namespace": "llm",
            "uid": f"uid-{i}",
            "labels": dict(template["metadata"]["labels"]),
            "resourceVersion": version,
        },
        "spec": {**copy.deepcopy(template["spec"]), **spec},
        "status": {"phase": "Running"},
    }


def _live_service(version: str = "7", **spec: Any) -> dict[str, Any]:
    svc = copy.deepcopy(next(d for d in _docs() if d["kind"] == "Service"))
    svc["metadata"].update(uid="svc-uid", resourceVersion=version)
    svc["spec"].update(spec)
    return svc


def _inputs(pods: tuple[dict[str, Any], ...], services: tuple[dict[str, Any], ...] = ()) -> Inputs:
    workload = AIWorkload.model_validate(
        {
            "metadata": {"name": "llama-vllm", "namespace": "llm", "generation": 1},
            "spec": {
                "kind": "inference",
                "selector": {"matchLabels": {"app.kubernetes.io/name": "llama-vllm"}},
            },
        }
    )
    return Inputs(
        workload=workload,
        policy=TrustPolicySpec(),
        policy_name="default",
        pods=pods,
        services=services or (_live_service(),),
    )


def _strip(pod: dict[str, Any]) -> dict[str, Any]:
    """The same pod with no uid/resourceVersion: an offline manifest, never cached."""
    out = copy.deepcopy(pod)
    del out["metadata"]["uid"], out["metadata"]["resourceVersion"]
    return out


def _dump(evaluation: Evaluation) -> dict[str, Any]:
    return evaluation.status.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    POD_VIEWS.clear()
    yield
    POD_VIEWS.clear()


# --- (a) same result as uncached ------------------------------------------------------------


def test_cached_evaluation_equals_uncached() -> None:
    pods = (_live_pod(0), _live_pod(1, hostNetwork=True), _live_pod(2, serviceAccountName="llm"))
    uncached = [_dump(build_evaluation(_inputs(tuple(map(_strip, pods)), (_strip(_live_service()),)), T0))]
    assert len(POD_VIEWS) == 0  # nothing without uid + resourceVersion is kept

    first = build_evaluation(_inputs(pods), T0)
    again = [build_evaluation(_inputs(pods), T0 + timedelta(seconds=s)) for s in (0, 30, 60)]
    assert POD_VIEWS.misses == 3 and POD_VIEWS.hits == 9
    assert _dump(first) == uncached[0]
    assert _dump(again[0]) == uncached[0]
    assert all(e.result.score == first.result.score for e in again)
    assert any(f.id == "AIT-P027" for f in first.result.factors)


def test_hit_returns_the_same_view_objects() -> None:
    pod = _live_pod(0)
    views = pod_views(pod)
    assert pod_views(copy.deepcopy(pod)) is views  # keyed on uid + resourceVersion, not identity
    assert views == tuple(build_pod_specs(pod))


def test_objects_without_uid_or_version_are_never_cached() -> None:
    pod = _live_pod(0)
    for meta_update in ({"uid": None}, {"resourceVersion": None}, {"resourceVersion": ""}, {"uid": 3}):
        obj = copy.deepcopy(pod)
        obj["metadata"].update(meta_update)
        assert object_version(obj) is None
        assert pod_views(obj) is not pod_views(obj)
    assert object_version({"metadata": "junk"}) is None and object_version({}) is None
    assert len(POD_VIEWS) == 0


# --- (b) a changed resourceVersion is re-read ----------------------------------------------


def test_new_resource_version_is_reread() -> None:
    pod = _live_pod(0)
    before = build_evaluation(_inputs((pod,)), T0)
    assert not any(f.id == "AIT-P008" for f in before.result.factors)

    changed = _live_pod(0, version="101", hostNetwork=True)
    after = build_evaluation(_inputs((changed,)), T0)
    assert any(f.id == "AIT-P008" for f in after.result.factors)
    assert after.result.score < before.result.score
    assert len(POD_VIEWS) == 1  # one slot per uid: the old version is gone

    # Going back to a version that is no longer held is read again, not served from anywhere.
    back = build_evaluation(_inputs((_live_pod(0, version="102"),)), T0)
    assert _dump(back) == _dump(before)


def test_same_uid_new_version_relabelled_changes_exposure() -> None:
    pod = _live_pod(0)
    exposed = build_evaluation(_inputs((pod,)), T0)
    assert any(f.id == "AIT-P027" for f in exposed.result.factors)
    moved = _live_pod(0, version="101")
    moved["metadata"]["labels"] = {"app.kubernetes.io/name": "elsewhere"}
    assert not any(f.id == "AIT-P027" for f in build_evaluation(_inputs((moved,)), T0).result.factors)


def test_changed_service_version_is_reread() -> None:
    pod = _live_pod(0)
    open_lb = build_evaluation(_inputs((pod,), (_live_service("7"),)), T0)
    assert any(f.id == "AIT-P027" for f in open_lb.result.factors)
    internal = _live_service("8", type="ClusterIP")
    assert not any(
        f.id == "AIT-P027" for f in build_evaluation(_inputs((pod,), (internal,)), T0).result.factors
    )
    restricted = _live_service("9", loadBalancerSourceRanges=["10.0.0.0/8"])
    assert not any(
        f.id == "AIT-P027" for f in build_evaluation(_inputs((pod,), (restricted,)), T0).result.factors
    )
    reopened = build_evaluation(_inputs((pod,), (_live_service("10"),)), T0)
    assert _dump(reopened) == _dump(open_lb)


def test_exposure_order_matches_a_single_pass() -> None:
    pods = [build_pod_specs(_live_pod(i))[0] for i in range(3)]
    facts = [posture._facts(p) for p in pods]
    services = [
        _live_service("1"),
        {**_live_service("2"), "metadata": {"name": "second", "uid": "s2", "resourceVersion": "2"}},
    ]
    offline = [_strip(s) for s in services]
    cached = list(posture._exposure_issues(pods, facts, services))
    assert cached == list(posture._exposure_issues(pods, facts, offline))
    assert list(posture._exposure_issues(pods, facts, services)) == cached  # the memoised answer
    assert [line.split('"')[1] for line in cached] == ["llama-vllm"] * 3 + ["second"] * 3


# --- (c) the bound holds -------------------------------------------------------------------


def test_bound_holds_and_evicts_least_recently_used() -> None:
    cache = PodViewCache(maxsize=3)
    pods = [_live_pod(i) for i in range(5)]
    for pod in pods[:3]:
        cache.views(pod)
    cache.views(pods[0])  # touch: uid-1 is now the least recently used
    cache.views(pods[3])
    assert len(cache) == 3
    hits = cache.hits
    cache.views(pods[0])
    assert cache.hits == hits + 1  # kept
    cache.views(pods[1])
    assert cache.hits == hits + 1  # evicted, built again
    for i in range(50):
        cache.views(_live_pod(i, version=str(i)))
        assert len(cache) <= 3


def test_one_entry_per_uid_whatever_the_version_churn() -> None:
    cache = PodViewCache(maxsize=100)
    for version in range(20):
        cache.views(_live_pod(0, version=str(version)))
    assert len(cache) == 1 and cache.misses == 20


def test_zero_size_disables_caching() -> None:
    cache = PodViewCache(maxsize=0)
    pod = _live_pod(0)
    assert cache.views(pod) is not cache.views(pod)
    assert len(cache) == 0


def test_shared_cache_is_bounded() -> None:
    assert 0 < POD_VIEWS.maxsize <= 16384
