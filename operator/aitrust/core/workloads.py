"""Pod templates out of workload objects, as small immutable views the posture checks read.

Input is the plain dict the API server returns (Pod, Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job, CronJob, KServe InferenceService, and a few common AI controllers that
embed a pod template). Malformed or partial objects never raise: a field of the wrong
type is treated as absent, since posture scoring must not fail on odd manifests.

The effective security context of every container (container fields over pod fields) is
resolved here once, so the checks are attribute reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitrust.core.compact import share_field_sets

__all__ = [
    "ContainerPortView",
    "ContainerView",
    "EnvVarView",
    "PodTemplateView",
    "PodViewCache",
    "VolumeMountView",
    "VolumeView",
    "build_pod_specs",
    "object_version",
    "pod_views",
]

ContainerKind = Literal["container", "init", "sidecar", "ephemeral"]
VolumeType = Literal[
    "hostPath", "emptyDir", "persistentVolumeClaim", "secret", "configMap", "projected", "nfs", "csi", "other"
]
EnvSource = Literal["value", "secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef", "unknown"]

KSERVE_GROUP = "serving.kserve.io"
KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")
# KServe's framework shorthands (v1beta1) carry storageUri plus container fields.
KSERVE_FRAMEWORKS = (
    "model",
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
    "art",
    "alibi",
)
# Pod-level fields that KServe components inline next to the framework shorthands.
_KSERVE_NON_POD_FIELDS = frozenset(
    {
        *KSERVE_FRAMEWORKS,
        "minReplicas",
        "maxReplicas",
        "scaleTarget",
        "scaleMetric",
        "scaleMetricType",
        "containerConcurrency",
        "timeout",
        "canaryTrafficPercent",
        "logger",
        "batcher",
        "labels",
        "annotations",
        "deploymentStrategy",
        "autoScaling",
        "workerSpec",
    }
)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvVarView(_View):
    name: str
    source: EnvSource
    value: str | None = None  # only for literal values
    ref_name: str | None = None  # Secret/ConfigMap name for *KeyRef


class ContainerPortView(_View):
    container_port: int
    name: str | None = None
    host_port: int | None = None
    protocol: str = "TCP"


class VolumeMountView(_View):
    name: str
    mount_path: str
    read_only: bool = False


class VolumeView(_View):
    name: str
    type: VolumeType
    host_path: str | None = None
    claim_name: str | None = None
    read_only: bool = False


class ContainerView(_View):
    """One container with its pod-level security settings already folded in."""

    name: str
    kind: ContainerKind
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVarView, ...] = ()
    env_from: tuple[tuple[str, str], ...] = ()  # (secretRef|configMapRef, name)
    ports: tuple[ContainerPortView, ...] = ()
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)
    volume_mounts: tuple[VolumeMountView, ...] = ()
    privileged: bool | None = None
    allow_privilege_escalation: bool | None = None
    run_as_user: int | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    seccomp_profile: str | None = None  # RuntimeDefault, Localhost or Unconfined
    apparmor_profile: str | None = None  # RuntimeDefault, Localhost or Unconfined
    selinux_type: str | None = None


class PodTemplateView(_View):
    """The pod a workload object would create, with where it came from."""

    kind: str  # kind of the owning object
    name: str
    namespace: str
    component: str | None = None  # predictor/transformer/explainer, leader/worker, ...
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    service_account_name: str | None = None
    automount_service_account_token: bool | None = None
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    volumes: tuple[VolumeView, ...] = ()
    containers: tuple[ContainerView, ...] = ()
    model_uris: tuple[str, ...] = ()  # storageUri(s) of KServe models
    runtime: str | None = None  # KServe runtime or model format
    spec: dict[str, Any] = Field(default_factory=dict)  # the (synthesised) pod spec, raw


# --- defensive accessors -------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    # ``type() is dict`` first: the ABC isinstance check is comparatively slow.
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str_dict(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _map(value).items() if v is not None}


def _str_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in _list(value) if isinstance(v, (str, int, float)))


# --- containers ------------------------------------------------------------------------


def _env(container: Mapping[str, Any]) -> tuple[EnvVarView, ...]:
    out: list[EnvVarView] = []
    for item in _list(container.get("env")):
        item = _map(item)
        name = _str(item.get("name"))
        if not name:
            continue
        value_from = _map(item.get("valueFrom"))
        if value_from:
            source: EnvSource = "unknown"
            ref_name: str | None = None
            for key in ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef"):
                if key in value_from:
                    source = key
                    ref_name = _str(_map(value_from[key]).get("name"))
                    break
            out.append(EnvVarView(name=name, source=source, ref_name=ref_name))
        else:
            raw = item.get("value")
            out.append(EnvVarView(name=name, source="value", value="" if raw is None else str(raw)))
    return tuple(out)


def _env_from(container: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for item in _list(container.get("envFrom")):
        item = _map(item)
        for key in ("secretRef", "configMapRef"):
            name = _str(_map(item.get(key)).get("name"))
            if name:
                out.append((key, name))
    return tuple(out)


def _ports(container: Mapping[str, Any]) -> tuple[ContainerPortView, ...]:
    out: list[ContainerPortView] = []
    for item in _list(container.get("ports")):
        item = _map(item)
        port = _int(item.get("containerPort"))
        if port is None:
            continue
        out.append(
            ContainerPortView(
                container_port=port,
                name=_str(item.get("name")),
                host_port=_int(item.get("hostPort")) or None,
                protocol=_str(item.get("protocol")) or "TCP",
            )
        )
    return tuple(out)


def _mounts(container: Mapping[str, Any]) -> tuple[VolumeMountView, ...]:
    out: list[VolumeMountView] = []
    for item in _list(container.get("volumeMounts")):
        item = _map(item)
        name, path = _str(item.get("name")), _str(item.get("mountPath"))
        if name and path:
            out.append(
                VolumeMountView(name=name, mount_path=path, read_only=_bool(item.get("readOnly")) is True)
            )
    return tuple(out)


def _pick(key: str, container_ctx: Mapping[str, Any], pod_ctx: Mapping[str, Any]) -> Any:
    return container_ctx[key] if key in container_ctx else pod_ctx.get(key)


def _apparmor(
    name: str, container_ctx: Mapping[str, Any], pod_ctx: Mapping[str, Any], annotations: Mapping[str, str]
) -> str | None:
    profile = _map(container_ctx.get("appArmorProfile")) or _map(pod_ctx.get("appArmorProfile"))
    kind = _str(profile.get("type"))
    if kind:
        return kind
    # The pre-1.30 annotation form is still common in charts.
    legacy = annotations.get(f"container.apparmor.security.beta.kubernetes.io/{name}")
    if legacy is None:
        return None
    if legacy == "unconfined":
        return "Unconfined"
    if legacy == "runtime/default":
        return "RuntimeDefault"
    return "Localhost" if legacy.startswith("localhost/") else legacy


def _container(
    raw: Mapping[str, Any], kind: ContainerKind, pod_spec: Mapping[str, Any], annotations: Mapping[str, str]
) -> ContainerView:
    pod_ctx = _map(pod_spec.get("securityContext"))
    ctx = _map(raw.get("securityContext"))
    caps = _map(ctx.get("capabilities"))
    seccomp = _map(ctx.get("seccompProfile")) or _map(pod_ctx.get("seccompProfile"))
    selinux = _map(ctx.get("seLinuxOptions")) or _map(pod_ctx.get("seLinuxOptions"))
    resources = _map(raw.get("resources"))
    name = _str(raw.get("name")) or ""
    return ContainerView(
        name=name,
        kind=kind,
        image=_str(raw.get("image")) or "",
        command=_str_tuple(raw.get("command")),
        args=_str_tuple(raw.get("args")),
        env=_env(raw),
        env_from=_env_from(raw),
        ports=_ports(raw),
        requests=_str_dict(resources.get("requests")),
        limits=_str_dict(resources.get("limits")),
        volume_mounts=_mounts(raw),
        privileged=_bool(ctx.get("privileged")),
        allow_privilege_escalation=_bool(ctx.get("allowPrivilegeEscalation")),
        run_as_user=_int(_pick("runAsUser", ctx, pod_ctx)),
        run_as_non_root=_bool(_pick("runAsNonRoot", ctx, pod_ctx)),
        read_only_root_filesystem=_bool(ctx.get("readOnlyRootFilesystem")),
        capabilities_add=tuple(str(c).upper().removeprefix("CAP_") for c in _list(caps.get("add"))),
        capabilities_drop=tuple(str(c).upper().removeprefix("CAP_") for c in _list(caps.get("drop"))),
        seccomp_profile=_str(seccomp.get("type")),
        apparmor_profile=_apparmor(name, ctx, pod_ctx, annotations),
        selinux_type=_str(selinux.get("type")),
    )


def _volume(raw: Mapping[str, Any]) -> VolumeView | None:
    name = _str(raw.get("name"))
    if not name:
        return None
    if "hostPath" in raw:
        return VolumeView(name=name, type="hostPath", host_path=_str(_map(raw["hostPath"]).get("path")) or "")
    if "persistentVolumeClaim" in raw:
        claim = _map(raw["persistentVolumeClaim"])
        return VolumeView(
            name=name,
            type="persistentVolumeClaim",
            claim_name=_str(claim.get("claimName")),
            read_only=_bool(claim.get("readOnly")) is True,
        )
    for key in ("emptyDir", "secret", "configMap", "projected", "nfs", "csi"):
        if key in raw:
            read_only = _bool(_map(raw[key]).get("readOnly")) is True
            return VolumeView(name=name, type=key, read_only=read_only)
    return VolumeView(name=name, type="other")


def _pod_view(
    *,
    kind: str,
    name: str,
    namespace: str,
    component: str | None,
    pod_meta: Mapping[str, Any],
    pod_spec: Mapping[str, Any],
    model_uris: Iterable[str] = (),
    runtime: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> PodTemplateView:
    labels = _str_dict(pod_meta.get("labels"))
    if extra_labels:
        labels.update(extra_labels)
    annotations = _str_dict(pod_meta.get("annotations"))
    containers: list[ContainerView] = []
    for raw in _list(pod_spec.get("initContainers")):
        raw = _map(raw)
        # Native sidecars (restartPolicy: Always) run for the pod's lifetime.
        kind_: ContainerKind = "sidecar" if raw.get("restartPolicy") == "Always" else "init"
        containers.append(_container(raw, kind_, pod_spec, annotations))
    for raw in _list(pod_spec.get("containers")):
        containers.append(_container(_map(raw), "container", pod_spec, annotations))
    for raw in _list(pod_spec.get("ephemeralContainers")):
        containers.append(_container(_map(raw), "ephemeral", pod_spec, annotations))
    volumes = tuple(
        v for v in (_volume(_map(raw)) for raw in _list(pod_spec.get("volumes"))) if v is not None
    )
    return PodTemplateView(
        kind=kind,
        name=name,
        namespace=namespace,
        component=component,
        labels=labels,
        annotations=annotations,
        service_account_name=_str(pod_spec.get("serviceAccountName")) or _str(pod_spec.get("serviceAccount")),
        automount_service_account_token=_bool(pod_spec.get("automountServiceAccountToken")),
        host_network=_bool(pod_spec.get("hostNetwork")) is True,
        host_pid=_bool(pod_spec.get("hostPID")) is True,
        host_ipc=_bool(pod_spec.get("hostIPC")) is True,
        volumes=volumes,
        containers=tuple(containers),
        model_uris=tuple(model_uris),
        runtime=runtime,
        spec=dict(pod_spec),
    )


# --- KServe ------------------------------------------------------------------------------


def _merge_container(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay an InferenceService container onto its ServingRuntime container, as KServe does."""
    merged = dict(base)
    for key, value in override.items():
        if key in ("env", "volumeMounts", "ports") and isinstance(value, list):
            by_name = {_map(i).get("name", id(i)): i for i in _list(merged.get(key))}
            for item in value:
                by_name[_map(item).get("name", id(item))] = item
            merged[key] = list(by_name.values())
        elif key == "resources" and isinstance(value, Mapping):
            res = dict(_map(merged.get("resources")))
            for part in ("requests", "limits"):
                if part in value:
                    res[part] = {**_map(res.get(part)), **_map(value[part])}
            merged["resources"] = res
        elif value is not None:
            merged[key] = value
    return merged


