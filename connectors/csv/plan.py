"""A sync compiled against one file's columns: from a record's cells to a key, values and events.

Compiling does all the per-sync work once (positions, converters, expressions, the payload
builder), so a valid row costs one C-level pass over its cells (``map`` over precompiled
readers) and one payload; only a row with an error takes the slow path that names every bad
cell. A row's values are laid out as: file columns (in sync order), then calculated columns,
then the unsubscribe scope read from a column, if any.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Mapping, Sequence
from operator import call
from typing import TypeAlias

import orjson

from connectors.csv.expressions import compile_expression
from connectors.csv.mapping import Column, Sync, to_body
from connectors.csv.rows import RowError
from connectors.csv.values import CellError, StringType, compile_converter
from engine.events import (
    CHANNELS,
    ConsentUpdate,
    ContactUpdate,
    CustomerErased,
    CustomerUpdate,
    Payload,
    PushToken,
)
from engine.values import AttributeValue

Values: TypeAlias = list[AttributeValue | None]
CellReader: TypeAlias = Callable[[str], AttributeValue | None]
Builder: TypeAlias = Callable[[Values], Payload]

_TRANSFORMS: Mapping[str, Callable[[str], str]] = {
    "trim": str.strip,
    "lower": str.lower,
    "upper": str.upper,
}
_PUSH_PLATFORMS = {
    "push_token_android": "android",
    "push_token_ios": "ios",
    "push_token_web": "web",
}
# Parts of a sync that change a row's events; the others (where files come from, how they are
# spelled) do not, and changing them must not make every row look changed.
_EVENT_FIELDS = ("id", "kind", "key", "columns", "empty_cells", "campaign", "scope", "reason")


class RowPlan:
    """``sync`` compiled for a file whose columns are at ``positions``, ``width`` fields a row."""

    def __init__(self, sync: Sync, positions: Mapping[str, int], width: int) -> None:
        self.sync = sync
        self.width = width
        self.key_index = positions[sync.key.column]
        self._lower_key = sync.key.field == "email"
        # Plain text columns (strings, no transforms, no checks) are taken from the record as
        # they are, without a call per cell; the others go through their converter.
        plain = [c for c in sync.columns if _is_plain(c, sync)]
        converted = [c for c in sync.columns if c.column is not None and not _is_plain(c, sync)]
        calculated = [c for c in sync.columns if c.expression is not None]
        file_columns = [*plain, *converted]
        # The file columns in the order of a row's values, with their positions in a record.
        self.value_columns = tuple((c, positions[c.column]) for c in file_columns if c.column is not None)
        self.calculated = len(calculated)
        self._names = [c.column for c in file_columns if c.column is not None]
        self._readers = [_cell_reader(c, sync) for c in file_columns]
        self._cells = _cells_getter([positions[name] for name in self._names])
        self._plain_readers = self._readers[: len(plain)]
        self._plain_cells = _cells_getter([positions[name] for name in self._names[: len(plain)]])
        self._converted_readers = self._readers[len(plain) :]
        self._converted_cells = _cells_getter([positions[name] for name in self._names[len(plain) :]])
        order = [*file_columns, *calculated]
        slots = {column.attribute: index for index, column in enumerate(order)}
        self._calculated = [
            (compile_expression(c.expression, slots), c.attribute, c.default, c.required)
            for c in calculated
            if c.expression is not None
        ]
        scope = sync.scope
        self._scope_index = (
            positions[scope.column] if scope is not None and scope.column is not None else None
        )
        self.stored = [(slots[c.attribute], c.attribute) for c in order if c.store]
        self.build = _payload_builder(sync, self.stored, scope_slot=len(order))
        body = to_body(sync)
        events_part = {name: body.get(name) for name in _EVENT_FIELDS}
        fingerprint = hashlib.blake2b(
            orjson.dumps(events_part, option=orjson.OPT_SORT_KEYS), digest_size=32
        ).digest()
        self.salt, self.person = fingerprint[:16], fingerprint[16:]

    def digest(self, content: object) -> bytes:
        """The 16-byte digest of a row's values (or a customer's events), bound to the mapping."""
        return hashlib.blake2b(
            orjson.dumps(content), digest_size=16, salt=self.salt, person=self.person
        ).digest()

    def key_of(self, record: Sequence[str]) -> str | None:
        """The customer key of a record, or None when it has none (or too few fields)."""
        if len(record) <= self.key_index:
            return None
        key = record[self.key_index].strip()
        if not key:
            return None
        return key.lower() if self._lower_key else key

    def parse(self, line: int, record: Sequence[str]) -> tuple[str, Values] | list[RowError]:
        """(key, values) of a record, or every error that makes it invalid."""
        if len(record) != self.width:
            return [_width_error(line, len(record), self.width)]
        key = record[self.key_index].strip()
        if not key:
            return self.errors(line, record)
        try:
            plain = self._plain_cells(record)
            values: Values = list(map(call, self._plain_readers, plain)) if "" in plain else list(plain)
            values.extend(map(call, self._converted_readers, self._converted_cells(record)))
            for evaluate, _, default, required in self._calculated:
                value = evaluate(values)
                if value is None:
                    if default is None and required:
                        return self.errors(line, record)
                    value = default
                values.append(value)
        except CellError:
            return self.errors(line, record)
        if self._scope_index is not None:
            scope = self._scope_value(record[self._scope_index])
            if scope is None:
                return self.errors(line, record)
            values.append(scope)
        return (key.lower() if self._lower_key else key), values

    def errors(self, line: int, record: Sequence[str]) -> list[RowError]:
        """Every error of an invalid record, each naming its column (the slow path)."""
        if len(record) != self.width:
            return [_width_error(line, len(record), self.width)]
        key_column = self.sync.key.column
        errors: list[RowError] = []
        if not record[self.key_index].strip():
            errors.append(RowError(line, key_column, "", "the key is empty; every row needs one"))
        values: Values = []
        for name, read, text in zip(self._names, self._readers, self._cells(record), strict=True):
            try:
                values.append(read(text))
            except CellError as exc:
                values.append(None)
                errors.append(RowError(line, name, text, exc.reason))
        if len(errors) == 0:
            for evaluate, attribute, default, required in self._calculated:
                try:
                    value = evaluate(values)
                except CellError as exc:
                    errors.append(RowError(line, attribute, None, exc.reason))
                    value = None
                if value is None and default is None and required:
                    errors.append(RowError(line, attribute, None, "calculated from empty cells; required"))
                values.append(value if value is not None else default)
        scope = self.sync.scope
        if self._scope_index is not None and scope is not None and scope.column is not None:
            text = record[self._scope_index]
            if self._scope_value(text) is None:
                errors.append(RowError(line, scope.column, text, self._scope_problem()))
        return errors

    def _scope_value(self, text: str) -> str | None:
        scope = self.sync.scope
        assert scope is not None
        value = text.strip()
        if scope.type == "channel":
            value = value.lower()
            return value if value in CHANNELS else None
        return value or None

    def _scope_problem(self) -> str:
        scope = self.sync.scope
        assert scope is not None
        if scope.type == "channel":
            return f"not a channel; use one of {', '.join(CHANNELS)}"
        return f"the {scope.type} is empty"


def _is_plain(column: Column, sync: Sync) -> bool:
    return (
        column.column is not None
        and isinstance(column.type, StringType)
        and not column.transforms
        and not (sync.kind == "contacts" and column.attribute in _CONTACT_CHECKS)
    )


def _cells_getter(indexes: list[int]) -> Callable[[Sequence[str]], Sequence[str]]:
    if len(indexes) == 0:
        return lambda record: ()
    if len(indexes) == 1:
        index = indexes[0]
        return lambda record: (record[index],)
    getter: Callable[[Sequence[str]], Sequence[str]] = operator.itemgetter(*indexes)
    return getter


def _width_error(line: int, found: int, expected: int) -> RowError:
    return RowError(
        line,
        None,
        None,
        f"expected {expected} fields, found {found}; check the delimiter and quoting",
    )


def _cell_reader(column: Column, sync: Sync) -> CellReader:
    """The function from a cell's text to the column's value (None for an empty cell)."""
    convert = compile_converter(column.type)
    check = _CONTACT_CHECKS.get(column.attribute) if sync.kind == "contacts" else None
    if check is not None:
        convert = _checked(convert, check)
    transforms = [_TRANSFORMS[name] for name in column.transforms]
    # Strings keep their spaces unless trimmed; every other type ignores surrounding spaces.
    strip = not isinstance(column.type, StringType)
    default, required = column.default, column.required

    def empty() -> AttributeValue | None:
        if default is not None:
            return default
        if required:
            raise CellError("a value is required")
        return None

    if not transforms and not strip and check is None:

        def read_text(text: str) -> AttributeValue | None:
            return text if text else empty()

        return read_text
    if not transforms:

        def read_value(text: str) -> AttributeValue | None:
            text = text.strip()
            return convert(text) if text else empty()

        return read_value

    transform = _composed(transforms)
    if not strip and check is None:

        def read_transformed_text(text: str) -> AttributeValue | None:
            text = transform(text)
            return text if text else empty()

        return read_transformed_text

    def read_transformed(text: str) -> AttributeValue | None:
        text = transform(text).strip()
        return convert(text) if text else empty()

    return read_transformed


def _composed(transforms: list[Callable[[str], str]]) -> Callable[[str], str]:
    if len(transforms) == 1:
        return transforms[0]

    def composed(text: str) -> str:
        for transform in transforms:
            text = transform(text)
        return text

    return composed


def _checked(
    convert: Callable[[str], AttributeValue], problem: Callable[[str], str | None]
) -> Callable[[str], AttributeValue]:
    def check(text: str) -> AttributeValue:
        reason = problem(text)
        if reason is not None:
            raise CellError(reason)
        return convert(text)

    return check


def _email_problem(text: str) -> str | None:
    text = text.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in text):
        return f"'{text}' is not an email address"
    return None


_PHONE_CHARACTERS = frozenset("0123456789+-(). ")


def _phone_problem(text: str) -> str | None:
    if not set(text.strip()) <= _PHONE_CHARACTERS or sum(c.isdigit() for c in text) < 6:
        return f"'{text}' is not a phone number (digits, spaces, + - ( ) . and at least 6 digits)"
    return None


_CONTACT_CHECKS: Mapping[str, Callable[[str], str | None]] = {
    "email": _email_problem,
    "phone": _phone_problem,
}


# --- payloads --------------------------------------------------------------------------------


def _payload_builder(sync: Sync, stored: list[tuple[int, str]], scope_slot: int) -> Builder:
    """The function from a row's values to its event payload."""
    unset_empty = sync.empty_cells == "unset"
    if sync.kind in ("attributes", "campaign_data", "products"):
        return _customer_update_builder(stored, unset_empty, sync.campaign)
    if sync.kind == "contacts":
        return _contact_builder(stored, unset_empty)
    if sync.kind == "unsubscribes":
        assert sync.scope is not None
        return _consent_builder(sync.scope.type, sync.scope.value, scope_slot)
    erased = CustomerErased(reason=sync.reason)
    return lambda values: erased


