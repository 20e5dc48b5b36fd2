"""The shadow-AI classifier: precision and recall over a labelled corpus, and the rules one by one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.core.classify import AI_THRESHOLD, CATEGORIES, classify_workload, pod_specs_of
from aitrust.core.scan import is_workload_object

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
HELD_OUT = Path(__file__).parent / "manifests"  # written for the posture tests, not for this classifier


def _workloads(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and is_workload_object(d)]


def _labelled() -> list[tuple[str, str | None, dict[str, Any]]]:
    """(file, expected category or None for non-AI, object) for every workload in the corpus."""
    out: list[tuple[str, str | None, dict[str, Any]]] = []
    for path in sorted((CORPUS / "ai").rglob("*.yaml")):
        out += [(path.name, path.parent.name, obj) for obj in _workloads(path)]
    for path in sorted((CORPUS / "non-ai").rglob("*.yaml")):
        out += [(path.name, None, obj) for obj in _workloads(path)]
    return out


LABELLED = _labelled()


def _pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "p"}},
        "spec": {"containers": list(containers), **spec},
    }


def _c(image: str = "registry.example.com/team/app:1.0", **fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": image, **fields}


def _env(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _deployment(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}},
    }


# --- the corpus ---------------------------------------------------------------------------------


def test_corpus_is_large_and_varied_enough_to_mean_something() -> None:
    ai = [x for x in LABELLED if x[1] is not None]
    non_ai = [x for x in LABELLED if x[1] is None]
    assert len(ai) >= 25 and len(non_ai) >= 25
    assert {x[1] for x in ai} == set(CATEGORIES)
    kinds = {x[2]["kind"] for x in LABELLED}
    assert {"Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "InferenceService"} <= kinds


def test_precision_and_recall_over_the_corpus() -> None:
    tp = fp = fn = 0
    wrong: list[str] = []
    for name, expected, obj in LABELLED:
        got = classify_workload(obj).is_ai
        if got and expected is not None:
            tp += 1
        elif got:
            fp += 1
            wrong.append(f"false positive {name}")
        elif expected is not None:
            fn += 1
            wrong.append(f"false negative {name}")
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, wrong)


def test_categories_over_the_corpus() -> None:
    ai = [(name, expected, obj) for name, expected, obj in LABELLED if expected is not None]
    misses = [
        (name, expected, got)
        for name, expected, obj in ai
        if (got := classify_workload(obj).category) != expected
    ]
    assert len(misses) / len(ai) <= 0.1, misses


def test_non_ai_workloads_have_no_category() -> None:
    for name, _expected, obj in LABELLED:
        result = classify_workload(obj)
        if not result.is_ai:
            assert result.category is None, name
        assert 0.0 <= result.confidence <= 1.0
        assert result.is_ai == (result.confidence >= AI_THRESHOLD)


@pytest.mark.parametrize("path", sorted(HELD_OUT.glob("*.yaml")), ids=lambda p: p.name)
def test_manifests_written_for_other_tests_are_recognised(path: Path) -> None:
    for obj in _workloads(path):
        result = classify_workload(obj)
        assert result.is_ai, (path.name, obj["kind"], result.evidence)


# --- must not be AI -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pod",
    [
        _pod(_c("nginx:1.27", ports=[{"containerPort": 80}])),
        _pod(_c("redis:7.4", args=["--appendonly", "yes"], ports=[{"containerPort": 6379}])),
        _pod(_c("postgres:16", env=_env(POSTGRES_DB="orders"), ports=[{"containerPort": 5432}])),
        _pod(
            _c(
                "eclipse-temurin:21-jre",
                command=["java", "-jar", "/app/app.jar"],
                ports=[{"containerPort": 8080}],
            )
        ),
        _pod(
            _c(
                "python:3.12-slim",
                command=["uvicorn", "main:app", "--port", "8000"],
                ports=[{"containerPort": 8000}],
            )
        ),
        _pod(
            _c(
                "python:3.12-slim",
                command=["gunicorn", "-b", "0.0.0.0:8080", "app:app"],
                ports=[{"containerPort": 8080}],
            )
        ),
        # One weak hint alone is not enough.
        _pod(_c(resources={"limits": {"nvidia.com/gpu": "1"}})),
        _pod(_c(env=_env(MODEL_NAME="pricing-2025"))),
        _pod(_c(volumeMounts=[{"name": "m", "mountPath": "/models"}])),
        _pod(
            _c(env=[{"name": "GOOGLE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "maps", "key": "k"}}}])
        ),
        _pod(_c(command=["python", "train.py"])),
        _pod(_c(ports=[{"containerPort": 8888}])),
        # "agent" and an API key are common outside AI.
        _pod(_c("gcr.io/datadoghq/agent:7.60.0", env=_env(DD_API_KEY="0123456789abcdef"))),
    ],
    ids=[
        "nginx",
        "redis",
        "postgres",
        "java",
        "python-8000",
        "python-8080",
        "gpu-only",
        "model-name-only",
        "models-mount-only",
        "google-key-only",
        "train-py-only",
        "port-8888-only",
        "datadog-agent",
    ],
)
def test_ordinary_workloads_are_not_ai(pod: dict[str, Any]) -> None:
    result = classify_workload(pod)
    assert not result.is_ai, result.evidence
    assert result.category is None


def test_ports_8000_and_8080_count_only_next_to_model_arguments() -> None:
    plain = _pod(_c(ports=[{"containerPort": 8000}], args=["--workers", "4"]))
    weak = _pod(_c(args=["--model", "assistant"]))
    served = _pod(_c(ports=[{"containerPort": 8000}], args=["--model", "assistant"]))
    assert classify_workload(plain).confidence == 0.0
    assert classify_workload(served).confidence > classify_workload(weak).confidence
    assert any("port 8000" in e for e in classify_workload(served).evidence)


@pytest.mark.parametrize(
    "pod",
    [
        _pod(_c("nginx:1.27", ports=[{"containerPort": 8080}])),
        _pod(_c("nginxinc/nginx-unprivileged:1.27-alpine", ports=[{"containerPort": 8080}])),
        _pod(
            _c(
                "eclipse-temurin:21-jre",
                command=["java", "-jar", "/app/orders.jar"],
                args=["--server.port=8080", "--spring.profiles.active=prod"],
                ports=[{"containerPort": 8080}],
            )
        ),
        _pod(_c("tomcat:10.1-jdk21", ports=[{"containerPort": 8080, "name": "http"}])),
    ],
    ids=["nginx-8080", "nginx-unprivileged-8080", "spring-8080", "tomcat-8080"],
)
def test_port_8080_alone_is_not_ai(pod: dict[str, Any]) -> None:
    result = classify_workload(pod)
    assert not result.is_ai, result.evidence
    assert not any("8080" in e for e in result.evidence)


def test_port_8080_counts_next_to_model_arguments() -> None:
    args = ["--model", "/models/assistant", "--port", "8080"]
    weak = classify_workload(_pod(_c(args=args)))
    served = classify_workload(_pod(_c(args=args, ports=[{"containerPort": 8080}])))
    assert served.is_ai and served.category == "inference"
    assert served.confidence > weak.confidence
    assert any("port 8080" in e and "model arguments" in e for e in served.evidence), served.evidence
    assert not any("port 8080" in e for e in weak.evidence)


@pytest.mark.parametrize("name", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "hf_token"])
@pytest.mark.parametrize("from_secret", [True, False], ids=["secret", "literal"])
def test_a_hugging_face_token_alone_is_ai_evidence_with_a_confidence(name: str, from_secret: bool) -> None:
    env = (
        [{"name": name, "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]
        if from_secret
        else [{"name": name, "value": "hf_0123456789abcdefghijklmnopqrstuv"}]
    )
    plain = classify_workload(_pod(_c()))
    result = classify_workload(_pod(_c(env=env)))
    assert not plain.is_ai and plain.confidence == 0.0
    assert result.is_ai, result.evidence
    assert AI_THRESHOLD <= result.confidence < 1.0
    assert [e for e in result.evidence if "Hugging Face Hub token" in e and name in e], result.evidence


# --- single strong signals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "category"),
    [
        (_pod(_c("vllm/vllm-openai:v0.6.4")), "inference"),
        (_pod(_c("ghcr.io/huggingface/text-generation-inference:2.4.1")), "inference"),
        (_pod(_c("ollama/ollama")), "inference"),
        (_pod(_c("nvcr.io/nvidia/tritonserver:24.08-py3")), "inference"),
        (_pod(_c("kserve/sklearnserver:v0.14.0")), "inference"),
        (_pod(_c("rayproject/ray:2.40.0")), "training"),
        (_pod(_c("jupyter/tensorflow-notebook:2023-10-20")), "notebook"),
        (_pod(_c("quay.io/jupyter/pytorch-notebook:cuda12-2024-10-07")), "notebook"),
        (_pod(_c("kubeflownotebookswg/jupyter-scipy:v1.9.0")), "notebook"),
        (_pod(_c("pytorch/pytorch:2.4.1-cuda12.1-cudnn9-runtime")), "training"),
        (_pod(_c("tensorflow/tensorflow:2.18.0-gpu")), "training"),
        (_pod(_c("qdrant/qdrant:v1.12.5")), "datastore"),
        (_pod(_c("chromadb/chroma:0.5.23")), "datastore"),
        (_pod(_c("cr.weaviate.io/semitechnologies/weaviate:1.28.2")), "datastore"),
        (_pod(_c("milvusdb/milvus:v2.5.2")), "datastore"),
        (_pod(_c("ghcr.io/acme/langchain-support-bot:1.0")), "agent"),
        (_pod(_c("registry.example.com/llamaindex-qa:2")), "agent"),
        (
            _pod(
                _c(env=[{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "o", "key": "k"}}}])
            ),
            "agent",
        ),
        (
            _pod(
                _c(
                    env=[
                        {
                            "name": "ANTHROPIC_API_KEY",
                            "valueFrom": {"secretKeyRef": {"name": "a", "key": "k"}},
                        }
                    ]
                )
            ),
            "agent",
        ),
        (_pod(_c(env=_env(BASE="https://api.openai.com/v1"))), "agent"),
        (_pod(_c(env=_env(URL="https://bedrock-runtime.eu-west-1.amazonaws.com"))), "agent"),
        (_pod(_c(args=["--endpoint", "https://us-central1-aiplatform.googleapis.com"])), "agent"),
        (_pod(_c(env=_env(ENDPOINT="https://contoso.openai.azure.com/"))), "agent"),
        (_pod(_c(ports=[{"containerPort": 11434}], env=_env(HF_HOME="/cache"))), "inference"),
        (_pod(_c(args=["-m", "/data/qwen2.5-7b-q4_k_m.gguf"])), "inference"),
        (
            _pod(
                _c(
                    volumeMounts=[{"name": "hf", "mountPath": "/root/.cache/huggingface"}],
                    env=_env(MODEL_ID="x"),
                )
            ),
            "inference",
        ),
        (_pod(_c(command=["torchrun", "--nproc_per_node=8", "train.py"])), "training"),
        (_pod(_c(resources={"limits": {"aws.amazon.com/neuron": "16"}})), "inference"),
    ],
)
def test_strong_evidence_decides_alone(pod: dict[str, Any], category: str) -> None:
    result = classify_workload(pod)
    assert result.is_ai, result.evidence
    assert result.category == category, result.evidence
    assert result.evidence


@pytest.mark.parametrize(
    ("key", "extra"),
    [
        ("nvidia.com/gpu", {"args": ["--model", "assistant"]}),
        (
            "amd.com/gpu",
            {"volumeMounts": [{"name": "w", "mountPath": "/weights"}]},
        ),
        ("nvidia.com/gpu", {"command": ["python", "finetune.py"]}),
    ],
)
def test_gpu_plus_a_second_hint_is_ai(key: str, extra: dict[str, Any]) -> None:
    gpu_only = _pod(_c(resources={"limits": {key: "1"}}))
    hint_only = _pod(_c(**extra))
    both = _pod(_c(resources={"limits": {key: "1"}}, **extra))
    assert not classify_workload(gpu_only).is_ai
    assert not classify_workload(hint_only).is_ai
    assert classify_workload(both).is_ai


def test_custom_resources_are_ai_even_without_pods() -> None:
    for api_version, kind, category in [
        ("serving.kserve.io/v1beta1", "InferenceService", "inference"),
        ("ray.io/v1", "RayCluster", "training"),
        ("ray.io/v1", "RayService", "inference"),
        ("kubeflow.org/v1", "PyTorchJob", "training"),
        ("kubeflow.org/v1", "Notebook", "notebook"),
    ]:
        result = classify_workload({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
        assert result.is_ai and result.category == category, kind
    # The same kind in another API group is not the AI resource.
    assert not classify_workload({"apiVersion": "example.com/v1", "kind": "Notebook", "metadata": {}}).is_ai


def test_a_rayjob_embeds_a_ray_cluster_whose_pods_are_seen() -> None:
    job = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "j", "namespace": "ray"},
        "spec": {
            "entrypoint": "python train.py",
            "rayClusterSpec": {
                "headGroupSpec": {"template": {"spec": {"containers": [_c("rayproject/ray:2.40.0")]}}},
                "workerGroupSpecs": [],
            },
        },
    }
    views = pod_specs_of(job)
    assert [c.image for v in views for c in v.containers] == ["rayproject/ray:2.40.0"]
    assert any("rayproject/ray" in e for e in classify_workload(job).evidence)


# --- pods, as the operator sees them ----------------------------------------------------------


def test_a_pod_and_its_deployment_agree() -> None:
    for _, expected, obj in LABELLED:
        if obj["kind"] != "Deployment":
            continue
        template = obj["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {**template.get("metadata", {}), "name": "p"}}
        pod["spec"] = template["spec"]
        a, b = classify_workload(obj), classify_workload(pod)
        assert (a.is_ai, a.category) == (b.is_ai, b.category), expected


def test_pods_of_ai_controllers_are_recognised_by_owner_and_labels() -> None:
    pod = _pod(_c("busybox:1.37"))
    assert not classify_workload(pod).is_ai
    owned = copy.deepcopy(pod)
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "kubeflow.org/v1", "kind": "Notebook", "name": "alice"}
    ]
    assert classify_workload(owned).category == "notebook"
    labelled = copy.deepcopy(pod)
    labelled["metadata"]["labels"]["training.kubeflow.org/job-name"] = "bert"
    assert classify_workload(labelled).category == "training"


def test_kserve_runtime_images_count_when_runtimes_are_given() -> None:
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "custom"}, "runtime": "rt"}}},
    }
    runtime = {"spec": {"containers": [{"name": "kserve-container", "image": "vllm/vllm-openai:v0.6.4"}]}}
    without = classify_workload(isvc)
    with_rt = classify_workload(isvc, runtimes={"rt": runtime})
    assert without.is_ai and with_rt.is_ai
    assert not any("vllm" in e for e in without.evidence)
    assert any("image vllm/vllm-openai" in e for e in with_rt.evidence)


# --- robustness and the arithmetic ----------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"kind": "Pod"},
        {"kind": "Pod", "spec": None},
        {"kind": "Pod", "spec": {"containers": "nope"}},
        {"kind": "Pod", "spec": {"containers": [None, 3, {"image": None, "env": "x", "ports": [{}]}]}},
        {"kind": "Deployment", "metadata": "x", "spec": {"template": []}},
        [],  # not even a mapping
    ],
)
def test_malformed_objects_do_not_raise(obj: Any) -> None:
    result = classify_workload(obj)
    assert not result.is_ai and result.confidence == 0.0


def test_evidence_counts_once_per_rule() -> None:
    mount = {"name": "m", "mountPath": "/models"}
    one = _pod(_c(volumeMounts=[mount]))
    many = _pod(*[{**_c(volumeMounts=[mount]), "name": f"c{i}"} for i in range(10)])
    assert classify_workload(one).confidence == classify_workload(many).confidence
    assert not classify_workload(many).is_ai


def test_evidence_is_ranked_strongest_first() -> None:
    pod = _pod(
        _c(
            "vllm/vllm-openai:v0.6.4",
            ports=[{"containerPort": 11434}],
            resources={"limits": {"nvidia.com/gpu": 1}},
        )
    )
    weights = [float(e.rsplit("(+", 1)[1].rstrip(")")) for e in classify_workload(pod).evidence]
    assert weights == sorted(weights, reverse=True) and len(weights) == 3


HINTS: list[dict[str, Any]] = [
    {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
    {"env": _env(MODEL_ID="acme/x")},
    {"env": _env(HF_HOME="/cache")},
    {"env": _env(QDRANT_URL="http://q:6333")},
    {"args": ["--model", "acme/assistant"]},
    {"ports": [{"containerPort": 8000}]},
    {"ports": [{"containerPort": 11434}]},
    {"volumeMounts": [{"name": "m", "mountPath": "/models"}]},
    {"command": ["python", "train.py"]},
    {"image": "nvidia/cuda:12.4.0-runtime-ubuntu22.04"},
    {"env": _env(LOG_LEVEL="info")},
]


def _merge(hints: list[dict[str, Any]]) -> dict[str, Any]:
    container = _c()
    for hint in hints:
        for key, value in hint.items():
            if isinstance(value, list):
                container[key] = [*container.get(key, []), *value]
            elif isinstance(value, dict):
                container[key] = {**container.get(key, {}), **value}
            else:
                container[key] = value
    return _pod(container)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(range(len(HINTS))), unique=True), st.sampled_from(range(len(HINTS))))
def test_more_evidence_never_lowers_confidence(chosen: list[int], extra: int) -> None:
    before = classify_workload(_merge([HINTS[i] for i in chosen]))
    after = classify_workload(_merge([HINTS[i] for i in [*chosen, extra]]))
    assert after.confidence >= before.confidence
    assert after.is_ai or not before.is_ai
