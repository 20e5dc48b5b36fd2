from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aitrust.core.mapping as mapping
from aitrust.api.v1alpha1 import AIWorkload, LabelSelector, Severity
from aitrust.core import selectors
from aitrust.core.mapping import (
    AWS_ROLE_ANNOTATION,
    AZURE_CLIENT_ID_ANNOTATION,
    GCP_SA_ANNOTATION,
    WorkloadIndex,
    aws_role_key,
    build_workload_index,
    container_id_key,
    map_signal,
)
from aitrust.core.parsers import PARSERS
from aitrust.core.selectors import selector_matches
from aitrust.core.signal import Signal, WorkloadHint

PAYLOADS = Path(__file__).resolve().parent / "payloads"
RECEIVED_AT = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
VLLM_CONTAINER = "3f2a9c8e1b7d" + "4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d"
ROLE_WITH_PATH = "arn:aws:iam::111122223333:role/ml-serving/vllm-bedrock-access"


def _selector(
    labels: dict[str, str] | None = None, exprs: list[dict[str, Any]] | None = None
) -> LabelSelector:
    return LabelSelector.model_validate({"matchLabels": labels, "matchExpressions": exprs})


# --- selector_matches ---------------------------------------------------------------


LABELS = {"app": "vllm", "tier": "serving", "gpu": "a100"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (_selector(), True),
        (_selector({"app": "vllm"}), True),
        (_selector({"app": "vllm", "tier": "batch"}), False),
        (_selector({"missing": "x"}), False),
        (_selector(exprs=[{"key": "gpu", "operator": "In", "values": ["a100", "h100"]}]), True),
        (_selector(exprs=[{"key": "gpu", "operator": "In", "values": ["h100"]}]), False),
        (_selector(exprs=[{"key": "zone", "operator": "In", "values": ["a"]}]), False),
        (_selector(exprs=[{"key": "gpu", "operator": "In", "values": []}]), False),
        (_selector(exprs=[{"key": "gpu", "operator": "NotIn", "values": ["h100"]}]), True),
        (_selector(exprs=[{"key": "gpu", "operator": "NotIn", "values": ["a100"]}]), False),
        (_selector(exprs=[{"key": "zone", "operator": "NotIn", "values": ["a"]}]), True),
        (_selector(exprs=[{"key": "tier", "operator": "Exists"}]), True),
        (_selector(exprs=[{"key": "zone", "operator": "Exists"}]), False),
        (_selector(exprs=[{"key": "zone", "operator": "DoesNotExist"}]), True),
        (_selector(exprs=[{"key": "tier", "operator": "DoesNotExist"}]), False),
        (
            _selector(
                {"app": "vllm"},
                [
                    {"key": "tier", "operator": "In", "values": ["serving"]},
                    {"key": "debug", "operator": "DoesNotExist"},
                ],
            ),
            True,
        ),
        (_selector({"app": "vllm"}, [{"key": "gpu", "operator": "NotIn", "values": ["a100"]}]), False),
    ],
)
def test_selector_matches(selector: LabelSelector, matches: bool) -> None:
    assert selector_matches(selector, LABELS) is matches


label_maps = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["1", "2", "3"]), max_size=4
)


@settings(max_examples=200, deadline=None)
@given(labels=label_maps, extra=label_maps)
def test_selector_properties(labels: dict[str, str], extra: dict[str, str]) -> None:
    combined = {**extra, **labels}
    assert selector_matches(_selector(labels), combined)
    keys = sorted(combined)
    exists = _selector(exprs=[{"key": k, "operator": "Exists"} for k in keys])
    assert selector_matches(exists, combined)
    for key in ("a", "b", "c", "d"):
        present = key in combined
        gone = _selector(exprs=[{"key": key, "operator": "DoesNotExist"}])
        assert selector_matches(gone, combined) is not present
        values = ["1", "2", "3"]
        in_all = _selector(exprs=[{"key": key, "operator": "In", "values": values}])
        not_in_all = _selector(exprs=[{"key": key, "operator": "NotIn", "values": values}])
        assert selector_matches(in_all, combined) is present
        assert selector_matches(not_in_all, combined) is not present


# --- fixtures: a small cluster ---------------------------------------------------------


def _workload(
    namespace: str, name: str, labels: dict[str, str], identities: dict[str, Any] | None = None
) -> AIWorkload:
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "kind": "inference"}
    if identities:
        spec["cloudIdentities"] = identities
    return AIWorkload.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": spec})


def _pod(
    namespace: str,
    name: str,
    labels: dict[str, str],
    sa: str | None = None,
    containers: Sequence[str] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "x"}]}
    if sa:
        spec["serviceAccountName"] = sa
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": f"c{i}", "containerID": f"containerd://{cid}", "ready": True}
                for i, cid in enumerate(containers)
            ],
        },
    }


