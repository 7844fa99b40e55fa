"""A customer's campaign runs are stored with the state, and written back unchanged when unchanged."""

from __future__ import annotations

import orjson

from engine.campaigns.runs import CampaignRun, run_from_document, run_to_document
from engine.state import CustomerState, from_document, to_document


def _run() -> CampaignRun:
    return CampaignRun(
        "run_1", 2, 1_000, step="wait", due_ms=5_000, waiting_for="interaction:click",
        stages={"entered": 1_000}, trigger={"amount": 12.5}, steps_taken=2,
    )  # fmt: skip


def test_a_run_reads_back_as_it_was_written() -> None:
    run = _run()
    document = orjson.loads(orjson.dumps(run_to_document(run)))
    assert run_from_document(document) == run


def test_an_unchanged_run_is_written_back_as_the_document_it_was_read_from() -> None:
    stored = orjson.loads(orjson.dumps(run_to_document(_run())))
    run = run_from_document(stored)
    assert run_to_document(run) is stored


def test_a_changed_run_is_written_afresh() -> None:
    stored = orjson.loads(orjson.dumps(run_to_document(_run())))
    moved = run_from_document(stored).with_stage("reached", 2_000)
    document = run_to_document(moved)
    assert document is not stored
    assert document["stages"] == {"entered": 1_000, "reached": 2_000}
    assert run_from_document(document) == moved


def test_a_state_with_runs_round_trips_through_its_document_whichever_run_changed() -> None:
    state = CustomerState("c-1", campaigns={"a": _run(), "b": _run().evolve(step=None, ended_ms=9_000)})
    read = from_document(orjson.loads(orjson.dumps(to_document(state))))
    changed = CustomerState("c-1", campaigns={**read.campaigns, "a": read.campaigns["a"].evolve(step="sms")})
    again = from_document(orjson.loads(orjson.dumps(to_document(changed))))
    assert again.campaigns["b"] == state.campaigns["b"]
    assert again.campaigns["a"] == state.campaigns["a"].evolve(step="sms")
