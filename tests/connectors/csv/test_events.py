from __future__ import annotations

from connectors.csv import EventIds, RowResult, envelope_for, event_id
from engine.events import ConsentUpdate, CustomerUpdate, Envelope


def make_row(line: int = 2, key: str = "c-1") -> RowResult:
    return RowResult(
        line=line,
        customer_key=key,
        events=(CustomerUpdate(set={"name": "Ana"}), ConsentUpdate(opted_in=False)),
        digest=bytes(16),
    )


def test_envelopes_wrap_each_event_of_the_row_for_its_customer_at_the_given_time() -> None:
    first, second = envelope_for(make_row(), "customers", "imp-1", now_ms=1_700_000_000_000)

    assert first == Envelope(
        event_id=event_id("customers", "imp-1", 2, 0),
        customer_id="c-1",
        occurred_at_ms=1_700_000_000_000,
        received_at_ms=1_700_000_000_000,
        source="sync:customers",
        payload=CustomerUpdate(set={"name": "Ana"}),
    )
    assert second.payload == ConsentUpdate(opted_in=False)
    assert second.event_id != first.event_id


def test_a_redone_import_repeats_the_same_event_ids() -> None:
    once = envelope_for(make_row(), "customers", "imp-1", now_ms=1)
    again = envelope_for(make_row(), "customers", "imp-1", now_ms=2)

    assert [e.event_id for e in once] == [e.event_id for e in again]


def test_event_ids_differ_by_sync_import_and_line() -> None:
    ids = {
        event_id("customers", "imp-1", 2),
        event_id("customers", "imp-2", 2),
        event_id("customers", "imp-1", 3),
        event_id("other", "imp-1", 2),
    }

    assert len(ids) == 4
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_resolved_customer_id_replaces_the_key() -> None:
    row = make_row(key="ana@mail.com")

    envelopes = envelope_for(row, "contacts", "imp-1", now_ms=1, customer_id="c-42")

    assert {e.customer_id for e in envelopes} == {"c-42"}


def test_the_event_ids_of_an_import_are_event_id_of_each_line() -> None:
    ids = EventIds("customers", 'imp-"1"\u00e9')

    for line, index in [(2, 0), (2, 1), (10, 0), (1_000_001, 3)]:
        assert ids(line, index) == event_id("customers", 'imp-"1"\u00e9', line, index)