def _find_runtime(
    model: Mapping[str, Any], runtimes: Mapping[str, Mapping[str, Any]]
) -> tuple[str | None, Mapping[str, Any]]:
    """The ServingRuntime an InferenceService model would use: named, else auto-selected by format."""
    named = _str(model.get("runtime"))
    if named:
        return named, _map(runtimes.get(named))
    fmt = _str(_map(model.get("modelFormat")).get("name"))
    if not fmt:
        return None, {}
    for rt_name in sorted(runtimes):
        spec = _map(_map(runtimes[rt_name]).get("spec")) or _map(runtimes[rt_name])
        for supported in _list(spec.get("supportedModelFormats")):
            supported = _map(supported)
            if supported.get("name") == fmt and supported.get("autoSelect") is True:
                return rt_name, _map(runtimes[rt_name])
    return fmt, {}


def _kserve_views(
    obj: Mapping[str, Any], name: str, namespace: str, runtimes: Mapping[str, Mapping[str, Any]]
) -> list[PodTemplateView]:
    meta = _map(obj.get("metadata"))
    spec = _map(obj.get("spec"))
    views: list[PodTemplateView] = []
    for component in KSERVE_COMPONENTS:
        comp = _map(spec.get(component))
        if not comp:
            continue
        pod_spec: dict[str, Any] = {k: v for k, v in comp.items() if k not in _KSERVE_NON_POD_FIELDS}
        containers = [dict(_map(c)) for c in _list(comp.get("containers"))]
        model_uris: list[str] = []
        runtime: str | None = None
        for framework in KSERVE_FRAMEWORKS:
            fw = _map(comp.get(framework))
            if not fw:
                continue
            storage = _str(fw.get("storageUri"))
            if storage:
                model_uris.append(storage)
            for extra in _list(fw.get("storageUris")):
                uri = _str(_map(extra).get("uri"))
                if uri:
                    model_uris.append(uri)
            base: Mapping[str, Any] = {}
            if framework == "model":
                runtime, rt_obj = _find_runtime(fw, runtimes)
                rt_spec = _map(rt_obj.get("spec")) or rt_obj
                rt_containers = _list(rt_spec.get("containers"))
                base = _map(rt_containers[0]) if rt_containers else {}
                if not pod_spec.get("volumes") and rt_spec.get("volumes"):
                    pod_spec["volumes"] = rt_spec.get("volumes")
            else:
                runtime = framework
            own = {
                k: v
                for k, v in fw.items()
                if k not in ("storageUri", "storageUris", "modelFormat", "runtime")
            }
            main = _merge_container(base, own)
            main.setdefault("name", "kserve-container")
            # An explicit kserve-container in containers[] overrides the generated one.
            if not any(_map(c).get("name") == main["name"] for c in containers):
                containers.insert(0, main)
            break
        pod_spec["containers"] = containers
        comp_meta = {
            "labels": {**_str_dict(meta.get("labels")), **_str_dict(comp.get("labels"))},
            "annotations": {**_str_dict(meta.get("annotations")), **_str_dict(comp.get("annotations"))},
        }
        views.append(
            _pod_view(
                kind=_str(obj.get("kind")) or "InferenceService",
                name=name,
                namespace=namespace,
                component=component,
                pod_meta=comp_meta,
                pod_spec=pod_spec,
                model_uris=model_uris,
                runtime=runtime,
                # Labels KServe puts on the pods it creates; Services select on them.
                extra_labels={"serving.kserve.io/inferenceservice": name, "component": component},
            )
        )
    return views


