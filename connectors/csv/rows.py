"""What reading a CSV file yields per row: the row's events, or why the row was not imported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from engine.events import Payload


@dataclass(slots=True, frozen=True)
class RowResult:
    """The events of one row (of one customer's rows, for products) and their digest.

    ``line`` is the file line where the row starts (line 1 is the first line of the file).
    ``customer_key`` is the key column's value: a customer id, or the value of the sync's key
    field (e.g. an email) still to be resolved. ``digest`` (16 bytes) changes when the row's
    values or the sync's mapping change, so an unchanged row can be skipped on re-import.
    """

    line: int
    customer_key: str
    events: tuple[Payload, ...]
    digest: bytes


@dataclass(slots=True, frozen=True)
class RowError:
    """Why a row was not imported: its file ``line``, the ``column`` and cell ``value`` at fault
    (None when the row as a whole is wrong), and the ``reason``, for a person."""

    line: int
    column: str | None
    value: str | None
    reason: str


Row: TypeAlias = RowResult | RowError