def _sa(namespace: str, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
    }


WORKLOADS = [
    _workload("ml-serving", "vllm-llama", {"app": "vllm"}),
    _workload("ml-serving", "gpu-fleet", {"gpu": "a100"}),
    _workload(
        "agents",
        "rag-agent",
        {"app": "rag-agent"},
        {"azure": {"clientId": "5F3C1A2B-7D8E-4F90-A1B2-C3D4E5F60718"}},
    ),
    _workload(
        "training",
        "finetune",
        {"app": "finetune"},
        {"aws": {"roleArn": "arn:aws:iam::111122223333:role/training/Finetune-Role"}},
    ),
    _workload("ml-serving", "idle", {"app": "nothing-runs-this"}),
]
PODS = [
    _pod("ml-serving", "vllm-llama-7b9c8d-x2kqp", {"app": "vllm", "gpu": "a100"}, "vllm", [VLLM_CONTAINER]),
    _pod("ml-serving", "vllm-llama-7b9c8d-abcde", {"app": "vllm"}, "vllm", ["aa" * 32]),
    _pod("ml-serving", "debug-shell", {"app": "debug"}, None, ["bb" * 32]),
    _pod("agents", "rag-agent-0", {"app": "rag-agent"}, "rag-agent", ["cc" * 32]),
    _pod("other", "vllm-elsewhere", {"app": "vllm"}, None, ["dd" * 32]),
]
SERVICE_ACCOUNTS = [
    _sa("ml-serving", "vllm", {AWS_ROLE_ANNOTATION: ROLE_WITH_PATH}),
    _sa("agents", "rag-agent", {GCP_SA_ANNOTATION: "rag-agent@acme-ml-prod.iam.gserviceaccount.com"}),
    _sa("other", "default", {AWS_ROLE_ANNOTATION: "arn:aws:iam::111122223333:role/other"}),
]


@pytest.fixture(scope="module")
def index() -> WorkloadIndex:
    return build_workload_index(WORKLOADS, PODS, SERVICE_ACCOUNTS)


def _signals(name: str) -> list[Signal]:
    payload = json.loads((PAYLOADS / name).read_text())
    endpoint = name.split("_", 1)[0]
    return PARSERS[endpoint](payload, RECEIVED_AT).signals


def _signal(**hint: str) -> Signal:
    return Signal(
        id="t",
        source="custom",
        time=RECEIVED_AT,
        severity=Severity.LOW,
        rule="r",
        target=WorkloadHint.model_validate(hint),
    )


# --- map_signal on real payloads ----------------------------------------------------------


def test_falco_shell_maps_by_pod_to_every_selecting_workload(index: WorkloadIndex) -> None:
    [signal] = _signals("falco_terminal_shell_vllm.json")
    result = map_signal(index, signal)
    assert result.workloads == [("ml-serving", "gpu-fleet"), ("ml-serving", "vllm-llama")]
    assert result.via == "pod"
    assert "ml-serving/vllm-llama-7b9c8d-x2kqp" in result.reason


def test_falco_short_container_id_finds_the_pod_when_pod_name_missing(index: WorkloadIndex) -> None:
    [signal] = _signals("falco_terminal_shell_vllm.json")
    only_container = signal.model_copy(update={"target": WorkloadHint(container_id="3f2a9c8e1b7d")})
    result = map_signal(index, only_container)
    assert result.via == "container"
    assert ("ml-serving", "vllm-llama") in result.workloads


@pytest.mark.parametrize(
    "cid", [VLLM_CONTAINER, f"containerd://{VLLM_CONTAINER}", VLLM_CONTAINER.upper()[:20]]
)
def test_longer_container_ids_are_accepted(index: WorkloadIndex, cid: str) -> None:
    assert map_signal(index, _signal(container_id=cid)).via == "container"


def test_longer_container_id_must_agree_beyond_the_short_prefix(index: WorkloadIndex) -> None:
    wrong = VLLM_CONTAINER[:12] + "0" * 52
    result = map_signal(index, _signal(container_id=wrong))
    assert result.workloads == [] and "no known pod" in result.reason


def test_stale_pod_name_falls_back_to_container(index: WorkloadIndex) -> None:
    result = map_signal(index, _signal(namespace="ml-serving", pod="gone-pod", container_id="3f2a9c8e1b7d"))
    assert result.via == "container"
    assert ("ml-serving", "vllm-llama") in result.workloads


def test_cloudtrail_irsa_role_maps_via_service_account_annotation(index: WorkloadIndex) -> None:
    signals = _signals("cloudtrail_llmjacking_irsa.json")
    results = [map_signal(index, s) for s in signals]
    # the vllm SA is annotated with the role; every workload selecting its pods is concerned
    assert {tuple(r.workloads) for r in results} == {
        (("ml-serving", "gpu-fleet"), ("ml-serving", "vllm-llama"))
    }
    assert {r.via for r in results} == {"aws"}
    assert ROLE_WITH_PATH in results[0].reason


