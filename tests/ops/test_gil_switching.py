"""A worker's threads take turns at the interpreter lock every millisecond (ops/gil_switching.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from ops.gil_switching import switch_often


@pytest.fixture
def restored_switch_interval() -> Iterator[None]:
    previous = sys.getswitchinterval()
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("restored_switch_interval")
def test_a_worker_hands_the_interpreter_lock_over_after_a_millisecond_not_five() -> None:
    sys.setswitchinterval(0.005)  # CPython's default

    switch_often()

    assert sys.getswitchinterval() == pytest.approx(0.001)
