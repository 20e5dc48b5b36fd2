from pydantic import BaseModel, ConfigDict

from aitrust.core.compact import share_field_sets


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
