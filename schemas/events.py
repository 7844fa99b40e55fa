"""The Avro form of ``engine.events``: an Envelope dataclass to the Avro value and back.

Record timestamps are epoch milliseconds on both sides (Avro ``occurred_at`` is the dataclass's
``occurred_at_ms``). Attribute values keep their Python type through the DateValue,
TimestampValue and StringList records; datetimes come back aware, in UTC, to the millisecond.
The payload is written in fastavro's tuple notation, ``(record full name, value)``, which is also
how the codec asks fastavro to read unions of records back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, cast

from engine.errors import DecodeError
from engine.events import (
    CHANNELS,
    DELIVERY_STATUSES,
    INTERACTION_KINDS,
    PUSH_PLATFORMS,
    BusinessEvent,
    BusinessValue,
    ConsentUpdate,
    ContactUpdate,
    CustomerErased,
    CustomerUpdate,
    DeliveryResult,
    Envelope,
    Interaction,
    Payload,
    PushToken,
    ReferralClick,
    Tick,
)
from engine.values import AttributeValue
from schemas.catalog import NAMESPACE
from schemas.errors import EncodeError

AvroValue = dict[str, Any]

DATE_VALUE = f"{NAMESPACE}.DateValue"
TIMESTAMP_VALUE = f"{NAMESPACE}.TimestampValue"
STRING_LIST = f"{NAMESPACE}.StringList"

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_MILLISECOND = dt.timedelta(milliseconds=1)

_CHANNELS = frozenset(CHANNELS)
_DELIVERY_STATUSES = frozenset(DELIVERY_STATUSES)
_INTERACTION_KINDS = frozenset(INTERACTION_KINDS)
_PUSH_PLATFORMS = frozenset(PUSH_PLATFORMS)


# -- attribute values ---------------------------------------------------------------------------


def _checked_long(value: int, where: str) -> int:
    if LONG_MIN <= value <= LONG_MAX:
        return value
    raise EncodeError(f"{where}: {value} does not fit in an Avro long (64 bits)", field=where)


def _millis(value: int, where: str) -> int:
    # A float here (time.time() * 1000) would be written truncated without a word from fastavro.
    if type(value) is not int:
        raise EncodeError(f"{where} must be int epoch milliseconds, got {type(value).__name__}", field=where)
    return _checked_long(value, where)


# Values inside unions are written in fastavro's tuple notation, (branch, value): fastavro then
# takes the branch as given instead of trying each branch in turn, several times faster.
_PRIMITIVE_BRANCHES: Mapping[type, str] = {
    str: "string",
    int: "long",
    float: "double",
    bool: "boolean",
}


def _optional(value: str | None) -> tuple[str, str] | None:
    return None if value is None else ("string", value)


def attribute_to_avro(name: str, value: AttributeValue) -> tuple[str, object]:
    """The Avro union value of one attribute, in tuple notation."""
    branch = _PRIMITIVE_BRANCHES.get(type(value))
    if branch is not None:
        if branch == "long":
            _checked_long(cast(int, value), f"set.{name}")
        return (branch, value)
    # The record-backed types and subclasses; datetime before date, as datetime is a date.
    if isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            raise EncodeError(
                f"set.{name}: a timestamp attribute needs a time zone (use an aware datetime)",
                field=f"set.{name}",
            )
        return (TIMESTAMP_VALUE, {"millis": (value - _EPOCH) // _MILLISECOND})
    if isinstance(value, dt.date):
        return (DATE_VALUE, {"days": value.toordinal() - _EPOCH_DAY})
    if isinstance(value, tuple):
        return (STRING_LIST, {"items": list(value)})
    for kind in (bool, str, float, int):  # bool before int: bool is an int
        if isinstance(value, kind):
            return attribute_to_avro(name, kind(value))
    raise EncodeError(
        f"set.{name}: {type(value).__name__} is not an attribute type "
        "(string, long, double, boolean, date, timestamp, tuple of strings)",
        field=f"set.{name}",
    )


def _date_from_avro(value: AvroValue) -> dt.date:
    return dt.date.fromordinal(value["days"] + _EPOCH_DAY)


def _timestamp_from_avro(value: AvroValue) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=value["millis"])


def _string_list_from_avro(value: AvroValue) -> tuple[str, ...]:
    return tuple(value["items"])


_RECORD_VALUE_READERS: Mapping[str, Callable[[AvroValue], AttributeValue]] = {
    DATE_VALUE: _date_from_avro,
    TIMESTAMP_VALUE: _timestamp_from_avro,
    STRING_LIST: _string_list_from_avro,
}


def _attributes_from_avro(values: dict[str, Any], unset: list[str]) -> dict[str, Any]:
    """Turn the read map into attribute values in place; a null value joins ``unset``."""
    nulls: list[str] = []
    for name, value in values.items():
        if type(value) is tuple:
            values[name] = _RECORD_VALUE_READERS[value[0]](value[1])
        elif value is None:
            nulls.append(name)
    for name in nulls:
        del values[name]
        if name not in unset:
            unset.append(name)
    return values


def _business_data_to_avro(data: Mapping[str, BusinessValue]) -> dict[str, object]:
    converted: dict[str, object] = {}
    for name, value in data.items():
        if value is None:
            converted[name] = None
            continue
        branch = _PRIMITIVE_BRANCHES.get(type(value))
        if branch is None:
            for kind in (bool, str, float, int):  # subclasses, such as an IntEnum
                if isinstance(value, kind):
                    value = kind(value)
                    branch = _PRIMITIVE_BRANCHES[kind]
                    break
            else:
                raise EncodeError(
                    f"data.{name}: {type(value).__name__} is not a business event value "
                    "(null, string, long, double, boolean)",
                    field=f"data.{name}",
                )
        elif branch == "long":
            _checked_long(cast(int, value), f"data.{name}")
        converted[name] = (branch, value)
    return converted


# -- payloads to Avro ---------------------------------------------------------------------------


def _customer_update_to_avro(payload: CustomerUpdate) -> AvroValue:
    return {
        "set": {name: attribute_to_avro(name, value) for name, value in payload.set.items()},
        "unset": payload.unset,
        "campaign_id": _optional(payload.campaign_id),
    }


def _push_tokens_to_avro(tokens: tuple[PushToken, ...]) -> list[AvroValue]:
    return [{"platform": token.platform, "token": token.token} for token in tokens]


def _contact_update_to_avro(payload: ContactUpdate) -> AvroValue:
    return {
        "email": _optional(payload.email),
        "phone": _optional(payload.phone),
        "add_push_tokens": _push_tokens_to_avro(payload.add_push_tokens),
        "remove_push_tokens": _push_tokens_to_avro(payload.remove_push_tokens),
    }


def _consent_update_to_avro(payload: ConsentUpdate) -> AvroValue:
    return {
        "opted_in": payload.opted_in,
        "channel": _optional(payload.channel),
        "campaign_id": _optional(payload.campaign_id),
        "category": _optional(payload.category),
    }


def _interaction_to_avro(payload: Interaction) -> AvroValue:
    return {
        "kind": payload.kind,
        "interaction_id": payload.interaction_id,
        "campaign_id": _optional(payload.campaign_id),
        "placement_id": _optional(payload.placement_id),
        "delivery_id": _optional(payload.delivery_id),
        "channel": _optional(payload.channel),
        "data": payload.data,
    }


def _business_event_to_avro(payload: BusinessEvent) -> AvroValue:
    return {"name": payload.name, "data": _business_data_to_avro(payload.data)}


def _referral_click_to_avro(payload: ReferralClick) -> AvroValue:
    return {
        "code": payload.code,
        "campaign_id": payload.campaign_id,
        "source": _optional(payload.source),
        "visitor_id": _optional(payload.visitor_id),
    }


def _delivery_result_to_avro(payload: DeliveryResult) -> AvroValue:
    return {
        "delivery_id": payload.delivery_id,
        "status": payload.status,
        "channel": payload.channel,
        "campaign_id": _optional(payload.campaign_id),
        "provider_message_id": _optional(payload.provider_message_id),
        "reason": _optional(payload.reason),
    }


def _tick_to_avro(payload: Tick) -> AvroValue:
    return {"due_at": _millis(payload.due_at_ms, "payload.due_at_ms"), "reason": payload.reason}


def _customer_erased_to_avro(payload: CustomerErased) -> AvroValue:
    return {"reason": _optional(payload.reason)}


# Payload class -> (Avro full name, converter). The converters take the exact class.
_PAYLOAD_WRITERS: Mapping[type, tuple[str, Callable[[Any], AvroValue]]] = {
    CustomerUpdate: (f"{NAMESPACE}.CustomerUpdate", _customer_update_to_avro),
    ContactUpdate: (f"{NAMESPACE}.ContactUpdate", _contact_update_to_avro),
    ConsentUpdate: (f"{NAMESPACE}.ConsentUpdate", _consent_update_to_avro),
    Interaction: (f"{NAMESPACE}.Interaction", _interaction_to_avro),
    BusinessEvent: (f"{NAMESPACE}.BusinessEvent", _business_event_to_avro),
    ReferralClick: (f"{NAMESPACE}.ReferralClick", _referral_click_to_avro),
    DeliveryResult: (f"{NAMESPACE}.DeliveryResult", _delivery_result_to_avro),
    Tick: (f"{NAMESPACE}.Tick", _tick_to_avro),
    CustomerErased: (f"{NAMESPACE}.CustomerErased", _customer_erased_to_avro),
}


def envelope_to_avro(envelope: Envelope) -> AvroValue:
    """The Avro value of ``envelope``, ready for fastavro's writer."""
    try:
        record_name, convert = _PAYLOAD_WRITERS[type(envelope.payload)]
    except KeyError:
        raise EncodeError(
            f"payload: {type(envelope.payload).__name__} is not an event payload type",
            field="payload",
        ) from None
    return {
        "event_id": envelope.event_id,
        "customer_id": envelope.customer_id,
        "occurred_at": _millis(envelope.occurred_at_ms, "occurred_at_ms"),
        "received_at": _millis(envelope.received_at_ms, "received_at_ms"),
        "source": envelope.source,
        "payload": (record_name, convert(envelope.payload)),
    }


