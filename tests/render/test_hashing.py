from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.api.v1alpha1 import Tier
from aitrust.render.hashing import SPEC_HASH_ANNOTATION, canonical_json, manifest_hash, spec_hash
from aitrust.render.networkpolicy import render_workload_policy
from tests.render.scenarios import effective, owner_of

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _json, max_size=5))
def test_key_order_does_not_change_the_hash(spec: dict[str, Any]) -> None:
    reversed_spec = dict(reversed(list(spec.items())))
    labels = {"a": "1", "b": "2"}
    assert canonical_json(spec) == canonical_json(reversed_spec)
    assert spec_hash(spec, labels) == spec_hash(reversed_spec, dict(reversed(list(labels.items()))))


def test_hash_covers_spec_labels_and_owner() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Egress"]}
    base = spec_hash(spec, {"a": "1"}, [{"uid": "1"}])
    assert len(base) == 64
    assert int(base, 16) >= 0
    assert spec_hash({**spec, "policyTypes": ["Ingress"]}, {"a": "1"}, [{"uid": "1"}]) != base
    assert spec_hash(spec, {"a": "2"}, [{"uid": "1"}]) != base
    assert spec_hash(spec, {"a": "1"}, [{"uid": "2"}]) != base
    assert spec_hash(spec, {"a": "1"}, [{"uid": "1"}]) == base


def test_manifest_hash_ignores_the_annotation_and_other_metadata() -> None:
    eff = effective(Tier.RESTRICTED)
    manifest = render_workload_policy(eff, owner_of(eff))
    other = copy.deepcopy(manifest)
    other["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: "stale", "note": "x"}
    other["metadata"]["resourceVersion"] = "42"
    assert (
        manifest_hash(other)
        == manifest_hash(manifest)
        == manifest["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    )
    other["spec"]["egress"] = []
    assert manifest_hash(other) != manifest_hash(manifest)
