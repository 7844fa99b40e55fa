import datetime as dt

import pytest

from engine.campaigns.definition import campaign_from_body
from engine.errors import ValidationError

VALID = {
    "name": "Welcome",
    "timezone": "America/Montevideo",
    "starts_at": "2026-12-01T09:00",
    "triggers": [{"event": "signed_up"}],
    "content": {"hello": {"channel": "email", "subject": "Hi", "text": "Welcome"}},
    "flow": [{"id": "send", "send": "hello"}, {"wait": "2d"}, {"exit": True}],
}


def body(**changes):
    value = {**VALID, **changes}
    return {k: v for k, v in value.items() if v is not None}


def error_for(**changes) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        campaign_from_body("welcome", 1, body(**changes))
    return caught.value


def test_a_valid_body_reads_with_its_start_in_the_campaigns_zone():
    campaign = campaign_from_body("welcome", 4, body())
    assert campaign.version == 4 and campaign.first_step == "send"
    assert list(campaign.steps) == ["send", "step-2", "step-3"]
    assert campaign.starts_at_ms == int(dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"colour": "red"}, "colour", "unknown field"),
        ({"timezone": "Mars/Base"}, "timezone", "IANA"),
        ({"triggers": []}, "triggers", "at least one trigger"),
        (
            {"triggers": [{"event": "x", "condition": "event.amount >>= 3"}]},
            "triggers[0].condition",
            "line 1",
        ),
        ({"flow": [{"send": "missing"}]}, "flow[0].send", "no content named 'missing'"),
        ({"flow": [{"send": "hello", "next": "nowhere"}]}, "flow[0].next", "no step with id 'nowhere'"),
        ({"flow": [{"wait": "2 days"}]}, "flow[0].wait", "not a duration"),
        (
            {"flow": [{"wait_for": {"interaction": "like", "timeout": "1d"}}]},
            "flow[0].wait_for.interaction",
            "expected one of",
        ),
        (
            {"content": {"hello": {"channel": "email", "subject": "{% if %}", "text": "x"}}},
            "content.hello.subject",
            "cannot be read",
        ),
        (
            {"content": {"hello": {"channel": "sms", "subject": "x"}}},
            "content.hello.subject",
            "sms content has the parts",
        ),
        ({"content": {"hello": {"channel": "email", "text": "x"}}}, "content.hello.subject", "needs subject"),
        ({"ends_at": "2026-11-01T00:00"}, "ends_at", "end after it starts"),
        ({"control_group": 120}, "control_group", "percentage"),
        ({"caps": [{"max": "three", "within": "7d"}]}, "caps[0].max", "whole number"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours", "time of day"),
    ],
)
def test_a_wrong_body_names_the_field_and_what_is_wrong(changes, field, says):
    error = error_for(**changes)
    assert error.field == field
    assert says in error.message


def test_a_template_cannot_include_files():
    campaign = campaign_from_body(
        "welcome",
        1,
        body(content={"hello": {"channel": "email", "subject": "{% include 'secrets.txt' %}", "text": "x"}}),
    )
    from engine.campaigns.templates import TemplateRenderError

    with pytest.raises(TemplateRenderError):
        campaign.content["hello"].render({})


def test_a_start_past_the_year_9999_in_utc_is_refused():
    error = error_for(starts_at="9999-12-31T23:59:59-05:00", ends_at=None)
    assert error.field == "starts_at" and "out of range" in error.message
