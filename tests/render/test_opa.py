from __future__ import annotations

import json

from aitrust.api.v1alpha1 import Tier
from aitrust.core.effective import EffectiveTrust
from aitrust.render.opa import render_opa_data, render_opa_subjects, render_opa_workload
from tests.render.scenarios import AUDIT, effective, workload

REFS = [{"name": "llm", "namespace": "models"}]


def _fleet() -> list[EffectiveTrust]:
    return [
        effective(Tier.RESTRICTED, service_accounts=("agent-sa", "shared")),
        effective(Tier.TRUSTED, wl=workload("trainer", model_endpoints=REFS), service_accounts=("shared",)),
        effective(
            Tier.QUARANTINED,
            wl=workload("nb", "team-b", model_endpoints=REFS),
            pol=AUDIT,
            service_accounts=(),
        ),
    ]


def test_workload_document_and_path() -> None:
    path, doc = render_opa_workload(effective(Tier.RESTRICTED, service_accounts=("z-sa", "agent-sa")))
    assert path == ["aitrust_data", "workloads", "team-a", "agent"]
    assert doc == {
        "tier": "restricted",
        "score": 65,
        "mode": "enforce",
        "grants": {
            "DataSource/data/pii": {"allowed": False, "reason": "tier restricted is below minTier trusted"},
            "ModelEndpoint/models/llm": {
                "allowed": True,
                "reason": "tier restricted meets minTier restricted",
            },
        },
        "serviceAccounts": ["agent-sa", "z-sa"],
    }


def test_quarantined_audit_workload_document() -> None:
    _, doc = render_opa_workload(_fleet()[2])
    assert (doc["tier"], doc["mode"], doc["serviceAccounts"]) == ("quarantined", "audit", [])
    assert doc["grants"]["ModelEndpoint/models/llm"]["allowed"] is False


def test_subjects_index_service_accounts_to_workloads() -> None:
    assert render_opa_subjects(_fleet()) == {
        "team-a": {"agent-sa": ["agent"], "shared": ["agent", "trainer"]},
    }
    assert render_opa_subjects([]) == {}


def test_full_document_matches_the_incremental_ones_and_ignores_order() -> None:
    fleet = _fleet()
    data = render_opa_data(fleet, "rev-7")
    assert data["meta"] == {"revision": "rev-7"}
    assert data["subjects"] == render_opa_subjects(fleet)
    for eff in fleet:
        path, doc = render_opa_workload(eff)
        assert path[0] == "aitrust_data"
        assert data["workloads"][path[2]][path[3]] == doc
    assert sorted(data["workloads"]) == ["team-a", "team-b"]
    reordered = render_opa_data(reversed(fleet), "rev-7")
    assert json.dumps(reordered) == json.dumps(data)  # same bytes, so a re-sync diff is empty


def test_empty_fleet() -> None:
    assert render_opa_data([], "r") == {"workloads": {}, "subjects": {}, "meta": {"revision": "r"}}
