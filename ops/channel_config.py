"""Loading the channels' settings from REFRACT_* variables and the settings file's ``channels:``.

Each provider section maps field by field: ``channels.smtp.host`` in the file is
``REFRACT_SMTP_HOST`` in the environment, ``channels.retry.max_attempts`` is
``REFRACT_DELIVERY_MAX_ATTEMPTS``. A section is enabled by its first field (host, domain,
account_sid, url, service_account_file, key_file). Secrets are read from the environment only.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from engine.channel_settings import (
    ApnsSettings,
    ChannelSettings,
    FcmSettings,
    MailgunSettings,
    SmsGatewaySettings,
    SmtpSettings,
    TwilioSettings,
)
from engine.errors import ConfigurationError
from engine.retry import RetryPolicy

SECTIONS: dict[str, type] = {
    "smtp": SmtpSettings,
    "mailgun": MailgunSettings,
    "twilio": TwilioSettings,
    "sms_gateway": SmsGatewaySettings,
    "fcm": FcmSettings,
    "apns": ApnsSettings,
}
SECRETS = {
    ("smtp", "password"),
    ("mailgun", "api_key"),
    ("twilio", "auth_token"),
    ("sms_gateway", "authorization"),
}
TOP_LEVEL = (
    "email_provider",
    "sms_provider",
    "email_from",
    "email_concurrency",
    "sms_concurrency",
    "push_concurrency",
    "max_pending",
)
_TOP_VARIABLES = {name: f"REFRACT_{name.upper()}" for name in TOP_LEVEL} | {
    "max_pending": "REFRACT_DELIVERY_MAX_PENDING"
}


def _converter(cls: type, name: str) -> Callable[[Any], Any]:
    hint = typing.get_type_hints(cls)[name]
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in (int, float, Path):
        if kind in options:
            return kind
    return str


def _convert(cls: type, name: str, raw: Any, where: str) -> Any:
    convert = _converter(cls, name)
    try:
        return convert(raw)
    except (TypeError, ValueError):
        kind = {int: "an integer", float: "a number"}.get(convert, "a valid value")  # type: ignore[call-overload]
        raise ConfigurationError(f"{where}: {raw!r} is not {kind}") from None


def variable(section: str, name: str) -> str:
    """The environment variable of a field of a provider section (or ``retry``)."""
    prefix = "DELIVERY" if section == "retry" else section.upper()
    return f"REFRACT_{prefix}_{name.upper()}"


def known_variables() -> frozenset[str]:
    names = set(_TOP_VARIABLES.values())
    for section, cls in [*SECTIONS.items(), ("retry", RetryPolicy)]:
        names |= {variable(section, f.name) for f in fields(cls)}
    return frozenset(names)


def load_channel_settings(env: Mapping[str, str], document: Any, where: str) -> ChannelSettings | None:
    """The channels' settings from the file's ``channels`` mapping (or None) and the environment.

    Returns None when nothing about channels is configured (the default settings apply).
    """
    if document is not None and not isinstance(document, dict):
        raise ConfigurationError(f"{where}: expected a mapping of channel settings")
    document = dict(document or {})
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, raw in document.items():
        if key in TOP_LEVEL:
            top[key] = _convert(ChannelSettings, key, raw, f"{where}.{key}")
        elif key in SECTIONS or key == "retry":
            sections[key] = _from_file(key, raw, f"{where}.{key}")
        else:
            known = ", ".join([*TOP_LEVEL, *SECTIONS, "retry"])
            raise ConfigurationError(f"{where}.{key}: unknown channel setting; known: {known}")
    for key, name in _TOP_VARIABLES.items():
        if env.get(name, "") != "":
            top[key] = _convert(ChannelSettings, key, env[name], name)
    for section, cls in [*SECTIONS.items(), ("retry", RetryPolicy)]:
        for f in fields(cls):
            name = variable(section, f.name)
            if env.get(name, "") != "":
                sections.setdefault(section, {})[f.name] = _convert(cls, f.name, env[name], name)
    if not top and not sections:
        return None
    values: dict[str, Any] = dict(top)
    for section, raw_values in sections.items():
        if section == "retry":
            values["retry"] = RetryPolicy(**raw_values)
            continue
        cls = SECTIONS[section]
        first = fields(cls)[0].name
        if section == "twilio" and set(raw_values) <= {"auth_token"}:
            # Only the auth token: it verifies Twilio's webhooks (settings.twilio_auth_token);
            # sending SMS through Twilio also needs the account.
            continue
        if first not in raw_values:
            raise ConfigurationError(
                f"{section} is partly configured but has no {first}: set {variable(section, first)}"
            )
        values[section] = cls(**raw_values)
    return ChannelSettings(**values)


def _from_file(section: str, raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: expected a mapping")
    cls = SECTIONS.get(section, RetryPolicy)
    names = {f.name for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if (section, key) in SECRETS:
            raise ConfigurationError(
                f"{where}.{key}: secrets are not read from the settings file; set {variable(section, key)}"
            )
        if key not in names:
            raise ConfigurationError(f"{where}.{key}: unknown setting; known: {', '.join(sorted(names))}")
        values[key] = _convert(cls, key, value, f"{where}.{key}")
    return values
