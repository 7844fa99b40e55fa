"""A campaign's landing page: the ``landing:`` section of its definition, and checking a submission.

A referral link (``/r/{code}``) leads to the landing page; its form's fields are declared in the
campaign (name, email, phone, a consent checkbox, ...). This module reads that section, checks a
submitted form the way the server must (required fields, email and E.164 phone formats, select
options), and turns a valid one into the events of a lead: the contacts, the other fields as
profile attributes, one opt-in per checked consent box, and the ``lead`` interaction that moves a
flow waiting with ``wait_for: {interaction: lead}``. Pure: no HTML, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from liquid import BoundTemplate

from engine.campaigns.templates import compile_part
from engine.errors import ValidationError
from engine.events import (
    CHANNELS,
    Channel,
    ConsentUpdate,
    ContactUpdate,
    CustomerUpdate,
    Interaction,
    Payload,
)
from engine.values import AttributeValue

FieldType: TypeAlias = Literal["text", "email", "phone", "checkbox", "select"]
FIELD_TYPES: tuple[FieldType, ...] = ("text", "email", "phone", "checkbox", "select")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Names the page itself uses: the CSRF token, the referral code and the honeypot.
RESERVED_NAMES = frozenset({"csrf_token", "r", "website"})
HONEYPOT_FIELD = "website"
MAX_FIELDS = 30
MAX_OPTIONS = 100
MAX_TEXT_CHARS = 500
MAX_EMAIL_CHARS = 254
CHECKED = frozenset({"on", "yes", "true", "1"})
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-]")
_SECTION = {"title", "intro", "fields", "submit_label", "success_message", "redirect_url"}
_FIELD = {"name", "type", "label", "required", "options", "consent_channel"}


@dataclass(slots=True, frozen=True)
class FormField:
    name: str
    type: FieldType
    label: str
    required: bool = False
    options: tuple[str, ...] = ()  # select only
    consent_channel: Channel | None = None  # checkbox only: checking it opts in to the channel


@dataclass(slots=True, frozen=True)
class LandingPage:
    """What ``GET /l/{campaign_id}`` shows. No fields: the referral link goes to ``redirect_url``."""

    title: str
    intro: BoundTemplate | None
    fields: tuple[FormField, ...]
    submit_label: str = "Send"
    success_message: str = "Thank you!"
    redirect_url: str | None = None

    @property
    def has_form(self) -> bool:
        return bool(self.fields)


@dataclass(slots=True, frozen=True)
class Lead:
    """A valid submission, sorted into where each value goes."""

    email: str | None = None
    phone: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    consents: tuple[Channel, ...] = ()


@dataclass(slots=True, frozen=True)
class FormCheck:
    """A submission checked: ``lead`` when valid, else an error message per field name.

    ``values`` are the submitted texts (trimmed), to show the form again with what was typed.
    """

    values: Mapping[str, str]
    errors: Mapping[str, str]
    lead: Lead | None


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", field=path)


def _text(value: object, path: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _fail(path, f"expected a text of 1 to {limit} characters, got {value!r}")
    return value


def _field(raw: object, path: str) -> FormField:
    if not isinstance(raw, Mapping):
        raise _fail(path, f"expected a mapping with name, type and label, got {raw!r}")
    unknown = sorted(str(key) for key in raw if key not in _FIELD)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"unknown field; expected one of {', '.join(sorted(_FIELD))}")
    name = raw.get("name")
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        raise _fail(f"{path}.name", f"a field name is 1 to 64 letters, digits or '_'; got {name!r}")
    if name in RESERVED_NAMES:
        raise _fail(f"{path}.name", f"{name!r} is used by the page itself; choose another name")
    kind = raw.get("type", "text")
    if kind not in FIELD_TYPES:
        raise _fail(f"{path}.type", f"expected one of {', '.join(FIELD_TYPES)}, got {kind!r}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise _fail(f"{path}.required", "expected true or false")
    options: tuple[str, ...] = ()
    if kind == "select":
        raw_options = raw.get("options")
        if not isinstance(raw_options, list) or not 1 <= len(raw_options) <= MAX_OPTIONS:
            raise _fail(f"{path}.options", f"a select needs a list of 1 to {MAX_OPTIONS} options")
        options = tuple(_text(o, f"{path}.options[{i}]", 100) for i, o in enumerate(raw_options))
        if len(set(options)) != len(options):
            raise _fail(f"{path}.options", "options must differ")
    elif "options" in raw:
        raise _fail(f"{path}.options", "only a select has options")
    consent = raw.get("consent_channel")
    if consent is not None:
        if kind != "checkbox":
            raise _fail(f"{path}.consent_channel", "only a checkbox gives consent")
        if consent not in CHANNELS:
            raise _fail(f"{path}.consent_channel", f"expected one of {', '.join(CHANNELS)}, got {consent!r}")
    return FormField(name, kind, _text(raw.get("label"), f"{path}.label"), required, options, consent)


def landing_from_body(value: object, path: str = "landing") -> LandingPage | None:
    """The ``landing:`` section of a campaign (None when there is none); ValidationError when wrong."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a mapping with title and fields (or redirect_url), got {value!r}")
    unknown = sorted(str(key) for key in value if key not in _SECTION)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"unknown field; expected one of {', '.join(sorted(_SECTION))}")
    raw_fields = value.get("fields") or []
    if not isinstance(raw_fields, list) or len(raw_fields) > MAX_FIELDS:
        raise _fail(f"{path}.fields", f"expected a list of at most {MAX_FIELDS} fields")
    fields = tuple(_field(raw, f"{path}.fields[{i}]") for i, raw in enumerate(raw_fields))
    names = [f.name for f in fields]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _fail(f"{path}.fields[{i}].name", f"the field name {name!r} is used twice")
    for kind in ("email", "phone"):
        of_kind = [i for i, f in enumerate(fields) if f.type == kind]
        if len(of_kind) > 1:
            raise _fail(f"{path}.fields[{of_kind[1]}].type", f"a form has at most one {kind} field")
    redirect_url = value.get("redirect_url")
    if redirect_url is not None:
        redirect_url = _text(redirect_url, f"{path}.redirect_url", 2000)
        if not redirect_url.startswith(("https://", "http://")):
            raise _fail(f"{path}.redirect_url", "expected an http(s) URL such as https://bank.example/offer")
    if not fields and redirect_url is None:
        raise _fail(path, "a landing page needs fields (a form) or a redirect_url")
    intro = value.get("intro")
    return LandingPage(
        title=_text(value.get("title"), f"{path}.title") if fields or "title" in value else "",
        intro=compile_part(intro, "text", f"{path}.intro") if intro is not None else None,
        fields=fields,
        submit_label=_text(value.get("submit_label", "Send"), f"{path}.submit_label", 60),
        success_message=_text(value.get("success_message", "Thank you!"), f"{path}.success_message", 1000),
        redirect_url=redirect_url,
    )