# -- payloads from Avro -------------------------------------------------------------------------


def _one_of(value: Any, allowed: frozenset[str], where: str) -> Any:
    if value in allowed:
        return value
    raise DecodeError(f"{where} is {value!r}, which is not one of {', '.join(sorted(allowed))}")


def _optional_channel(value: Any) -> Any:
    return None if value is None else _one_of(value, _CHANNELS, "ConsentUpdate.channel")


def _customer_update_from_avro(value: AvroValue) -> CustomerUpdate:
    unset: list[str] = value["unset"]
    attributes = _attributes_from_avro(value["set"], unset)
    return CustomerUpdate(set=attributes, unset=tuple(unset), campaign_id=value["campaign_id"])


def _push_tokens_from_avro(values: list[AvroValue]) -> tuple[PushToken, ...]:
    return tuple(
        PushToken(
            platform=_one_of(token["platform"], _PUSH_PLATFORMS, "PushToken.platform"),
            token=token["token"],
        )
        for token in values
    )


def _contact_update_from_avro(value: AvroValue) -> ContactUpdate:
    return ContactUpdate(
        email=value["email"],
        phone=value["phone"],
        add_push_tokens=_push_tokens_from_avro(value["add_push_tokens"]),
        remove_push_tokens=_push_tokens_from_avro(value["remove_push_tokens"]),
    )


