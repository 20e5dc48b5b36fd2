"""Trust drives NetworkPolicies and OPA on a real API server and a real OPA."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from aitrust.testing.cluster import OpaServer, wait_until
from aitrust.testing.processes import free_port
from tests.conftest import Kubectl, OperatorFactory


def apply(kubectl: Kubectl, namespace: str, *objs: dict[str, Any]) -> None:
    kubectl.apply(namespace, *objs)


def estate(namespace: str, mode: str = "enforce") -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "TrustPolicy",
            "metadata": {"name": "default"},
            "spec": {"mode": mode, "signals": {"halfLife": "1h"}},
        },
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "ModelEndpoint",
            "metadata": {"name": "llm"},
            "spec": {
                "provider": "in-cluster",
                "selector": {"matchLabels": {"app": "llm"}},
                "ports": [{"port": 8000}],
            },
        },
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "agent"},
            "spec": {
                "kind": "agent",
                "selector": {"matchLabels": {"app": "agent"}},
                "access": {"modelEndpoints": [{"name": "llm"}]},
            },
        },
    ]


def workload(kubectl: Kubectl, namespace: str, name: str = "agent") -> dict[str, Any]:
    result: dict[str, Any] = kubectl.json("get", "aiw", name, "-n", namespace)
    return result


def networkpolicy(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    proc = kubectl.run("get", "networkpolicy", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def egress_to_llm(policy: dict[str, Any]) -> bool:
    return any(
        peer.get("podSelector", {}).get("matchLabels") == {"app": "llm"}
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
    )


def decision(opa: OpaServer | str, namespace: str) -> dict[str, Any]:
    url = opa.url if isinstance(opa, OpaServer) else opa
    body = {
        "input": {
            "subject": {"namespace": namespace, "workload": "agent"},
            "resource": {"kind": "ModelEndpoint", "namespace": namespace, "name": "llm"},
            "action": "invoke",
        }
    }
    result: dict[str, Any] = (
        httpx.post(f"{url}/v1/data/aitrust/authz/decision", json=body).json().get("result", {})
    )
    return result


def tier_events(
    kubectl: Kubectl, namespace: str, name: str = "agent", reason: str = "TierChanged"
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "events.events.k8s.io", "-n", namespace)["items"]
    return sorted(
        (
            e
            for e in items
            if e.get("reason") == reason
            and e["regarding"]["kind"] == "AIWorkload"
            and e["regarding"]["name"] == name
        ),
        key=lambda e: str(e["eventTime"]),
    )


def conditions(kubectl: Kubectl, namespace: str, name: str = "agent") -> dict[str, dict[str, Any]]:
    status = workload(kubectl, namespace, name).get("status", {})
    return {c["type"]: c for c in status.get("conditions", [])}


def sync_errors(metrics_url: str, target: str) -> float:
    text = httpx.get(metrics_url, timeout=10).text
    match = re.search(rf'aitrust_opa_sync_errors_total{{target="{re.escape(target)}"}} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


def lower_trust(kubectl: Kubectl, namespace: str) -> None:
    """The test hook: a critical signal record, as the signal API writes it, in the status."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {
        "id": "hook-1",
        "source": "custom",
        "rule": "test hook",
        "severity": "critical",
        "points": 90,
        "time": now,
    }
    kubectl.run(
        "patch",
        "aiw",
        "agent",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"signals": [record]}}),
    )


