"""Pure parts of leader election: the Pod role patch, a released Lease, and readiness."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from aitrust.controller.handlers import is_ready
from aitrust.kube.leader import (
    LEADER,
    ROLE_LABEL,
    STANDBY,
    _parse,
    build_released_lease_spec,
    build_role_patch,
)


@pytest.mark.parametrize("role", [LEADER, STANDBY])
def test_role_patch_sets_only_the_role_label(role: str) -> None:
    assert build_role_patch(role) == {"metadata": {"labels": {ROLE_LABEL: role}}}


def test_role_label_is_what_the_chart_selects() -> None:
    assert ROLE_LABEL == "aitrust.dev/role"
    assert (LEADER, STANDBY) == ("leader", "standby")


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        build_role_patch("primary")


def test_released_lease_has_no_holder_and_is_already_expired() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    spec = {
        "holderIdentity": "pod-a",
        "leaseDurationSeconds": 10,
        "acquireTime": "2026-01-02T03:00:00.000000Z",
        "renewTime": "2026-01-02T03:04:04.000000Z",
        "leaseTransitions": 4,
    }
    released = build_released_lease_spec(spec, now)
    assert "holderIdentity" not in released
    renewed = _parse(released["renewTime"])
    assert renewed is not None
    assert renewed + timedelta(seconds=released["leaseDurationSeconds"]) < now
    # The history stays: the next holder counts a transition from it.
    assert released["leaseTransitions"] == 4
    assert released["acquireTime"] == spec["acquireTime"]
    assert spec["holderIdentity"] == "pod-a", "the input is not modified"


def test_readiness_is_able_to_take_over_not_leading() -> None:
    reconciler = cast(Any, SimpleNamespace(synced=asyncio.Event()))
    memo = {"leading": False, "standby": False}
    assert not is_ready(memo, reconciler), "starting: not labelled standby yet"
    memo["standby"] = True
    assert is_ready(memo, reconciler), "a started standby is Ready"
    memo.update(standby=False)
    assert not is_ready(memo, reconciler), "just took the Lease: syncing"
    memo["leading"] = True
    assert not is_ready(memo, reconciler)
    reconciler.synced.set()
    assert is_ready(memo, reconciler), "the synced leader is Ready"
