"""Sync definitions: how a CSV file maps onto customers, read from YAML or a stored body.

A ``Sync`` is plain, immutable data: what the file looks like, which column identifies the
customer, how each column becomes an attribute, and (optionally) where files come from and when.
It is validated once, here (columns in ``columns``), with errors that name the YAML path of the
problem (``columns[3].type``); the reader compiles a valid sync into per-column converters.
``to_body``/``from_body`` give the JSON form stored in ``refract.definitions``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast, get_args
from urllib.parse import urlsplit

import yaml
from croniter import croniter

from connectors.csv.columns import IDENTIFIER, Column, column_body, parse_columns
from connectors.csv.errors import MappingError
from connectors.csv.options import Options, check_zone, quoted, text_option
from engine.events import CHANNELS

__all__ = [
    "BasicAuth",
    "BearerAuth",
    "Column",
    "FolderSource",
    "Key",
    "Schedule",
    "Scope",
    "Source",
    "Sync",
    "UrlSource",
    "from_body",
    "load_sync",
    "parse_sync",
    "to_body",
]

Kind: TypeAlias = Literal["attributes", "contacts", "products", "campaign_data", "unsubscribes", "removals"]
KINDS: tuple[Kind, ...] = get_args(Kind)
Encoding: TypeAlias = Literal["utf-8", "utf-8-sig", "latin-1"]
ENCODINGS: tuple[Encoding, ...] = get_args(Encoding)
EmptyCells: TypeAlias = Literal["unset", "keep"]
ScopeType: TypeAlias = Literal["all", "campaign", "category", "channel"]
CUSTOMER_ID = "customer_id"

_SYNC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENCODING_ALIASES: Mapping[str, Encoding] = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf8-sig": "utf-8-sig",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_OPTIONS = (
    "id",
    "kind",
    "key",
    "columns",
    "delimiter",
    "encoding",
    "header",
    "empty_cells",
    "campaign",
    "scope",
    "reason",
    "schedule",
    "source",
    "full_snapshot",
)


INDEXED_FIELDS = ("email", "phone", "national_id")
"""Attributes (or contact fields) an import records in the key index, as field names of a sync key."""


@dataclass(slots=True, frozen=True)
class Key:
    """The column that identifies the customer, and what it holds.

    ``field`` is ``customer_id`` or another unique field (``email``, ``national_id``, ...) that
    must be resolved to a customer id through Refract's index before events are written.
    """

    column: str
    field: str = CUSTOMER_ID

    @property
    def needs_resolution(self) -> bool:
        return self.field != CUSTOMER_ID


@dataclass(slots=True, frozen=True)
class Scope:
    """What an unsubscribe applies to: a fixed ``value``, or the value of a ``column`` per row."""

    type: ScopeType
    value: str | None = None
    column: str | None = None


@dataclass(slots=True, frozen=True)
class Schedule:
    """When a sync runs: a five-field cron expression read in ``timezone``."""

    cron: str
    timezone: str = "UTC"


@dataclass(slots=True, frozen=True)
class BasicAuth:
    """HTTP Basic credentials; the password is read from the environment variable named."""

    username: str
    password_env: str


@dataclass(slots=True, frozen=True)
class BearerAuth:
    """An HTTP bearer token, read from the environment variable named."""

    token_env: str


@dataclass(slots=True, frozen=True)
class FolderSource:
    """A local folder watched for new files whose names match ``pattern``."""

    path: str
    pattern: str = "*.csv"


@dataclass(slots=True, frozen=True)
class UrlSource:
    """A file fetched over HTTP(S)."""

    url: str
    auth: BasicAuth | BearerAuth | None = None


Source: TypeAlias = FolderSource | UrlSource


@dataclass(slots=True, frozen=True)
class Sync:
    """A validated sync definition (see ``docs/imports.md`` for the YAML form).

    ``header`` is None when the file's first row is its header, or the column names of a file
    without one. ``empty_cells`` says what an empty optional cell does: ``unset`` removes the
    attribute from the profile, ``keep`` leaves it as it is.
    """

    id: str
    kind: Kind
    key: Key
    columns: tuple[Column, ...] = ()
    delimiter: str = ","
    encoding: Encoding = "utf-8"
    header: tuple[str, ...] | None = None
    empty_cells: EmptyCells = "unset"
    campaign: str | None = None
    scope: Scope | None = None
    reason: str | None = None
    schedule: Schedule | None = None
    source: Source | None = None
    full_snapshot: bool = False

    @property
    def file_columns(self) -> tuple[str, ...]:
        """Every file column the sync reads (key first), each once: the header must have them."""
        names = [self.key.column]
        names.extend(c.column for c in self.columns if c.column is not None)
        if self.scope is not None and self.scope.column is not None:
            names.append(self.scope.column)
        return tuple(dict.fromkeys(names))


# --- loading ---------------------------------------------------------------------------------


def load_sync(text: str | bytes) -> Sync:
    """Parse and validate a sync definition written in YAML."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError("", f"the sync is not valid YAML{where}: {problem}") from None
    return parse_sync(data)


