"""Bounded history of a customer's own events, for windowed aggregates in segment rules.

Each event name ("card_transaction", or ``interaction:<kind>`` and ``interaction:<kind>:<campaign>``
for interactions) keeps a count and per-numeric-field sums in time buckets, all-time totals, its
first and last occurrence, and the data of its last occurrence. Raw events are never kept.

Buckets and precision. Bucket boundaries are UTC and are placed relative to the newest occurrence
of the same name (``newest``):

* hourly buckets from 00:00 UTC two days before ``newest``'s day (48 to 72 hours of hourly detail);
* daily buckets from the Monday eight weeks before ``newest``'s week (56 to 63 days);
* weekly buckets (Monday to Sunday) for older events, up to 400 days before ``newest``'s day.

A windowed aggregate ``within`` W at ``now`` counts a whole bucket while any part of it is after
``now - W``. So every event in the window is counted, and an event older than the window is
counted for at most one bucket width longer: one hour for events in the hourly range, one day in the
daily range, one week in the weekly range. Events dated after ``now`` count as recent. Which bucket
an event lands in depends only on the set of events of its name (not on the order they were
recorded), so replaying a log rebuilds the same history. This holds for queries at ``now`` no
earlier than the newest occurrence recorded; callers should not pass occurrence times from the
future (clamp ``occurred_at`` to the time the event was received).

Bound. At most ``NAMES_KEPT`` names, ``BUCKETS_KEPT`` buckets over all names (at most 193 per name),
``FIELDS_SUMMED`` summed fields per name, ``LAST_FIELDS_KEPT`` fields of last-occurrence data with
strings cut to ``LAST_TEXT_KEPT`` characters. Past a limit, the buckets of names silent for longer
than any window are dropped first, then the names seen least recently are forgotten entirely
(``ever`` becomes false for them).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType, NotImplementedType
from typing import Any, TypeAlias

from engine.errors import DecodeError
from engine.events import BusinessEvent, Interaction, ReferralClick
from engine.records import quick_init

Scalar: TypeAlias = str | int | float | bool | None

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# The longest window a rule may ask about; older buckets are dropped.
MAX_WINDOW_MS = 400 * DAY_MS
HOURLY_DAYS = 2
DAILY_WEEKS = 8

NAMES_KEPT = 128
BUCKETS_KEPT = 4096
FIELDS_SUMMED = 16
LAST_FIELDS_KEPT = 16
LAST_TEXT_KEPT = 256

# 1970-01-01 was a Thursday; Monday-aligned weeks start 4 days later (mod 7).
_MONDAY_OFFSET_MS = 4 * DAY_MS

_EMPTY_SUMS: Mapping[str, float] = MappingProxyType({})


@quick_init
@dataclass(slots=True, frozen=True)
class Bucket:
    """Events of one name whose time is in ``[start_ms, start_ms + width_ms)``."""

    start_ms: int
    width_ms: int
    count: int
    sums: Mapping[str, float]

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.width_ms


@quick_init
@dataclass(slots=True, frozen=True)
class EventHistory:
    """Everything kept about one event name. ``buckets`` are sorted and do not overlap."""

    first_ms: int
    last_ms: int
    total: int
    total_sums: Mapping[str, float]
    last_data: Mapping[str, Scalar]
    buckets: tuple[Bucket, ...]


@dataclass(slots=True, frozen=True)
class LastOccurrence:
    occurred_at_ms: int
    data: Mapping[str, Scalar]


@quick_init
@dataclass(slots=True, frozen=True)
class BehaviourHistory:
    """The bounded behaviour history of one customer (empty by default)."""

    events: Mapping[str, EventHistory] = field(default_factory=dict)


EMPTY_HISTORY = BehaviourHistory(MappingProxyType({}))


# --- names -----------------------------------------------------------------------------------


def interaction_key(kind: str, campaign_id: str | None = None) -> str:
    """The history name of an interaction kind, optionally narrowed to one campaign."""
    return f"interaction:{kind}:{campaign_id}" if campaign_id else f"interaction:{kind}"


def behaviour_keys(payload: object) -> tuple[str, ...]:
    """The history names an event payload is recorded under (empty if it is not behaviour)."""
    if isinstance(payload, BusinessEvent):
        return (payload.name,)
    if isinstance(payload, Interaction):
        if payload.campaign_id:
            return (interaction_key(payload.kind), interaction_key(payload.kind, payload.campaign_id))
        return (interaction_key(payload.kind),)
    if isinstance(payload, ReferralClick):
        return (
            interaction_key("referral_click"),
            interaction_key("referral_click", payload.campaign_id),
        )
    return ()


def record_event(history: BehaviourHistory, payload: object, occurred_at_ms: int) -> BehaviourHistory:
    """``history`` with a business event, interaction or referral click recorded; else unchanged."""
    keys = behaviour_keys(payload)
    if not keys:
        return history
    data: Mapping[str, Scalar]
    if isinstance(payload, BusinessEvent):
        data = payload.data
    elif isinstance(payload, Interaction):
        data = {
            **payload.data,
            **{
                name: value
                for name, value in (
                    ("campaign_id", payload.campaign_id),
                    ("placement_id", payload.placement_id),
                    ("channel", payload.channel),
                )
                if value is not None
            },
        }
    else:
        assert isinstance(payload, ReferralClick)
        data = {"campaign_id": payload.campaign_id, "code": payload.code}
        if payload.source is not None:
            data = {**data, "source": payload.source}
    for key in keys:
        history = record(history, key, data, occurred_at_ms)
    return history


# --- bucket placement --------------------------------------------------------------------------


def _floor(ms: int, width: int, offset: int = 0) -> int:
    return (ms - offset) // width * width + offset


def _cutoffs(newest_ms: int) -> tuple[int, int, int]:
    """(hourly from, daily from, weekly kept while end is after) for a name's newest time."""
    day = _floor(newest_ms, DAY_MS)
    hourly_from = day - HOURLY_DAYS * DAY_MS
    daily_from = _floor(day, WEEK_MS, _MONDAY_OFFSET_MS) - DAILY_WEEKS * WEEK_MS
    weekly_after = day - MAX_WINDOW_MS
    return hourly_from, daily_from, weekly_after


