"""When a scheduled sync is due, and which worker runs it: pure functions of the time given.

A cron expression is read in the sync's time zone on the *wall clock*: ``30 1 * * *`` in
Europe/Madrid fires at 01:30 local time every day, 23 hours apart across the spring change and
25 hours across the autumn one. (croniter's own time-zone arithmetic shifts such fires by the
DST offset, so it is only asked about naive wall times here.) A wall time that does not exist
(02:30 on the spring-forward night) fires at the same instant an hour later on the new clock;
a wall time that happens twice (autumn) fires once, the first time.

A sync belongs to one events partition, ``sync_partition``: the worker that owns that
partition runs it, so exactly one worker of a group runs a given sync, and the duty moves with
the partition on a rebalance.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

_SEARCH_STEPS = 64
"""Wall-clock candidates tried: inside a repeated autumn hour, a per-minute cron's next wall
times are all in the past until the wall clock passes the hour again (60 candidates)."""


def next_fire_ms(cron: str, timezone: str, after_ms: int) -> int:
    """The first fire time of ``cron`` (read in ``timezone``) strictly after ``after_ms``."""
    zone = ZoneInfo(timezone)
    wall = _wall(after_ms, zone)
    fires = croniter(cron, wall)
    for _ in range(_SEARCH_STEPS):
        candidate = _epoch_ms(fires.get_next(datetime), zone)
        if candidate > after_ms:
            return candidate
    raise AssertionError(f"no fire time of {cron!r} after {after_ms}")  # cannot happen: cron repeats


def latest_fire_ms(cron: str, timezone: str, now_ms: int) -> int:
    """The last fire time of ``cron`` (read in ``timezone``) at or before ``now_ms``."""
    zone = ZoneInfo(timezone)
    # One second past now, so that a fire exactly at now counts (fires are whole minutes).
    fires = croniter(cron, _wall(now_ms, zone) + timedelta(seconds=1))
    for _ in range(_SEARCH_STEPS):
        candidate = _epoch_ms(fires.get_prev(datetime), zone)
        if candidate <= now_ms:
            return candidate
    raise AssertionError(f"no fire time of {cron!r} before {now_ms}")  # cannot happen: cron repeats


def due_fire_ms(cron: str, timezone: str, last_fire_ms: int | None, now_ms: int) -> int | None:
    """The fire time a run is due for at ``now_ms``, or None when none is due.

    ``last_fire_ms`` is the fire time of the last run recorded (None: the sync never ran). A
    sync that never ran is due at once, for its latest fire time; after that a run is due when
    a fire time passed since the last one. Fire times missed while no worker ran the sync
    collapse into one run, for the latest of them.
    """
    latest = latest_fire_ms(cron, timezone, now_ms)
    if last_fire_ms is None or latest > last_fire_ms:
        return latest
    return None


def sync_partition(sync_id: str, partitions: int) -> int:
    """The events partition whose owner runs ``sync_id`` (stable across processes and versions)."""
    digest = hashlib.blake2b(sync_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def owns_sync(sync_id: str, partitions: int, owned: set[int] | frozenset[int]) -> bool:
    """Whether the worker owning the events partitions ``owned`` runs ``sync_id``."""
    return sync_partition(sync_id, partitions) in owned


def _wall(epoch_ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone(zone).replace(tzinfo=None)


def _epoch_ms(wall: datetime, zone: ZoneInfo) -> int:
    # fold=0: a repeated wall time is its first occurrence; a missing one keeps the old offset.
    return int(wall.replace(tzinfo=zone, fold=0).timestamp() * 1000)
