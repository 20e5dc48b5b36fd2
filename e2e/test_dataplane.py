"""Real packets prove that aitrust grants and revokes access (issue 9).

Each test starts the operator against the cluster, creates pods on the data plane and asserts
what new TCP connections and HTTP requests between them do. Before the operator writes any
policy the same connections are shown to succeed, so a later failure is the policy's doing.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from tests.conftest import Kubectl, OperatorFactory

from aitrust.testing.cluster import wait_until
from aitrust.testing.processes import free_port
from e2e.harness import record_timing
from e2e.harness.dataplane import GATEWAY_PORT, MODEL_PORT, DataPlane, Pod
from e2e.harness.kube import apply

API = "aitrust.dev/v1alpha1"
TOKEN = "e2e-falcosidekick-token-0123456789"
DIGEST = "@sha256:" + "a" * 64
CONNECT_TIMEOUT = 1.5


# --- manifests -----------------------------------------------------------------------------------


def hardened(service_account: str) -> dict[str, Any]:
    """A pod spec that passes the posture checks: the score stays in the trusted tier."""
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "agent",
                "image": "registry.example.com/e2e/agent:1.0" + DIGEST,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
            }
        ],
    }


def risky(service_account: str) -> dict[str, Any]:
    """Privileged, root, with the container runtime socket mounted: posture alone quarantines it."""
    sock = "/run/containerd/containerd.sock"
    spec = hardened(service_account)
    spec["securityContext"] = {"runAsUser": 0}
    spec["containers"][0]["securityContext"] = {"privileged": True, "runAsUser": 0}
    spec["containers"][0]["volumeMounts"] = [{"name": "runtime", "mountPath": sock}]
    spec["volumes"] = [{"name": "runtime", "hostPath": {"path": sock, "type": "Socket"}}]
    return spec


def service_account(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}


def trust_policy(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "TrustPolicy", "metadata": {"name": "default"}, "spec": spec}


def model_endpoint(name: str = "llm", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelEndpoint",
        "metadata": {"name": name},
        "spec": {
            "provider": "in-cluster",
            "selector": {"matchLabels": {"app": name}},
            "ports": [{"port": MODEL_PORT}],
            **extra,
        },
    }


def workload(
    name: str, app: str, *, endpoints: Sequence[str] = (), data_sources: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AIWorkload",
        "metadata": {"name": name},
        "spec": {
            "kind": "agent",
            "selector": {"matchLabels": {"app": app}},
            "access": {
                "modelEndpoints": [{"name": e} for e in endpoints],
                "dataSources": [{"name": d} for d in data_sources],
            },
        },
    }


def falco_alert(namespace: str, pod: str, rule: str, priority: str, output: str) -> dict[str, Any]:
    """What Falcosidekick's webhook output POSTs for one Falco event."""
    return {
        "uuid": str(uuid.uuid4()),
        "output": output,
        "priority": priority,
        "rule": rule,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "source": "syscall",
        "tags": ["container", "network", "mitre_execution"],
        "hostname": "e2e-node",
        "output_fields": {
            "k8s.ns.name": namespace,
            "k8s.pod.name": pod,
            "container.id": "0123456789ab",
            "proc.name": "bash",
            "proc.cmdline": "bash -i",
            "fd.name": "10.244.77.2:41234->203.0.113.9:4444",
            "user.name": "app",
        },
    }


# --- helpers -------------------------------------------------------------------------------------


def status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = kubectl.json("get", "aiw", name, "-n", namespace).get("status", {})
    return result


def wait_tier(kubectl: Kubectl, namespace: str, name: str, tier: str, timeout: float = 30) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (s := status(kubectl, namespace, name)).get("tier") == tier and s, timeout=timeout
    )
    return found


def signal_penalty(st: dict[str, Any]) -> int:
    """Sum of the (negative) points the signal factors take off the score now."""
    return sum(f["points"] for f in st["factors"] if f["source"] == "signal")


