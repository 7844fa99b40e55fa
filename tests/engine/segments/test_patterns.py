"""Patterns for ~ are refused when they could take unbounded time; values are length-limited."""

from __future__ import annotations

import time

import pytest

from engine.segments.patterns import MAX_INPUT_LENGTH, compile_pattern, matches

ACCEPTED = [
    "^Monte",
    "video$",
    "(?i)^monte",
    r"^\d{4}-\d{2}-\d{2}$",
    "gold|platinum",
    "(?:ab)+",
    ".*a.*b",
    r"^[(]+$",
    "https?://(www\\.)?example",
    r"@gmail\.com$",
]
REFUSED = {
    r"(\w+\s?)*$": "repeated group contains a repetition",
    "(a+)+": "repeated group contains a repetition",
    "(a|aa)*": "repeated group contains a repetition",
    ".*a.*a.*b": "repeats too many things",
    "x?" * 17: "repeats too many things",
    "a{1,1000}": "at most {100}",
    r"(a)\1": "back-references",
    "(?P<x>a)(?P=x)": "back-references",
    "(?=a)": "look-arounds",
    "(?<!a)b": "look-arounds",
    "x" * 201: "the limit is 200",
    "(": "not a valid pattern",
}


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    compile_pattern(pattern)


@pytest.mark.parametrize(("pattern", "reason"), list(REFUSED.items()))
def test_risky_patterns_are_refused_with_a_reason(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("{", r"\{").replace("}", r"\}")):
        compile_pattern(pattern)


def test_values_over_the_length_limit_never_match() -> None:
    pattern = compile_pattern("a")
    assert matches(pattern, "a" * MAX_INPUT_LENGTH)
    assert not matches(pattern, "a" * (MAX_INPUT_LENGTH + 1))


@pytest.mark.parametrize("pattern", [".*a.*b", r"\w*\w*!", "x?" * 8 + ".*!", ".{0,10}" * 4 + "!"])
def test_the_worst_accepted_patterns_stay_fast_on_hostile_values(pattern: str) -> None:
    compiled = compile_pattern(pattern)
    started = time.perf_counter()
    for value in ("a" * MAX_INPUT_LENGTH, "x" * MAX_INPUT_LENGTH):
        matches(compiled, value)
    assert time.perf_counter() - started < 0.5
