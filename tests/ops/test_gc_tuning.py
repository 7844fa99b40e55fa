"""Collector settings: a one-off job collects young objects rarely, and leaves the settings as found."""

from __future__ import annotations

import gc

import pytest

from ops.gc_tuning import YOUNG_THRESHOLD, throughput_collection


def test_throughput_collection_raises_the_young_threshold_then_restores_the_previous_one() -> None:
    previous = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with throughput_collection():
            assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*previous)


def test_throughput_collection_restores_the_threshold_when_the_job_fails() -> None:
    previous = gc.get_threshold()
    with pytest.raises(RuntimeError), throughput_collection():
        raise RuntimeError("the import failed")
    assert gc.get_threshold() == previous