def test_tier_drives_networkpolicy_and_opa(
    kubectl: Kubectl, namespace: str, opa: OpaServer, start_operator: OperatorFactory
) -> None:
    start_operator(f"--opa-url={opa.url}")
    apply(kubectl, namespace, *estate(namespace))

    obj = wait_until(
        lambda: (w := workload(kubectl, namespace)).get("status", {}).get("tier") and w, timeout=15
    )
    assert obj["status"]["tier"] in ("trusted", "restricted")
    assert sum(f["points"] for f in obj["status"]["factors"]) == obj["status"]["trustScore"]
    assert obj["status"]["grants"] == [
        {
            "target": f"ModelEndpoint/{namespace}/llm",
            "allowed": True,
            "reason": obj["status"]["grants"][0]["reason"],
        }
    ]
    policy = wait_until(lambda: networkpolicy(kubectl, namespace, "aitrust-agent"), timeout=10)
    assert egress_to_llm(policy)
    assert policy["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aitrust"
    ingress = wait_until(lambda: networkpolicy(kubectl, namespace, "aitrust-ingress-llm"), timeout=10)
    assert ingress["spec"]["podSelector"] == {"matchLabels": {"app": "llm"}}
    assert wait_until(lambda: decision(opa, namespace).get("allow") is True, timeout=10)

    # Idempotent: nothing changes, nothing is written.
    rv = policy["metadata"]["resourceVersion"]
    time.sleep(1.5)
    assert networkpolicy(kubectl, namespace, "aitrust-agent")["metadata"]["resourceVersion"] == rv  # type: ignore[index]

    started = time.monotonic()
    lower_trust(kubectl, namespace)
    wait_until(
        lambda: not egress_to_llm(networkpolicy(kubectl, namespace, "aitrust-agent") or policy), timeout=5
    )
    wait_until(lambda: decision(opa, namespace).get("allow") is False, timeout=5)
    elapsed = time.monotonic() - started
    # The latency target (1 s) is measured by `make bench`; here only the behaviour is asserted.
    print(f"signal hook -> NetworkPolicy and OPA flipped in {elapsed * 1000:.0f} ms")
    obj = workload(kubectl, namespace)
    assert obj["status"]["tier"] == "quarantined"
    assert obj["status"]["grants"][0]["allowed"] is False
    cond = {c["type"]: c for c in obj["status"]["conditions"]}
    assert cond["Enforced"]["status"] == "True"

    # The change is an Event on the workload (kubectl describe, event exporters).
    [event] = wait_until(lambda: tier_events(kubectl, namespace), timeout=5)
    assert event["type"] == "Warning" and event["action"] == "Enforce"
    assert event["regarding"]["uid"] == obj["metadata"]["uid"]
    assert "-> quarantined" in event["note"] and f"denied ModelEndpoint/{namespace}/llm" in event["note"]
    assert "test hook" in event["note"]
    # A resync with nothing new records nothing more.
    time.sleep(1.5)
    assert len(tier_events(kubectl, namespace)) == 1


def test_drift_is_reverted_and_foreign_policies_left_alone(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    foreign = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "team-policy"},
        "spec": {"podSelector": {"matchLabels": {"app": "agent"}}, "policyTypes": ["Ingress"]},
    }
    apply(kubectl, namespace, foreign)
    start_operator()
    apply(kubectl, namespace, *estate(namespace))
    policy = wait_until(lambda: networkpolicy(kubectl, namespace, "aitrust-agent"), timeout=15)
    original_spec = policy["spec"]

    tampered: dict[str, Any] = {"spec": {"egress": [{}]}}  # allow-all egress, a manual edit
    kubectl.run(
        "patch", "networkpolicy", "aitrust-agent", "-n", namespace, "--type=merge", "-p", json.dumps(tampered)
    )
    wait_until(
        lambda: (networkpolicy(kubectl, namespace, "aitrust-agent") or {}).get("spec") == original_spec,
        timeout=10,
    )

    team = networkpolicy(kubectl, namespace, "team-policy")
    assert team is not None and team["spec"] == {
        "podSelector": {"matchLabels": {"app": "agent"}},
        "policyTypes": ["Ingress"],
    }
    assert "ownerReferences" not in team["metadata"]


