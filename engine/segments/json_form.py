"""The JSON form of rules, for programs: every text construct has one JSON spelling.

Conditions::

    true / false
    {"and": [c, ...]}   {"or": [c, ...]}   {"not": c}
    {<operand>, "op": ">=", "value": <literal>}        comparison with a literal
    {<operand>, "op": "==", "right": {<operand>}}      comparison with another operand
    {<operand>, "op": "is null"}   {<operand>, "op": "is not null"}
    {<operand>}                                        a true/false operand used as a condition

Operands (the keys merged into the condition object)::

    {"attr": "balance"}                {"value": <literal>}
    {"age": "birth_date"}              {"days_since": "last_login"}
    {"count": {"event": "card_transaction", "within": "7d"}}
    {"sum": {"event": "card_transaction", "field": "amount", "within": "30d"}}
    {"last": {"event": "login"}, "field": "channel"}
    {"offer": "loan-q4", "field": "rate"}
    {"ever": {"interaction": "click", "campaign": "card-upsell"}}
    {"in_segment": "vip"}
    {"is_birthday": {"attr": "birth_date", "within": "3d"}}

Literals: JSON strings, numbers, true/false, null, arrays of those, and ``{"date": "2024-01-31"}``
or ``{"timestamp": "2024-01-31T09:30:00Z"}``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from engine.segments.errors import RuleSyntaxError
from engine.segments.functions import EVENT_FUNCTIONS, suggestion
from engine.segments.nodes import (
    COMPARISON_OPERATORS,
    Age,
    And,
    Attribute,
    Compare,
    Condition,
    Count,
    DaysSince,
    EventField,
    EventRef,
    Ever,
    InSegment,
    IsBirthday,
    IsNull,
    Last,
    Literal,
    LiteralValue,
    Not,
    Offer,
    Operand,
    Or,
    Scalar,
    Sum,
    Truth,
    Where,
)
from engine.segments.parser import MAX_DEPTH, parse_date, parse_timestamp

OPERAND_KEYS = (
    "attr",
    "value",
    "age",
    "days_since",
    "count",
    "sum",
    "last",
    "offer",
    "ever",
    "in_segment",
    "is_birthday",
    "event",
)
_NULL_CHECKS = {"is null": False, "is not null": True}
_CONDITION_EXAMPLE = '{"attr": "balance", "op": ">=", "value": 100}'


# --- to JSON -----------------------------------------------------------------------------------


def condition_json(node: Condition) -> Any:
    """The JSON form of ``condition`` (JSON-compatible: dicts, lists, strings, numbers, bools)."""
    if isinstance(node, And):
        return {"and": [condition_json(item) for item in node.items]}
    if isinstance(node, Or):
        return {"or": [condition_json(item) for item in node.items]}
    if isinstance(node, Not):
        return {"not": condition_json(node.item)}
    if isinstance(node, IsNull):
        return {**operand_json(node.operand), "op": "is not null" if node.negated else "is null"}
    if isinstance(node, Truth):
        if isinstance(node.operand, Literal) and isinstance(node.operand.value, bool):
            return node.operand.value
        return operand_json(node.operand)
    result = {**operand_json(node.left), "op": node.op}
    if isinstance(node.right, Literal) and not isinstance(node.left, Literal):
        result["value"] = literal_json(node.right.value)
    else:
        result["right"] = operand_json(node.right)
    return result


def literal_json(value: LiteralValue) -> Any:
    if isinstance(value, tuple):
        return [literal_json(item) for item in value]
    if isinstance(value, dt.datetime):
        return {"timestamp": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    return value


def _source_json(source: EventRef) -> dict[str, str]:
    if source.event is not None:
        return {"event": source.event}
    result = {"interaction": source.interaction or ""}
    if source.campaign is not None:
        result["campaign"] = source.campaign
    return result


def operand_json(node: Operand) -> dict[str, Any]:
    if isinstance(node, Literal):
        return {"value": literal_json(node.value)}
    if isinstance(node, Attribute):
        return {"attr": node.name}
    if isinstance(node, Age):
        return {"age": node.attribute}
    if isinstance(node, DaysSince):
        return {"days_since": node.attribute}
    if isinstance(node, Count | Sum):
        arguments: dict[str, str] = _source_json(node.source)
        if isinstance(node, Sum):
            arguments["field"] = node.field
        if node.within is not None:
            arguments["within"] = node.within
        return {"count" if isinstance(node, Count) else "sum": arguments}
    if isinstance(node, Last):
        return {"last": _source_json(node.source), "field": node.field}
    if isinstance(node, Offer):
        return {"offer": node.campaign, "field": node.field}
    if isinstance(node, Ever):
        return {"ever": _source_json(node.source)}
    if isinstance(node, InSegment):
        return {"in_segment": node.segment}
    if isinstance(node, EventField):
        return {"event": node.field}
    birthday = {"attr": node.attribute}
    if node.within is not None:
        birthday["within"] = node.within
    return {"is_birthday": birthday}


# --- from JSON ---------------------------------------------------------------------------------


def parse_json(doc: Any) -> Condition:
    """The syntax tree of a JSON rule. Raises RuleSyntaxError naming the path of the problem."""
    return _condition(doc, "", 0)


def _fail(path: str, reason: str) -> RuleSyntaxError:
    return RuleSyntaxError(reason, path=path or None)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _where(path: str) -> Where:
    return Where(path=path or None)


def _condition(doc: Any, path: str, depth: int) -> Condition:
    if depth > MAX_DEPTH:
        raise _fail(path, f"this rule nests more than {MAX_DEPTH} levels deep; simplify it")
    if isinstance(doc, bool):
        return Truth(Literal(doc, _where(path)), _where(path))
    if not isinstance(doc, Mapping):
        raise _fail(path, f"expected a condition, such as {_CONDITION_EXAMPLE}, or true/false")
    for word in ("and", "or", "not"):
        if word in doc:
            if len(doc) != 1:
                extra = sorted(str(key) for key in doc if key != word)
                raise _fail(path, f'"{word}" stands alone in its object; remove {extra}')
            return _logic(word, doc[word], _join(path, word), depth)
    if "op" in doc:
        return _comparison(doc, path)
    return Truth(_operand(doc, path), _where(path))


def _logic(word: str, value: Any, path: str, depth: int) -> Condition:
    if word == "not":
        return Not(_condition(value, path, depth + 1), _where(path))
    if not isinstance(value, list) or not value:
        raise _fail(path, f'"{word}" takes a list of at least one condition')
    items = tuple(_condition(item, _join(path, index), depth + 1) for index, item in enumerate(value))
    if len(items) == 1:
        return items[0]
    return And(items, _where(path)) if word == "and" else Or(items, _where(path))


def _comparison(doc: Mapping[str, Any], path: str) -> Condition:
    op = doc["op"]
    op_path = _join(path, "op")
    rest = {key: value for key, value in doc.items() if key != "op"}
    if op in _NULL_CHECKS:
        return IsNull(_operand(rest, path), _NULL_CHECKS[op], _where(op_path))
    if op not in COMPARISON_OPERATORS:
        known = ", ".join(f'"{name}"' for name in (*COMPARISON_OPERATORS, *_NULL_CHECKS))
        raise _fail(op_path, f"unknown operator {op!r}; use one of {known}")
    right: Operand
    if "right" in rest:
        right = _operand(rest.pop("right"), _join(path, "right"))
    elif "value" in rest:
        value_path = _join(path, "value")
        right = Literal(_literal(rest.pop("value"), value_path), _where(value_path))
    else:
        raise _fail(path, 'a comparison needs "value" (a literal) or "right" (an operand)')
    return Compare(_operand(rest, path), op, right, _where(op_path))


def _operand(doc: Any, path: str) -> Operand:
    if not isinstance(doc, Mapping):
        raise _fail(path, f'expected an operand, such as {{"attr": "balance"}}, not {doc!r}')
    kinds = [key for key in OPERAND_KEYS if key in doc]
    if len(kinds) != 1:
        if kinds:
            raise _fail(path, f"one operand per side: found {kinds}")
        unknown = [str(key) for key in doc]
        hint = suggestion(unknown[0], OPERAND_KEYS) if unknown else ""
        raise _fail(
            path,
            f'expected an operand such as {{"attr": "balance"}}; found keys {unknown}{hint}',
        )
    kind = kinds[0]
    value = doc[kind]
    here = _join(path, kind)
    allowed = {kind, "field"} if kind in ("last", "offer") else {kind}
    for key in doc:
        if key not in allowed:
            hint = suggestion(str(key), [*allowed, "op", "value", "right"])
            raise _fail(_join(path, str(key)), f"unknown key {key!r}{hint}")
    where = _where(here)
    if kind == "value":
        return Literal(_literal(value, here), where)
    if kind == "attr":
        return Attribute(_text(value, here), where)
    if kind == "age":
        return Age(_text(value, here), where)
    if kind == "days_since":
        return DaysSince(_text(value, here), where)
    if kind == "in_segment":
        return InSegment(_text(value, here), where)
    if kind == "event":
        return EventField(_text(value, here), where)
    if kind in ("last", "offer"):
        if "field" not in doc:
            raise _fail(path, f'"{kind}" needs "field", such as {{"{kind}": ..., "field": "rate"}}')
        field_name = _text(doc["field"], _join(path, "field"))
        if kind == "offer":
            return Offer(_text(value, here), field_name, where)
        return Last(_source(_arguments(value, here, kind), here), field_name, where)
    if kind == "is_birthday":
        arguments = _arguments(value, here, kind, ("attr", "within"))
        if "attr" not in arguments:
            raise _fail(here, '"is_birthday" needs "attr", such as {"attr": "birth_date"}')
        return IsBirthday(arguments["attr"], arguments.get("within"), where)
    arguments = _arguments(value, here, kind)
    source = _source(arguments, here)
    if kind == "count":
        return Count(source, arguments.get("within"), where)
    if kind == "sum":
        if "field" not in arguments:
            raise _fail(here, '"sum" needs "field", such as {"event": "...", "field": "amount"}')
        return Sum(source, arguments["field"], arguments.get("within"), where)
    return Ever(source, where)


def _arguments(
    value: Any, path: str, function: str, allowed: tuple[str, ...] | None = None
) -> dict[str, str]:
    allowed = allowed or EVENT_FUNCTIONS[function]
    if not isinstance(value, Mapping):
        raise _fail(path, f'"{function}" takes an object with {", ".join(allowed)}')
    arguments: dict[str, str] = {}
    for key, argument in value.items():
        if key not in allowed:
            raise _fail(
                _join(path, str(key)),
                f"{function} has no argument {key!r}{suggestion(str(key), list(allowed)) or '.'} "
                f"It takes {', '.join(allowed)}",
            )
        arguments[key] = _text(argument, _join(path, key))
    return arguments


def _source(arguments: Mapping[str, str], path: str) -> EventRef:
    return EventRef(arguments.get("event"), arguments.get("interaction"), arguments.get("campaign"))


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"expected a text (a JSON string), not {value!r}")
    return value


def _literal(value: Any, path: str) -> LiteralValue:
    if isinstance(value, list):
        return tuple(_scalar(item, _join(path, index)) for index, item in enumerate(value))
    return _scalar(value, path)


def _scalar(value: Any, path: str) -> Scalar:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(path, "numbers must be finite")
        return value
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, text),) = value.items()
        try:
            if key == "date":
                return parse_date(_text(text, _join(path, "date")))
            if key == "timestamp":
                return parse_timestamp(_text(text, _join(path, "timestamp")))
        except ValueError as exc:
            raise _fail(_join(path, str(key)), str(exc)) from None
    raise _fail(
        path,
        "expected a literal: a string, a number, true/false, null, a list of those, "
        f'{{"date": "YYYY-MM-DD"}} or {{"timestamp": "..."}}, not {value!r}',
    )