# --- entry point -------------------------------------------------------------------------


def _templates(obj: Mapping[str, Any]) -> list[tuple[str | None, Mapping[str, Any]]]:
    """(component, pod template) pairs of objects that embed templates somewhere other than spec.template."""
    kind = _str(obj.get("kind")) or ""
    spec = _map(obj.get("spec"))
    if kind == "CronJob":
        return [(None, _map(_map(_map(spec.get("jobTemplate")).get("spec")).get("template")))]
    if "template" in spec:
        return [(None, _map(spec.get("template")))]
    out: list[tuple[str | None, Mapping[str, Any]]] = []
    # Kubeflow training operators: spec.<x>ReplicaSpecs.<role>.template
    for key, value in spec.items():
        if isinstance(key, str) and key.endswith("ReplicaSpecs"):
            for role, replica in sorted(_map(value).items()):
                out.append((str(role), _map(_map(replica).get("template"))))
    # KubeRay: head group and worker groups.
    if "headGroupSpec" in spec:
        out.append(("head", _map(_map(spec.get("headGroupSpec")).get("template"))))
        for group in _list(spec.get("workerGroupSpecs")):
            group = _map(group)
            out.append((f"worker/{group.get('groupName', '')}", _map(group.get("template"))))
    # LeaderWorkerSet.
    lws = _map(spec.get("leaderWorkerTemplate"))
    if lws:
        for role in ("leaderTemplate", "workerTemplate"):
            if role in lws:
                out.append((role.removesuffix("Template"), _map(lws.get(role))))
    return out