def unowned_networkpolicy(name: str) -> dict[str, Any]:
    """A NetworkPolicy someone else wrote, under a name the operator would use."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def test_name_clash_with_unowned_policy_is_reported_not_overwritten(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    squatter = unowned_networkpolicy("aitrust-agent")
    apply(kubectl, namespace, squatter)
    start_operator()
    apply(kubectl, namespace, *estate(namespace))

    def conflict() -> bool:
        conds = {c["type"]: c for c in workload(kubectl, namespace).get("status", {}).get("conditions", [])}
        return bool(conds.get("Enforced", {}).get("reason") == "PolicyConflict")

    wait_until(conflict, timeout=15)
    assert networkpolicy(kubectl, namespace, "aitrust-agent")["spec"] == squatter["spec"]  # type: ignore[index]


def test_a_workload_whose_policy_name_clashes_with_an_endpoints_leaves_that_policy_alone(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    start_operator()
    apply(kubectl, namespace, *estate(namespace))
    ingress = wait_until(lambda: networkpolicy(kubectl, namespace, "aitrust-ingress-llm"), timeout=15)
    # Workload ingress-llm renders its egress policy as aitrust-ingress-llm too.
    clash = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "ingress-llm"},
        "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "other"}}},
    }
    apply(kubectl, namespace, clash)

    def conflict() -> dict[str, Any] | None:
        status = workload(kubectl, namespace, "ingress-llm").get("status", {})
        conds = {c["type"]: c for c in status.get("conditions", [])}
        return conds if conds.get("Enforced", {}).get("reason") == "PolicyConflict" else None

    conds = wait_until(conflict, timeout=15)
    assert conds["Stalled"]["status"] == "True"
    time.sleep(1.5)
    live = networkpolicy(kubectl, namespace, "aitrust-ingress-llm")
    assert live is not None
    assert live["metadata"]["resourceVersion"] == ingress["metadata"]["resourceVersion"]
    assert live["metadata"]["labels"]["aitrust.dev/endpoint"] == "llm"


def test_deleting_the_workload_removes_its_policy_and_opa_data(
    kubectl: Kubectl, namespace: str, opa: OpaServer, start_operator: OperatorFactory
) -> None:
    start_operator(f"--opa-url={opa.url}")
    apply(kubectl, namespace, *estate(namespace))
    wait_until(lambda: networkpolicy(kubectl, namespace, "aitrust-agent"), timeout=15)
    wait_until(lambda: decision(opa, namespace).get("allow") is True, timeout=10)

    kubectl.run("delete", "aiw", "agent", "-n", namespace)
    wait_until(
        lambda: networkpolicy(kubectl, namespace, "aitrust-agent") is None, timeout=30
    )  # garbage collector
    wait_until(lambda: decision(opa, namespace).get("allow") is False, timeout=10)
    assert (
        "unknown" in decision(opa, namespace).get("reason", "")
        or decision(opa, namespace).get("allow") is False
    )


def test_opa_maps_the_workloads_service_account_to_it(
    kubectl: Kubectl, namespace: str, opa: OpaServer, start_operator: OperatorFactory
) -> None:
    start_operator(f"--opa-url={opa.url}")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "agent-0", "labels": {"app": "agent"}},
        "spec": {
            "serviceAccountName": "agent-sa",
            "containers": [{"name": "agent", "image": "registry.example.com/agent@sha256:" + "c" * 64}],
        },
    }
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "agent-sa"}}
    apply(kubectl, namespace, sa, pod, *estate(namespace))

    def subjects() -> Any:
        r = httpx.get(f"{opa.url}/v1/data/aitrust_data/subjects/{namespace}")
        return r.json().get("result")

    assert wait_until(subjects, timeout=15) == {"agent-sa": ["agent"]}
    kubectl.run("delete", "aiw", "agent", "-n", namespace)
    wait_until(lambda: subjects() in (None, {}), timeout=15)


def test_opa_restarted_empty_is_resynced(
    kubectl: Kubectl, namespace: str, opa: OpaServer, start_operator: OperatorFactory
) -> None:
    start_operator(f"--opa-url={opa.url}")
    apply(kubectl, namespace, *estate(namespace))
    wait_until(lambda: decision(opa, namespace).get("allow") is True, timeout=15)

    opa.restart()  # same port, empty memory: no policy, no data
    started = time.monotonic()
    wait_until(lambda: decision(opa, namespace).get("allow") is True, timeout=15)
    print(f"OPA re-synced {time.monotonic() - started:.2f}s after restart")


def test_audit_mode_writes_no_policy(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    start_operator()
    apply(kubectl, namespace, *estate(namespace, mode="audit"))

    def audited() -> bool:
        conds = {c["type"]: c for c in workload(kubectl, namespace).get("status", {}).get("conditions", [])}
        return bool(conds.get("Enforced", {}).get("reason") == "AuditOnly")

    wait_until(audited, timeout=15)
    time.sleep(1)
    assert networkpolicy(kubectl, namespace, "aitrust-agent") is None
    assert networkpolicy(kubectl, namespace, "aitrust-ingress-llm") is None
    assert workload(kubectl, namespace)["status"]["grants"][0]["allowed"] is True

    # What would have been enforced is reported in status and in an Event; still no policy.
    lower_trust(kubectl, namespace)
    [event] = wait_until(lambda: tier_events(kubectl, namespace), timeout=5)
    assert event["action"] == "Audit"
    assert (
        "would quarantine" in event["note"] and f"would deny ModelEndpoint/{namespace}/llm" in event["note"]
    )
    grant = workload(kubectl, namespace)["status"]["grants"][0]
    assert grant["allowed"] is False
    assert networkpolicy(kubectl, namespace, "aitrust-agent") is None


def test_audit_mode_reports_what_it_would_enforce(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    operator = start_operator("--resync-seconds=1", "--verbose")
    apply(kubectl, namespace, *estate(namespace, mode="audit"))

    [event] = wait_until(lambda: tier_events(kubectl, namespace, reason="WouldEnforce"), timeout=15)
    assert event["action"] == "Audit" and event["type"] == "Normal"
    note = event["note"]
    assert note.startswith("audit mode, nothing written; would apply NetworkPolicy aitrust-agent")
    assert f"egress to DNS, ModelEndpoint/{namespace}/llm" in note
    assert f"admitted by aitrust-ingress-llm (ModelEndpoint/{namespace}/llm)" in note
    obj = workload(kubectl, namespace)
    assert obj["status"]["grants"] == [
        {
            "target": f"ModelEndpoint/{namespace}/llm",
            "allowed": True,
            "reason": obj["status"]["grants"][0]["reason"],
        }
    ]
    enforced = {c["type"]: c for c in obj["status"]["conditions"]}["Enforced"]
    assert (enforced["status"], enforced["reason"], enforced["message"]) == ("True", "AuditOnly", note)
    assert networkpolicy(kubectl, namespace, "aitrust-agent") is None
    assert networkpolicy(kubectl, namespace, "aitrust-ingress-llm") is None

    # The plan changes with the tier: one more Event, saying what would now be blocked.
    lower_trust(kubectl, namespace)
    plans = wait_until(
        lambda: len(p := tier_events(kubectl, namespace, reason="WouldEnforce")) >= 2 and p,
        timeout=10,
    )
    assert "; quarantine;" in plans[-1]["note"]
    assert f"block ModelEndpoint/{namespace}/llm: tier quarantined" in plans[-1]["note"]
    # Resyncs (one a second here) recompute the same plan: no further Event, still no policy.
    rv = workload(kubectl, namespace)["metadata"]["resourceVersion"]
    seen = operator.log_path.read_text().count("resync: ")
    wait_until(lambda: operator.log_path.read_text().count("resync: ") >= seen + 3, timeout=30, interval=0.2)
    assert len(tier_events(kubectl, namespace, reason="WouldEnforce")) == 2
    assert workload(kubectl, namespace)["metadata"]["resourceVersion"] == rv
    assert networkpolicy(kubectl, namespace, "aitrust-agent") is None


def test_one_opa_down_blocks_neither_the_other_nor_the_networkpolicy_and_enforced_says_so(
    kubectl: Kubectl, namespace: str, opa: OpaServer, start_operator: OperatorFactory, tmp_path: Path
) -> None:
    down_port, metrics_port = free_port(), free_port()
    down_url = f"http://127.0.0.1:{down_port}"  # nothing listens there yet
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    start_operator(
        f"--opa-url={opa.url}",
        f"--opa-url={down_url}",
        f"--metrics-port={metrics_port}",
        "--metrics-host=127.0.0.1",
    )
    apply(kubectl, namespace, *estate(namespace))

    policy = wait_until(lambda: networkpolicy(kubectl, namespace, "aitrust-agent"), timeout=15)
    assert egress_to_llm(policy)
    assert wait_until(lambda: decision(opa, namespace).get("allow") is True, timeout=10)
    failed = wait_until(
        lambda: (
            (c := conditions(kubectl, namespace).get("Enforced", {})).get("reason") == "OPASyncFailed" and c
        ),
        timeout=10,
    )
    assert failed["status"] == "False"
    assert down_url in failed["message"] and opa.url not in failed["message"]
    # Health checks (Argo CD, Flux) read Ready: not healthy while a target misses the data.
    ready = conditions(kubectl, namespace)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "EnforcementFailed")
    assert wait_until(lambda: sync_errors(metrics_url, down_url) >= 1, timeout=10)
    assert sync_errors(metrics_url, opa.url) == 0

    # A trust change still reaches the NetworkPolicy and the healthy OPA.
    lower_trust(kubectl, namespace)
    wait_until(
        lambda: not egress_to_llm(networkpolicy(kubectl, namespace, "aitrust-agent") or policy), timeout=10
    )
    wait_until(lambda: decision(opa, namespace).get("allow") is False, timeout=10)
    assert conditions(kubectl, namespace)["Enforced"]["reason"] == "OPASyncFailed"

    # The missing OPA comes up: it is re-synced (with backoff) and Enforced turns True.
    late = OpaServer(workdir=tmp_path / "late-opa", port=down_port).start()
    try:
        wait_until(lambda: decision(down_url, namespace).get("tier") == "quarantined", timeout=30)
        assert decision(down_url, namespace)["allow"] is False
        recovered = wait_until(
            lambda: (c := conditions(kubectl, namespace).get("Enforced", {})).get("status") == "True" and c,
            timeout=30,
        )
        assert recovered["reason"] == "Enforced"
        assert "Stalled" not in conditions(kubectl, namespace)
        assert conditions(kubectl, namespace)["Ready"]["status"] == "True"
    finally:
        late.stop()


def test_resyncs_after_convergence_write_nothing(
    kubectl: Kubectl, namespace: str, opa: OpaServer, start_operator: OperatorFactory
) -> None:
    operator = start_operator(f"--opa-url={opa.url}", "--resync-seconds=1", "--verbose")
    apply(kubectl, namespace, *estate(namespace))

    def converged() -> dict[str, Any] | None:
        obj = workload(kubectl, namespace)
        enforced = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}.get("Enforced", {})
        if enforced.get("reason") != "Enforced":
            return None
        own = networkpolicy(kubectl, namespace, "aitrust-agent")
        ingress = networkpolicy(kubectl, namespace, "aitrust-ingress-llm")
        return {"workload": obj, "own": own, "ingress": ingress} if own and ingress else None

    wait_until(converged, timeout=20)
    wait_until(lambda: decision(opa, namespace).get("allow") is True, timeout=10)
    # Let the echo of the last writes settle, then take the versions.
    time.sleep(1)
    before = converged()
    assert before is not None

    def resyncs() -> int:
        return operator.log_path.read_text().count("resync: ")

    seen = resyncs()
    wait_until(lambda: resyncs() >= seen + 3, timeout=30, interval=0.2)
    after = converged()
    assert after is not None
    for name in ("workload", "own", "ingress"):
        assert after[name]["metadata"]["resourceVersion"] == before[name]["metadata"]["resourceVersion"], name
    assert after["workload"]["status"] == before["workload"]["status"]


def test_an_endpoint_whose_ingress_policy_name_is_taken_reports_the_conflict_in_its_status(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    squatter = unowned_networkpolicy("aitrust-ingress-llm")
    apply(kubectl, namespace, squatter)
    start_operator("--resync-seconds=1")
    apply(kubectl, namespace, *estate(namespace))

    def endpoint_conditions() -> dict[str, dict[str, Any]]:
        status = kubectl.json("get", "modelendpoint", "llm", "-n", namespace).get("status", {})
        return {c["type"]: c for c in status.get("conditions", [])}

    conds = wait_until(
        lambda: (c := endpoint_conditions()).get("Enforced", {}).get("reason") == "PolicyConflict" and c,
        timeout=15,
    )
    assert conds["Enforced"]["status"] == "False"
    assert "aitrust-ingress-llm" in conds["Enforced"]["message"]
    assert conds["Stalled"]["reason"] == "PolicyConflict"
    assert conds["Ready"]["status"] == "True"
    assert networkpolicy(kubectl, namespace, "aitrust-ingress-llm")["spec"] == squatter["spec"]  # type: ignore[index]

    # The squatter goes: the ingress policy is written and the endpoint's conflict cleared.
    kubectl.run("delete", "networkpolicy", "aitrust-ingress-llm", "-n", namespace)
    ours = wait_until(
        lambda: (
            (p := networkpolicy(kubectl, namespace, "aitrust-ingress-llm"))
            and p["metadata"].get("labels", {}).get("aitrust.dev/endpoint") == "llm"
            and p
        ),
        timeout=15,
    )
    assert ours["spec"]["podSelector"] == {"matchLabels": {"app": "llm"}}
    wait_until(lambda: "Enforced" not in endpoint_conditions(), timeout=15)
    assert "Stalled" not in endpoint_conditions()
