from typing import Any

from aitrust.controller.specs import WorkloadSpecs


def _body(name: str, app: str, generation: int | None = 1, uid: str = "u1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": app}
    if generation is not None:
        meta["generation"] = generation
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": meta,
        "spec": {"selector": {"matchLabels": {"app": app}}, "kind": "inference"},
        "status": {"trustScore": "not a number: status is not parsed"},
    }


def test_parses_without_status_and_reuses_the_result_per_generation() -> None:
    specs = WorkloadSpecs()
    first = specs.parse(_body("a", "x"))
    assert first is not None and first.spec.selector.match_labels == {"app": "x"}
    # Same uid and generation: the cached parse, even though the body changed otherwise.
    assert specs.parse(_body("a", "y")) is first


def test_keeps_identity_and_spec_only() -> None:
    body = _body("a", "x")
    body["metadata"] |= {"labels": {"team": "ml"}, "annotations": {"note": "big"}}
    parsed = WorkloadSpecs().parse(body)
    assert parsed is not None
    assert parsed.metadata.model_fields_set == {"name", "namespace", "uid", "generation"}
    assert (parsed.metadata.name, parsed.metadata.namespace, parsed.metadata.uid) == ("a", "ns", "u1")
    assert parsed.metadata.labels == {} and parsed.metadata.annotations == {}
    assert parsed.spec.selector.match_labels == {"app": "x"}


def test_a_new_generation_or_uid_is_parsed_again() -> None:
    specs = WorkloadSpecs()
    specs.parse(_body("a", "x"))
    bumped = specs.parse(_body("a", "y", generation=2))
    assert bumped is not None and bumped.spec.selector.match_labels == {"app": "y"}
    recreated = specs.parse(_body("a", "z", generation=2, uid="u2"))
    assert recreated is not None and recreated.spec.selector.match_labels == {"app": "z"}


def test_without_generation_the_resource_version_decides() -> None:
    specs = WorkloadSpecs()
    specs.parse(_body("a", "x", generation=None))
    again = specs.parse(_body("a", "y", generation=None))
    assert again is not None and again.spec.selector.match_labels == {"app": "y"}


def test_invalid_bodies_are_none_and_skipped_by_parse_all() -> None:
    specs = WorkloadSpecs()
    bad = _body("b", "x")
    bad["spec"]["kind"] = "not-a-kind"
    assert specs.parse(bad) is None
    assert [w.metadata.name for w in specs.parse_all([_body("a", "x"), bad])] == ["a"]


def test_forget_drops_the_cached_parse() -> None:
    specs = WorkloadSpecs()
    first = specs.parse(_body("a", "x"))
    specs.forget("ns", "a")
    assert specs.parse(_body("a", "x")) is not first
