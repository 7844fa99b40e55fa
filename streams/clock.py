"""The worker's clock: the system's, or (for tests and demos) a time read from a file.

Everything in a worker that needs "now" (stamping received events, timers, backfills) asks the
one clock the worker was built with, so a test can move time forward by writing a number (epoch
milliseconds) into ``REFRACT_CLOCK_FILE``: waits of days and window expiries then happen in
seconds, on the real broker, through the same code paths as in production.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""


def system_clock_ms() -> int:
    return int(time.time() * 1000)


class FileClock:
    """Reads epoch ms from a file (re-read when it changes); the system time while it is missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size)
        self._value: int | None = None

    def __call__(self) -> int:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return system_clock_ms()
        signature = (stat.st_mtime_ns, stat.st_size)
        if signature != self._seen:
            try:
                self._value = int(self.path.read_text().strip())
                self._seen = signature
            except ValueError:
                log.warning("clock.unreadable", path=str(self.path))
        return self._value if self._value is not None else system_clock_ms()


def clock_for(clock_file: Path | None) -> Clock:
    if clock_file is None:
        return system_clock_ms
    log.warning("clock.from_file", path=str(clock_file), note="for tests and demos only")
    return FileClock(clock_file)