def _phone(text: str) -> str | None:
    """``text`` as an E.164 number ("+598 99 123-456" -> "+59899123456"), or None."""
    compact = _PHONE_PUNCTUATION.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if E164.fullmatch(compact) else None


def check_submission(page: LandingPage, form: Mapping[str, str]) -> FormCheck:
    """Check a submitted form against the page's fields, as the server must (the browser may not)."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    email: str | None = None
    phone: str | None = None
    attributes: dict[str, AttributeValue] = {}
    consents: list[Channel] = []
    for item in page.fields:
        raw = form.get(item.name, "")
        text = raw.strip() if isinstance(raw, str) else ""
        values[item.name] = text
        if any(ord(c) < 32 and c not in "\t" for c in text):
            errors[item.name] = "Please remove the control characters."
            continue
        if item.type == "checkbox":
            checked = text.lower() in CHECKED
            if item.required and not checked:
                errors[item.name] = "Please check this box to continue."
            elif item.consent_channel is not None:
                if checked:
                    consents.append(item.consent_channel)
            else:
                attributes[item.name] = checked
            continue
        if not text:
            if item.required:
                errors[item.name] = "Please fill in this field."
            continue
        if item.type == "email":
            if len(text) > MAX_EMAIL_CHARS or not EMAIL.fullmatch(text):
                errors[item.name] = "Please enter an email address such as name@example.com."
            else:
                email = text
        elif item.type == "phone":
            number = _phone(text)
            if number is None:
                errors[item.name] = (
                    "Please enter a phone number with its country code, such as +598 99 123 456."
                )
            else:
                phone = number
        elif item.type == "select":
            if text not in item.options:
                errors[item.name] = "Please choose one of the options."
            else:
                attributes[item.name] = text
        elif len(text) > MAX_TEXT_CHARS:
            errors[item.name] = f"Please keep this under {MAX_TEXT_CHARS} characters."
        else:
            attributes[item.name] = text
    lead = None if errors else Lead(email, phone, attributes, tuple(consents))
    return FormCheck(values, errors, lead)


def lead_payloads(
    lead: Lead, campaign_id: str, interaction_id: str, data: Mapping[str, str] | None = None
) -> list[Payload]:
    """The events a lead appends to the visitor's customer, in order: what the flow's next send
    needs (the address, the consent) is folded before the ``lead`` interaction that moves it."""
    payloads: list[Payload] = []
    if lead.email is not None or lead.phone is not None:
        payloads.append(ContactUpdate(email=lead.email, phone=lead.phone))
    if lead.attributes:
        payloads.append(CustomerUpdate(set=dict(lead.attributes)))
    payloads.extend(ConsentUpdate(opted_in=True, channel=channel) for channel in lead.consents)
    payloads.append(
        Interaction(
            kind="lead", interaction_id=interaction_id, campaign_id=campaign_id, data=dict(data or {})
        )
    )
    return payloads


def intro_variables(
    campaign_id: str, campaign_name: str, source: str | None, code: str | None
) -> dict[str, Any]:
    """What the intro's Liquid template may use: ``campaign.id``, ``campaign.name``, ``referral.source``."""
    return {
        "campaign": {"id": campaign_id, "name": campaign_name},
        "referral": {"source": source or "", "code": code or ""},
    }