def from_body(body: Mapping[str, Any]) -> Sync:
    """The sync a stored body (``to_body``) describes; validated like YAML."""
    return parse_sync(body)


def parse_sync(data: object) -> Sync:
    """Validate ``data`` (what YAML or JSON gave) into a ``Sync``; raises ``MappingError``."""
    section = Options(data, "", _OPTIONS)
    sync_id = section.text("id")
    if not _SYNC_ID.match(sync_id):
        raise MappingError(
            "id", f"'{sync_id}' is not a valid id; use letters, digits, '_', '.', '-' (max 128)"
        )
    kind = cast(Kind, section.choice("kind", KINDS))
    key = _key(section)
    columns = parse_columns(section, kind)
    campaign = _only_for(section, kind, "campaign", "campaign_data", required=True)
    scope = _scope(section, kind)
    reason = _only_for(section, kind, "reason", "removals", required=False)
    schedule = _schedule(section)
    source = _source(section)
    if schedule is not None and source is None:
        raise MappingError("schedule", "a scheduled sync needs a source (folder or url)")
    full_snapshot = section.boolean("full_snapshot", False)
    if full_snapshot and kind in ("unsubscribes", "removals"):
        raise MappingError("full_snapshot", f"{kind} syncs cannot be full snapshots")
    sync = Sync(
        id=sync_id,
        kind=kind,
        key=key,
        columns=columns,
        delimiter=_delimiter(section),
        encoding=_encoding(section),
        header=_header(section),
        empty_cells=cast(EmptyCells, section.choice("empty_cells", ("unset", "keep"), "unset")),
        campaign=campaign,
        scope=scope,
        reason=reason,
        schedule=schedule,
        source=source,
        full_snapshot=full_snapshot,
    )
    if sync.header is not None:
        missing = [name for name in sync.file_columns if name not in sync.header]
        if missing:
            raise MappingError("header", f"the sync reads {quoted(missing)}, which the header list lacks")
    return sync


def to_body(sync: Sync) -> dict[str, Any]:
    """The JSON-compatible form of ``sync``; ``from_body`` reads it back to an equal sync."""
    body: dict[str, Any] = {
        "id": sync.id,
        "kind": sync.kind,
        "key": {"column": sync.key.column, "field": sync.key.field},
        "columns": [column_body(column) for column in sync.columns],
        "delimiter": sync.delimiter,
        "encoding": sync.encoding,
        "header": True if sync.header is None else list(sync.header),
        "empty_cells": sync.empty_cells,
        "full_snapshot": sync.full_snapshot,
    }
    if sync.campaign is not None:
        body["campaign"] = sync.campaign
    if sync.scope is not None:
        scope: dict[str, Any] = {"type": sync.scope.type}
        if sync.scope.value is not None:
            scope["value"] = sync.scope.value
        if sync.scope.column is not None:
            scope["column"] = sync.scope.column
        body["scope"] = scope
    if sync.reason is not None:
        body["reason"] = sync.reason
    if sync.schedule is not None:
        body["schedule"] = {"cron": sync.schedule.cron, "timezone": sync.schedule.timezone}
    if isinstance(sync.source, FolderSource):
        body["source"] = {"folder": sync.source.path, "pattern": sync.source.pattern}
    elif isinstance(sync.source, UrlSource):
        source: dict[str, Any] = {"url": sync.source.url}
        auth = sync.source.auth
        if isinstance(auth, BasicAuth):
            source["auth"] = {"type": "basic", "username": auth.username, "password_env": auth.password_env}
        elif isinstance(auth, BearerAuth):
            source["auth"] = {"type": "bearer", "token_env": auth.token_env}
        body["source"] = source
    return body


# --- sections --------------------------------------------------------------------------------


def _only_for(section: Options, kind: Kind, key: str, owner: Kind, required: bool) -> str | None:
    if kind != owner:
        if section.has(key):
            raise MappingError(key, f"only {owner} syncs take a {key}")
        return None
    value: str | None = section.text(key) if required else section.text(key, None)
    return value


def _key(section: Options) -> Key:
    raw = section.raw("key")
    if raw is None:
        raise MappingError("key", "is required: the column that identifies the customer")
    if isinstance(raw, str):
        return Key(column=text_option(raw, "key"))
    key = Options(raw, "key", ("column", "field"))
    column = key.text("column")
    field = key.text("field", CUSTOMER_ID)
    if not IDENTIFIER.match(field):
        raise MappingError("key.field", f"'{field}' is not a field name (letters, digits, _)")
    return Key(column=column, field=field)