def policy_names(kubectl: Kubectl, namespace: str) -> set[str]:
    items = kubectl.json("get", "networkpolicy", "-n", namespace)["items"]
    return {p["metadata"]["name"] for p in items}


def wait_reach(client: Pod, target: Pod, port: int, reachable: bool, timeout: float = 30) -> None:
    """Poll until new connections agree with ``reachable``, then require 5 more in a row to agree.

    The connect timeout outlasts one SYN retransmission (1 s), so a lost packet on a busy host
    is not mistaken for a firewall drop; kube-router rejects, which fails at once anyway.
    """

    def agrees() -> bool:
        return client.connect(target, port, timeout=CONNECT_TIMEOUT).blocked is not reachable

    try:
        wait_until(agrees, timeout=timeout, interval=0.1)
    except TimeoutError:
        raise AssertionError(
            f"{client.namespace}/{client.name} -> {target.name}:{port} still "
            f"{'blocked' if reachable else 'open'} after {timeout}s"
        ) from None
    outcomes = [client.connect(target, port, timeout=CONNECT_TIMEOUT) for _ in range(5)]
    assert all(o.blocked is not reachable for o in outcomes), outcomes


def signal_setup(kubectl: Kubectl, namespace: str) -> tuple[str, ...]:
    token = base64.b64encode(TOKEN.encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "signal-tokens"},
        "data": {"falco": token},
    }
    apply(kubectl, namespace, secret)
    return (
        f"--signals-port={free_port()}",
        "--signals-host=127.0.0.1",
        f"--signals-token-secret={namespace}/signal-tokens",
    )


def signal_url(args: tuple[str, ...]) -> str:
    port = next(a.split("=", 1)[1] for a in args if a.startswith("--signals-port="))
    return f"http://127.0.0.1:{port}/v1/signals/falco"


