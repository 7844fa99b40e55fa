"""The ``landing:`` section of a campaign: reading it, checking a submission, the events of a lead."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.campaigns.definition import campaign_from_body
from engine.campaigns.landing import check_submission, landing_from_body, lead_payloads
from engine.errors import ValidationError
from engine.events import ConsentUpdate, ContactUpdate, CustomerUpdate, Interaction

FORM: dict[str, Any] = {
    "title": "Get your card",
    "intro": "Hello from {{ referral.source | default: 'us' }}: {{ campaign.name }}.",
    "fields": [
        {"name": "first_name", "type": "text", "label": "First name", "required": True},
        {"name": "email", "type": "email", "label": "Email", "required": True},
        {"name": "phone", "type": "phone", "label": "Mobile"},
        {"name": "plan", "type": "select", "label": "Plan", "options": ["gold", "black"]},
        {"name": "newsletter", "type": "checkbox", "label": "Email me offers", "consent_channel": "email"},
        {"name": "sms_ok", "type": "checkbox", "label": "Text me", "consent_channel": "sms"},
        {"name": "terms", "type": "checkbox", "label": "I accept the terms", "required": True},
    ],
    "submit_label": "Send me the offer",
    "success_message": "Thanks! Check your inbox.",
}
PAGE = landing_from_body(FORM)
assert PAGE is not None


def with_fields(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"title": "T", "fields": list(fields), **extra}


def test_a_landing_section_reads_into_a_page_with_its_fields_and_texts() -> None:
    assert PAGE is not None
    assert [(f.name, f.type, f.required) for f in PAGE.fields] == [
        ("first_name", "text", True),
        ("email", "email", True),
        ("phone", "phone", False),
        ("plan", "select", False),
        ("newsletter", "checkbox", False),
        ("sms_ok", "checkbox", False),
        ("terms", "checkbox", True),
    ]
    assert PAGE.fields[3].options == ("gold", "black")
    assert PAGE.fields[4].consent_channel == "email"
    assert (PAGE.submit_label, PAGE.success_message, PAGE.has_form) == (
        "Send me the offer",
        "Thanks! Check your inbox.",
        True,
    )
    assert PAGE.intro is not None
    rendered = PAGE.intro.render(campaign={"name": "Cards"}, referral={"source": "", "code": ""})
    assert rendered == "Hello from us: Cards."


def test_a_campaign_carries_its_landing_page_and_campaigns_without_one_have_none() -> None:
    body = {"triggers": [{"referral": True}], "landing": FORM}
    landing = campaign_from_body("cards", 1, body).landing
    assert landing is not None and PAGE is not None
    assert (landing.title, landing.fields) == (PAGE.title, PAGE.fields)
    assert campaign_from_body("cards", 1, {"triggers": [{"referral": True}]}).landing is None


def test_a_landing_page_with_only_a_redirect_has_no_form() -> None:
    page = landing_from_body({"redirect_url": "https://bank.example/cards"})
    assert page is not None and not page.has_form and page.redirect_url == "https://bank.example/cards"


@pytest.mark.parametrize(
    ("section", "path", "says"),
    [
        ({"title": "T"}, "landing", "needs fields (a form) or a redirect_url"),
        ({"title": "T", "colour": "red", "fields": []}, "landing.colour", "unknown field"),
        (with_fields({"name": "a b", "label": "A"}), "landing.fields[0].name", "letters, digits or '_'"),
        (with_fields({"name": "website", "label": "W"}), "landing.fields[0].name", "used by the page"),
        (
            with_fields({"name": "a", "type": "date", "label": "A"}),
            "landing.fields[0].type",
            "expected one of",
        ),
        (with_fields({"name": "a", "label": ""}), "landing.fields[0].label", "expected a text"),
        (
            with_fields({"name": "a", "label": "A"}, {"name": "a", "label": "B"}),
            "landing.fields[1].name",
            "used twice",
        ),
        (
            with_fields(
                {"name": "a", "type": "email", "label": "A"}, {"name": "b", "type": "email", "label": "B"}
            ),
            "landing.fields[1].type",
            "at most one email field",
        ),
        (
            with_fields({"name": "a", "type": "select", "label": "A"}),
            "landing.fields[0].options",
            "needs a list",
        ),
        (
            with_fields({"name": "a", "label": "A", "options": ["x"]}),
            "landing.fields[0].options",
            "only a select",
        ),
        (
            with_fields({"name": "a", "label": "A", "consent_channel": "email"}),
            "landing.fields[0].consent_channel",
            "only a checkbox",
        ),
        (
            with_fields({"name": "a", "type": "checkbox", "label": "A", "consent_channel": "fax"}),
            "landing.fields[0].consent_channel",
            "expected one of",
        ),
        (
            with_fields({"name": "a", "label": "A"}, redirect_url="javascript:alert(1)"),
            "landing.redirect_url",
            "http(s) URL",
        ),
        (with_fields({"name": "a", "label": "A"}, intro="{% if %}"), "landing.intro", "cannot be read"),
        ({"fields": [{"name": "a", "label": "A"}]}, "landing.title", "expected a text"),
    ],
)
def test_a_wrong_landing_section_names_the_field_and_what_to_write(
    section: dict[str, Any], path: str, says: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)) as caught:
        landing_from_body(section)
    assert caught.value.field == path


def test_a_wrong_landing_section_refuses_the_whole_campaign() -> None:
    with pytest.raises(ValidationError) as caught:
        campaign_from_body("cards", 1, {"triggers": [{"referral": True}], "landing": {"title": "T"}})
    assert caught.value.field == "landing"


VALID = {
    "first_name": "  Ana ",
    "email": "ana@example.com",
    "phone": "+598 99 123-456",
    "plan": "gold",
    "newsletter": "yes",
    "terms": "yes",
}


def test_a_valid_submission_sorts_contacts_attributes_and_consents() -> None:
    assert PAGE is not None
    check = check_submission(PAGE, VALID)
    assert check.errors == {}
    assert check.lead is not None
    assert (check.lead.email, check.lead.phone) == ("ana@example.com", "+59899123456")
    assert check.lead.attributes == {"first_name": "Ana", "plan": "gold", "terms": True}
    assert check.lead.consents == ("email",)  # the unchecked sms box gives nothing, not an opt-out


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"first_name": "   "}, "first_name", "fill in"),
        ({"email": "ana@"}, "email", "email address"),
        ({"email": "ana example.com"}, "email", "email address"),
        ({"phone": "099 123 456"}, "phone", "country code"),
        ({"phone": "+0123456789"}, "phone", "country code"),
        ({"plan": "platinum"}, "plan", "one of the options"),
        ({"terms": ""}, "terms", "check this box"),
        ({"first_name": "A\x00na"}, "first_name", "control characters"),
        ({"first_name": "x" * 501}, "first_name", "under 500"),
    ],
)
def test_an_invalid_field_gets_a_message_and_every_value_is_kept(
    changes: dict[str, str], field: str, says: str
) -> None:
    assert PAGE is not None
    check = check_submission(PAGE, {**VALID, **changes})
    assert check.lead is None
    assert list(check.errors) == [field] and says in check.errors[field]
    assert check.values["email"] == ({**VALID, **changes})["email"].strip()


def test_optional_fields_left_empty_are_not_recorded() -> None:
    assert PAGE is not None
    check = check_submission(PAGE, {"first_name": "Ana", "email": "ana@example.com", "terms": "on"})
    assert check.lead is not None
    assert check.lead.phone is None
    assert check.lead.attributes == {"first_name": "Ana", "terms": True}


def test_a_lead_appends_contacts_then_attributes_then_consents_then_the_lead_interaction() -> None:
    assert PAGE is not None
    lead = check_submission(PAGE, {**VALID, "sms_ok": "on"}).lead
    assert lead is not None
    payloads = lead_payloads(lead, "cards", "lead_1", {"source": "facebook"})
    assert payloads == [
        ContactUpdate(email="ana@example.com", phone="+59899123456"),
        CustomerUpdate(set={"first_name": "Ana", "plan": "gold", "terms": True}),
        ConsentUpdate(opted_in=True, channel="email"),
        ConsentUpdate(opted_in=True, channel="sms"),
        Interaction(kind="lead", interaction_id="lead_1", campaign_id="cards", data={"source": "facebook"}),
    ]
