"""Anonymous visitors: a browser without a known customer id is a customer keyed ``anon:<visitor id>``.

The SDK and referral links keep a first-party visitor id; until ``identify`` links it to a real
customer id, everything the visitor does (impressions, referral clicks, landing-page leads) is
folded into the profile ``anon:<visitor id>``, so campaigns run for anonymous visitors exactly as
for customers.
"""

from __future__ import annotations

import re

from engine.errors import ValidationError

ANONYMOUS_PREFIX = "anon:"
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
VISITOR_COOKIE = "refract_vid"


def check_visitor_id(value: object, field: str = "visitor_id") -> str:
    if not isinstance(value, str) or not VISITOR_ID.fullmatch(value):
        raise ValidationError(
            f"{field}: a visitor id is 8 to 64 letters, digits, '_' or '-'; got {value!r}", field=field
        )
    return value


def anonymous_customer_id(visitor_id: str) -> str:
    return ANONYMOUS_PREFIX + visitor_id


def is_anonymous(customer_id: str) -> bool:
    return customer_id.startswith(ANONYMOUS_PREFIX)