def _placement(time_ms: int, cutoffs: tuple[int, int, int]) -> tuple[int, int] | None:
    """(start, width) of the bucket holding ``time_ms``, or None when it is too old to keep."""
    hourly_from, daily_from, weekly_after = cutoffs
    hour = _floor(time_ms, HOUR_MS)
    if hour >= hourly_from:
        return hour, HOUR_MS
    day = _floor(time_ms, DAY_MS)
    if day >= daily_from:
        return day, DAY_MS
    week = _floor(time_ms, WEEK_MS, _MONDAY_OFFSET_MS)
    if week + WEEK_MS > weekly_after:
        return week, WEEK_MS
    return None


def _add_sums(into: Mapping[str, float], more: Mapping[str, float]) -> Mapping[str, float]:
    if not more:
        return into
    result = dict(into)
    for name, value in more.items():
        result[name] = result.get(name, 0) + value
    return result


def _rebucket(buckets: tuple[Bucket, ...], cutoffs: tuple[int, int, int]) -> tuple[Bucket, ...]:
    """Buckets merged into the coarser buckets they now belong to (and too old ones dropped)."""
    merged: dict[int, Bucket] = {}
    for bucket in buckets:
        placed = _placement(bucket.start_ms, cutoffs)
        if placed is None:
            continue
        start, width = placed
        # A bucket never gets finer: keep its own width if the placement is finer than it.
        if width < bucket.width_ms:
            start, width = bucket.start_ms, bucket.width_ms
        existing = merged.get(start)
        if existing is None:
            merged[start] = Bucket(start, width, bucket.count, bucket.sums)
        else:
            merged[start] = Bucket(
                start, width, existing.count + bucket.count, _add_sums(existing.sums, bucket.sums)
            )
    return tuple(merged[start] for start in sorted(merged))


def _with_event(
    buckets: tuple[Bucket, ...], placed: tuple[int, int], sums: Mapping[str, float]
) -> tuple[Bucket, ...]:
    start, width = placed
    index = bisect_left(buckets, start, key=lambda bucket: bucket.start_ms)
    if index < len(buckets) and buckets[index].start_ms == start:
        old = buckets[index]
        new = Bucket(start, old.width_ms, old.count + 1, _add_sums(old.sums, sums))
        return (*buckets[:index], new, *buckets[index + 1 :])
    return (*buckets[:index], Bucket(start, width, 1, sums), *buckets[index:])


# --- recording ---------------------------------------------------------------------------------


def _numeric(value: object) -> bool:
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


