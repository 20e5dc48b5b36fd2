from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from aitrust.core.workloads import PodTemplateView, build_pod_specs

Load = Callable[[str], Any]

POD_SPEC: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "app",
            "image": "ghcr.io/acme/app:1.0",
            "securityContext": {
                "runAsUser": 2000,
                "capabilities": {"add": ["cap_net_admin"], "drop": ["all"]},
            },
        }
    ],
}


def _wrap(kind: str, api_version: str = "apps/v1") -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": copy.deepcopy(POD_SPEC)}
    spec: dict[str, Any]
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        spec = {"template": template}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [
        ("Deployment", "apps/v1"),
        ("StatefulSet", "apps/v1"),
        ("DaemonSet", "apps/v1"),
        ("ReplicaSet", "apps/v1"),
        ("Job", "batch/v1"),
        ("CronJob", "batch/v1"),
    ],
)
def test_template_kinds_yield_their_pod_template(kind: str, api_version: str) -> None:
    [view] = build_pod_specs(_wrap(kind, api_version))
    assert (view.kind, view.name, view.namespace) == (kind, "w", "ns")
    assert view.labels == {"app": "x"}
    [container] = view.containers
    assert container.name == "app" and container.image == "ghcr.io/acme/app:1.0"


def test_effective_security_context_folds_pod_into_container() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": copy.deepcopy(POD_SPEC)}
    [view] = build_pod_specs(pod)
    [c] = view.containers
    assert view.namespace == "default"
    assert c.run_as_user == 2000  # container wins
    assert c.run_as_non_root is True  # inherited from the pod
    assert c.seccomp_profile == "RuntimeDefault"  # inherited from the pod
    assert c.capabilities_add == ("NET_ADMIN",) and c.capabilities_drop == ("ALL",)  # normalised