def _customer_update_builder(
    stored: list[tuple[int, str]], unset_empty: bool, campaign_id: str | None
) -> Builder:
    slots = [slot for slot, _ in stored]
    names = [name for _, name in stored]
    # The common case (every column stored, in order) zips names with values directly.
    direct = slots == list(range(len(slots)))
    pick = _cells_getter(slots)

    def customer_update(values: Values) -> Payload:
        row = values if direct else pick(values)  # type: ignore[arg-type]
        if None in row:
            changed = {n: v for n, v in zip(names, row, strict=False) if v is not None}
            unset = tuple(n for n, v in zip(names, row, strict=False) if v is None)
            return CustomerUpdate(changed, unset if unset_empty else (), campaign_id)
        return CustomerUpdate(dict(zip(names, row, strict=False)), (), campaign_id)  # type: ignore[arg-type]

    return customer_update


def _contact_builder(stored: list[tuple[int, str]], unset_empty: bool) -> Builder:
    # ContactUpdate: None leaves a field as it is, "" clears it.
    cleared = "" if unset_empty else None
    slots = {attribute: slot for slot, attribute in stored}
    email_slot, phone_slot = slots.get("email"), slots.get("phone")
    tokens = [(slot, _PUSH_PLATFORMS[a]) for a, slot in slots.items() if a in _PUSH_PLATFORMS]

    def contact(values: Values, slot: int | None) -> str | None:
        if slot is None:
            return None
        value = values[slot]
        return cleared if value is None else str(value)

    def contact_update(values: Values) -> Payload:
        return ContactUpdate(
            email=contact(values, email_slot),
            phone=contact(values, phone_slot),
            add_push_tokens=tuple(
                PushToken(platform, str(values[slot]))  # type: ignore[arg-type]
                for slot, platform in tokens
                if values[slot] is not None
            ),
        )

    return contact_update


def _consent_builder(scope_type: str, fixed: str | None, scope_slot: int) -> Builder:
    if scope_type == "all":
        everything = ConsentUpdate(opted_in=False)
        return lambda values: everything

    def consent_update(values: Values) -> Payload:
        value = fixed if fixed is not None else str(values[scope_slot])
        if scope_type == "channel":
            channel = next(c for c in CHANNELS if c == value)
            return ConsentUpdate(opted_in=False, channel=channel)
        if scope_type == "campaign":
            return ConsentUpdate(opted_in=False, campaign_id=value)
        return ConsentUpdate(opted_in=False, category=value)

    return consent_update