def test_assumed_role_arn_without_path_matches_role_with_path(index: WorkloadIndex) -> None:
    arn = "arn:aws:iam::111122223333:role/finetune-role"  # what an assumed-role ARN yields: no path
    result = map_signal(index, _signal(aws_arn=arn))
    assert result.workloads == [("training", "finetune")]


def test_eventbridge_event_maps_like_the_log_file(index: WorkloadIndex) -> None:
    [signal] = _signals("cloudtrail_eventbridge_delete_logging.json")
    assert ("ml-serving", "vllm-llama") in map_signal(index, signal).workloads


def test_unknown_role_is_unmatched_with_reason(index: WorkloadIndex) -> None:
    result = map_signal(index, _signal(aws_arn="arn:aws:iam::999999999999:role/vllm-bedrock-access"))
    assert result.workloads == [] and result.via is None
    assert "belongs to no AIWorkload" in result.reason


def test_non_role_principal_is_explained(index: WorkloadIndex) -> None:
    result = map_signal(index, _signal(aws_arn="arn:aws:iam::111122223333:user/alice"))
    assert "not an IAM role" in result.reason


def test_gcp_principal_maps_via_service_account_annotation(index: WorkloadIndex) -> None:
    [signal] = _signals("gcp_pubsub_push_predict.json")
    result = map_signal(index, signal)
    assert (result.workloads, result.via) == ([("agents", "rag-agent")], "gcp")


def test_azure_client_id_maps_via_spec_case_insensitively(index: WorkloadIndex) -> None:
    signals = _signals("azure_openai_listkeys.json")
    result = map_signal(index, signals[1])
    assert (result.workloads, result.via) == ([("agents", "rag-agent")], "azure")
    unmatched = map_signal(index, signals[4])  # RequestResponse log without identity
    assert unmatched.workloads == [] and "no workload" in unmatched.reason


def test_cloudevent_naming_a_workload(index: WorkloadIndex) -> None:
    [signal] = _signals("cloudevents_prompt_injection.json")
    result = map_signal(index, signal)
    assert (result.workloads, result.via) == ([("agents", "rag-agent")], "workload")


def test_cloudevent_naming_a_pod(index: WorkloadIndex) -> None:
    [signal] = _signals("cloudevents_batch.json")
    assert ("ml-serving", "vllm-llama") in map_signal(index, signal).workloads


def test_unknown_workload_is_unmatched(index: WorkloadIndex) -> None:
    result = map_signal(index, _signal(namespace="agents", workload="ghost"))
    assert result.workloads == [] and "no AIWorkload agents/ghost" in result.reason


def test_workload_name_without_namespace_needs_to_be_unique(index: WorkloadIndex) -> None:
    assert map_signal(index, _signal(workload="finetune")).workloads == [("training", "finetune")]
    two = build_workload_index([*WORKLOADS, _workload("b", "finetune", {"x": "y"})], [], [])
    assert "ambiguous" in map_signal(two, _signal(workload="finetune")).reason


def test_pod_no_workload_selects_and_unknown_pod(index: WorkloadIndex) -> None:
    unselected = map_signal(index, _signal(namespace="ml-serving", pod="debug-shell"))
    assert unselected.workloads == [] and "no AIWorkload selects" in unselected.reason
    unknown = map_signal(index, _signal(namespace="ml-serving", pod="nope"))
    assert "not known" in unknown.reason


def test_selectors_only_match_in_their_namespace(index: WorkloadIndex) -> None:
    result = map_signal(index, _signal(namespace="other", pod="vllm-elsewhere"))
    assert result.workloads == []
    # and the other namespace's default SA role is not attributed to ml-serving workloads
    assert map_signal(index, _signal(aws_arn="arn:aws:iam::111122223333:role/other")).workloads == []


def test_no_hint_and_namespace_only(index: WorkloadIndex) -> None:
    assert "names no workload" in map_signal(index, _signal()).reason
    assert "namespace alone" in map_signal(index, _signal(namespace="ml-serving")).reason


def test_default_service_account_is_used_when_pod_names_none() -> None:
    workload = _workload("ns", "w", {"app": "w"})
    pod = _pod("ns", "w-0", {"app": "w"})
    sa = _sa("ns", "default", {AZURE_CLIENT_ID_ANNOTATION: "abc"})
    index = build_workload_index([workload], [pod], [sa])
    assert map_signal(index, _signal(azure_client_id="ABC")).workloads == [("ns", "w")]


