"""The contact index: which customer an email address or a phone number belongs to.

Inbound messages (an SMS reply "STOP") name only the sender's address. Every worker follows the
compacted ``<ns>.contacts`` topic, keyed ``phone:<E.164>`` or ``email:<lowercased>``, whose value
is the customer id (a tombstone removes the key). The customer processor writes the records this
module computes whenever a customer's contacts change. An address shared by two customers maps
to whichever set it last; removing it from either removes the key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class ContactIndexRecord:
    """One record of the contacts topic; ``customer_id`` None is a tombstone."""

    key: str
    customer_id: str | None


def email_key(email: str) -> str:
    return f"email:{email.strip().lower()}"


def phone_key(phone: str) -> str:
    return f"phone:{phone.strip()}"


def contact_index_records(
    before_email: str | None,
    before_phone: str | None,
    after_email: str | None,
    after_phone: str | None,
    customer_id: str,
) -> list[ContactIndexRecord]:
    """The records that move the index from a customer's old contacts to the new ones.

    Nothing when nothing changed; for an erased customer pass None as both new contacts.
    """
    records: list[ContactIndexRecord] = []
    for before, after, key in (
        (before_email, after_email, email_key),
        (before_phone, after_phone, phone_key),
    ):
        old = key(before) if before else None
        new = key(after) if after else None
        if old == new:
            continue
        if old is not None:
            records.append(ContactIndexRecord(old, None))
        if new is not None:
            records.append(ContactIndexRecord(new, customer_id))
    return records
