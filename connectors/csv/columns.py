"""The columns of a sync: how a file column (or a calculation) becomes a typed attribute.

``parse_columns`` validates the ``columns`` list of a sync definition: file columns first, then
calculated ones, whose expressions are type-checked against the file columns they read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args
from zoneinfo import ZoneInfo

from connectors.csv.errors import MappingError
from connectors.csv.expressions import (
    Expression,
    ExpressionError,
    infer_type,
    parse_expression,
)
from connectors.csv.options import Options, check_zone, quoted, text_option
from connectors.csv.values import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_TRUE_VALUES,
    ISO_DATE,
    TYPE_NAMES,
    BooleanType,
    CellError,
    DateType,
    DecimalType,
    IntegerType,
    ListType,
    StringType,
    TimestampType,
    ValueType,
    check_format,
    compile_converter,
)
from engine.values import AttributeValue

Transform: TypeAlias = Literal["trim", "lower", "upper"]
TRANSFORMS: tuple[Transform, ...] = get_args(Transform)
# The ContactUpdate fields a contacts sync can write, as column attributes.
CONTACT_FIELDS = ("email", "phone", "push_token_android", "push_token_ios", "push_token_web")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_STRING = StringType()
_OPTIONS = (
    "column",
    "attribute",
    "type",
    "format",
    "timezone",
    "separator",
    "decimal_separator",
    "true_values",
    "false_values",
    "required",
    "default",
    "transforms",
    "expression",
    "store",
)


@dataclass(slots=True, frozen=True)
class Column:
    """One attribute: read from a file ``column`` or calculated by an ``expression``.

    ``store=False`` reads a column only for use in expressions. ``default`` replaces an empty
    cell; ``required`` makes an empty cell (with no default) an error.
    """

    attribute: str
    type: ValueType = _STRING
    column: str | None = None
    expression: Expression | None = None
    required: bool = False
    default: AttributeValue | None = None
    transforms: tuple[Transform, ...] = ()
    store: bool = True


_TYPE_OPTIONS = {
    "decimal_separator": ("decimal",),
    "true_values": ("boolean",),
    "false_values": ("boolean",),
    "format": ("date", "timestamp"),
    "timezone": ("timestamp",),
    "separator": ("list",),
}


def parse_columns(section: Options, kind: str) -> tuple[Column, ...]:
    """The validated ``columns`` of ``section``, a sync of ``kind``."""
    raw = section.raw("columns")
    if kind in ("unsubscribes", "removals"):
        if raw:
            raise MappingError(
                "columns", f"{kind} syncs read only the key (and scope.column); remove columns"
            )
        return ()
    if not isinstance(raw, list) or not raw:
        raise MappingError("columns", f"{kind} syncs need a list of columns")
    items = [
        ({"column": item} if isinstance(item, str) else item, f"columns[{index}]")
        for index, item in enumerate(raw)
    ]
    # File columns first: calculated columns are typed by the file columns they read.
    parsed: dict[str, Column] = {}
    for item, path in items:
        if not _is_calculated(item):
            parsed[path] = _file_column(Options(item, path, _OPTIONS))
    file_types = {column.attribute: column.type.name for column in parsed.values()}
    calculated = {str(item.get("attribute")) for item, _ in items if _is_calculated(item)}
    for item, path in items:
        if _is_calculated(item):
            section = Options(item, path, _OPTIONS)
            parsed[path] = _calculated_column(section, file_types, calculated)
    columns = [parsed[path] for _, path in items]
    seen: dict[str, int] = {}
    for index, column in enumerate(columns):
        if column.attribute in seen:
            raise MappingError(
                f"columns[{index}].attribute",
                f"'{column.attribute}' is already written by columns[{seen[column.attribute]}]",
            )
        seen[column.attribute] = index
        _check_for_kind(column, kind, f"columns[{index}]")
    return tuple(columns)


def _is_calculated(item: object) -> bool:
    return isinstance(item, Mapping) and item.get("expression") is not None


def _file_column(column: Options) -> Column:
    name: str = column.text("column")
    attribute = _attribute(column, name)
    value_type = _value_type(column, column.choice("type", TYPE_NAMES, "string"))
    result = Column(
        attribute=attribute,
        type=value_type,
        column=name,
        required=column.boolean("required", False),
        default=_default(column, value_type),
        transforms=_transforms(column),
        store=column.boolean("store", True),
    )
    return result


def _calculated_column(column: Options, file_types: Mapping[str, str], calculated: set[str]) -> Column:
    if column.has("column"):
        raise MappingError(column.path, "give either column (read from the file) or expression")
    if column.raw("transforms"):
        raise MappingError(column.at("transforms"), "transforms apply to file columns, not to an expression")
    attribute = _attribute(column, None)
    try:
        expression = parse_expression(column.text("expression"))
        for name in expression.references:
            if name in calculated:
                raise ExpressionError(
                    f"'{name}' is a calculated column; expressions use columns read from the file"
                )
        result_type = infer_type(expression, file_types)
    except ExpressionError as exc:
        raise MappingError(column.at("expression"), str(exc)) from None
    type_name = column.choice("type", TYPE_NAMES, result_type)
    if not (type_name == result_type or (result_type, type_name) == ("integer", "decimal")):
        raise MappingError(
            column.at("type"),
            f"the expression gives a {result_type}, which a {type_name} column cannot hold",
        )
    value_type = _value_type(column, type_name)
    result = Column(
        attribute=attribute,
        type=value_type,
        expression=expression,
        required=column.boolean("required", False),
        default=_default(column, value_type),
        store=column.boolean("store", True),
    )
    return result


def _attribute(column: Options, name: str | None) -> str:
    attribute: str | None = column.text("attribute", name)
    if attribute is None:
        raise MappingError(column.at("attribute"), "a calculated column needs an attribute name")
    if not IDENTIFIER.match(attribute):
        rename = " (set attribute: to rename the column)" if attribute == name else ""
        raise MappingError(
            column.at("attribute"),
            f"'{attribute}' is not an attribute name; use letters, digits and _{rename}",
        )
    return attribute


def _value_type(column: Options, type_name: str) -> ValueType:
    for option, types in _TYPE_OPTIONS.items():
        if column.has(option) and type_name not in types:
            raise MappingError(column.at(option), f"only {' and '.join(types)} columns take a {option}")
    if type_name == "string":
        return StringType()
    if type_name == "integer":
        return IntegerType()
    if type_name == "decimal":
        separator = column.text("decimal_separator", ".")
        if separator not in (".", ","):
            raise MappingError(column.at("decimal_separator"), "use '.' or ','")
        return DecimalType(decimal_separator=separator)
    if type_name == "boolean":
        true_values = _boolean_texts(column, "true_values", DEFAULT_TRUE_VALUES)
        false_values = _boolean_texts(column, "false_values", DEFAULT_FALSE_VALUES)
        both = {t.lower() for t in true_values} & {f.lower() for f in false_values}
        if both:
            raise MappingError(column.at("false_values"), f"{quoted(sorted(both))} cannot be true and false")
        return BooleanType(true_values=true_values, false_values=false_values)
    if type_name == "date":
        date_format = column.text("format", ISO_DATE)
        problem = check_format(date_format, "date")
        if problem:
            raise MappingError(column.at("format"), problem)
        return DateType(format=date_format)
    if type_name == "timestamp":
        timestamp_format = column.text("format", None)
        if timestamp_format is not None:
            problem = check_format(timestamp_format, "timestamp")
            if problem:
                raise MappingError(column.at("format"), problem)
        zone = column.text("timezone", "UTC")
        check_zone(zone, column.at("timezone"))
        return TimestampType(format=timestamp_format, timezone=zone)
    separator = column.raw("separator")
    if separator is None:
        return ListType()
    if not isinstance(separator, str) or not separator:
        raise MappingError(column.at("separator"), "expected the text that separates items")
    return ListType(separator=separator)


def _boolean_texts(column: Options, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = column.raw(key)
    if raw is None:
        return default
    if not isinstance(raw, list) or not raw:
        raise MappingError(column.at(key), "expected a list of texts")
    texts = []
    for index, item in enumerate(raw):
        if isinstance(item, bool):
            raise MappingError(
                f"{column.at(key)}[{index}]",
                "YAML read this as a boolean; put it in quotes, e.g. 'yes'",
            )
        texts.append(text_option(item, f"{column.at(key)}[{index}]").strip())
    return tuple(texts)


def _transforms(column: Options) -> tuple[Transform, ...]:
    raw = column.raw("transforms")
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise MappingError(column.at("transforms"), "expected a list such as [trim, lower]")
    transforms: list[Transform] = []
    for index, item in enumerate(raw):
        if item not in TRANSFORMS:
            raise MappingError(
                f"{column.at('transforms')}[{index}]",
                f"{item!r} is not a transform; use one of {', '.join(TRANSFORMS)}",
            )
        transforms.append(item)
    return tuple(transforms)


def _default(column: Options, value_type: ValueType) -> AttributeValue | None:
    raw = column.raw("default")
    if raw is None:
        return None
    path = column.at("default")
    problem = f"{raw!r} is not a {value_type.name} value"
    if isinstance(value_type, StringType):
        return text_option(raw, path)
    if isinstance(raw, bool):
        if isinstance(value_type, BooleanType):
            return raw
        raise MappingError(path, problem)
    if isinstance(value_type, IntegerType) and isinstance(raw, int):
        return raw
    if isinstance(value_type, DecimalType) and isinstance(raw, int | float):
        return float(raw)
    if isinstance(value_type, TimestampType) and isinstance(raw, dt.datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=ZoneInfo(value_type.timezone))
    if isinstance(value_type, DateType) and isinstance(raw, dt.date):
        if isinstance(raw, dt.datetime):
            raise MappingError(path, problem)
        return raw
    if isinstance(value_type, ListType) and isinstance(raw, list):
        return tuple(text_option(item, f"{path}[{index}]") for index, item in enumerate(raw))
    if not isinstance(raw, str):
        raise MappingError(path, problem)
    convert = compile_converter(value_type)
    try:
        return convert(raw.strip())
    except CellError as exc:
        if isinstance(value_type, DateType | TimestampType):
            # Stored bodies write dates in ISO form whatever the column's format.
            try:
                return compile_converter(type(value_type)())(raw.strip())
            except CellError:
                pass
        raise MappingError(path, exc.reason) from None


def _check_for_kind(column: Column, kind: str, path: str) -> None:
    if kind == "contacts":
        if column.attribute not in CONTACT_FIELDS:
            raise MappingError(
                f"{path}.attribute",
                f"'{column.attribute}' is not a contact field; use one of {', '.join(CONTACT_FIELDS)}",
            )
        if not isinstance(column.type, StringType):
            raise MappingError(f"{path}.type", "contact columns are strings")
    elif kind == "products" and not isinstance(column.type, StringType | ListType):
        raise MappingError(f"{path}.type", "product columns fold into lists of texts; use string or list")


def column_body(column: Column) -> dict[str, Any]:
    """The JSON-compatible form of ``column`` (the YAML form, every option written)."""
    body: dict[str, Any] = {"attribute": column.attribute}
    if column.column is not None:
        body["column"] = column.column
    if column.expression is not None:
        body["expression"] = column.expression.source
    value_type = column.type
    body["type"] = value_type.name
    if isinstance(value_type, DecimalType):
        body["decimal_separator"] = value_type.decimal_separator
    elif isinstance(value_type, BooleanType):
        body["true_values"] = list(value_type.true_values)
        body["false_values"] = list(value_type.false_values)
    elif isinstance(value_type, DateType):
        body["format"] = value_type.format
    elif isinstance(value_type, TimestampType):
        if value_type.format is not None:
            body["format"] = value_type.format
        body["timezone"] = value_type.timezone
    elif isinstance(value_type, ListType):
        body["separator"] = value_type.separator
    body["required"] = column.required
    if column.default is not None:
        default = column.default
        if isinstance(default, dt.date):
            body["default"] = default.isoformat()
        elif isinstance(default, tuple):
            body["default"] = list(default)
        else:
            body["default"] = default
    if column.column is not None:
        body["transforms"] = list(column.transforms)
    body["store"] = column.store
    return body