def build_pod_specs(
    obj: Mapping[str, Any], runtimes: Mapping[str, Mapping[str, Any]] | None = None
) -> list[PodTemplateView]:
    """The pod template(s) ``obj`` runs, or [] when it embeds none.

    ``runtimes`` maps ServingRuntime/ClusterServingRuntime names to their objects so that an
    InferenceService's ``predictor.model`` resolves to the runtime's container image and
    settings; without them the container's image is whatever the InferenceService states.
    """
    if not isinstance(obj, Mapping):
        return []
    meta = _map(obj.get("metadata"))
    kind = _str(obj.get("kind")) or ""
    name = _str(meta.get("name")) or ""
    namespace = _str(meta.get("namespace")) or "default"
    if kind == "Pod":
        return [
            _pod_view(
                kind=kind,
                name=name,
                namespace=namespace,
                component=None,
                pod_meta=meta,
                pod_spec=_map(obj.get("spec")),
            )
        ]
    api_version = _str(obj.get("apiVersion")) or ""
    if kind == "InferenceService" and api_version.startswith(KSERVE_GROUP):
        return _kserve_views(obj, name, namespace, runtimes or {})
    views: list[PodTemplateView] = []
    for component, template in _templates(obj):
        pod_spec = _map(template.get("spec"))
        if not pod_spec:
            continue
        views.append(
            _pod_view(
                kind=kind,
                name=name,
                namespace=namespace,
                component=component,
                pod_meta=_map(template.get("metadata")),
                pod_spec=pod_spec,
            )
        )
    return views


