"""Frozen records built by the faster __init__ are the records dataclasses would build."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.records import quick_init
from engine.segments.context import EvaluationContext
from engine.state import CustomerState


def _record_class() -> Any:
    """The same frozen record class each call: one keeps the dataclass's __init__, one gets quick_init."""

    @dataclass(slots=True, frozen=True)
    class Record:
        name: str
        count: int = 0
        tags: dict[str, int] = field(default_factory=dict)
        cache: list[int] = field(default_factory=list, init=False, compare=False)
        label: str = field(default="x", init=False)

    return Record


_Plain = _record_class()
_Quick = quick_init(_record_class())


def _as_tuple(record: object) -> tuple[object, ...]:
    return tuple(getattr(record, f.name) for f in dataclasses.fields(record))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("a",), {}), (("a", 3), {}), (("a",), {"tags": {"k": 1}}), ((), {"name": "b", "count": 2})],
)
def test_a_quick_record_holds_what_the_dataclass_init_would_give(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    assert _as_tuple(_Quick(*args, **kwargs)) == _as_tuple(_Plain(*args, **kwargs))


def test_default_factories_make_a_new_value_for_each_record() -> None:
    first, second = _Quick("a"), _Quick("b")
    assert first.tags == {} and first.tags is not second.tags
    assert first.cache == [] and first.cache is not second.cache


def test_a_quick_record_stays_frozen_equal_and_hashable() -> None:
    record = _Quick("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "b"
    assert record == _Quick("a", 1) and record != _Quick("a", 2)
    assert CustomerState("c-1") == CustomerState(customer_id="c-1")


def test_wrong_arguments_fail_as_they_would_with_the_dataclass_init() -> None:
    with pytest.raises(TypeError):
        _Quick()
    with pytest.raises(TypeError):
        _Quick("a", unknown=1)
    with pytest.raises(TypeError):
        _Quick("a", label="y")


def test_the_context_keeps_its_caches_per_instance() -> None:
    context = EvaluationContext({}, 0)
    other = EvaluationContext({}, 0)
    assert context._days is not other._days and context._today is not other._today


def test_only_frozen_slotted_dataclasses_can_have_it() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        name: str

    @dataclass(slots=True)
    class NotFrozen:
        name: str

    for cls in (NoSlots, NotFrozen):
        with pytest.raises(TypeError, match="frozen dataclass with slots"):
            quick_init(cls)
