"""SMS segment counting (GSM-7 160/153, UCS-2 70/67) and E.164 numbers."""

from __future__ import annotations

import pytest

from engine.sms import is_e164, segments_of


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "gsm7", 0, 0),
        ("a" * 160, "gsm7", 160, 1),
        ("a" * 161, "gsm7", 161, 2),
        ("a" * 306, "gsm7", 306, 2),
        ("a" * 307, "gsm7", 307, 3),
        ("€" * 80, "gsm7", 160, 1),  # extension characters take two septets
        ("€" * 81, "gsm7", 162, 2),
        ("á" * 70, "ucs2", 70, 1),  # á is not in the GSM alphabet (à is)
        ("á" * 71, "ucs2", 71, 2),
        ("á" * 134, "ucs2", 134, 2),
        ("á" * 135, "ucs2", 135, 3),
        ("😀" * 35, "ucs2", 70, 1),  # astral characters are two UTF-16 units
    ],
)
def test_segments_follow_the_encoding_limits(text: str, encoding: str, units: int, segments: int) -> None:
    result = segments_of(text)
    assert (result.encoding, result.units, result.segments) == (encoding, units, segments)


def test_an_escaped_character_is_not_split_across_parts() -> None:
    # 306 septets would fit two 153-septet parts, but '€' (2 septets) at septet 153 moves whole
    # to the second part, which pushes the last character into a third.
    assert segments_of("a" * 152 + "€" + "a" * 152).segments == 3


@pytest.mark.parametrize("number", ["+59899123456", "+14155552671", "+442071838750"])
def test_e164_numbers_are_accepted(number: str) -> None:
    assert is_e164(number)


@pytest.mark.parametrize("number", ["59899123456", "+0123456", "+1 415 555 2671", "+1234567890123456", "+"])
def test_other_numbers_are_refused(number: str) -> None:
    assert not is_e164(number)