def _kept_data(data: Mapping[str, Scalar]) -> dict[str, Scalar]:
    kept: dict[str, Scalar] = {}
    for name, value in data.items():
        if len(kept) >= LAST_FIELDS_KEPT:
            break
        if isinstance(value, str) and len(value) > LAST_TEXT_KEPT:
            value = value[:LAST_TEXT_KEPT]
        elif isinstance(value, float) and not math.isfinite(value):
            continue
        kept[name] = value
    return kept


def record(
    history: BehaviourHistory, name: str, data: Mapping[str, Scalar], occurred_at_ms: int
) -> BehaviourHistory:
    """A new history with one occurrence of ``name`` at ``occurred_at_ms`` added. Pure."""
    previous = history.events.get(name)
    summed = previous.total_sums if previous else _EMPTY_SUMS
    room = FIELDS_SUMMED - len(summed)
    sums: dict[str, float] = {}
    for field_name, value in data.items():
        if not _numeric(value):
            continue
        if field_name not in summed:
            if room <= 0:
                continue
            room -= 1
        assert isinstance(value, int | float)
        sums[field_name] = value
    if previous is None:
        cutoffs = _cutoffs(occurred_at_ms)
        placed = _placement(occurred_at_ms, cutoffs)
        entry = EventHistory(
            first_ms=occurred_at_ms,
            last_ms=occurred_at_ms,
            total=1,
            total_sums=sums,
            last_data=_kept_data(data),
            buckets=() if placed is None else (Bucket(placed[0], placed[1], 1, sums),),
        )
    else:
        buckets = previous.buckets
        newest = max(previous.last_ms, occurred_at_ms)
        cutoffs = _cutoffs(newest)
        if _floor(newest, DAY_MS) != _floor(previous.last_ms, DAY_MS):
            buckets = _rebucket(buckets, cutoffs)
        placed = _placement(occurred_at_ms, cutoffs)
        if placed is not None:
            buckets = _with_event(buckets, placed, sums)
        # Ties go to the later recorded occurrence: it is later in the log.
        is_last = occurred_at_ms >= previous.last_ms
        entry = EventHistory(
            first_ms=min(previous.first_ms, occurred_at_ms),
            last_ms=newest,
            total=previous.total + 1,
            total_sums=_add_sums(previous.total_sums, sums),
            last_data=_kept_data(data) if is_last else previous.last_data,
            buckets=buckets,
        )
    return BehaviourHistory(_bounded(_with_entry(history.events, name, entry), name, occurred_at_ms))


def _with_entry(
    events: Mapping[str, EventHistory], name: str, entry: EventHistory
) -> Mapping[str, EventHistory]:
    """``events`` with ``name`` set to ``entry``; a history still in document form stays so."""
    if isinstance(events, _DecodedOnRead):
        return events.with_entry(name, entry)
    changed = dict(events)
    changed[name] = entry
    return changed


def _bounded(events: Mapping[str, EventHistory], recorded: str, now_ms: int) -> Mapping[str, EventHistory]:
    if isinstance(events, _DecodedOnRead):
        total_buckets = events.bucket_count()
    else:
        total_buckets = sum(len(entry.buckets) for entry in events.values())
    if len(events) <= NAMES_KEPT and total_buckets <= BUCKETS_KEPT:
        return events
    events = dict(events)  # rare: decode the whole history to choose what to forget
    # First drop the buckets of names silent for longer than any window: they can never be
    # counted again. (Only under pressure, so that a history usually depends only on its events,
    # not on the order they came in.)
    stale_before = now_ms - MAX_WINDOW_MS - WEEK_MS
    for name, entry in events.items():
        if entry.buckets and entry.last_ms < stale_before:
            total_buckets -= len(entry.buckets)
            events[name] = replace(entry, buckets=())
    for name in sorted(events, key=lambda n: (events[n].last_ms, n)):
        if len(events) <= NAMES_KEPT and total_buckets <= BUCKETS_KEPT:
            break
        # Too many buckets: forgetting a name that has none would not help.
        if name == recorded or (len(events) <= NAMES_KEPT and not events[name].buckets):
            continue
        total_buckets -= len(events.pop(name).buckets)
    return events


# --- queries -----------------------------------------------------------------------------------


def _counted(entry: EventHistory, within_ms: int, now_ms: int) -> Iterator[Bucket]:
    """Buckets (newest first) still inside the window ``within_ms`` before ``now_ms``."""
    boundary = now_ms - within_ms
    for bucket in reversed(entry.buckets):
        # The bucket's latest moment is end - 1; the window holds moments after the boundary.
        if bucket.start_ms + bucket.width_ms - 1 <= boundary:
            return
        yield bucket


