"""The Rego policy: its own checks (hack/opa-check.sh), and its answers over data we render."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aitrust.api.v1alpha1 import Tier
from aitrust.core.effective import EffectiveTrust
from aitrust.render.opa import render_opa_data, render_opa_workload
from aitrust.testing.cluster import OpaServer
from aitrust.testing.testbin import find_binary
from tests.render.scenarios import AUDIT, effective, workload

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
REFS = [{"name": "llm", "namespace": "models"}]


def _fleet() -> list[EffectiveTrust]:
    return [
        effective(Tier.RESTRICTED, service_accounts=("agent-sa", "shared")),
        effective(Tier.TRUSTED, wl=workload("trainer", model_endpoints=REFS), service_accounts=("shared",)),
        effective(
            Tier.QUARANTINED, wl=workload("jailed", model_endpoints=REFS), service_accounts=("jailed-sa",)
        ),
        effective(
            Tier.QUARANTINED, wl=workload("nb", model_endpoints=REFS), pol=AUDIT, service_accounts=("nb-sa",)
        ),
    ]


ACTIONS = {"ModelEndpoint": ("invoke",), "DataSource": ("read", "write")}


def _query(eff: EffectiveTrust, grant_target: str, by: str, action: str) -> dict[str, Any]:
    kind, ns, name = grant_target.split("/")
    subject: dict[str, Any] = {"namespace": eff.namespace}
    if by == "workload":
        subject["workload"] = eff.name
    else:
        subject["spiffeId"] = f"spiffe://cluster.local/ns/{eff.namespace}/sa/{eff.service_accounts[0]}"
        del subject["namespace"]
    return {"subject": subject, "resource": {"kind": kind, "namespace": ns, "name": name}, "action": action}


def _expected(eff: EffectiveTrust, target: str, action: str) -> bool:
    grant = next(g for g in eff.grants if g.target == target)
    # Writing to a DataSource needs tier trusted, whatever the grant's minTier.
    tier_ok = action != "write" or eff.tier is Tier.TRUSTED
    return eff.mode.value == "audit" or (grant.allowed and not eff.quarantined and tier_ok)


def test_opa_check_script_passes() -> None:
    opa = find_binary("opa")  # raises, never skips, when opa is missing
    proc = subprocess.run(
        ["bash", str(ROOT / "hack/opa-check.sh")],
        env={**os.environ, "OPA": opa},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "opa-check: ok" in proc.stdout
    assert "FAIL" not in proc.stdout


def test_policy_answers_match_rendered_grants(tmp_path: Path) -> None:
    fleet = _fleet()
    cases, expected = [], []
    for eff in fleet:
        for grant in eff.grants:
            by = "spiffe" if eff.name != "trainer" else "workload"  # trainer's SA is shared
            for action in ACTIONS[grant.kind]:
                cases.append(_query(eff, grant.target, by, action))
                expected.append(_expected(eff, grant.target, action))
    # The shared service account is ambiguous for pii: agent is denied, trainer has no grant.
    cases.append(
        {
            "subject": {"namespace": "team-a", "serviceAccount": "shared"},
            "resource": {"kind": "DataSource", "namespace": "data", "name": "pii"},
            "action": "read",
        }
    )
    expected.append(False)
    # A restricted workload granted a DataSource reads it, and may not write to it.
    reader = effective(
        Tier.RESTRICTED,
        wl=workload("reader", data_sources=[{"name": "pii", "namespace": "data", "minTier": "restricted"}]),
        service_accounts=("reader-sa",),
    )
    fleet.append(reader)
    for action, allowed in (("read", True), ("write", False)):
        cases.append(_query(reader, "DataSource/data/pii", "spiffe", action))
        expected.append(allowed)
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"aitrust_data": render_opa_data(fleet, "r1"), "cases": cases}))
    query = "[d | some q in data.cases; d := data.aitrust.authz.decision with input as q]"
    proc = subprocess.run(
        [find_binary("opa"), "eval", "--format=json", "-d", str(POLICIES), "-d", str(data), query],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    decisions = json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]
    assert [d["allow"] for d in decisions] == expected
    assert set(expected) == {True, False}
    for decision in decisions:
        assert decision["reason"]
        assert not decision["reason"].startswith("action")  # every case asked a known action
    assert (
        decisions[-1]["reason"]
        == "tier restricted may only read DataSource/data/pii; write needs tier trusted"
    )


def _http(method: str, url: str, body: Any = None, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback OPA
    request.add_header("Content-Type", "text/plain" if raw is not None else "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        text = response.read()
    return json.loads(text) if text else None


@pytest.mark.integration
def test_data_layout_against_a_running_opa(opa: OpaServer) -> None:
    """The documents go in with PUT next to the policy package, and answer as rendered."""
    _http("PUT", f"{opa.url}/v1/policies/aitrust-authz", raw=(POLICIES / "aitrust/authz.rego").read_bytes())
    fleet = _fleet()
    _http("PUT", f"{opa.url}/v1/data/aitrust_data", render_opa_data(fleet[:1], "rev-1"))

    def ask(subject: dict[str, Any]) -> dict[str, Any]:
        body = {
            "input": {
                "subject": subject,
                "resource": {"kind": "ModelEndpoint", "namespace": "models", "name": "llm"},
                "action": "invoke",
            }
        }
        result: dict[str, Any] = _http("POST", f"{opa.url}/v1/data/aitrust/authz/decision", body)["result"]
        return result

    assert ask({"namespace": "team-a", "serviceAccount": "agent-sa"})["allow"] is True
    assert ask({"namespace": "team-a", "workload": "trainer"})["allow"] is False  # not synced yet

    # Incremental update of one workload, at the path the renderer gives.
    path, doc = render_opa_workload(fleet[1])
    _http("PUT", f"{opa.url}/v1/data/{'/'.join(path)}", doc)
    trainer = ask({"namespace": "team-a", "workload": "trainer"})
    assert (trainer["allow"], trainer["tier"], trainer["score"]) == (True, "trusted", 90)
    assert _http("GET", f"{opa.url}/v1/data/aitrust_data/meta")["result"] == {"revision": "rev-1"}

    # Full re-sync: the quarantined workload is denied, the audit one only reported.
    _http("PUT", f"{opa.url}/v1/data/aitrust_data", render_opa_data(fleet, "rev-2"))
    assert ask({"namespace": "team-a", "serviceAccount": "jailed-sa"})["allow"] is False
    audit = ask({"namespace": "team-a", "serviceAccount": "nb-sa"})
    assert (audit["allow"], audit["mode"]) == (True, "audit")
    assert audit["reason"].startswith("audit mode, would deny")
    assert _http("GET", f"{opa.url}/v1/data/aitrust_data/meta")["result"] == {"revision": "rev-2"}
