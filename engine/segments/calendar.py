"""Calendar arithmetic in the customer's time zone: local days, ages, birthdays, midnights.

Leap-day birthdays: someone born on 29 February has their birthday on 28 February in years
without one (and turns a year older that day).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC


# IANA names are short; anything longer is not one (and is not looked up on disk).
_LONGEST_ZONE_NAME = 64


@lru_cache(maxsize=1024)
def zone(name: str) -> dt.tzinfo:
    """The time zone named ``name`` (IANA, such as "America/Montevideo"); UTC if unknown."""
    if len(name) > _LONGEST_ZONE_NAME:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # OSError: names such as "America" are folders of the zone database, not zones.
        return UTC


@lru_cache(maxsize=1024)
def is_known_zone(name: str) -> bool:
    return zone(name) is not UTC or name == "UTC"


def aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` with a time zone: a naive one is taken to be UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local_date(moment: dt.datetime, tz: dt.tzinfo) -> dt.date:
    return aware(moment).astimezone(tz).date()


def date_at(ms: int, tz: dt.tzinfo) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, tz).date()


def day_of(value: object, tz: dt.tzinfo) -> dt.date | None:
    """The local calendar day of a date or a timestamp attribute; None for anything else."""
    if isinstance(value, dt.datetime):
        return local_date(value, tz)
    if isinstance(value, dt.date):
        return value
    return None


@lru_cache(maxsize=4096)
def midnight_ms(day: dt.date, tz: dt.tzinfo) -> int:
    """The first moment (epoch ms) of local ``day``.

    Where a zone skips midnight (a daylight-saving change at 00:00), this is the first moment
    that exists on that day. Remembered: the timers of many customers fall on the same days.
    """
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    ms = int(start.timestamp() * 1000)
    # zoneinfo resolves a skipped 00:00 with the offset before the change, which lands inside
    # the day; step back while the moment before is still the same local day.
    while date_at(ms - 3_600_000, tz) == day:
        ms -= 3_600_000
    return ms


def birthday_in(born: dt.date, year: int) -> dt.date:
    """The anniversary of ``born`` in ``year`` (28 February for 29 February in common years)."""
    if born.month == 2 and born.day == 29:
        try:
            return dt.date(year, 2, 29)
        except ValueError:
            return dt.date(year, 2, 28)
    return born.replace(year=year)


def age_on(born: dt.date, today: dt.date) -> int:
    years = today.year - born.year
    return years - 1 if today < birthday_in(born, today.year) else years


def next_birthday(born: dt.date, today: dt.date) -> dt.date:
    """The first anniversary of ``born`` on or after ``today``."""
    this_year = birthday_in(born, today.year)
    return this_year if this_year >= today else birthday_in(born, today.year + 1)


def last_birthday(born: dt.date, today: dt.date) -> dt.date:
    """The last anniversary of ``born`` on or before ``today``."""
    this_year = birthday_in(born, today.year)
    return this_year if this_year <= today else birthday_in(born, today.year - 1)
