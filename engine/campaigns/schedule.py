"""Local clock arithmetic for flows: "until 09:00" waits and quiet hours, in the customer's zone.

Local times that do not exist (skipped by a daylight-saving change) resolve to the first moment
after the gap; local times that happen twice resolve to the first occurrence.
"""

from __future__ import annotations

import datetime as dt
import re

from engine.campaigns.model import QuietHours
from engine.segments.calendar import zone

_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
MINUTES_PER_DAY = 24 * 60


def parse_clock(text: object) -> int:
    """Minutes after midnight of "HH:MM"; ValueError with a reason otherwise."""
    match = _CLOCK.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'expected a time of day such as "09:00" (24-hour clock), got {text!r}')
    return int(match.group(1)) * 60 + int(match.group(2))


def _local(ms: int, timezone: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, zone(timezone))


def _wall_minute(ms: int, timezone: str) -> int:
    local = _local(ms, timezone)
    return local.hour * 60 + local.minute


def _at_minute(day: dt.date, minute: int, timezone: str) -> int:
    """Epoch ms of local ``day`` at ``minute`` (fold=0: the first of a repeated hour)."""
    local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=zone(timezone))
    ms = int(local.timestamp() * 1000)
    if _wall_minute(ms, timezone) != minute:
        # Inside a spring-forward gap: the wall time does not exist that day. zoneinfo maps it
        # past the gap; walk back to the first moment after the gap (changes are on whole minutes).
        while _wall_minute(ms - 60_000, timezone) > minute:
            ms -= 60_000
    return ms


def next_local_time(now_ms: int, minute: int, timezone: str) -> int:
    """The first moment after ``now_ms`` when the local clock shows ``minute`` (or has just passed it)."""
    today = _local(now_ms, timezone).date()
    for offset in range(0, 3):
        candidate = _at_minute(today + dt.timedelta(days=offset), minute, timezone)
        if candidate > now_ms:
            return candidate
    raise AssertionError("a local time always comes within three days")


def quiet_until(now_ms: int, quiet: QuietHours, timezone: str) -> int | None:
    """When the quiet hours around ``now_ms`` end, or None when ``now_ms`` is not in them."""
    local = _local(now_ms, timezone)
    minute = local.hour * 60 + local.minute
    start, end = quiet.start_minute, quiet.end_minute
    if start == end:
        return None
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    return next_local_time(now_ms, end, timezone)
