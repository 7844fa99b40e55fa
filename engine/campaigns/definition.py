"""Reads a campaign's saved body (the YAML or JSON a marketer writes) into a ``Campaign``.

Campaigns travel as ``Definition`` records with the key ``campaign:<id>``; every save is a new
immutable version. Everything is checked here, once, so the processor never meets a campaign it
cannot run: unknown fields, steps that point nowhere, templates and rules that do not compile,
unknown time zones. Errors name the field by its path (``flow[2].wait_for.timeout``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from engine.campaigns.landing import landing_from_body
from engine.campaigns.model import (
    BranchStep,
    Campaign,
    Cap,
    Conversion,
    ExitStep,
    QuietHours,
    Reentry,
    SendStep,
    Step,
    Trigger,
    Variant,
    WaitForStep,
    WaitStep,
)
from engine.campaigns.schedule import parse_clock
from engine.campaigns.templates import CompiledContent, compile_inbound, compile_message
from engine.errors import ValidationError
from engine.events import CHANNELS, INTERACTION_KINDS
from engine.segments import Rule, rule_from_json, rule_from_text
from engine.segments.calendar import is_known_zone, zone
from engine.segments.definition import check_segment_id
from engine.segments.durations import duration_ms
from engine.segments.errors import RuleSyntaxError

CAMPAIGN_KIND = "campaign"
CAMPAIGN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
DEFAULT_EXPIRY_MS = 24 * 3_600_000
MAX_STEPS = 100

_TOP_LEVEL = {
    "id",
    "impression_caps",
    "kind",
    "name",
    "description",
    "status",
    "categories",
    "groups",
    "timezone",
    "starts_at",
    "ends_at",
    "segments",
    "priority",
    "triggers",
    "flow",
    "content",
    "inbound",
    "caps",
    "quiet_hours",
    "control_group",
    "variants",
    "reentry",
    "conversion",
    "landing",
}


def definition_key(campaign_id: str) -> str:
    return f"{CAMPAIGN_KIND}:{campaign_id}"


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", field=path)


def check_campaign_id(value: object, path: str = "id") -> str:
    if not isinstance(value, str) or not CAMPAIGN_ID.fullmatch(value):
        raise _fail(path, f"a campaign id is 1 to 100 letters, digits, '_', '-' or '.'; got {value!r}")
    return value


def _mapping(value: object, path: str, allowed: set[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a mapping, got {value!r}")
    if allowed is not None:
        unknown = sorted(str(key) for key in value if key not in allowed)
        if unknown:
            raise _fail(
                f"{path}.{unknown[0]}" if path else unknown[0],
                f"unknown field; expected one of {', '.join(sorted(allowed))}",
            )
    return value


def _list(value: object, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(path, f"expected a list, got {value!r}")
    return value


def _text(value: object, path: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _fail(path, f"expected a text of 1 to {limit} characters, got {value!r}")
    return value


def _names(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(_text(item, f"{path}[{i}]", 100) for i, item in enumerate(_list(value, path)))


def _duration(value: object, path: str) -> int:
    try:
        if not isinstance(value, str):
            raise ValueError(f'expected a duration such as "2d", got {value!r}')
        return duration_ms(value)
    except ValueError as exc:
        raise _fail(path, str(exc)) from None


def _moment(value: object, timezone: str, path: str) -> int | None:
    """Epoch ms of an ISO date-time; without an offset it is read in the campaign's zone."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(0))
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _fail(path, f'expected a date-time such as "2026-12-01T09:00", got {value!r}') from None
    else:
        raise _fail(path, f'expected a date-time such as "2026-12-01T09:00", got {value!r}')
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(timezone))
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        raise _fail(path, f"{value!r} is out of range: give a date-time in the years 1 to 9999") from None
    return int(moment.timestamp() * 1000)


def _rule(value: object, path: str) -> Rule:
    try:
        if isinstance(value, str):
            return rule_from_text(value)
        return rule_from_json(value)
    except RuleSyntaxError as exc:
        raise _fail(path, exc.message) from None


def _waits_for(value: Mapping[str, Any], path: str) -> str:
    if ("interaction" in value) == ("event" in value):
        raise _fail(path, "name exactly one of interaction (such as click) or event (a business event name)")
    if "interaction" in value:
        kind = value["interaction"]
        if kind not in INTERACTION_KINDS:
            raise _fail(
                f"{path}.interaction", f"expected one of {', '.join(INTERACTION_KINDS)}, got {kind!r}"
            )
        return f"interaction:{kind}"
    return f"event:{_text(value['event'], f'{path}.event', 100)}"


