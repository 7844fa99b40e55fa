"""SMS text rules: how many segments a text costs (GSM-7 or UCS-2) and E.164 phone numbers.

Pure functions, shared by the SMS providers (which refuse an invalid number before calling a
gateway) and anything that wants to show what a text will cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

SmsEncoding: TypeAlias = Literal["gsm7", "ucs2"]

# The GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7 = 160  # septets in one message
PART_GSM7 = 153  # septets per part of a concatenated message (7 go to the UDH)
SINGLE_UCS2 = 70  # UTF-16 code units in one message
PART_UCS2 = 67

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(slots=True, frozen=True)
class SmsSegments:
    """How a text is sent: its encoding, its length in units of that encoding, and its parts."""

    encoding: SmsEncoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def is_e164(number: str) -> bool:
    """Whether ``number`` is an E.164 phone number: '+', a country code, at most 15 digits."""
    return _E164.fullmatch(number) is not None


def encoding_of(text: str) -> SmsEncoding:
    """GSM-7 when every character is in the GSM alphabet (or its extension), else UCS-2."""
    return "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "ucs2"


def segments_of(text: str) -> SmsSegments:
    """The parts ``text`` is split into; an escaped GSM character or a surrogate pair is never split."""
    encoding = encoding_of(text)
    if encoding == "gsm7":
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, part = SINGLE_GSM7, PART_GSM7
    else:
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, part = SINGLE_UCS2, PART_UCS2
    units = sum(sizes)
    if units <= single:
        return SmsSegments(encoding, units, 1 if units else 0)
    segments, filled = 1, 0
    for size in sizes:
        if filled + size > part:
            segments += 1
            filled = 0
        filled += size
    return SmsSegments(encoding, units, segments)
