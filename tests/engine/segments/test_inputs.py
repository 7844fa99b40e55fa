"""A rule says what it reads, so the processor re-evaluates only rules an event touched."""

from __future__ import annotations

from engine.segments import RuleInputs, rule_from_text


def test_inputs_name_every_attribute_event_segment_and_campaign_read() -> None:
    rule = rule_from_text(
        'balance >= 10 and attr("first name") ~ "^A" and count(event="tx", within="7d") > 1 '
        'and ever(interaction="click", campaign="card-upsell") and last(event="login").channel '
        '== "app" and in_segment("vip") and offer("loan-q4").rate < 12 and ever(interaction="open")'
    )
    assert rule.inputs == RuleInputs(
        attributes=frozenset({"balance", "first name"}),
        events=frozenset({"tx", "interaction:click:card-upsell", "login", "interaction:open"}),
        segments=frozenset({"vip"}),
        campaigns=frozenset({"loan-q4"}),
    )


def test_date_rules_also_read_the_time_zone_attribute() -> None:
    assert rule_from_text("age >= 18").inputs.attributes == {"birth_date", "timezone"}
    assert rule_from_text("days_since(seen) > 3").inputs.attributes == {"seen", "timezone"}
    assert rule_from_text("is_birthday(born)").inputs.attributes == {"born", "timezone"}
    assert rule_from_text('signup >= date("2024-01-01")').inputs.attributes == {
        "signup",
        "timezone",
    }


def test_rules_know_whether_time_alone_can_change_them() -> None:
    assert rule_from_text('count(event="tx", within="7d") > 1').time_dependent
    assert rule_from_text("days_since(seen) > 3 or a == 1").time_dependent
    assert rule_from_text("age > 3").time_dependent
    assert rule_from_text("is_birthday(born)").time_dependent
    assert not rule_from_text('count(event="tx") > 1').time_dependent
    assert not rule_from_text('signup >= date("2024-01-01")').time_dependent