def _triggers(value: object) -> tuple[Trigger, ...]:
    triggers: list[Trigger] = []
    for i, raw in enumerate(_list(value or [], "triggers")):
        path = f"triggers[{i}]"
        item = _mapping(raw, path, {"event", "condition", "segment", "referral", "exclusive"})
        kinds = [k for k in ("event", "segment", "referral") if k in item]
        if len(kinds) != 1:
            raise _fail(
                path,
                "a trigger is one of event: NAME (with an optional condition), segment: ID,"
                " or referral: true",
            )
        exclusive = item.get("exclusive", True)
        if not isinstance(exclusive, bool):
            raise _fail(f"{path}.exclusive", "expected true or false")
        if kinds[0] == "event":
            condition = _rule(item["condition"], f"{path}.condition") if "condition" in item else None
            triggers.append(
                Trigger("event", _text(item["event"], f"{path}.event", 100), condition, exclusive)
            )
            continue
        if "condition" in item:
            raise _fail(f"{path}.condition", "only business event triggers take a condition")
        if kinds[0] == "segment":
            triggers.append(
                Trigger("segment", check_segment_id(item["segment"], f"{path}.segment"), None, exclusive)
            )
        else:
            if item["referral"] is not True:
                raise _fail(f"{path}.referral", "write referral: true")
            triggers.append(Trigger("referral", "", None, exclusive))
    return tuple(triggers)


def _content(value: object, path: str) -> dict[str, CompiledContent]:
    contents = _mapping(value or {}, path)
    return {
        _text(content_id, f"{path}.{content_id}", 64): compile_message(body, f"{path}.{content_id}")
        for content_id, body in contents.items()
    }


def _step(raw: object, index: int, following: str | None, content: Mapping[str, CompiledContent]) -> Step:
    path = f"flow[{index}]"
    item = _mapping(raw, path, {"id", "send", "wait", "wait_for", "branch", "exit", "next", "expires_after"})
    step_id = item.get("id", f"step-{index + 1}")
    if not isinstance(step_id, str) or not STEP_ID.fullmatch(step_id):
        raise _fail(f"{path}.id", f"a step id is 1 to 64 letters, digits, '_', '-' or '.'; got {step_id!r}")
    kinds = [k for k in ("send", "wait", "wait_for", "branch", "exit") if k in item]
    if len(kinds) != 1:
        raise _fail(path, "a step is exactly one of send, wait, wait_for, branch or exit")
    kind = kinds[0]
    next_step = item.get("next", following)
    if kind == "send":
        content_id = item["send"]
        if content_id not in content:
            raise _fail(
                f"{path}.send",
                f"no content named {content_id!r} (content has {', '.join(sorted(content)) or 'nothing'})",
            )
        channel = content[content_id].channel
        assert channel is not None
        expires = (
            _duration(item["expires_after"], f"{path}.expires_after")
            if "expires_after" in item
            else DEFAULT_EXPIRY_MS
        )
        return SendStep(step_id, content_id, channel, expires, next_step)
    if "expires_after" in item:
        raise _fail(f"{path}.expires_after", "only send steps expire")
    if kind == "wait":
        wait = item["wait"]
        if isinstance(wait, str):
            return WaitStep(step_id, _duration(wait, f"{path}.wait"), None, next_step)
        spec = _mapping(wait, f"{path}.wait", {"until", "for"})
        if "until" in spec:
            try:
                minute = parse_clock(spec["until"])
            except ValueError as exc:
                raise _fail(f"{path}.wait.until", str(exc)) from None
            return WaitStep(step_id, None, minute, next_step)
        return WaitStep(step_id, _duration(spec.get("for"), f"{path}.wait.for"), None, next_step)
    if kind == "wait_for":
        spec = _mapping(
            item["wait_for"],
            f"{path}.wait_for",
            {"interaction", "event", "timeout", "on_event", "on_timeout"},
        )
        return WaitForStep(
            step_id,
            _waits_for(spec, f"{path}.wait_for"),
            _duration(spec.get("timeout"), f"{path}.wait_for.timeout"),
            spec.get("on_event", next_step),
            spec.get("on_timeout", next_step),
        )
    if kind == "branch":
        spec = _mapping(item["branch"], f"{path}.branch", {"if", "then", "else"})
        if "if" not in spec:
            raise _fail(f"{path}.branch.if", "a branch needs a rule in if")
        return BranchStep(
            step_id,
            _rule(spec["if"], f"{path}.branch.if"),
            spec.get("then", next_step),
            spec.get("else", next_step),
        )
    if item["exit"] is not True:
        raise _fail(f"{path}.exit", "write exit: true")
    return ExitStep(step_id)


