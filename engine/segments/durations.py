"""Durations in rules: a whole number and a unit, such as "30m", "12h", "7d" or "2w"."""

from __future__ import annotations

import functools
import re

UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_DURATION = re.compile(r"([0-9]{1,6})([mhdw])")

DURATION_HINT = 'write a whole number followed by m (minutes), h (hours), d (days) or w (weeks), such as "7d"'


@functools.lru_cache(maxsize=1024)  # rules name a few durations, read for every event
def duration_ms(text: str) -> int:
    """Milliseconds in ``text``; ValueError with a reason a person understands when it is not one."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f'"{text}" is not a duration: {DURATION_HINT}')
    return int(match.group(1)) * UNIT_MS[match.group(2)]
