"""Anonymous visitors: a browser without a known customer id is a customer keyed ``anon:<visitor id>``.

The SDK and referral links keep a first-party visitor id; until ``identify`` links it to a real
customer id, everything the visitor does (impressions, referral clicks, landing-page leads) is
folded into the profile ``anon:<visitor id>``, so campaigns run for anonymous visitors exactly as
for customers.
"""

from __future__ import annotations

import re

from engine.errors import ValidationError
from engine.events import CHANNELS, ConsentUpdate, ContactUpdate, CustomerUpdate, Payload
from engine.state import CustomerState

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


IDENTIFIED_AS = "identified_as"
"""The attribute ``identify`` sets on an anonymous profile: the customer id it now belongs to."""


def merged_payloads(anonymous: CustomerState) -> list[Payload]:
    """What an anonymous profile hands to the customer it was identified as: its attributes
    (but the link itself), contacts and consent. Behaviour history and campaign runs stay with
    the anonymous profile (their windows and funnels were counted there)."""
    payloads: list[Payload] = []
    attributes = {k: v for k, v in anonymous.attributes.items() if k != IDENTIFIED_AS}
    if attributes:
        payloads.append(CustomerUpdate(set=attributes))
    contacts = anonymous.contacts
    if contacts.email or contacts.phone:
        payloads.append(ContactUpdate(email=contacts.email, phone=contacts.phone))
    for scope, opted_in in sorted(anonymous.consent.items()):
        kind, _, name = scope.partition(":")
        if kind == "all":
            payloads.append(ConsentUpdate(opted_in=opted_in))
        elif kind == "channel" and name in CHANNELS:
            payloads.append(ConsentUpdate(opted_in=opted_in, channel=name))  # type: ignore[arg-type]
        elif kind == "campaign":
            payloads.append(ConsentUpdate(opted_in=opted_in, campaign_id=name))
        elif kind == "category":
            payloads.append(ConsentUpdate(opted_in=opted_in, category=name))
    return payloads
