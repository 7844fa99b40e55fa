"""The audit record: every decision one event caused for one customer, in one record on the log."""

from __future__ import annotations

import dataclasses

import pytest

from engine.campaigns.audit import Decision, audit_record, decisions_of, describe
from schemas import decode, encode_typed
from schemas.catalog import load_schema_set
from schemas.codec import Codec

AT_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def a_run_start() -> list[Decision]:
    """What a run start decides: it starts, the send is suppressed, the flow waits for a click."""
    trigger, channel = {"trigger": "event:salary"}, {"channel": "email"}
    waits_for = {"for": "interaction:click"}
    return [
        Decision("dec_a", "ana", "trigger", "loan", "started", "started", trigger, AT_MS),
        Decision("dec_a.1", "ana", "send", "loan", "suppressed", "missing_address", channel, AT_MS),
        Decision("dec_a.2", "ana", "flow", "loan", "waiting", "wait_for", waits_for, AT_MS),
    ]


def test_the_decisions_of_one_event_read_back_from_one_record_in_order() -> None:
    decisions = a_run_start()

    name, record = decode(encode_typed("Decision", audit_record(decisions)))

    assert name == "Decision"
    assert decisions_of(record) == decisions


def test_a_single_decision_is_a_record_with_nothing_under_then() -> None:
    (only,) = a_run_start()[:1]
    _, record = decode(encode_typed("Decision", audit_record([only])))
    assert record["then"] == []
    assert decisions_of(record) == [only]


def test_a_record_written_before_then_existed_reads_as_its_one_decision() -> None:
    first = a_run_start()[0]
    version_1 = Codec(load_schema_set(), write_versions={"Decision": 1})

    _, record = decode(version_1.encode("Decision", first.to_record()))

    assert record["then"] == []  # the reader's default
    assert decisions_of(record) == [first]


def test_decisions_of_two_customers_or_two_moments_do_not_share_a_record() -> None:
    first, second, _ = a_run_start()
    with pytest.raises(ValueError, match="one customer at one moment"):
        audit_record([first, dataclasses.replace(second, customer_id="bob")])
    with pytest.raises(ValueError, match="one customer at one moment"):
        audit_record([first, dataclasses.replace(second, at_ms=AT_MS + 1)])
    with pytest.raises(ValueError, match="at least one decision"):
        audit_record([])


def test_each_decision_of_a_record_is_described_on_its_own_line() -> None:
    _, record = decode(encode_typed("Decision", audit_record(a_run_start())))
    lines = [describe(decision) for decision in decisions_of(record)]
    assert lines == [
        "2026-01-01 00:00:00 UTC [loan] started: entered the campaign",
        "2026-01-01 00:00:00 UTC [loan] suppressed: the customer has no address for this channel",
        "2026-01-01 00:00:00 UTC [loan] waiting: waits for a click",
    ]
