"""Types for the command line's numeric options: a bad value is refused by argparse, with a line
that names the option and says what it takes (``refract bench decisions: error: argument
--customers: expected a whole number of at least 1, got '-5'``), before anything starts."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for a whole number in ``[minimum, maximum]``."""
    bounds = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)  # as Python reads it: "1_000" too
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return value

    parse.__name__ = "whole number"  # what argparse says if it ever names the type
    return parse


def number(minimum: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type for a finite number at least ``minimum`` (``above``: more than it)."""
    bounds = f"more than {minimum:g}" if above else f"at least {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


COUNT = whole_number(1)
"""How many of something (events, customers, rows, partitions...): at least 1."""
NON_NEGATIVE = whole_number(0)
PORT = whole_number(1, 65535)
POSITIVE = number(0, above=True)
"""A rate or a length of time that must be more than zero."""
NON_NEGATIVE_NUMBER = number(0)
"""A rate or a length of time where 0 means none (no latency run) or no limit (a key's rate)."""
