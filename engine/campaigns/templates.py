"""Message content: Liquid templates, compiled once per campaign version, rendered per customer.

The Liquid environment is a sandbox: no loader (``include``/``render`` find nothing, so no file or
network access), bounded loops, output and nesting. HTML parts are auto-escaped. An undefined
variable is an error (``| default: "..."`` still works), so a message that would come out broken
is not sent: rendering raises ``TemplateRenderError`` and the send is suppressed with an audit
record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from liquid import BoundTemplate, DictLoader, Environment, StrictDefaultUndefined
from liquid.exceptions import LiquidError
from markupsafe import escape

from engine.deliveries import CONTENT_PARTS
from engine.errors import RefractError, ValidationError
from engine.events import CHANNELS, Channel

REQUIRED_PARTS: Mapping[Channel, tuple[tuple[str, ...], ...]] = {
    # Each inner tuple: at least one of these parts must be given.
    "email": (("subject",), ("html", "text")),
    "sms": (("text",),),
    "push": (("title", "body"),),
}
INBOUND_PARTS = ("title", "text", "html", "image_url", "alt", "cta_label", "cta_url")
MAX_TEMPLATE_CHARS = 100_000


class _SandboxedEnvironment(Environment):
    # Limits that keep one customer's template from taking the processor down.
    context_depth_limit = 20
    loop_iteration_limit = 10_000
    local_namespace_limit = 100_000
    output_stream_limit = 500_000
    block_nesting_limit = 20


_TEXT = _SandboxedEnvironment(loader=DictLoader({}), undefined=StrictDefaultUndefined)
_HTML = _SandboxedEnvironment(loader=DictLoader({}), undefined=StrictDefaultUndefined, autoescape=True)


# The common case, rendered without Liquid: text with outputs `{{ a.b }}` or
# `{{ a.b | default: 'x' }}` and nothing else. Anything else goes through Liquid.
_OUTPUT = re.compile(
    r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*"
    r"(?:\|\s*default:\s*(?:'([^'{}]*)'|\"([^\"{}]*)\"|(-?[0-9]+)))?\s*-?\}\}"
)
_MISSING = object()


class _NotFast(Exception):
    """A value the fast path does not render exactly as Liquid would: use Liquid."""


def _fast_renderer(source: str, html: bool) -> Callable[[Mapping[str, Any]], str] | None:
    """A renderer equal to Liquid's for ``source``, or None when the template needs Liquid."""
    pieces: list[str | tuple[tuple[str, ...], str | None]] = []
    at = 0
    for match in _OUTPUT.finditer(source):
        pieces.append(source[at : match.start()])
        quoted = match.group(2) if match.group(2) is not None else match.group(3)
        default = quoted if quoted is not None else match.group(4)
        pieces.append((tuple(match.group(1).split(".")), default))
        at = match.end()
    pieces.append(source[at:])
    if any(isinstance(p, str) and ("{{" in p or "{%" in p or "}}" in p) for p in pieces):
        return None
    if "{{-" in source or "-}}" in source:
        return None  # whitespace control: leave it to Liquid

    def render(variables: Mapping[str, Any]) -> str:
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            path, default = piece
            value: Any = variables
            for name in path:
                # ``type(...) is dict`` first: the variables are plain dicts, and the ABC check
                # of isinstance costs more than the lookup.
                value = (
                    value.get(name, _MISSING)
                    if type(value) is dict or isinstance(value, Mapping)
                    else _MISSING
                )
                if value is _MISSING:
                    break
            if default is not None and (value is _MISSING or value is None or value is False or value == ""):
                text = default
            elif value is _MISSING:
                raise _NotFast  # Liquid raises the error a person can read
            elif value is None:
                text = ""
            elif value is True or value is False:
                text = "true" if value else "false"
            elif type(value) in (str, int, float):
                text = str(value)
                if "\r" in text:
                    raise _NotFast  # Liquid normalises line ends; leave such values to it
            else:
                raise _NotFast
            out.append(escape(text) if html else text)
        return "".join(out)

    return render


class TemplateRenderError(RefractError):
    """A template failed for one customer (e.g. a variable the profile lacks)."""

    code = "template_error"


