"""JSON request bodies -> typed Envelopes, with errors that name the field that is wrong."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import UnknownEventType, ValidationError
from engine.events import (
    CHANNELS,
    INTERACTION_KINDS,
    PUSH_PLATFORMS,
    BusinessEvent,
    BusinessValue,
    ConsentUpdate,
    ContactUpdate,
    CustomerUpdate,
    Envelope,
    Interaction,
    Payload,
    PushToken,
)
from engine.values import AttributeValue

MAX_BATCH = 1000
MAX_FIELDS = 200
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
_INT64 = (-(2**63), 2**63 - 1)


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", field=field)


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, f"expected a JSON object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _string(value: Any, field: str, *, max_length: int = 256, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(field, f"expected a non-empty string, got {_kind(value)}")
    if len(value) > max_length:
        raise _fail(field, f"is longer than {max_length} characters")
    if any(ord(c) < 32 for c in value):
        raise _fail(field, "contains control characters")
    return value


def _required_string(value: Any, field: str, *, max_length: int = 256) -> str:
    result = _string(value, field, max_length=max_length)
    assert result is not None
    return result


def _name(value: Any, field: str) -> str:
    text = _required_string(value, field, max_length=64)
    if not _NAME.match(text):
        raise _fail(field, f"{text!r} is not a valid name (letters, digits, '_', '.', ':', '-')")
    return text


def customer_id(value: Any, field: str = "customer_id") -> str:
    return _required_string(value, field, max_length=128)


def _timestamp(value: Any, field: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(field, f"{value!r} is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise _fail(field, f"{value!r} has no time zone (add 'Z' or an offset)")
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise _fail(field, f"{value!r} is out of the range of dates") from None
    raise _fail(field, f"expected an ISO 8601 date-time string, got {_kind(value)}")


def _epoch_ms(value: Any, field: str, default_ms: int) -> int:
    if value is None:
        return default_ms
    return int(_timestamp(value, field).timestamp() * 1000)


def attribute_value(value: Any, field: str) -> AttributeValue:
    """A JSON value as a typed attribute; dates and timestamps are {"date": ...}/{"timestamp": ...}."""
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise _fail(field, "integer out of the 64-bit range")
        return value
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise _fail(field, "a list attribute holds strings only")
        return tuple(value)
    if isinstance(value, dict) and len(value) == 1:
        if "date" in value:
            try:
                return dt.date.fromisoformat(value["date"])
            except (TypeError, ValueError):
                raise _fail(f"{field}.date", f"{value['date']!r} is not a date (YYYY-MM-DD)") from None
        if "timestamp" in value:
            return _timestamp(value["timestamp"], f"{field}.timestamp")
    raise _fail(
        field,
        f"{_kind(value)} is not an attribute value: use a string, number, boolean, list of"
        ' strings, {"date": "YYYY-MM-DD"} or {"timestamp": "<ISO 8601>"}',
    )


def _attributes(value: Any, field: str) -> tuple[dict[str, AttributeValue], tuple[str, ...]]:
    """Attributes to set, and those given as null (to unset)."""
    raw = _object(value, field)
    if len(raw) > MAX_FIELDS:
        raise _fail(field, f"has more than {MAX_FIELDS} attributes")
    values: dict[str, AttributeValue] = {}
    unset: list[str] = []
    for name, item in raw.items():
        _name(name, f"{field}.{name}")
        if item is None:
            unset.append(name)
        else:
            values[name] = attribute_value(item, f"{field}.{name}")
    return values, tuple(unset)


def _business_value(value: Any, field: str) -> BusinessValue:
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise _fail(field, "integer out of the 64-bit range")
        return value
    raise _fail(field, f"event data values are strings, numbers, booleans or null, got {_kind(value)}")


class EnvelopeFactory:
    """Builds envelopes for API input; the clock and id source are injected."""

    def __init__(self, source: str, now_ms: Callable[[], int], new_id: Callable[[], str] | None = None):
        self._source = source
        self._now_ms = now_ms
        self._new_id = new_id or (lambda: uuid.uuid4().hex)

    def envelope(
        self,
        customer: str,
        payload: Payload,
        *,
        event_id: str | None = None,
        occurred_at_ms: int | None = None,
    ) -> Envelope:
        now = self._now_ms()
        return Envelope(
            event_id=event_id or self._new_id(),
            customer_id=customer,
            occurred_at_ms=occurred_at_ms if occurred_at_ms is not None else now,
            received_at_ms=now,
            source=self._source,
            payload=payload,
        )

    # --- POST /v1/events ----------------------------------------------------------------------

    def events(self, body: Any) -> list[Envelope]:
        items, prefix = _batch(body, "events")
        return [self.event(item, f"{prefix}[{i}]" if prefix else "") for i, item in enumerate(items)]

    def event(self, raw: Any, at: str) -> Envelope:
        dot = f"{at}." if at else ""
        item = _object(raw, at or "body")
        kind = item.get("type", "business_event")
        parse = _EVENT_PARSERS.get(kind) if isinstance(kind, str) else None
        if parse is None:
            raise UnknownEventType(
                f"{dot}type: unknown event type {kind!r}; known types are"
                f" {', '.join(sorted(_EVENT_PARSERS))}",
                field=f"{dot}type",
            )
        customer = customer_id(item.get("customer_id"), f"{dot}customer_id")
        event_id = _string(item.get("event_id"), f"{dot}event_id", max_length=128, optional=True)
        occurred = _epoch_ms(item.get("occurred_at"), f"{dot}occurred_at", self._now_ms())
        return self.envelope(customer, parse(item, dot), event_id=event_id, occurred_at_ms=occurred)

    # --- POST /v1/customers -------------------------------------------------------------------

    def customers(self, body: Any) -> list[Envelope]:
        items, prefix = _batch(body, "customers")
        envelopes: list[Envelope] = []
        for i, item in enumerate(items):
            envelopes.extend(self.customer(item, f"{prefix}[{i}]" if prefix else ""))
        return envelopes

    def customer(self, raw: Any, at: str) -> list[Envelope]:
        dot = f"{at}." if at else ""
        item = _object(raw, at or "body")
        known = {"customer_id", "attributes", "contacts", "campaign_data", "consent"}
        unknown = sorted(set(item) - known)
        if unknown:
            raise _fail(f"{dot}{unknown[0]}", f"unknown field; known fields are {', '.join(sorted(known))}")
        customer = customer_id(item.get("customer_id"), f"{dot}customer_id")
        payloads: list[Payload] = []
        if "attributes" in item:
            values, unset = _attributes(item["attributes"], f"{dot}attributes")
            payloads.append(CustomerUpdate(set=values, unset=unset))
        if "contacts" in item:
            payloads.append(_contacts(item["contacts"], f"{dot}contacts"))
        if "campaign_data" in item:
            for campaign, data in _object(item["campaign_data"], f"{dot}campaign_data").items():
                _name(campaign, f"{dot}campaign_data.{campaign}")
                values, unset = _attributes(data, f"{dot}campaign_data.{campaign}")
                payloads.append(CustomerUpdate(set=values, unset=unset, campaign_id=campaign))
        if "consent" in item:
            consent = item["consent"]
            if not isinstance(consent, list):
                raise _fail(f"{dot}consent", f"expected a list, got {_kind(consent)}")
            payloads.extend(_consent(c, f"{dot}consent[{j}]") for j, c in enumerate(consent))
        if not payloads:
            raise _fail(
                at or "body", "nothing to update: give attributes, contacts, campaign_data or consent"
            )
        return [self.envelope(customer, payload) for payload in payloads]


def _batch(body: Any, key: str) -> tuple[list[Any], str]:
    if isinstance(body, dict) and key in body:
        items = body[key]
        if not isinstance(items, list) or not items:
            raise _fail(key, "expected a non-empty list")
        if len(items) > MAX_BATCH:
            raise _fail(key, f"a batch holds at most {MAX_BATCH} items, got {len(items)}")
        return items, key
    if isinstance(body, dict):
        return [body], ""
    raise _fail("body", f"expected a JSON object, got {_kind(body)}")


def _business_event(item: Mapping[str, Any], dot: str) -> Payload:
    name = _name(item.get("name"), f"{dot}name")
    data = _object(item.get("data", {}), f"{dot}data")
    if len(data) > MAX_FIELDS:
        raise _fail(f"{dot}data", f"has more than {MAX_FIELDS} fields")
    values = {}
    for key, value in data.items():
        _name(key, f"{dot}data.{key}")
        values[key] = _business_value(value, f"{dot}data.{key}")
    return BusinessEvent(name=name, data=values)


def _interaction(item: Mapping[str, Any], dot: str) -> Payload:
    kind = item.get("kind")
    if kind not in INTERACTION_KINDS:
        raise _fail(f"{dot}kind", f"expected one of {', '.join(INTERACTION_KINDS)}, got {kind!r}")
    data = _object(item.get("data", {}), f"{dot}data")
    return Interaction(
        kind=kind,
        interaction_id=_string(
            item.get("interaction_id"), f"{dot}interaction_id", max_length=128, optional=True
        )
        or uuid.uuid4().hex,
        campaign_id=_string(item.get("campaign_id"), f"{dot}campaign_id", optional=True),
        placement_id=_string(item.get("placement_id"), f"{dot}placement_id", optional=True),
        delivery_id=_string(item.get("delivery_id"), f"{dot}delivery_id", optional=True),
        channel=_string(item.get("channel"), f"{dot}channel", optional=True),
        data={str(k): str(v) for k, v in data.items()},
    )


def _consent(raw: Any, at: str) -> ConsentUpdate:
    item = _object(raw, at)
    opted_in = item.get("opted_in")
    if not isinstance(opted_in, bool):
        raise _fail(f"{at}.opted_in", f"expected true or false, got {_kind(opted_in)}")
    channel = item.get("channel")
    if channel is not None and channel not in CHANNELS:
        raise _fail(f"{at}.channel", f"expected one of {', '.join(CHANNELS)}, got {channel!r}")
    return ConsentUpdate(
        opted_in=opted_in,
        channel=channel,
        campaign_id=_string(item.get("campaign_id"), f"{at}.campaign_id", optional=True),
        category=_string(item.get("category"), f"{at}.category", optional=True),
    )


def _consent_event(item: Mapping[str, Any], dot: str) -> Payload:
    return _consent(item, dot.rstrip(".") or "body")


def _contacts(raw: Any, at: str) -> ContactUpdate:
    item = _object(raw, at)
    email = item.get("email")
    if email is not None and (not isinstance(email, str) or (email and "@" not in email)):
        raise _fail(f"{at}.email", f"{email!r} is not an email address")
    phone = item.get("phone")
    if phone is not None and (
        not isinstance(phone, str) or (phone and not re.fullmatch(r"\+[1-9]\d{6,14}", phone))
    ):
        raise _fail(f"{at}.phone", f"{phone!r} is not a phone number in E.164 form (+598...)")
    tokens: list[PushToken] = []
    given = item.get("push_tokens") or []
    if not isinstance(given, list):
        raise _fail(f"{at}.push_tokens", f"expected a list, got {_kind(given)}")
    for j, token in enumerate(given):
        token_item = _object(token, f"{at}.push_tokens[{j}]")
        platform = token_item.get("platform")
        if platform not in PUSH_PLATFORMS:
            raise _fail(f"{at}.push_tokens[{j}].platform", f"expected one of {', '.join(PUSH_PLATFORMS)}")
        value = _required_string(token_item.get("token"), f"{at}.push_tokens[{j}].token", max_length=4096)
        tokens.append(PushToken(platform=platform, token=value))
    return ContactUpdate(email=email, phone=phone, add_push_tokens=tuple(tokens))


_EVENT_PARSERS: dict[str, Callable[[Mapping[str, Any], str], Payload]] = {
    "business_event": _business_event,
    "interaction": _interaction,
    "consent_update": _consent_event,
}