def count(history: BehaviourHistory, name: str, within_ms: int | None, now_ms: int) -> int:
    """Occurrences of ``name`` in the ``within_ms`` before ``now_ms`` (all time when None)."""
    entry = history.events.get(name)
    if entry is None:
        return 0
    if within_ms is None:
        return entry.total
    return sum(bucket.count for bucket in _counted(entry, within_ms, now_ms))


def sum_(history: BehaviourHistory, name: str, field_name: str, within_ms: int | None, now_ms: int) -> float:
    """Sum of the numeric ``field_name`` of ``name`` over the window (all time when None)."""
    entry = history.events.get(name)
    if entry is None:
        return 0
    if within_ms is None:
        return entry.total_sums.get(field_name, 0)
    return sum(bucket.sums.get(field_name, 0) for bucket in _counted(entry, within_ms, now_ms))


def window_changes(
    history: BehaviourHistory, name: str, field_name: str | None, within_ms: int, now_ms: int
) -> list[tuple[int, float]]:
    """When the windowed count (or sum of ``field_name``) will drop, if nothing new happens.

    A list of (moment in ms, value from that moment on), earliest first, all after ``now_ms``.
    """
    entry = history.events.get(name)
    if entry is None:
        return []
    counted = list(_counted(entry, within_ms, now_ms))
    if field_name is None:
        value: float = sum(bucket.count for bucket in counted)
    else:
        value = sum(bucket.sums.get(field_name, 0) for bucket in counted)
    changes: list[tuple[int, float]] = []
    for bucket in reversed(counted):
        value -= bucket.count if field_name is None else bucket.sums.get(field_name, 0)
        changes.append((bucket.end_ms - 1 + within_ms, value))
    return changes


def window_flip(
    history: BehaviourHistory,
    name: str,
    field_name: str | None,
    within_ms: int,
    now_ms: int,
    holds: Callable[[float], bool],
) -> int | NotImplementedType | None:
    """When ``holds(value)`` of the windowed count (or sum) changes, if nothing new happens.

    For a test that is monotone in the value (an ordering comparison with a number). As time
    passes occurrences only leave the window, so a count only falls (a sum too, unless one of its
    buckets is negative: then ``NotImplemented``, and the caller walks ``window_changes``). A
    monotone test of a falling value changes at most once, and only if it differs for an empty
    window; it then changes when the newest buckets alone stop making it hold, that is when the
    oldest of those leaves the window. So only the newest buckets are looked at.
    """
    entry = history.events.get(name)
    if entry is None:
        return None
    counted = list(_counted(entry, within_ms, now_ms))
    values: list[float]
    if field_name is None:
        values = [bucket.count for bucket in counted]
    else:
        values = [bucket.sums.get(field_name, 0) for bucket in counted]
        if any(value < 0 for value in values):
            return NotImplemented  # type: ignore[no-any-return]
    now = holds(sum(values))
    if holds(0) == now:
        return None
    kept = 0.0
    for bucket, value in zip(counted, values, strict=True):  # newest first
        kept += value
        if holds(kept) == now:
            return bucket.end_ms - 1 + within_ms
    raise AssertionError("unreachable: all the buckets make the current value")


def last(history: BehaviourHistory, name: str) -> LastOccurrence | None:
    """The latest occurrence of ``name`` (by occurrence time) and its data, if any is known."""
    entry = history.events.get(name)
    if entry is None:
        return None
    return LastOccurrence(entry.last_ms, entry.last_data)


def ever(history: BehaviourHistory, name: str) -> bool:
    """Whether ``name`` ever occurred (as far as the bounded history remembers)."""
    return name in history.events


# --- document form -----------------------------------------------------------------------------


def to_document(history: BehaviourHistory) -> dict[str, Any]:
    """A JSON-compatible form of ``history``, compact because every customer state carries it.

    Each name is ``[first, last, count, sums, data, buckets]``; a bucket is ``[start, width,
    count]``, with its sums as a fourth item when it has any.
    """
    events = history.events
    if isinstance(events, _DecodedOnRead):
        unchanged = events.unchanged_v2()
        return {
            "v": 2,
            "events": {
                name: unchanged[name] if name in unchanged else _entry_document(events[name])
                for name in events
            },
        }
    return {"v": 2, "events": {name: _entry_document(entry) for name, entry in events.items()}}