def _targets(step: Step) -> list[tuple[str, str | None]]:
    if isinstance(step, SendStep | WaitStep):
        return [("next", step.next_step)]
    if isinstance(step, WaitForStep):
        return [("on_event", step.on_event), ("on_timeout", step.on_timeout)]
    if isinstance(step, BranchStep):
        return [("then", step.then_step), ("else", step.else_step)]
    return []


def _flow(value: object, content: Mapping[str, CompiledContent]) -> tuple[dict[str, Step], str | None]:
    raw_steps = _list(value or [], "flow")
    if len(raw_steps) > MAX_STEPS:
        raise _fail("flow", f"a flow has at most {MAX_STEPS} steps")
    ids: list[str] = []
    for i, raw in enumerate(raw_steps):
        step_id = raw.get("id", f"step-{i + 1}") if isinstance(raw, Mapping) else None
        ids.append(step_id if isinstance(step_id, str) else f"step-{i + 1}")
    steps: dict[str, Step] = {}
    for i, raw in enumerate(raw_steps):
        following = ids[i + 1] if i + 1 < len(ids) else None
        step = _step(raw, i, following, content)
        if step.step_id in steps:
            raise _fail(f"flow[{i}].id", f"the step id {step.step_id!r} is used twice")
        steps[step.step_id] = step
    for i, step in enumerate(steps.values()):
        for name, target in _targets(step):
            if target is not None and target not in steps:
                raise _fail(f"flow[{i}].{name}", f"no step with id {target!r}")
    return steps, (ids[0] if ids else None)


def _caps(value: object, name: str = "caps") -> tuple[Cap, ...]:
    caps: list[Cap] = []
    for i, raw in enumerate(_list(value or [], name)):
        path = f"{name}[{i}]"
        item = _mapping(raw, path, {"max", "within", "channel"})
        maximum = item.get("max")
        if not isinstance(maximum, int) or isinstance(maximum, bool) or maximum < 0:
            raise _fail(f"{path}.max", f"expected a whole number of messages, got {maximum!r}")
        channel = item.get("channel")
        if channel is not None and channel not in CHANNELS:
            raise _fail(f"{path}.channel", f"expected one of {', '.join(CHANNELS)}")
        caps.append(Cap(maximum, _duration(item.get("within"), f"{path}.within"), channel))
    return tuple(caps)


def _quiet_hours(value: object) -> QuietHours | None:
    if value is None:
        return None
    item = _mapping(value, "quiet_hours", {"start", "end"})
    try:
        return QuietHours(parse_clock(item.get("start")), parse_clock(item.get("end")))
    except ValueError as exc:
        raise _fail("quiet_hours", str(exc)) from None


