"""``refract segment test``: a profile as the API shows it, explained clause by clause."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from api.customer_view import customer_json
from engine import behaviour
from engine.errors import ValidationError
from engine.segments import RuleSyntaxError, evaluate, explain, rule_from_text
from engine.state import CustomerState, epoch_ms
from ops.cli import main
from ops.segment_test import format_explanation, moment_ms, profile_context, read_rule

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
NOW_MS = epoch_ms(NOW)


def make_profile() -> dict[str, object]:
    history = behaviour.EMPTY_HISTORY
    for days_ago in (1, 2, 20):
        history = behaviour.record(
            history, "card_transaction", {"amount": 100}, NOW_MS - days_ago * 86_400_000
        )
    state = CustomerState(
        "ana",
        attributes={"balance": 5000, "country": "UY", "birth_date": dt.date(1990, 5, 3)},
        campaign_attributes={"loan-q4": {"rate": 11.5}},
        behaviour=history,
        segments={"vip": NOW_MS - 1000},
    )
    profile: dict[str, object] = json.loads(json.dumps(customer_json(state, with_behaviour=True)))
    return profile


def test_a_profile_from_the_api_gives_the_same_results_as_the_state_it_shows() -> None:
    context = profile_context(make_profile(), NOW_MS)
    for text, expected in [
        ("balance >= 1000", True),
        ('count(event="card_transaction", within="7d") >= 2', True),
        ('sum(event="card_transaction", field="amount", within="30d") > 250', True),
        ('is_birthday(birth_date, within="3d")', True),
        ('offer("loan-q4").rate < 12', True),
        ('in_segment("vip")', True),
        ("age >= 40", False),
    ]:
        assert evaluate(rule_from_text(text), context) is expected, text


def test_a_profile_without_behaviour_counts_no_events() -> None:
    profile = make_profile()
    del profile["behaviour"]
    rule = rule_from_text('count(event="card_transaction") >= 1')
    assert evaluate(rule, profile_context(profile, NOW_MS)) is False


def test_the_report_indents_nested_clauses_and_shows_the_values_read() -> None:
    rule = rule_from_text('balance >= 10000 or (country == "UY" and not vip)')
    lines = format_explanation(explain(rule, profile_context(make_profile(), NOW_MS)))
    assert lines == [
        "true   any of:",
        "  false  balance >= 10000    [balance = 5000]",
        "  true   all of:",
        '    true   country == "UY"    [country = "UY"]',
        "    true   not:",
        "      false  vip    [vip = missing]",
    ]


def test_a_rule_error_points_at_the_line_and_column_with_a_caret() -> None:
    with pytest.raises(RuleSyntaxError) as raised:
        read_rule("balance >=\n  and vip")
    assert raised.value.message.startswith("line 2, column 3: expected a value after '>='")
    assert raised.value.message.endswith("\n    and vip\n    ^")


def test_moments_need_a_zone() -> None:
    assert moment_ms("2026-05-01T12:00:00Z") == NOW_MS
    with pytest.raises(ValidationError):
        moment_ms("2026-05-01T12:00:00")


def test_the_command_explains_a_rule_for_a_profile_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ana.json"
    path.write_text(json.dumps(make_profile()))
    code = main(
        [
            "segment",
            "test",
            'count(event="card_transaction", within="7d") >= 3 and country == "UY"',
            "--profile",
            str(path),
            "--at",
            "2026-05-01T12:00:00Z",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[:2] == [
        'rule: count(event="card_transaction", within="7d") >= 3 and country == "UY"',
        "customer ana at 2026-05-01T12:00:00Z",
    ]
    assert (
        '  false  count(event="card_transaction", within="7d") >= 3'
        '    [count(event="card_transaction", within="7d") = 2]' in out
    )
    assert out[-1] == "OUT: ana is not in the segment"


def test_the_command_refuses_a_broken_rule_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ana.json"
    path.write_text(json.dumps(make_profile()))
    assert main(["segment", "test", "cnt(event='x') > 1", "--profile", str(path)]) == 1
    assert capsys.readouterr().err.startswith("refract: error: line 1, column 1: unknown function 'cnt'")


def test_the_command_needs_a_customer_or_a_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["segment", "test", "vip"]) == 1
    assert "--customer ID" in capsys.readouterr().err