def test_snake_case_objects_from_the_kubernetes_client_are_read() -> None:
    workload = _workload("ns", "w", {"app": "w"})
    pod = {
        "metadata": {"name": "w-0", "namespace": "ns", "labels": {"app": "w"}},
        "spec": {"service_account_name": "runner"},
        "status": {"container_statuses": [{"container_id": "cri-o://" + "ef" * 32}]},
    }
    sa = _sa("ns", "runner", {GCP_SA_ANNOTATION: "Runner@p.iam.gserviceaccount.com"})
    index = build_workload_index([workload], [pod], [sa])
    assert map_signal(index, _signal(container_id="efefefefefef")).workloads == [("ns", "w")]
    assert map_signal(index, _signal(gcp_principal="runner@p.iam.gserviceaccount.com")).workloads == [
        ("ns", "w")
    ]


def test_malformed_pods_are_skipped() -> None:
    pods: list[dict[str, Any]] = [
        {},
        {"metadata": {"name": 5}},
        {"metadata": {"name": "p", "labels": {"app": 1}}, "status": {"containerStatuses": "x"}},
        {
            "metadata": {"name": "q", "namespace": "default"},
            "status": {"containerStatuses": [{"containerID": "zz"}]},
        },
    ]
    index = build_workload_index([_workload("default", "w", {})], pods, [{"metadata": None}])
    assert sorted(index.pods) == [("default", "p"), ("default", "q")]
    assert map_signal(index, _signal(namespace="default", pod="p")).workloads == [("default", "w")]


@pytest.mark.parametrize(
    ("arn", "key"),
    [
        ("arn:aws:iam::111122223333:role/ml/X-Role", ("aws", "111122223333", "x-role")),
        ("arn:aws:sts::111122223333:assumed-role/X-Role/session", ("aws", "111122223333", "x-role")),
        ("arn:aws-cn:iam::111122223333:role/R", ("aws-cn", "111122223333", "r")),
        ("arn:aws:iam::111122223333:user/alice", None),
        ("not an arn", None),
    ],
)
def test_aws_role_key(arn: str, key: tuple[str, str, str] | None) -> None:
    assert aws_role_key(arn) == key


@pytest.mark.parametrize(
    ("raw", "key"),
    [("containerd://ABCDEF", "abcdef"), ("docker://0123abcd", "0123abcd"), ("host", None), ("", None)],
)
def test_container_id_key(raw: str, key: str | None) -> None:
    assert container_id_key(raw) == key


# --- scale ------------------------------------------------------------------------------


def _cluster(n: int) -> tuple[list[AIWorkload], list[dict[str, Any]], list[dict[str, Any]]]:
    workloads, pods, sas = [], [], []
    for i in range(n):
        ns = f"team-{i % 50}"
        workloads.append(
            AIWorkload.model_validate(
                {
                    "metadata": {"name": f"model-{i}", "namespace": ns},
                    "spec": {
                        "kind": "inference",
                        "selector": {
                            "matchLabels": {"app": f"model-{i}"},
                            "matchExpressions": [
                                {"key": "track", "operator": "In", "values": ["stable", "canary"]}
                            ],
                        },
                    },
                }
            )
        )
        sas.append(_sa(ns, f"sa-{i}", {AWS_ROLE_ANNOTATION: f"arn:aws:iam::111122223333:role/model-{i}"}))
        for j in range(3):
            track = "stable" if j else "canary"
            cid = f"{i:06x}{j:06x}" + "0" * 52
            pods.append(_pod(ns, f"model-{i}-{j}", {"app": f"model-{i}", "track": track}, f"sa-{i}", [cid]))
    return workloads, pods, sas


def test_index_maps_a_thousand_workloads_without_scanning_selectors(monkeypatch: pytest.MonkeyPatch) -> None:
    workloads, pods, sas = _cluster(1000)
    index = build_workload_index(workloads, pods, sas)
    assert len(index.workloads) == 1000 and len(index.by_pod) == 3000

    calls = 0
    original = selectors.selector_matches

    def counting(selector: LabelSelector, labels: Any) -> bool:
        nonlocal calls
        calls += 1
        return original(selector, labels)

    monkeypatch.setattr(mapping, "selector_matches", counting)
    signals = [
        _signal(namespace=f"team-{i % 50}", pod=f"model-{i}-1") if i % 3 == 0
        else _signal(container_id=f"{i:06x}{2:06x}") if i % 3 == 1
        else _signal(aws_arn=f"arn:aws:sts::111122223333:assumed-role/model-{i}/s")
        for i in range(1000)
    ]  # fmt: skip
    results = [map_signal(index, s) for s in signals]
    assert calls == 0  # mapping never scans selectors: it looks signals up by key
    assert [r.workloads for r in results] == [[(f"team-{i % 50}", f"model-{i}")] for i in range(1000)]
