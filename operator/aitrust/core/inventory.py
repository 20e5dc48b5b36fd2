"""AI inventory: which AI components exist, and a CycloneDX 1.6 ML-BOM of them (pure).

Components: workloads the classifier calls AI (or that an AIWorkload manages), AIWorkloads
with their declared models, ModelEndpoints and DataSources. ``build_cyclonedx`` turns that
into a CycloneDX 1.6 BOM: ``machine-learning-model`` components for declared models (SHA-256
from their digests, a model card with what is known), ``data`` components for DataSources,
``services`` for ModelEndpoints, ``application`` components for AIWorkloads and workloads,
``container`` components for images, and dependencies from each AIWorkload to the models,
endpoints, data sources and workloads it uses, and from each workload to its images and to
what its AIWorkload declares.

The serial number and timestamp come from the caller (no clock, no randomness here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aitrust.api.v1alpha1 import AIWorkload, DataSource, ModelEndpoint, Tier, WorkloadKind
from aitrust.core.classify import Category, classify_workload, pod_specs_of
from aitrust.core.posture import parse_image
from aitrust.core.scan import is_workload_object
from aitrust.core.selectors import selector_matches

__all__ = [
    "CYCLONEDX_SPEC_VERSION",
    "AIWorkloadEntry",
    "DataSourceEntry",
    "EndpointEntry",
    "Inventory",
    "ModelEntry",
    "WorkloadEntry",
    "build_cyclonedx",
    "build_inventory",
]

CYCLONEDX_SPEC_VERSION = "1.6"
CYCLONEDX_SCHEMA = "http://cyclonedx.org/schema/bom-1.6.schema.json"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class WorkloadEntry(_Out):
    namespace: str
    name: str
    kind: str
    category: Category | None
    confidence: float
    managed_by: list[str] = Field(alias="managedBy")
    images: list[str]
    evidence: list[str]


class ModelEntry(_Out):
    name: str
    source: str
    digest: str | None
    signed: bool
    signature_algorithm: str | None = Field(alias="signatureAlgorithm")
    used_by: list[str] = Field(alias="usedBy", description="AIWorkloads (namespace/name) declaring it")


class EndpointEntry(_Out):
    namespace: str
    name: str
    provider: str
    hosts: list[str]
    cidrs: list[str]
    service: str | None
    ports: list[int]
    region: str | None
    sensitivity: str
    min_tier: Tier = Field(alias="minTier")


class DataSourceEntry(_Out):
    namespace: str
    name: str
    type: str
    hosts: list[str]
    cidrs: list[str]
    service: str | None
    ports: list[int]
    region: str | None
    sensitivity: str
    min_tier: Tier = Field(alias="minTier")


class AIWorkloadEntry(_Out):
    namespace: str
    name: str
    kind: WorkloadKind
    tier: Tier | None
    trust_score: int | None = Field(alias="trustScore")
    models: list[str]
    model_endpoints: list[str] = Field(alias="modelEndpoints")
    data_sources: list[str] = Field(alias="dataSources")
    workloads: list[str]


class Inventory(_Out):
    workloads: list[WorkloadEntry]
    ai_workloads: list[AIWorkloadEntry] = Field(alias="aiWorkloads")
    models: list[ModelEntry]
    model_endpoints: list[EndpointEntry] = Field(alias="modelEndpoints")
    data_sources: list[DataSourceEntry] = Field(alias="dataSources")
    problems: list[str]


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ns_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _map(obj.get("metadata"))
    ns = meta.get("namespace")
    name = meta.get("name")
    return (ns if isinstance(ns, str) and ns else "default", name if isinstance(name, str) else "")


def _model_key(name: str, digest: str | None, source: str) -> str:
    return digest or f"{name}@{source}"


def _target_fields(target: ModelEndpoint | DataSource) -> dict[str, Any]:
    spec = target.spec
    return {
        "namespace": target.metadata.namespace,
        "name": target.metadata.name,
        "hosts": list(spec.hosts),
        "cidrs": list(spec.cidrs),
        "service": f"{spec.service.name}:{spec.service.port}" if spec.service else None,
        "ports": sorted({p.port for p in spec.ports}),
        "region": spec.region,
        "sensitivity": spec.sensitivity.value,
        "min_tier": spec.min_tier,
    }


def build_inventory(objects: Iterable[Mapping[str, Any]]) -> Inventory:
    """The AI components among ``objects`` (plain Kubernetes objects, e.g. parsed manifests)."""
    ai_workloads: list[AIWorkload] = []
    endpoints: dict[tuple[str, str], ModelEndpoint] = {}
    sources: dict[tuple[str, str], DataSource] = {}
    candidates: list[tuple[Mapping[str, Any], Any]] = []
    problems: list[str] = []
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        kind = obj.get("kind")
        ns, name = _ns_name(obj)
        try:
            if kind == "AIWorkload":
                ai_workloads.append(AIWorkload.model_validate(obj))
            elif kind == "ModelEndpoint":
                endpoints.setdefault((ns, name), ModelEndpoint.model_validate(obj))
            elif kind == "DataSource":
                sources.setdefault((ns, name), DataSource.model_validate(obj))
            elif isinstance(kind, str):
                views = pod_specs_of(obj)
                if is_workload_object(obj, views):
                    candidates.append((obj, views))
        except ValidationError as exc:
            problems.append(f"{kind} {ns}/{name}: {exc.error_count()} validation error(s), skipped")

    workloads: list[WorkloadEntry] = []
    matched: dict[tuple[str, str], list[str]] = {}
    seen: set[tuple[str, str, str]] = set()
    for obj, views in candidates:
        ns, name = _ns_name(obj)
        kind = str(obj.get("kind"))
        if (ns, kind, name) in seen:
            problems.append(f"{kind} {ns}/{name}: listed more than once, first kept")
            continue
        seen.add((ns, kind, name))
        managers = sorted(
            a.metadata.name
            for a in ai_workloads
            if a.metadata.namespace == ns and any(selector_matches(a.spec.selector, v.labels) for v in views)
        )
        cls = classify_workload(obj, views=views)
        if not cls.is_ai and not managers:
            continue
        for manager in managers:
            matched.setdefault((ns, manager), []).append(f"{kind}/{name}")
        images = sorted({c.image for v in views for c in v.containers if c.image})
        workloads.append(
            WorkloadEntry(
                namespace=ns,
                name=name,
                kind=kind,
                category=cls.category,
                confidence=cls.confidence,
                managed_by=managers,
                images=images,
                evidence=cls.evidence,
            )
        )

    models: dict[str, dict[str, Any]] = {}
    ai_entries: list[AIWorkloadEntry] = []
    named: set[tuple[str, str]] = set()
    for a in ai_workloads:
        ns, name = a.metadata.namespace, a.metadata.name
        if (ns, name) in named:
            problems.append(f"AIWorkload {ns}/{name}: listed more than once, first kept")
            continue
        named.add((ns, name))
        for model in a.spec.models:
            key = _model_key(model.name, model.digest, model.source)
            entry = models.setdefault(
                key,
                {
                    "name": model.name,
                    "source": model.source,
                    "digest": model.digest,
                    "signed": model.signature is not None,
                    "signature_algorithm": model.signature.algorithm if model.signature else None,
                    "used_by": [],
                },
            )
            entry["used_by"].append(f"{ns}/{name}")
        ai_entries.append(
            AIWorkloadEntry(
                namespace=ns,
                name=name,
                kind=a.spec.kind,
                tier=a.status.tier,
                trust_score=a.status.trust_score,
                models=[_model_key(m.name, m.digest, m.source) for m in a.spec.models],
                model_endpoints=[f"{r.namespace or ns}/{r.name}" for r in a.spec.access.model_endpoints],
                data_sources=[f"{r.namespace or ns}/{r.name}" for r in a.spec.access.data_sources],
                workloads=matched.get((ns, name), []),
            )
        )
    return Inventory(
        workloads=sorted(workloads, key=lambda w: (w.namespace, w.kind, w.name)),
        ai_workloads=sorted(ai_entries, key=lambda a: (a.namespace, a.name)),
        models=[ModelEntry(**models[k]) for k in sorted(models)],
        model_endpoints=sorted(
            (EndpointEntry(provider=e.spec.provider.value, **_target_fields(e)) for e in endpoints.values()),
            key=lambda e: (e.namespace, e.name),
        ),
        data_sources=sorted(
            (DataSourceEntry(type=d.spec.type.value, **_target_fields(d)) for d in sources.values()),
            key=lambda d: (d.namespace, d.name),
        ),
        problems=problems,
    )


# --- CycloneDX -------------------------------------------------------------------------------

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"{}|\\^`]+$")
_HEX = re.compile(r"^sha256:([a-f0-9]{64})$")


def _props(*pairs: tuple[str, Any]) -> list[dict[str, str]]:
    return [{"name": k, "value": str(v)} for k, v in pairs if v is not None and v != "" and v != []]


def _model_ref(key: str) -> str:
    return f"model:{key}"


def _image_component(image: str) -> dict[str, Any]:
    ref = parse_image(image)
    component: dict[str, Any] = {
        "type": "container",
        "bom-ref": f"image:{image}",
        "name": ref.name,
    }
    if ref.tag:
        component["version"] = ref.tag
    digest = _HEX.match(ref.digest or "")
    if digest:
        component["hashes"] = [{"alg": "SHA-256", "content": digest.group(1)}]
    return component


def _model_component(model: ModelEntry, datasets: list[str], use_cases: list[str]) -> dict[str, Any]:
    key = _model_key(model.name, model.digest, model.source)
    revision = model.source.rpartition("@")[2] if "@" in model.source else None
    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": _model_ref(key),
        "name": model.name,
    }
    if revision:
        component["version"] = revision
    digest = _HEX.match(model.digest or "")
    if digest:
        component["hashes"] = [{"alg": "SHA-256", "content": digest.group(1)}]
    if _URI.match(model.source):
        component["externalReferences"] = [{"type": "distribution", "url": model.source}]
    card: dict[str, Any] = {"bom-ref": f"modelcard:{key}"}
    if datasets:
        # A model a training workload writes is trained on what that workload reads.
        card["modelParameters"] = {"datasets": [{"ref": ref} for ref in datasets]}
    if use_cases:
        card["considerations"] = {"useCases": use_cases}
    card["properties"] = _props(
        ("aitrust:source", model.source),
        ("aitrust:signed", str(model.signed).lower()),
        ("aitrust:signatureAlgorithm", model.signature_algorithm),
        ("aitrust:declaredBy", ", ".join(model.used_by)),
    )
    component["modelCard"] = card
    return component


def _endpoint_urls(e: EndpointEntry | DataSourceEntry) -> list[str]:
    ports = e.ports or [443]
    urls = [f"https://{h}" if ports == [443] else f"https://{h}:{ports[0]}" for h in e.hosts]
    if e.service:
        name, _, port = e.service.partition(":")
        urls.append(f"http://{name}.{e.namespace}.svc:{port}")
    return [u for u in urls if _URI.match(u)]


def build_cyclonedx(
    inventory: Inventory,
    serial_number: str,
    timestamp: str,
    tool_version: str,
    subject: str = "kubernetes",
) -> dict[str, Any]:
    """A CycloneDX 1.6 ML-BOM (JSON object) of ``inventory``.

    ``serial_number`` is an RFC 4122 UUID (the ``urn:uuid:`` prefix is added), ``timestamp``
    RFC 3339; ``subject`` names what was inventoried (a cluster context or "manifests").
    """
    components: list[dict[str, Any]] = []
    dependencies: dict[str, list[str]] = {}
    images: dict[str, dict[str, Any]] = {}

    for w in inventory.workloads:
        ref = f"workload:{w.namespace}/{w.kind}/{w.name}"
        components.append(
            {
                "type": "application",
                "bom-ref": ref,
                "group": w.namespace,
                "name": w.name,
                "description": f"Kubernetes {w.kind}, classified {w.category or 'AI'} "
                f"(confidence {w.confidence:.2f})",
                "properties": _props(
                    ("k8s:kind", w.kind),
                    ("k8s:namespace", w.namespace),
                    ("aitrust:category", w.category),
                    ("aitrust:confidence", f"{w.confidence:.3f}"),
                    ("aitrust:managedBy", ", ".join(w.managed_by)),
                ),
            }
        )
        for image in w.images:
            images.setdefault(image, _image_component(image))
        dependencies[ref] = [f"image:{i}" for i in w.images]

    sources = {f"{d.namespace}/{d.name}": d for d in inventory.data_sources}
    endpoints = {f"{e.namespace}/{e.name}": e for e in inventory.model_endpoints}
    trained_on: dict[str, list[str]] = {}
    use_cases: dict[str, list[str]] = {}
    for a in inventory.ai_workloads:
        ref = f"aiworkload:{a.namespace}/{a.name}"
        components.append(
            {
                "type": "application",
                "bom-ref": ref,
                "group": a.namespace,
                "name": a.name,
                "description": f"aitrust AIWorkload ({a.kind.value})",
                "properties": _props(
                    ("aitrust:kind", a.kind.value),
                    ("aitrust:tier", a.tier.value if a.tier else None),
                    ("aitrust:trustScore", a.trust_score),
                    ("k8s:namespace", a.namespace),
                ),
            }
        )
        uses = [_model_ref(m) for m in a.models]
        uses += [f"endpoint:{e}" for e in a.model_endpoints if e in endpoints]
        uses += [f"datasource:{d}" for d in a.data_sources if d in sources]
        managed = [f"workload:{a.namespace}/{w}" for w in a.workloads]
        dependencies[ref] = list(dict.fromkeys([*uses, *managed]))
        # The pods of the workloads it manages are what actually load and call these.
        for workload in managed:
            if workload in dependencies:
                dependencies[workload] = list(dict.fromkeys([*dependencies[workload], *uses]))
        for m in a.models:
            use_cases.setdefault(m, []).append(f"{a.kind.value} (AIWorkload {a.namespace}/{a.name})")
        if a.kind is WorkloadKind.TRAINING:
            for m in a.models:
                trained_on.setdefault(m, []).extend(f"datasource:{d}" for d in a.data_sources if d in sources)

    for model in inventory.models:
        key = _model_key(model.name, model.digest, model.source)
        datasets = list(dict.fromkeys(trained_on.get(key, [])))
        components.append(_model_component(model, datasets, use_cases.get(key, [])))
        dependencies.setdefault(_model_ref(key), [])

    for d in inventory.data_sources:
        ref = f"datasource:{d.namespace}/{d.name}"
        data: dict[str, Any] = {
            "type": "dataset",
            "name": d.name,
            "classification": d.sensitivity,
            "description": f"{d.type} data source",
        }
        urls = _endpoint_urls(d)
        if urls:
            data["contents"] = {"url": urls[0]}
        components.append(
            {
                "type": "data",
                "bom-ref": ref,
                "group": d.namespace,
                "name": d.name,
                "data": [data],
                "properties": _props(
                    ("aitrust:type", d.type),
                    ("aitrust:minTier", d.min_tier.value),
                    ("aitrust:region", d.region),
                    ("aitrust:hosts", ", ".join(d.hosts)),
                    ("aitrust:cidrs", ", ".join(d.cidrs)),
                ),
            }
        )
        dependencies.setdefault(ref, [])

    services: list[dict[str, Any]] = []
    for e in inventory.model_endpoints:
        ref = f"endpoint:{e.namespace}/{e.name}"
        service: dict[str, Any] = {
            "bom-ref": ref,
            "provider": {"name": e.provider},
            "group": e.namespace,
            "name": e.name,
            "x-trust-boundary": e.provider != "in-cluster",
            "data": [{"flow": "bi-directional", "classification": e.sensitivity}],
            "properties": _props(
                ("aitrust:provider", e.provider),
                ("aitrust:minTier", e.min_tier.value),
                ("aitrust:region", e.region),
                ("aitrust:cidrs", ", ".join(e.cidrs)),
            ),
        }
        urls = _endpoint_urls(e)
        if urls:
            service["endpoints"] = urls
        services.append(service)
        dependencies.setdefault(ref, [])

    components.extend(images[i] for i in sorted(images))
    for image in images:
        dependencies.setdefault(f"image:{image}", [])
    bom: dict[str, Any] = {
        "$schema": CYCLONEDX_SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": CYCLONEDX_SPEC_VERSION,
        "serialNumber": f"urn:uuid:{serial_number}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "aitrust", "version": tool_version}]},
            "component": {"type": "platform", "bom-ref": "subject", "name": subject},
            "properties": _props(("aitrust:problems", "; ".join(inventory.problems))),
        },
        "components": components,
        "services": services,
        "dependencies": [{"ref": ref, "dependsOn": deps} for ref, deps in dependencies.items()],
    }
    if not bom["metadata"]["properties"]:
        del bom["metadata"]["properties"]
    return bom
