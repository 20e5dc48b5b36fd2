from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from aitrust.kube.networkpolicies import apply_networkpolicy, delete_networkpolicy
from aitrust.render.hashing import SPEC_HASH_ANNOTATION
from aitrust.render.networkpolicy import workload_policy_labels
from tests.render.networkpolicy_samples import DESIRED, stored


class FakeNetworking:
    """``Kube.aio`` holding one stored policy, with the API server's create/replace conflicts."""

    def __init__(self, live: dict[str, Any] | None) -> None:
        self.live = live
        self.reads = 0
        self.writes = 0
        self.deleted = 0

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        assert path.startswith("/apis/networking.k8s.io/v1/namespaces/ml/networkpolicies"), path
        if method == "GET":
            self.reads += 1
            if self.live is None:
                raise ApiException(status=404)
            return copy.deepcopy(self.live)
        if method == "POST":
            if self.live is not None:
                raise ApiException(status=409, reason="AlreadyExists")
            self.writes += 1
            self.live = stored(body)
            return copy.deepcopy(self.live)
        if method == "DELETE":
            self.deleted += 1
            self.live = None
            return {}
        assert method == "PUT" and self.live is not None
        if body["metadata"]["resourceVersion"] != self.live["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        self.writes += 1
        self.live = stored(body)
        self.live["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(self.live)


def kube_with(live: dict[str, Any] | None) -> Any:
    fake = FakeNetworking(live)
    return SimpleNamespace(aio=fake, networking=fake)


def apply(kube: Any, desired: dict[str, Any], live: dict[str, Any] | Literal[False] | None = False) -> Any:
    return asyncio.run(apply_networkpolicy(kube, desired, live))


def test_a_known_policy_needs_no_read_and_a_stale_guess_costs_one_retry() -> None:
    kube = kube_with(stored(DESIRED))
    assert apply(kube, DESIRED, stored(DESIRED)).outcome == "unchanged"
    assert kube.networking.reads == 0 and kube.networking.writes == 0

    changed = copy.deepcopy(DESIRED)
    changed["spec"]["egress"] = [{"to": [{"podSelector": {}}]}]
    changed["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: "h2"}
    stale = stored(DESIRED)
    stale["metadata"]["resourceVersion"] = "41"
    assert apply(kube, changed, stale).outcome == "updated"
    assert kube.networking.reads == 1 and kube.networking.live["spec"]["egress"] == changed["spec"]["egress"]

    # "Known absent" but it exists: the create conflicts, the read finds it, nothing is lost.
    assert apply(kube, changed, None).outcome == "unchanged"
    assert kube.networking.reads == 2

    fresh = kube_with(None)
    assert apply(fresh, DESIRED, None).outcome == "created"
    assert fresh.networking.reads == 0


def test_the_result_carries_the_stored_resource_version_for_the_watch_echo() -> None:
    kube = kube_with(None)
    created = apply(kube, DESIRED, None)
    assert created.resource_version == kube.networking.live["metadata"]["resourceVersion"]
    changed = copy.deepcopy(DESIRED)
    changed["spec"]["egress"] = [{"to": [{"podSelector": {}}]}]
    changed["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: "h2"}
    updated = apply(kube, changed)
    assert updated.outcome == "updated"
    assert updated.resource_version == kube.networking.live["metadata"]["resourceVersion"]
    assert updated.resource_version != created.resource_version
    assert apply(kube, changed).resource_version == updated.resource_version  # unchanged


def test_someone_elses_policy_is_never_overwritten_even_when_guessed_absent() -> None:
    foreign = stored(DESIRED)
    foreign["metadata"]["labels"] = {"team": "x"}
    kube = kube_with(foreign)
    assert apply(kube, DESIRED, None).outcome == "foreign"
    assert kube.networking.writes == 0 and kube.networking.live == foreign


def test_a_policy_generated_for_another_owner_is_neither_overwritten_nor_deleted() -> None:
    other = stored(DESIRED)
    other["metadata"]["labels"]["aitrust.dev/workload"] = "someone-else"
    kube = kube_with(other)
    assert apply(kube, DESIRED).outcome == "foreign"
    deleted = asyncio.run(delete_networkpolicy(kube, "ml", "aitrust-agent", workload_policy_labels("agent")))
    assert deleted.outcome == "foreign"
    assert kube.networking.writes == 0 and kube.networking.live == other


def test_our_own_policy_is_deleted() -> None:
    kube = kube_with(stored(DESIRED))
    deleted = asyncio.run(delete_networkpolicy(kube, "ml", "aitrust-agent", workload_policy_labels("agent")))
    assert deleted.outcome == "deleted" and kube.networking.deleted == 1