def _consent_update_from_avro(value: AvroValue) -> ConsentUpdate:
    return ConsentUpdate(
        opted_in=value["opted_in"],
        channel=_optional_channel(value["channel"]),
        campaign_id=value["campaign_id"],
        category=value["category"],
    )


def _interaction_from_avro(value: AvroValue) -> Interaction:
    return Interaction(
        kind=_one_of(value["kind"], _INTERACTION_KINDS, "Interaction.kind"),
        interaction_id=value["interaction_id"],
        campaign_id=value["campaign_id"],
        placement_id=value["placement_id"],
        delivery_id=value["delivery_id"],
        channel=value["channel"],
        data=value["data"],
    )


def _business_event_from_avro(value: AvroValue) -> BusinessEvent:
    return BusinessEvent(name=value["name"], data=value["data"])


def _referral_click_from_avro(value: AvroValue) -> ReferralClick:
    return ReferralClick(
        code=value["code"],
        campaign_id=value["campaign_id"],
        source=value["source"],
        visitor_id=value["visitor_id"],
    )


def _delivery_result_from_avro(value: AvroValue) -> DeliveryResult:
    return DeliveryResult(
        delivery_id=value["delivery_id"],
        status=_one_of(value["status"], _DELIVERY_STATUSES, "DeliveryResult.status"),
        channel=_one_of(value["channel"], _CHANNELS, "DeliveryResult.channel"),
        campaign_id=value["campaign_id"],
        provider_message_id=value["provider_message_id"],
        reason=value["reason"],
    )


def _tick_from_avro(value: AvroValue) -> Tick:
    return Tick(due_at_ms=value["due_at"], reason=value["reason"])


def _customer_erased_from_avro(value: AvroValue) -> CustomerErased:
    return CustomerErased(reason=value["reason"])


_PAYLOAD_READERS: Mapping[str, Callable[[AvroValue], Payload]] = {
    f"{NAMESPACE}.CustomerUpdate": _customer_update_from_avro,
    f"{NAMESPACE}.ContactUpdate": _contact_update_from_avro,
    f"{NAMESPACE}.ConsentUpdate": _consent_update_from_avro,
    f"{NAMESPACE}.Interaction": _interaction_from_avro,
    f"{NAMESPACE}.BusinessEvent": _business_event_from_avro,
    f"{NAMESPACE}.ReferralClick": _referral_click_from_avro,
    f"{NAMESPACE}.DeliveryResult": _delivery_result_from_avro,
    f"{NAMESPACE}.Tick": _tick_from_avro,
    f"{NAMESPACE}.CustomerErased": _customer_erased_from_avro,
}

PAYLOAD_RECORD_NAMES: frozenset[str] = frozenset(_PAYLOAD_READERS)


def envelope_from_avro(value: AvroValue) -> Envelope:
    """The Envelope of a value read with ``return_record_name=True`` (the payload is a tuple)."""
    record_name, payload = value["payload"]
    # Positional: this runs for every event, and keywords cost a little more.
    return Envelope(
        value["event_id"],
        value["customer_id"],
        value["occurred_at"],
        value["received_at"],
        value["source"],
        _PAYLOAD_READERS[record_name](payload),
    )
