"""Run the pinned helm against the chart and parse what it renders."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from aitrust.testing.testbin import find_binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "aitrust-operator"
SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))
CHART_NAME = "aitrust-operator"

# Tell `helm template` the custom resource APIs exist, as they do once the CRDs are installed.
INSTALLED_APIS = (
    "aitrust.dev/v1alpha1/TrustPolicy",
    "kopf.dev/v1/KopfPeering",
    "kopf.dev/v1/ClusterKopfPeering",
)

Manifest = dict[str, Any]


def helm(*args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [find_binary("helm"), *args]
    if kubeconfig is not None:
        argv.append(f"--kubeconfig={kubeconfig}")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def value_args(values_files: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def template(
    *,
    values_files: Sequence[Path] = (),
    sets: Sequence[str] = (),
    release: str = "ait",
    namespace: str = "aitrust-system",
    installed_apis: Sequence[str] = INSTALLED_APIS,
) -> list[Manifest]:
    """Render the chart; the manifests in order, without empty documents."""
    api_args = [f"--api-versions={api}" for api in installed_apis]
    out = helm(
        "template",
        release,
        str(CHART),
        f"--namespace={namespace}",
        *api_args,
        *value_args(values_files, sets),
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def template_error(*, sets: Sequence[str] = (), values_files: Sequence[Path] = ()) -> str:
    """stderr of a render that must fail."""
    proc = helm("template", "ait", str(CHART), *value_args(values_files, sets), check=False)
    assert proc.returncode != 0, f"render unexpectedly succeeded:\n{proc.stdout[:2000]}"
    return proc.stderr


def of_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]


def one(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, found {[m['metadata']['name'] for m in found]}"
    )
    return found[0]


def container(manifests: Sequence[Manifest]) -> dict[str, Any]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = pod["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return containers[0]


def walk_strings(value: Any) -> Iterator[str]:
    """Every string (keys included) anywhere in a nested structure."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(key)
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)


def unique_release(prefix: str = "ait") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