@dataclass(slots=True, frozen=True)
class CompiledContent:
    """The templates of one message (or one inbound placement content), by part name."""

    channel: Channel | None  # None: inbound content shown on a page
    parts: Mapping[str, BoundTemplate]  # parts with Liquid markup
    static: Mapping[str, str] = field(default_factory=dict)  # parts without: no rendering needed
    fast: Mapping[str, Callable[[Mapping[str, Any]], str]] = field(default_factory=dict)

    def render(self, variables: Mapping[str, Any]) -> dict[str, str]:
        rendered: dict[str, str] = dict(self.static)
        fast = self.fast
        for name, template in self.parts.items():
            quick = fast.get(name)
            if quick is not None:
                try:
                    rendered[name] = quick(variables)
                    continue
                except _NotFast:
                    pass
            try:
                rendered[name] = template.render(**variables)
            except LiquidError as exc:
                raise TemplateRenderError(f"{name}: {_first_line(exc)}") from None
            except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
                raise TemplateRenderError(f"{name}: {type(exc).__name__}: {exc}") from None
        return rendered


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def compile_part(source: object, name: str, path: str) -> BoundTemplate:
    if not isinstance(source, str):
        raise ValidationError(f"{path}: expected text (a Liquid template), got {source!r}", field=path)
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ValidationError(f"{path}: a template is limited to {MAX_TEMPLATE_CHARS} characters", field=path)
    environment = _HTML if name == "html" else _TEXT
    try:
        return environment.from_string(source)
    except LiquidError as exc:
        raise ValidationError(
            f"{path}: the template cannot be read: {_first_line(exc)}", field=path
        ) from None


def compile_message(body: object, path: str) -> CompiledContent:
    """A message's content: ``{"channel": "email", "subject": ..., "html": ..., "text": ...}``."""
    if not isinstance(body, Mapping):
        raise ValidationError(f"{path}: expected a mapping with channel and its parts", field=path)
    channel = body.get("channel")
    if channel not in CHANNELS:
        raise ValidationError(
            f"{path}.channel: expected one of {', '.join(CHANNELS)}, got {channel!r}", field=f"{path}.channel"
        )
    allowed = CONTENT_PARTS[channel]
    parts: dict[str, BoundTemplate] = {}
    for name, source in body.items():
        if name == "channel":
            continue
        if name not in allowed or name == "unsubscribe_url":
            raise ValidationError(
                f"{path}.{name}: {channel} content has the parts "
                f"{', '.join(p for p in allowed if p != 'unsubscribe_url')}",
                field=f"{path}.{name}",
            )
        parts[name] = compile_part(source, name, f"{path}.{name}")
    for needed in REQUIRED_PARTS[channel]:
        if not any(part in parts for part in needed):
            raise ValidationError(
                f"{path}: {channel} content needs {' or '.join(needed)}", field=f"{path}.{needed[0]}"
            )
    return _split(channel, body, parts)


def compile_inbound(body: object, path: str) -> CompiledContent:
    """Content shown in a placement: title, text, html, image_url, alt, cta_label, cta_url."""
    if not isinstance(body, Mapping) or not body:
        raise ValidationError(f"{path}: expected a mapping of {', '.join(INBOUND_PARTS)}", field=path)
    parts: dict[str, BoundTemplate] = {}
    for name, source in body.items():
        if name not in INBOUND_PARTS:
            raise ValidationError(
                f"{path}.{name}: inbound content has the parts {', '.join(INBOUND_PARTS)}",
                field=f"{path}.{name}",
            )
        parts[name] = compile_part(source, name, f"{path}.{name}")
    if "image_url" in parts and "alt" not in parts:
        raise ValidationError(f"{path}.alt: an image needs alt text", field=f"{path}.alt")
    return _split(None, body, parts)


def _split(
    channel: Channel | None, body: Mapping[str, Any], parts: dict[str, BoundTemplate]
) -> CompiledContent:
    """Parts without Liquid markup are kept as text: rendering them would give the same text."""
    static = {name: body[name] for name in parts if "{{" not in body[name] and "{%" not in body[name]}
    fast = {}
    for name in parts:
        if name not in static:
            renderer = _fast_renderer(body[name], html=name == "html")
            if renderer is not None:
                fast[name] = renderer
    return CompiledContent(channel, {n: t for n, t in parts.items() if n not in static}, static, fast)
