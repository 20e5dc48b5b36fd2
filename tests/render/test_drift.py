"""Drift detection between a rendered NetworkPolicy and the stored copy."""

from __future__ import annotations

import copy

from aitrust.render.drift import desired_fingerprint, is_ours, policy_differs, policy_fingerprint
from aitrust.render.hashing import SPEC_HASH_ANNOTATION
from aitrust.render.networkpolicy import endpoint_policy_labels, workload_policy_labels
from tests.render.networkpolicy_samples import DESIRED, stored


def test_a_deny_all_policy_as_stored_is_not_drift() -> None:
    assert not policy_differs(stored(DESIRED), DESIRED)


def test_manual_edits_are_drift_even_with_our_hash() -> None:
    live = stored(DESIRED)
    live["spec"]["egress"] = [{}]
    assert policy_differs(live, DESIRED)
    other_owner = stored(DESIRED)
    other_owner["metadata"]["ownerReferences"] = [{"kind": "AIWorkload", "uid": "u2"}]
    assert policy_differs(other_owner, DESIRED)


def test_ownership_is_by_label() -> None:
    assert is_ours(stored(DESIRED))
    assert not is_ours({"metadata": {"labels": {"team": "x"}}})


def test_a_policy_of_another_workload_or_target_is_not_ours_to_write() -> None:
    live = stored(DESIRED)
    assert is_ours(live, workload_policy_labels("agent"))
    assert not is_ours(live, workload_policy_labels("other"))
    # Workload ingress-x and ModelEndpoint x render the same name, aitrust-ingress-x.
    endpoint = {"metadata": {"labels": endpoint_policy_labels("ModelEndpoint", "x")}}
    assert is_ours(endpoint, endpoint_policy_labels("ModelEndpoint", "x"))
    assert not is_ours(endpoint, workload_policy_labels("ingress-x"))
    assert not is_ours(endpoint, endpoint_policy_labels("DataSource", "x"))
    # Written before the kind label existed: a ModelEndpoint's.
    legacy = {
        "metadata": {"labels": {"app.kubernetes.io/managed-by": "aitrust", "aitrust.dev/endpoint": "x"}}
    }
    assert is_ours(legacy, endpoint_policy_labels("ModelEndpoint", "x"))


def test_a_fingerprint_matches_the_stored_copy_and_no_edited_one() -> None:
    assert policy_fingerprint(stored(DESIRED)) == policy_fingerprint(DESIRED)
    edited = stored(DESIRED)
    edited["spec"]["egress"] = [{}]
    assert policy_fingerprint(edited) != policy_fingerprint(DESIRED)
    relabelled = stored(DESIRED)
    relabelled["metadata"]["labels"]["aitrust.dev/workload"] = "other"
    assert policy_fingerprint(relabelled) != policy_fingerprint(DESIRED)


def test_a_desired_fingerprint_is_the_fingerprint_computed_once_per_spec_hash() -> None:
    assert desired_fingerprint(DESIRED) == policy_fingerprint(DESIRED)
    # Same name and hash: the cached value, without walking the spec again.
    same_hash = copy.deepcopy(DESIRED)
    same_hash["spec"]["egress"] = [{}]
    assert desired_fingerprint(same_hash) == policy_fingerprint(DESIRED)
    rehashed = copy.deepcopy(same_hash)
    rehashed["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = "another"
    assert desired_fingerprint(rehashed) == policy_fingerprint(rehashed) != policy_fingerprint(DESIRED)
    renamed = copy.deepcopy(DESIRED)
    renamed["metadata"]["name"] = "aitrust-other"
    assert desired_fingerprint(renamed) != desired_fingerprint(DESIRED)
