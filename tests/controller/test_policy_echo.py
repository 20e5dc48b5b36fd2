"""Watch events of NetworkPolicies: the echo of our own write is recognised, an edit is reverted."""

from __future__ import annotations

import copy

from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Store
from aitrust.render.drift import policy_fingerprint
from tests.render.networkpolicy_samples import DESIRED, stored

KEY = ("ml", "agent")


def reconciler() -> tuple[Reconciler, list[tuple[str, str]]]:
    rec = Reconciler(object(), Store())  # type: ignore[arg-type]
    queued: list[tuple[str, str]] = []
    rec.queue.add = lambda key, urgent=False: queued.append(key)  # type: ignore[method-assign]
    return rec, queued


def test_the_echo_of_our_last_write_is_skipped_by_resource_version() -> None:
    rec, queued = reconciler()
    rec.applied_policies[KEY] = "not even the fingerprint: the version alone identifies the echo"
    rec._note_written("ml", "aitrust-agent", "42")
    rec.on_networkpolicy_event(stored(DESIRED), deleted=False)
    assert queued == []
    assert rec.applied_policies[KEY].startswith("not even")


def test_an_edit_after_our_write_is_requeued() -> None:
    rec, queued = reconciler()
    rec.applied_policies[KEY] = policy_fingerprint(DESIRED)
    rec._note_written("ml", "aitrust-agent", "42")
    edited = stored(DESIRED)
    edited["metadata"]["resourceVersion"] = "43"
    edited["spec"]["egress"] = [{}]
    rec.on_networkpolicy_event(edited, deleted=False)
    assert queued == [KEY]
    assert KEY not in rec.applied_policies  # forces a compare with the live object


def test_an_older_echo_with_our_content_is_still_recognised_by_fingerprint() -> None:
    rec, queued = reconciler()
    rec.applied_policies[KEY] = policy_fingerprint(DESIRED)
    rec._note_written("ml", "aitrust-agent", "50")
    rec.on_networkpolicy_event(stored(DESIRED), deleted=False)  # resourceVersion 42
    assert queued == []


def test_a_deletion_is_requeued_even_at_the_written_version() -> None:
    rec, queued = reconciler()
    rec.applied_policies[KEY] = policy_fingerprint(DESIRED)
    rec._note_written("ml", "aitrust-agent", "42")
    rec.on_networkpolicy_event(copy.deepcopy(stored(DESIRED)), deleted=True)
    assert queued == [KEY]