def _control(value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise _fail("control_group", f"expected a percentage from 0 to 100, got {value!r}")
    return float(value)


def _variants(value: object, content: Mapping[str, CompiledContent]) -> tuple[Variant, ...]:
    variants: list[Variant] = []
    for i, raw in enumerate(_list(value or [], "variants")):
        path = f"variants[{i}]"
        item = _mapping(raw, path, {"id", "weight", "content"})
        variant_id = _text(item.get("id"), f"{path}.id", 32)
        weight = item.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise _fail(f"{path}.weight", f"expected a whole number, got {weight!r}")
        overrides = _content(item.get("content"), f"{path}.content")
        for content_id, compiled in overrides.items():
            if content_id not in content:
                raise _fail(f"{path}.content.{content_id}", "a variant replaces content the campaign has")
            if compiled.channel != content[content_id].channel:
                raise _fail(f"{path}.content.{content_id}.channel", "a variant keeps its content's channel")
        variants.append(Variant(variant_id, weight, overrides))
    if variants and sum(v.weight for v in variants) == 0:
        raise _fail("variants", "at least one variant needs a weight above 0")
    if len({v.variant_id for v in variants}) != len(variants):
        raise _fail("variants", "variant ids must differ")
    return tuple(variants)


def channel_caps_from_text(text: str, where: str = "REFRACT_CHANNEL_CAPS") -> tuple[Cap, ...]:
    """Global caps per channel, written ``email=3/7d,sms=2/1d`` (at most 3 emails in 7 days, ...)."""
    caps: list[Cap] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        channel, _, rule = item.partition("=")
        maximum, _, window = rule.partition("/")
        if channel.strip() not in CHANNELS or not maximum.strip().isdigit():
            raise ValidationError(
                f"{where}: {item!r} is not a cap; write CHANNEL=MAX/WINDOW, such as email=3/7d", field=where
            )
        caps.append(Cap(int(maximum), _duration(window.strip(), where), channel.strip()))  # type: ignore[arg-type]
    return tuple(caps)


def campaign_from_body(
    campaign_id: str, version: int, body: Mapping[str, Any], updated_at_ms: int = 0
) -> Campaign:
    """The campaign a saved body describes; ValidationError (with the field's path) when it is wrong."""
    check_campaign_id(campaign_id)
    _mapping(body, "", _TOP_LEVEL)
    if "id" in body and body["id"] != campaign_id:
        raise _fail("id", f"the body names campaign {body['id']!r} but is saved as {campaign_id!r}")
    timezone = body.get("timezone", "UTC")
    if not isinstance(timezone, str) or not is_known_zone(timezone):
        raise _fail("timezone", f"expected an IANA time zone such as America/Montevideo, got {timezone!r}")
    status = body.get("status", "active")
    if status not in ("active", "paused"):
        raise _fail("status", f"expected active or paused, got {status!r}")
    priority = body.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _fail("priority", f"expected a whole number, got {priority!r}")
    starts_at = _moment(body.get("starts_at"), timezone, "starts_at")
    ends_at = _moment(body.get("ends_at"), timezone, "ends_at")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise _fail("ends_at", "a campaign must end after it starts")
    segments = tuple(
        check_segment_id(s, f"segments[{i}]")
        for i, s in enumerate(_list(body.get("segments") or [], "segments"))
    )
    content = _content(body.get("content"), "content")
    steps, first_step = _flow(body.get("flow"), content)
    inbound = {
        _text(placement, f"inbound.{placement}", 100): compile_inbound(item, f"inbound.{placement}")
        for placement, item in _mapping(body.get("inbound") or {}, "inbound").items()
    }
    triggers = _triggers(body.get("triggers"))
    if not triggers and not inbound:
        raise _fail(
            "triggers", "a campaign needs at least one trigger (or inbound content shown in placements)"
        )
    reentry_body = _mapping(body.get("reentry") or {}, "reentry", {"allowed", "min_gap"})
    allowed = reentry_body.get("allowed", False)
    if not isinstance(allowed, bool):
        raise _fail("reentry.allowed", "expected true or false")
    reentry = Reentry(
        allowed, _duration(reentry_body["min_gap"], "reentry.min_gap") if "min_gap" in reentry_body else 0
    )
    conversion = None
    if body.get("conversion") is not None:
        spec = _mapping(body["conversion"], "conversion", {"interaction", "event", "within"})
        conversion = Conversion(
            _waits_for(spec, "conversion"), _duration(spec.get("within", "30d"), "conversion.within")
        )
    name = body.get("name", campaign_id)
    return Campaign(
        campaign_id=campaign_id,
        version=version,
        name=_text(name, "name"),
        status=status,
        categories=_names(body.get("categories"), "categories"),
        groups=_names(body.get("groups"), "groups"),
        timezone=timezone,
        starts_at_ms=starts_at,
        ends_at_ms=ends_at,
        segments=segments,
        priority=priority,
        triggers=triggers,
        steps=steps,
        first_step=first_step,
        content=content,
        inbound=inbound,
        caps=_caps(body.get("caps")),
        quiet_hours=_quiet_hours(body.get("quiet_hours")),
        control_percent=_control(body.get("control_group")),
        variants=_variants(body.get("variants"), content),
        reentry=reentry,
        conversion=conversion,
        body=dict(body),
        updated_at_ms=updated_at_ms,
        impression_caps=_caps(body.get("impression_caps"), "impression_caps"),
        landing=landing_from_body(body.get("landing")),
    )