def test_init_sidecar_and_ephemeral_containers_are_kept_apart() -> None:
    spec = copy.deepcopy(POD_SPEC)
    spec["initContainers"] = [
        {"name": "init", "image": "busybox:1.36"},
        {"name": "proxy", "image": "envoyproxy/envoy:v1.31", "restartPolicy": "Always"},
    ]
    spec["ephemeralContainers"] = [{"name": "debugger", "image": "busybox:1.36"}]
    [view] = build_pod_specs({"kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    assert [(c.name, c.kind) for c in view.containers] == [
        ("init", "init"),
        ("proxy", "sidecar"),
        ("app", "container"),
        ("debugger", "ephemeral"),
    ]


def test_env_sources_and_volumes(load: Load) -> None:
    [view] = load("vllm-deployment.yaml").pods()
    vllm = view.containers[0]
    env = {e.name: e for e in vllm.env}
    assert env["HUGGING_FACE_HUB_TOKEN"].source == "secretKeyRef"
    assert env["HUGGING_FACE_HUB_TOKEN"].ref_name == "hf-token"
    assert env["HUGGING_FACE_HUB_TOKEN"].value is None
    assert env["VLLM_LOGGING_LEVEL"].source == "value" and env["VLLM_LOGGING_LEVEL"].value == "INFO"
    assert {v.name: v.type for v in view.volumes} == {"dshm": "emptyDir", "hf-cache": "emptyDir"}
    assert vllm.ports[0].name == "http" and vllm.ports[0].container_port == 8000
    assert vllm.requests["nvidia.com/gpu"] == "1"


def test_kserve_predictor_resolves_runtime_image_and_storage_uri(load: Load) -> None:
    loaded = load("kserve-inferenceservice.yaml")
    predictor, transformer = loaded.pods()
    assert predictor.component == "predictor" and transformer.component == "transformer"
    assert predictor.labels["serving.kserve.io/inferenceservice"] == "qwen-chat"
    assert predictor.labels["component"] == "predictor"
    assert predictor.labels["team"] == "assistants"
    assert predictor.model_uris == ("hf://Qwen/Qwen2.5-7B-Instruct",)
    assert predictor.runtime == "kserve-huggingfaceserver"
    assert predictor.service_account_name == "qwen-sa"
    [main] = predictor.containers
    # Image and security context come from the ClusterServingRuntime, args and limits from the ISVC.
    assert main.name == "kserve-container"
    assert main.image == "kserve/huggingfaceserver:v0.14.1"
    assert main.allow_privilege_escalation is False
    assert "--trust_remote_code" in main.args
    assert main.limits["nvidia.com/gpu"] == "1" and main.limits["memory"] == "24Gi"
    assert transformer.containers[0].image == "registry.example.com/assistants/prompt-guard:1.2.0"


def test_kserve_without_runtimes_keeps_what_the_isvc_states(load: Load) -> None:
    loaded = load("kserve-inferenceservice.yaml")
    loaded.runtimes = {}
    predictor, _ = loaded.pods()
    [main] = predictor.containers
    assert main.image == ""  # unknown until the runtime is known; image checks skip it
    assert predictor.runtime == "huggingface"


def test_kserve_legacy_framework_and_explainer() -> None:
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {
            "predictor": {"sklearn": {"storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}},
            "explainer": {"containers": [{"name": "explainer", "image": "seldonio/alibiexplainer:0.4.0"}]},
        },
    }
    predictor, explainer = build_pod_specs(isvc)
    assert predictor.runtime == "sklearn"
    assert predictor.model_uris == ("gs://kfserving-examples/models/sklearn/1.0/model",)
    assert predictor.containers[0].name == "kserve-container"
    assert explainer.component == "explainer" and explainer.containers[0].image.startswith("seldonio/")


def test_ray_cluster_yields_head_and_worker_groups(load: Load) -> None:
    head, worker = load("ray-cluster.yaml").pods()
    assert (head.component, worker.component) == ("head", "worker/gpu")
    assert head.containers[0].name == "ray-head"


def test_kubeflow_training_replica_specs() -> None:
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "ft", "namespace": "train"},
        "spec": {
            "pytorchReplicaSpecs": {
                "Worker": {
                    "replicas": 3,
                    "template": {"spec": {"containers": [{"name": "pytorch", "image": "x:1"}]}},
                },
                "Master": {
                    "replicas": 1,
                    "template": {"spec": {"containers": [{"name": "pytorch", "image": "x:1"}]}},
                },
            }
        },
    }
    assert [v.component for v in build_pod_specs(job)] == ["Master", "Worker"]


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {},
        {"kind": "Deployment"},
        {"kind": "Deployment", "spec": {"template": "nope"}},
        {"kind": "Pod", "metadata": {"name": 3}, "spec": {"containers": "x"}},
        {"kind": "ConfigMap", "data": {"a": "b"}},
        {"kind": "InferenceService", "apiVersion": "serving.kserve.io/v1beta1", "spec": {"predictor": []}},
    ],
)
def test_malformed_objects_never_raise(obj: Any) -> None:
    views = build_pod_specs(obj)
    assert all(isinstance(v, PodTemplateView) for v in views)
    assert all(not v.containers for v in views)


def test_wrong_field_types_are_treated_as_absent() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": 1}},
        "spec": {
            "hostNetwork": "yes",
            "containers": [
                {
                    "name": "c",
                    "image": "x:1",
                    "securityContext": {"privileged": "true", "runAsUser": "0"},
                    "env": [{"name": "A"}, {"value": "no-name"}, "junk"],
                    "ports": [{"containerPort": "http"}],
                }
            ],
        },
    }
    [view] = build_pod_specs(pod)
    [c] = view.containers
    assert view.host_network is False  # only a real boolean counts
    assert c.privileged is None
    assert c.run_as_user == 0  # numeric strings are numbers
    assert [e.name for e in c.env] == ["A"] and c.env[0].value == ""
    assert c.ports == ()
    assert view.labels == {"a": "1"}


def test_views_are_immutable_and_comparable(load: Load) -> None:
    a = load("hardened-vllm.yaml").pods()
    b = load("hardened-vllm.yaml").pods()
    assert a == b
    with pytest.raises(ValueError, match="frozen"):
        a[0].name = "other"