def post_falco(url: str, alert: dict[str, Any]) -> httpx.Response:
    return httpx.post(url, json=alert, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def agents(
    dataplane: DataPlane, kubectl: Kubectl, namespace: str, specs: dict[str, Callable[[str], dict[str, Any]]]
) -> dict[str, Pod]:
    """One pod per agent, labelled app=<name>, running under its own service account."""
    apply(kubectl, namespace, *(service_account(name) for name in specs))
    return {
        name: dataplane.add_pod(namespace, f"{name}-0", {"app": name}, make(name))
        for name, make in specs.items()
    }


# --- scenarios -----------------------------------------------------------------------------------


def test_trusted_agent_reaches_model_unmanaged_and_quarantined_do_not(
    dataplane: DataPlane,
    kubectl: Kubectl,
    namespace: str,
    start_operator: OperatorFactory,
    pod_scope: None,
) -> None:
    llm = dataplane.add_model_server(namespace, "llm-0", {"app": "llm"})
    pods = agents(dataplane, kubectl, namespace, {"agent": hardened, "risky": risky})
    intruder = dataplane.add_pod(namespace, "intruder-0", {"app": "intruder"})
    for client in (pods["agent"], pods["risky"], intruder):  # the cluster default: open
        wait_reach(client, llm, MODEL_PORT, reachable=True, timeout=10)

    apply(
        kubectl,
        namespace,
        trust_policy(),
        model_endpoint(),
        workload("agent", "agent", endpoints=["llm"]),
        workload("risky", "risky", endpoints=["llm"]),
    )
    start_operator()
    trusted = wait_tier(kubectl, namespace, "agent", "trusted")
    quarantined = wait_tier(kubectl, namespace, "risky", "quarantined")
    assert trusted["grants"][0]["allowed"] is True
    assert quarantined["grants"][0]["allowed"] is False
    wait_until(
        lambda: {"aitrust-agent", "aitrust-risky", "aitrust-ingress-llm"} <= policy_names(kubectl, namespace)
    )

    wait_reach(intruder, llm, MODEL_PORT, reachable=False)  # not admitted by the ingress policy
    wait_reach(pods["risky"], llm, MODEL_PORT, reachable=False)  # quarantined: DNS-only egress
    wait_reach(pods["agent"], llm, MODEL_PORT, reachable=True)
    reply = pods["agent"].http(llm, MODEL_PORT, "POST", "/v1/completions", {"prompt": "hello"})
    assert reply.status == 200 and reply.body["completion"] == "echo: hello"


def test_falco_alert_blocks_new_connections_of_that_agent_only(
    dataplane: DataPlane,
    kubectl: Kubectl,
    namespace: str,
    start_operator: OperatorFactory,
    pod_scope: None,
) -> None:
    llm = dataplane.add_model_server(namespace, "llm-0", {"app": "llm"})
    pods = agents(dataplane, kubectl, namespace, {"agent-a": hardened, "agent-b": hardened})
    args = signal_setup(kubectl, namespace)
    apply(
        kubectl,
        namespace,
        trust_policy(),
        model_endpoint(),
        workload("agent-a", "agent-a", endpoints=["llm"]),
        workload("agent-b", "agent-b", endpoints=["llm"]),
    )
    start_operator(*args)
    for name in ("agent-a", "agent-b"):
        wait_tier(kubectl, namespace, name, "trusted")
        wait_reach(pods[name], llm, MODEL_PORT, reachable=True)

    alert = falco_alert(
        namespace,
        "agent-a-0",
        rule="Redirect STDOUT/STDIN to Network Connection in Container",
        priority="Critical",
        output="Critical Redirect stdout/stdin to network connection (reverse shell) in agent-a-0",
    )
    with (
        dataplane.probe_until_blocked(pods["agent-a"], llm, MODEL_PORT) as probe,
        dataplane.probe_until_blocked(pods["agent-b"], llm, MODEL_PORT) as bystander,
    ):
        posted = time.monotonic()
        response = post_falco(signal_url(args), alert)
        acked = time.monotonic()
        assert response.status_code == 200, response.text
        assert response.json()["matched"] == [{"id": alert["uuid"], "workloads": [f"{namespace}/agent-a"]}]
        wait_until(lambda: probe.first_blocked is not None, timeout=15, interval=0.005)
        time.sleep(1)  # the other agent keeps opening connections meanwhile
    assert probe.first_blocked is not None and probe.outcome is not None
    assert probe.first_blocked >= posted, "blocked before the alert: not the alert's doing"
    assert bystander.first_blocked is None and bystander.connected > probe.connected, bystander
    blocked_ms = (probe.first_blocked - posted) * 1000
    record_timing(
        f"POST-to-blocked: {blocked_ms:.0f} ms (signal API acked in {(acked - posted) * 1000:.0f} ms; "
        f"first failure: {probe.outcome.value} after {probe.connected} successful probes; "
        f"agent-b: {bystander.connected} connections, none failed)"
    )

    wait_reach(pods["agent-a"], llm, MODEL_PORT, reachable=False, timeout=5)
    wait_reach(pods["agent-b"], llm, MODEL_PORT, reachable=True, timeout=5)
    assert pods["agent-b"].http(llm, MODEL_PORT).status == 200
    hit = status(kubectl, namespace, "agent-a")
    assert hit["tier"] == "quarantined" and [s["id"] for s in hit["signals"]] == [alert["uuid"]]
    assert status(kubectl, namespace, "agent-b")["tier"] == "trusted"


def test_trust_recovers_over_time_and_access_returns_unaided(
    dataplane: DataPlane,
    kubectl: Kubectl,
    namespace: str,
    start_operator: OperatorFactory,
    pod_scope: None,
) -> None:
    llm = dataplane.add_model_server(namespace, "llm-0", {"app": "llm"})
    pods = agents(dataplane, kubectl, namespace, {"agent": hardened})
    args = signal_setup(kubectl, namespace)
    apply(
        kubectl,
        namespace,
        trust_policy(signals={"halfLife": "2s"}),
        model_endpoint(minTier="trusted"),  # a single high-severity signal is then enough to lose it
        workload("agent", "agent", endpoints=["llm"]),
    )
    start_operator(*args, "--resync-seconds=1")
    before = wait_tier(kubectl, namespace, "agent", "trusted")
    wait_reach(pods["agent"], llm, MODEL_PORT, reachable=True)

    alert = falco_alert(
        namespace,
        "agent-0",
        rule="Terminal shell in container",
        priority="Notice",
        output="Notice A shell was spawned in a container with an attached terminal (user=app agent-0)",
    )
    alert["tags"] = ["container", "shell", "mitre_execution"]
    posted = time.monotonic()
    assert post_falco(signal_url(args), alert).status_code == 200
    lowered = status(kubectl, namespace, "agent")
    assert lowered["trustScore"] < before["trustScore"]
    wait_reach(pods["agent"], llm, MODEL_PORT, reachable=False, timeout=10)
    blocked_at = time.monotonic()

    # No acknowledgement, no edit: only time passes.
    wait_reach(pods["agent"], llm, MODEL_PORT, reachable=True, timeout=60)
    restored_at = time.monotonic()
    record_timing(
        f"recovery (halfLife 2s, resync 1s): blocked {(blocked_at - posted) * 1000:.0f} ms after the alert, "
        f"access back after {restored_at - posted:.1f} s"
    )
    after = status(kubectl, namespace, "agent")
    assert after["tier"] == "trusted" and after["grants"][0]["allowed"] is True
    # The alert is still on record; only its penalty decayed.
    assert [s["id"] for s in after["signals"]] == [alert["uuid"]]
    assert signal_penalty(after) > signal_penalty(lowered) and after["trustScore"] > lowered["trustScore"]


def test_opa_gateway_denies_quarantined_agent_and_serves_trusted_one(
    dataplane: DataPlane,
    kubectl: Kubectl,
    namespace: str,
    start_operator: OperatorFactory,
    pod_scope: None,
) -> None:
    pods = agents(dataplane, kubectl, namespace, {"good": hardened, "bad": risky})
    peers = {p.ip: {"namespace": namespace, "serviceAccount": name} for name, p in pods.items()}
    store, opa_url = dataplane.add_datastore(
        namespace, "vectors-0", {"app": "vectors"}, (namespace, "vectors"), peers
    )
    gateway = [{"cidr": f"{store.ip}/32", "ports": [{"port": GATEWAY_PORT}]}]
    apply(
        kubectl,
        namespace,
        # NetworkPolicy cannot name what the gateway decides per request; keep it reachable while
        # quarantined so the caller is refused with a reason instead of a silent drop.
        trust_policy(quarantine={"allowedEgress": gateway}),
        {
            "apiVersion": API,
            "kind": "DataSource",
            "metadata": {"name": "vectors"},
            "spec": {"type": "vector-db", "cidrs": [f"{store.ip}/32"], "ports": [{"port": GATEWAY_PORT}]},
        },
        workload("good", "good", data_sources=["vectors"]),
        workload("bad", "bad", data_sources=["vectors"]),
    )
    start_operator(f"--opa-url={opa_url}")
    wait_tier(kubectl, namespace, "good", "trusted")
    wait_tier(kubectl, namespace, "bad", "quarantined")
    wait_reach(pods["good"], store, GATEWAY_PORT, reachable=True)
    wait_reach(pods["bad"], store, GATEWAY_PORT, reachable=True)  # the network lets it ask

    allowed = wait_until(
        lambda: (r := pods["good"].http(store, GATEWAY_PORT, "GET", "/documents")).status == 200 and r
    )
    assert allowed.body["value"] == ["quarterly report"]
    assert allowed.body["decision"]["allow"] is True and allowed.body["decision"]["tier"] == "trusted"
    written = pods["good"].http(store, GATEWAY_PORT, "PUT", "/notes", ["from good"])
    assert written.status == 200, written.body

    for method, path, body in (("GET", "/documents", None), ("PUT", "/notes", ["from bad"])):
        denied = pods["bad"].http(store, GATEWAY_PORT, method, path, body)
        assert denied.status == 403, denied.body
        assert denied.body["decision"]["allow"] is False
        assert denied.body["decision"]["reason"] == "workload is quarantined"
        assert denied.body["decision"]["tier"] == "quarantined"
    assert pods["good"].http(store, GATEWAY_PORT, "GET", "/notes").body["value"] == ["from good"]


def test_deleting_the_workload_removes_its_policies_and_restores_default_traffic(
    dataplane: DataPlane,
    kubectl: Kubectl,
    namespace: str,
    start_operator: OperatorFactory,
    pod_scope: None,
) -> None:
    llm = dataplane.add_model_server(namespace, "llm-0", {"app": "llm"})
    pods = agents(dataplane, kubectl, namespace, {"risky": risky})
    intruder = dataplane.add_pod(namespace, "intruder-0", {"app": "intruder"})
    apply(kubectl, namespace, trust_policy(), model_endpoint(), workload("risky", "risky", endpoints=["llm"]))
    start_operator()
    wait_tier(kubectl, namespace, "risky", "quarantined")
    wait_until(lambda: {"aitrust-risky", "aitrust-ingress-llm"} <= policy_names(kubectl, namespace))
    wait_reach(pods["risky"], llm, MODEL_PORT, reachable=False)
    wait_reach(intruder, llm, MODEL_PORT, reachable=False)

    kubectl.run("delete", "aiw", "risky", "-n", namespace)
    started = time.monotonic()
    # Its egress policy goes with the garbage collector, the endpoint's with the operator.
    gone: dict[str, float] = {}

    def policies_gone() -> bool:
        left = policy_names(kubectl, namespace)
        for name in {"aitrust-risky", "aitrust-ingress-llm"} - left:
            gone.setdefault(name, time.monotonic() - started)
        return len(gone) == 2

    wait_until(policies_gone, timeout=60)
    wait_reach(pods["risky"], llm, MODEL_PORT, reachable=True)
    wait_reach(intruder, llm, MODEL_PORT, reachable=True)
    record_timing(
        f"delete AIWorkload -> default traffic restored in {time.monotonic() - started:.1f} s "
        f"(policies gone after: {', '.join(f'{k} {v:.1f} s' for k, v in sorted(gone.items()))})"
    )
    assert pods["risky"].http(llm, MODEL_PORT).body["ready"] is True


def test_enforced_policies_settle_instead_of_being_rewritten(
    dataplane: DataPlane,
    kubectl: Kubectl,
    namespace: str,
    start_operator: OperatorFactory,
    pod_scope: None,
) -> None:
    """Every NetworkPolicy write makes the enforcer resync the node: a converged estate writes nothing.

    Quarantine and "nobody admitted" render deny-all policies (empty rule lists), the shapes most
    likely to differ from what the API server stores.
    """
    llm = dataplane.add_model_server(namespace, "llm-0", {"app": "llm"})
    pods = agents(dataplane, kubectl, namespace, {"risky": risky})
    apply(kubectl, namespace, trust_policy(), model_endpoint(), workload("risky", "risky", endpoints=["llm"]))
    start_operator()
    wait_tier(kubectl, namespace, "risky", "quarantined")
    wait_until(lambda: {"aitrust-risky", "aitrust-ingress-llm"} <= policy_names(kubectl, namespace))
    wait_reach(pods["risky"], llm, MODEL_PORT, reachable=False)

    def versions() -> dict[str, str]:
        items = kubectl.json("get", "networkpolicy", "-n", namespace)["items"]
        return {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in items}

    settled = versions()
    time.sleep(3)
    later = versions()
    rewritten = {
        n: f"resourceVersion {settled[n]} -> {later.get(n)}" for n in settled if later.get(n) != settled[n]
    }
    assert not rewritten, f"the operator keeps rewriting policies it already enforces: {rewritten}"