def _delimiter(section: Options) -> str:
    # Not section.text: a tab or a space is a fine delimiter but blank text.
    delimiter = section.raw("delimiter")
    if delimiter is None:
        return ","
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise MappingError(
            "delimiter", f"{delimiter!r} is not a delimiter; use one character such as , ; | or \\t"
        )
    return delimiter


def _encoding(section: Options) -> Encoding:
    name = section.text("encoding", "utf-8")
    encoding = _ENCODING_ALIASES.get(name.lower())
    if encoding is None:
        raise MappingError(
            "encoding",
            f"'{name}' is not supported; use one of {', '.join(ENCODINGS)}"
            " (utf-8 also reads files that start with a byte order mark)",
        )
    return encoding


def _header(section: Options) -> tuple[str, ...] | None:
    raw = section.raw("header")
    if raw is None or raw is True:
        return None
    if raw is False:
        raise MappingError("header", "a file without a header needs its column names: header: [name, ...]")
    if not isinstance(raw, list) or not raw:
        raise MappingError("header", "expected true or a list of column names")
    names = tuple(text_option(name, f"header[{index}]") for index, name in enumerate(raw))
    for index, name in enumerate(names):
        if name in names[:index]:
            raise MappingError(f"header[{index}]", f"'{name}' appears twice")
    return names


# --- kind-specific sections --------------------------------------------------------------------


def _scope(section: Options, kind: Kind) -> Scope | None:
    raw = section.raw("scope")
    if kind != "unsubscribes":
        if raw is not None:
            raise MappingError("scope", "only unsubscribes syncs take a scope")
        return None
    if raw is None:
        raise MappingError(
            "scope", "is required: type all, campaign, category or channel (with value or column)"
        )
    scope = Options(raw, "scope", ("type", "value", "column"))
    scope_type = cast(ScopeType, scope.choice("type", ("all", "campaign", "category", "channel")))
    value = scope.text("value", None)
    column = scope.text("column", None)
    if scope_type == "all":
        if value is not None or column is not None:
            raise MappingError("scope", "an unsubscribe from everything takes no value or column")
    elif (value is None) == (column is None):
        raise MappingError("scope", f"give either value (one {scope_type}) or column (per row)")
    if scope_type == "channel" and value is not None and value not in CHANNELS:
        raise MappingError("scope.value", f"'{value}' is not a channel; use one of {', '.join(CHANNELS)}")
    return Scope(type=scope_type, value=value, column=column)


def _schedule(section: Options) -> Schedule | None:
    raw = section.raw("schedule")
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"cron": raw}
    schedule = Options(raw, "schedule", ("cron", "timezone"))
    cron = schedule.text("cron").strip()
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise MappingError(
            "schedule.cron",
            f"'{cron}' is not a cron expression; use five fields: minute hour day month weekday"
            " (e.g. '0 2 * * *' for 02:00 every day)",
        )
    zone = schedule.text("timezone", "UTC")
    check_zone(zone, "schedule.timezone")
    return Schedule(cron=cron, timezone=zone)


def _source(section: Options) -> Source | None:
    raw = section.raw("source")
    if raw is None:
        return None
    source = Options(raw, "source", ("folder", "pattern", "url", "auth"))
    if source.has("folder") == source.has("url"):
        raise MappingError("source", "give either folder (a local path) or url")
    if source.has("folder"):
        result: Source = FolderSource(path=source.text("folder"), pattern=source.text("pattern", "*.csv"))
        return result
    url = source.text("url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MappingError("source.url", f"'{url}' is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise MappingError(
            "source.url", "do not put credentials in the URL; use source.auth with an env variable"
        )
    auth = _auth(source)
    if auth is not None and parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise MappingError("source.url", "credentials are sent only over https://")
    return UrlSource(url=url, auth=auth)


def _auth(source: Options) -> BasicAuth | BearerAuth | None:
    raw = source.raw("auth")
    if raw is None:
        return None
    # password and token are known so that an inline secret gets its own, precise refusal.
    auth = Options(raw, "source.auth", ("type", "username", "password_env", "token_env", "password", "token"))
    for secret in ("password", "token"):
        if auth.has(secret):
            raise MappingError(
                auth.at(secret),
                f"secrets are never written in a sync; put the {secret} in an environment"
                f" variable and give its name as {secret}_env",
            )
    auth_type = auth.choice("type", ("basic", "bearer"))
    result: BasicAuth | BearerAuth
    if auth_type == "basic":
        result = BasicAuth(username=auth.text("username"), password_env=_env_name(auth, "password_env"))
    else:
        result = BearerAuth(token_env=_env_name(auth, "token_env"))
    return result


def _env_name(auth: Options, key: str) -> str:
    name: str = auth.text(key)
    if not _ENV_NAME.match(name):
        raise MappingError(auth.at(key), f"'{name}' is not an environment variable name")
    return name