# --- views of live pods, cached per (uid, resourceVersion) ------------------------------------


def object_version(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(uid, resourceVersion) of an object read from the API server, or None when either is absent."""
    meta = obj.get("metadata")
    if type(meta) is not dict and not isinstance(meta, Mapping):
        return None
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    if type(uid) is str and type(version) is str and uid and version:
        return uid, version
    return None


class PodViewCache:
    """``build_pod_specs`` of live objects, remembered per uid for its latest resourceVersion.

    The API server changes an object's resourceVersion on every write (spec, metadata or
    status), and a uid is never reused, so ``(uid, resourceVersion)`` names one content: a hit
    cannot be stale. Each uid holds only the views of the last version seen, and at most
    ``maxsize`` uids are kept (least recently used go first), so deleted pods do not pile up.
    Objects without both fields (offline manifests) are parsed every time. ``maxsize=0``
    disables caching.

    The same view objects come back on every hit, which is what makes the posture caches
    (keyed on the views) hit too. Safe to share between threads.

    Memory: about 6 KB per pod for a one-container server and 17 KB for a two-container vLLM
    pod (views plus the posture facts that live as long as they do). The default bound keeps
    the hot set (workloads whose signals re-evaluate them again and again), not every pod: a
    periodic resync of more pods than ``maxsize`` misses, which costs about 0.13 ms a pod (0.65 s
    of CPU every 30 s at 5,000 pods), where keeping them all cost 30 MB of a 250 MB budget.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, tuple[str, tuple[PodTemplateView, ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def views(self, obj: Mapping[str, Any]) -> tuple[PodTemplateView, ...]:
        key = object_version(obj) if self.maxsize > 0 else None
        if key is None:
            return tuple(build_pod_specs(obj))
        uid, version = key
        with self._lock:
            entry = self._entries.get(uid)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(uid)
                self.hits += 1
                return entry[1]
        # Built outside the lock; two threads racing on one new version both build, one wins.
        views = tuple(build_pod_specs(obj))
        for view in views:
            share_field_sets(view)
        with self._lock:
            self.misses += 1
            self._entries[uid] = (version, views)
            self._entries.move_to_end(uid)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return views


POD_VIEWS = PodViewCache()


def pod_views(obj: Mapping[str, Any]) -> tuple[PodTemplateView, ...]:
    """``build_pod_specs(obj)``, reused while the object's uid and resourceVersion stay the same."""
    return POD_VIEWS.views(obj)
