"""Loading the settings once, at start: defaults < settings file (YAML) < REFRACT_* variables."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import yaml

from engine.campaigns.definition import channel_caps_from_text
from engine.errors import ConfigurationError
from engine.settings import ApiKeySetting, RocksDBSettings, Settings
from engine.signing import parse_secrets
from ops.channel_config import known_variables as channel_variables
from ops.channel_config import load_channel_settings

DEFAULT_SETTINGS_FILE = "refract.yaml"

_INT = int
_SCALARS: dict[str, Callable[[str], Any]] = {
    "namespace": str,
    "kafka_bootstrap": str,
    "local_kafka_port": _INT,
    "partitions": _INT,
    "replication_factor": _INT,
    "data_dir": Path,
    "web_host": str,
    "web_bind": str,
    "web_port": _INT,
    "worker_name": str,
    "max_body_bytes": _INT,
    "batch_max_events": _INT,
    "batch_within_s": float,
    "standby_replicas": _INT,
    "log_level": str,
    "channel_caps": channel_caps_from_text,
    "default_timezone": str,
    "clock_file": Path,
    "sync_check_interval_s": float,
    "public_url": str,
    "mailgun_webhook_key": str,
    "twilio_auth_token": str,
    "rate_limit_per_s": float,
    "rate_limit_burst": _INT,
}
_ROCKSDB = {f.name: _INT for f in fields(RocksDBSettings)}


def _convert(name: str, raw: Any, convert: Callable[[str], Any], where: str) -> Any:
    try:
        return convert(raw) if not isinstance(raw, bool) else raw
    except (TypeError, ValueError):
        kind = {int: "an integer", float: "a number"}.get(convert, "a valid value")  # type: ignore[call-overload]
        raise ConfigurationError(f"{where}: {raw!r} is not {kind}") from None


def known_variables() -> frozenset[str]:
    """Every REFRACT_* environment variable load_settings reads."""
    names = {f"REFRACT_{name.upper()}" for name in _SCALARS}
    names |= {f"REFRACT_ROCKSDB_{name.upper()}" for name in _ROCKSDB}
    names |= channel_variables()
    return frozenset(
        names
        | {
            "REFRACT_API_KEYS",
            "REFRACT_CORS_ORIGINS",
            "REFRACT_KAFKA_PORT",
            "REFRACT_SETTINGS_FILE",
            "REFRACT_SIGNING_SECRET",
        }
    )


_KEY_OPTIONS = ("public", "origin", "rate_per_s", "burst")


def parse_api_keys(raw: str, where: str) -> tuple[ApiKeySetting, ...]:
    """``id:sha256:scope,scope;id2:...`` (the form ``refract keys create`` prints).

    Options follow the scopes as a query string:
    ``id:sha256:decisions:read?public&origin=https://shop.example&rate_per_s=50&burst=100``.
    """
    keys = []
    for index, item in enumerate(part for part in raw.split(";") if part.strip()):
        text, _, query = item.strip().partition("?")
        pieces = text.split(":", 2)
        if len(pieces) != 3 or len(pieces[1]) != 64:
            raise ConfigurationError(
                f"{where}: key {index + 1} must look like 'id:<sha256 hex>:scope1,scope2'"
                " (run 'refract keys create' to make one)"
            )
        key_id, digest, scopes = pieces
        options = urllib.parse.parse_qsl(query, keep_blank_values=True)
        unknown = sorted({name for name, _ in options} - set(_KEY_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"{where}: key {key_id!r} has an unknown option {unknown[0]!r};"
                f" options are {', '.join(_KEY_OPTIONS)}"
            )
        values = dict(options)
        keys.append(
            ApiKeySetting(
                key_id,
                digest,
                frozenset(s for s in scopes.split(",") if s),
                public="public" in values and values["public"] in ("", "1", "true"),
                origins=tuple(value for name, value in options if name == "origin"),
                rate_per_s=_optional(values.get("rate_per_s"), float, f"{where}: {key_id} rate_per_s"),
                burst=_optional(values.get("burst"), _INT, f"{where}: {key_id} burst"),
            )
        )
    return tuple(keys)


def _optional(raw: Any, convert: Callable[[str], Any], where: str) -> Any:
    return None if raw is None else _convert(where, raw, convert, where)


def _origins(raw: Any, where: str) -> tuple[str, ...]:
    """A list of origins, or one comma-separated text (as in REFRACT_CORS_ORIGINS)."""
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    raise ConfigurationError(f"{where}: expected a list of origins such as https://shop.example")


def _keys_from_file(raw: Any, where: str) -> tuple[ApiKeySetting, ...]:
    if not isinstance(raw, list):
        raise ConfigurationError(f"{where}: expected a list of keys with id, sha256 and scopes")
    keys = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not {"id", "sha256", "scopes"} <= set(item):
            raise ConfigurationError(f"{where}[{index}]: a key needs id, sha256 and scopes")
        at = f"{where}[{index}]"
        unknown = sorted(set(item) - {"id", "sha256", "scopes", "public", "origins", "rate_per_s", "burst"})
        if unknown:
            raise ConfigurationError(f"{at}.{unknown[0]}: unknown key setting")
        keys.append(
            ApiKeySetting(
                str(item["id"]),
                str(item["sha256"]),
                frozenset(item["scopes"]),
                public=item.get("public") is True,
                origins=_origins(item.get("origins", []), f"{at}.origins"),
                rate_per_s=_optional(item.get("rate_per_s"), float, f"{at}.rate_per_s"),
                burst=_optional(item.get("burst"), _INT, f"{at}.burst"),
            )
        )
    return tuple(keys)


def load_settings(
    env: Mapping[str, str] | None = None, settings_file: Path | None = None, **overrides: Any
) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    rocksdb: dict[str, Any] = {}
    channels: Any = None

    path = settings_file or (Path(env["REFRACT_SETTINGS_FILE"]) if env.get("REFRACT_SETTINGS_FILE") else None)
    if path is None and Path(DEFAULT_SETTINGS_FILE).is_file():
        path = Path(DEFAULT_SETTINGS_FILE)
    if path is not None:
        values, rocksdb = _from_file(path)
        channels = values.pop("channels", None)

    for name, convert in _SCALARS.items():
        variable = f"REFRACT_{name.upper()}"
        if env.get(variable, "") != "":
            values[name] = _convert(name, env[variable], convert, variable)
    if env.get("REFRACT_KAFKA_PORT"):
        values["local_kafka_port"] = _convert("port", env["REFRACT_KAFKA_PORT"], _INT, "REFRACT_KAFKA_PORT")
    for name, convert in _ROCKSDB.items():
        variable = f"REFRACT_ROCKSDB_{name.upper()}"
        if env.get(variable):
            rocksdb[name] = _convert(name, env[variable], convert, variable)
    if env.get("REFRACT_API_KEYS"):
        values["api_keys"] = parse_api_keys(env["REFRACT_API_KEYS"], "REFRACT_API_KEYS")
    if env.get("REFRACT_SIGNING_SECRET"):
        values["signing_secrets"] = parse_secrets(env["REFRACT_SIGNING_SECRET"])
    if env.get("REFRACT_CORS_ORIGINS"):
        values["cors_origins"] = _origins(env["REFRACT_CORS_ORIGINS"], "REFRACT_CORS_ORIGINS")

    channel_settings = load_channel_settings(env, channels, f"{path}: channels")
    if channel_settings is not None:
        values["channels"] = channel_settings
    values.update({k: v for k, v in overrides.items() if v is not None})
    if rocksdb:
        values["rocksdb"] = replace(RocksDBSettings(), **rocksdb)
    return Settings(**values)


def _secrets_from_file(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return parse_secrets(raw)
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    raise ConfigurationError(f"{where}: expected a list of secrets, the signing one first")


def _from_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigurationError(f"settings file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"settings file {path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"settings file {path} must be a mapping of setting: value")
    values: dict[str, Any] = {}
    rocksdb: dict[str, Any] = {}
    for name, raw in document.items():
        where = f"{path}: {name}"
        if name in _SCALARS:
            values[name] = _convert(name, raw, _SCALARS[name], where)
        elif name == "api_keys":
            values["api_keys"] = _keys_from_file(raw, where)
        elif name == "signing_secrets":
            values["signing_secrets"] = _secrets_from_file(raw, where)
        elif name == "cors_origins":
            values["cors_origins"] = _origins(raw, where)
        elif name == "channels":
            values["channels"] = raw  # read by ops.channel_config
        elif name == "rocksdb" and isinstance(raw, dict):
            for key, value in raw.items():
                if key not in _ROCKSDB:
                    raise ConfigurationError(f"{where}.{key}: unknown RocksDB setting")
                rocksdb[key] = _convert(key, value, _ROCKSDB[key], f"{where}.{key}")
        else:
            known = ", ".join(
                [*_SCALARS, "api_keys", "signing_secrets", "cors_origins", "rocksdb", "channels"]
            )
            raise ConfigurationError(f"{where}: unknown setting; known settings are {known}")
    return values, rocksdb