def _entry_document(entry: EventHistory) -> list[Any]:
    return [
        entry.first_ms,
        entry.last_ms,
        entry.total,
        dict(entry.total_sums),
        dict(entry.last_data),
        [
            [bucket.start_ms, bucket.width_ms, bucket.count, dict(bucket.sums)]
            if bucket.sums
            else [bucket.start_ms, bucket.width_ms, bucket.count]
            for bucket in entry.buckets
        ],
    ]


def _bucket(raw: list[Any]) -> Bucket:
    if len(raw) == 3:
        return Bucket(int(raw[0]), int(raw[1]), int(raw[2]), _EMPTY_SUMS)
    start, width, number, sums = raw
    return Bucket(int(start), int(width), int(number), dict(sums))


def _entry_v1(raw: Mapping[str, Any]) -> EventHistory:
    return EventHistory(
        first_ms=int(raw["first"]),
        last_ms=int(raw["last"]),
        total=int(raw["count"]),
        total_sums=dict(raw["sums"]),
        last_data=dict(raw["data"]),
        buckets=tuple(
            Bucket(int(start), int(width), int(number), dict(sums))
            for start, width, number, sums in raw["buckets"]
        ),
    )


def _entry_v2(raw: list[Any]) -> EventHistory:
    first, last, total, sums, data, buckets = raw
    return EventHistory(
        first_ms=int(first),
        last_ms=int(last),
        total=int(total),
        total_sums=dict(sums),
        last_data=dict(data),
        buckets=tuple(map(_bucket, buckets)),
    )


def from_document(doc: Mapping[str, Any]) -> BehaviourHistory:
    """The history a document written by ``to_document`` describes (also the earlier version 1).

    Names are decoded when first read: most events read one name or none, and a state is loaded
    for every event (and for every customer when a new segment is evaluated over them).
    """
    try:
        version = doc.get("v")
        if version not in (1, 2):
            raise ValueError(f"unknown behaviour history version {version!r}")
        raw = doc["events"]
        if not isinstance(raw, dict):
            raise TypeError(f"events is a {type(raw).__name__}, not an object")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"behaviour history document is malformed: {exc!r}") from exc
    return BehaviourHistory(_DecodedOnRead(raw, version, {}))


class _DecodedOnRead(Mapping[str, EventHistory]):
    """Event histories kept in document form until a name is read.

    ``raw`` holds the names not changed since the document was read (never modified: copies
    share it), ``decoded`` the names read or set since. A changed name leaves ``raw``.
    """

    __slots__ = ("_decoded", "_raw", "_version")

    def __init__(self, raw: dict[str, Any], version: int, decoded: dict[str, EventHistory]) -> None:
        self._raw = raw
        self._version = version
        self._decoded = decoded

    def __getitem__(self, name: str) -> EventHistory:
        entry = self._decoded.get(name)
        if entry is not None:
            return entry
        raw = self._raw[name]  # KeyError: not a name of this history
        try:
            entry = _entry_v2(raw) if self._version == 2 else _entry_v1(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"behaviour history entry {name!r} is malformed: {exc!r}") from exc
        self._decoded[name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._raw or name in self._decoded

    def __iter__(self) -> Iterator[str]:
        yield from self._raw
        for name in self._decoded:
            if name not in self._raw:
                yield name

    def __len__(self) -> int:
        return len(self._raw) + sum(1 for name in self._decoded if name not in self._raw)

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._decoded or name in self._raw:
            return self[name]
        return default

    def with_entry(self, name: str, entry: EventHistory) -> _DecodedOnRead:
        raw = self._raw
        if name in raw:
            raw = {key: value for key, value in raw.items() if key != name}
        decoded = dict(self._decoded)
        decoded[name] = entry
        return _DecodedOnRead(raw, self._version, decoded)

    def bucket_count(self) -> int:
        """Buckets over every name, counting undecoded ones from their document form."""
        count = 0
        for name, raw in self._raw.items():
            entry = self._decoded.get(name)
            if entry is not None:
                count += len(entry.buckets)
            elif self._version == 2:
                count += len(raw[5])
            else:
                count += len(raw["buckets"])
        for name, entry in self._decoded.items():
            if name not in self._raw:
                count += len(entry.buckets)
        return count

    def unchanged_v2(self) -> Mapping[str, Any]:
        """Name -> document form of the names never changed (for a version 2 document)."""
        return self._raw if self._version == 2 else {}
