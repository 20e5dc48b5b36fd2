"""OPA data documents for the ``aitrust.authz`` policy.

Layout under ``data.aitrust_data``::

    workloads[<ns>][<name>] = {tier, score, mode, grants: {"<Kind>/<ns>/<name>": {allowed, reason}},
                               serviceAccounts: [...]}
    subjects[<ns>][<serviceAccount>] = [<workload names>]
    meta = {revision: <str>}   # written by the operator, read back to notice an OPA restart
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aitrust.core.effective import EffectiveTrust

# Not under ``data.aitrust``: OPA checks every data write against the policy packages, and reads
# (deep-copies) the data under each package prefix to do so. With the data below the package's
# own prefix, one incremental write cost OPA about 0.5 s of CPU at 5,000 workloads.
OPA_ROOT = "aitrust_data"


def render_opa_workload(eff: EffectiveTrust) -> tuple[list[str], dict[str, Any]]:
    """Path segments from the data root and the document, for ``PUT /v1/data/<segments joined by />``."""
    doc: dict[str, Any] = {
        "tier": eff.tier.value,
        "score": eff.score,
        "mode": eff.mode.value,
        "grants": {
            g.target: {"allowed": g.allowed, "reason": g.reason}
            for g in sorted(eff.grants, key=lambda g: g.key)
        },
        "serviceAccounts": sorted(set(eff.service_accounts)),
    }
    return [OPA_ROOT, "workloads", eff.namespace, eff.name], doc


def render_opa_subjects(effs: Iterable[EffectiveTrust]) -> dict[str, dict[str, list[str]]]:
    """Service account to workload names, per namespace (the document at ``data.aitrust_data.subjects``)."""
    index: dict[str, dict[str, set[str]]] = {}
    for eff in effs:
        for sa in eff.service_accounts:
            index.setdefault(eff.namespace, {}).setdefault(sa, set()).add(eff.name)
    return {ns: {sa: sorted(index[ns][sa]) for sa in sorted(index[ns])} for ns in sorted(index)}


def opa_subjects_path(namespace: str) -> list[str]:
    return [OPA_ROOT, "subjects", namespace]


def render_opa_data(effs: Iterable[EffectiveTrust], revision: str) -> dict[str, Any]:
    """The whole document at ``data.aitrust_data`` (``PUT /v1/data/aitrust_data``), for a full re-sync."""
    effs = list(effs)
    workloads: dict[str, dict[str, Any]] = {}
    for eff in sorted(effs, key=lambda e: (e.namespace, e.name)):
        _, doc = render_opa_workload(eff)
        workloads.setdefault(eff.namespace, {})[eff.name] = doc
    return {"workloads": workloads, "subjects": render_opa_subjects(effs), "meta": {"revision": revision}}
