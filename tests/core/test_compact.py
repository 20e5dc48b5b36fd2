from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from aitrust.api.v1alpha1 import Severity, TrustPolicySpec
from aitrust.core.compact import build_lean_signal, share_field_sets
from aitrust.core.rules import score_signal
from aitrust.core.signal import Signal, WorkloadHint


class Inner(BaseModel):
    model_config = ConfigDict(frozen=True)
    a: int = 0
    b: int = 0


class Outer(BaseModel):
    model_config = ConfigDict(frozen=True)
    inner: Inner
    items: tuple[Inner, ...] = ()
    c: int = 0


class Mutable(BaseModel):
    a: int = 0
    b: int = 0


def _outer(n: int) -> Outer:
    return Outer.model_validate({"inner": {"a": n}, "items": [{"a": n, "b": n}], "c": n})


def test_equal_shapes_share_one_set_and_dump_as_before() -> None:
    first, second = _outer(1), _outer(2)
    expected = first.model_dump(exclude_unset=True)
    share_field_sets(first)
    share_field_sets(second)
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.inner.__pydantic_fields_set__ is second.inner.__pydantic_fields_set__
    assert first.items[0].__pydantic_fields_set__ is second.items[0].__pydantic_fields_set__
    assert first.inner.__pydantic_fields_set__ is not first.items[0].__pydantic_fields_set__
    assert first.model_dump(exclude_unset=True) == expected
    assert first == _outer(1)


def test_a_copy_with_updates_leaves_the_shared_set_alone() -> None:
    first, second = _outer(1), _outer(2)
    share_field_sets(first)
    share_field_sets(second)
    shared = set(first.inner.__pydantic_fields_set__)
    copied = first.inner.model_copy(update={"b": 5})
    assert copied.model_fields_set == {"a", "b"}
    assert second.inner.model_fields_set == shared == {"a"}


def test_mutable_models_keep_their_own_set() -> None:
    one, two = Mutable(a=1), Mutable(a=2)
    share_field_sets(one)
    share_field_sets(two)
    assert one.__pydantic_fields_set__ is not two.__pydantic_fields_set__
    one.b = 3
    assert two.model_fields_set == {"a"}


def _alert(i: int) -> Signal:
    return Signal(
        id=f"evt-{i}",
        source="falco",
        time=datetime(2026, 11, 1, tzinfo=UTC),
        severity=Severity.LOW,
        rule="".join(["Terminal shell ", "in container"]),  # a fresh string each call, as parsed
        tags=("falco", "".join(["mitre_", "execution"])),
        target=WorkloadHint(namespace="ml", pod="agent-0", container_id="abc123"),
        evidence={"output": "shell spawned", "output_fields": {"proc.cmdline": "bash -i"}},
        references=("https://attack.mitre.org/techniques/T1059/",),
    )


def test_a_lean_signal_scores_the_same_without_what_only_the_mapper_and_people_read() -> None:
    policy = TrustPolicySpec()
    now = datetime(2026, 11, 1, 0, 5, tzinfo=UTC)
    full = _alert(1)
    lean = build_lean_signal(full)
    assert lean.evidence == {} and lean.references == () and lean.target == WorkloadHint()
    assert lean.model_dump(exclude={"evidence", "references", "target"}) == full.model_dump(
        exclude={"evidence", "references", "target"}
    )
    assert score_signal(lean, policy, now) == score_signal(full, policy, now)
    assert build_lean_signal(lean) is lean  # already lean: no copy
    assert full.evidence  # the original is untouched


def test_lean_signals_share_their_repeated_parts() -> None:
    first, second = build_lean_signal(_alert(1)), build_lean_signal(_alert(2))
    assert first.rule is second.rule
    assert first.tags[1] is second.tags[1]
    assert first.target is second.target
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert set(first.model_dump(exclude_unset=True)) == set(Signal.model_fields)  # every field still set
