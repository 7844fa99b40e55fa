"""Reading the options of a sync definition (a YAML or JSON mapping) with errors that name paths.

Every getter raises ``MappingError`` with the full path of the option (``columns[2].format``), so
a person sees exactly what to change; an unknown option is refused with the closest known one.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.csv.errors import MappingError

_MISSING: Any = object()


class Options:
    """One mapping at ``path`` whose keys must be among ``known`` (an unknown one is refused
    with the closest known name), with typed getters whose errors name the option's path."""

    def __init__(self, data: object, path: str, known: Sequence[str]) -> None:
        if not isinstance(data, Mapping):
            what = path or "the sync"
            raise MappingError(path, f"expected {what} to be a mapping of options (key: value)")
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                where = f"{path}.{key}" if path else str(key)
                raise MappingError(where, f"unknown option{hint}")
        self.data: Mapping[Any, Any] = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key)
        if value is None:
            if default is _MISSING:
                raise MappingError(self.at(key), "is required")
            return default
        return text_option(value, self.at(key))

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise MappingError(self.at(key), f"expected true or false, not {value!r}")
        return value

    def choice(self, key: str, choices: Sequence[str], default: Any = _MISSING) -> Any:
        value = self.text(key, default)
        if value not in choices:
            raise MappingError(self.at(key), f"'{value}' is not a {key}; use one of {', '.join(choices)}")
        return value


def text_option(value: object, path: str) -> str:
    """``value`` as non-blank text; YAML numbers are taken as their text, booleans refused."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(
            path, f"expected text, not {value!r}; put it in quotes if YAML read it as another type"
        )
    text = str(value)
    if not text.strip():
        raise MappingError(path, "must not be empty")
    return text


def quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def check_zone(zone: str, path: str) -> None:
    """Refuse ``zone`` (at ``path``) unless it is an IANA time zone name."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(
            path, f"'{zone}' is not a time zone; use an IANA name such as Europe/Madrid or UTC"
        ) from None
