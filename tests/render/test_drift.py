"""Drift detection between a rendered NetworkPolicy and the stored copy."""

from __future__ import annotations

from aitrust.render.drift import is_ours, policy_differs, policy_fingerprint
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


def test_a_fingerprint_matches_the_stored_copy_and_no_edited_one() -> None:
    assert policy_fingerprint(stored(DESIRED)) == policy_fingerprint(DESIRED)
    edited = stored(DESIRED)
    edited["spec"]["egress"] = [{}]
    assert policy_fingerprint(edited) != policy_fingerprint(DESIRED)
    relabelled = stored(DESIRED)
    relabelled["metadata"]["labels"]["aitrust.dev/workload"] = "other"
    assert policy_fingerprint(relabelled) != policy_fingerprint(DESIRED)
