import pytest

from engine.campaigns.eligibility import in_control_group, variant_for
from engine.campaigns.links import SMS_OPT_OUT
from engine.campaigns.model import Cap
from engine.events import ReferralClick
from engine.segments.membership import SegmentChange
from tests.engine.campaigns.support import DAY_MS, HOUR_MS, T0, Customer, at, catalog, make_campaign

CLICK_THEN_SMS = [
    {"id": "email-1", "send": "offer"},
    {
        "id": "wait-click",
        "wait_for": {"interaction": "click", "timeout": "2d", "on_event": "done", "on_timeout": "sms-1"},
    },
    {"id": "sms-1", "send": "nudge"},
    {"id": "done", "exit": True},
]
OFFER_CONTENT = {
    "offer": {
        "channel": "email",
        "subject": "Your card, {{ customer.first_name }}",
        "html": "<p>{{ event.amount }}</p>",
    },
    "nudge": {"channel": "sms", "text": "Still thinking about it?"},
}


def loan_campaign(**body):
    values = dict(triggers=[{"event": "loan_preapproved"}], content=OFFER_CONTENT, flow=CLICK_THEN_SMS)
    values.update(body)
    return make_campaign("loan", **values)


def test_business_event_starts_the_flow_and_sends_the_first_email_rendered_for_the_customer():
    cat = catalog(loan_campaign())
    customer = Customer(first_name="Ana").setup(cat)
    customer.event("loan_preapproved", cat, T0, amount=5000)
    [delivery] = customer.deliveries
    assert delivery.channel == "email" and delivery.address == "ana@example.com"
    assert delivery.content["subject"] == "Your card, Ana"
    assert delivery.content["html"] == "<p>5000</p>"
    assert delivery.expires_at_ms == T0 + DAY_MS
    assert customer.state.campaigns["loan"].waiting_for == "interaction:click"


def test_no_click_within_two_days_sends_the_sms_at_the_timeout():
    cat = catalog(loan_campaign())
    customer = Customer(first_name="Ana").setup(cat)
    customer.event("loan_preapproved", cat, T0, amount=1)
    customer.run_until(cat, T0 + 2 * DAY_MS - 1)
    assert [d.channel for d in customer.deliveries] == ["email"]
    customer.run_until(cat, T0 + 2 * DAY_MS)
    assert [d.channel for d in customer.deliveries] == ["email", "sms"]
    assert customer.deliveries[1].created_at_ms == T0 + 2 * DAY_MS
    assert customer.deliveries[1].content["text"].endswith(SMS_OPT_OUT)
    assert not customer.state.campaigns["loan"].active


def test_a_click_on_the_campaign_ends_the_wait_and_no_sms_goes_out():
    cat = catalog(loan_campaign())
    customer = Customer(first_name="Ana").setup(cat)
    customer.event("loan_preapproved", cat, T0, amount=1)
    customer.interaction("click", cat, T0 + HOUR_MS, campaign_id="loan")
    customer.run_until(cat, T0 + 5 * DAY_MS)
    assert [d.channel for d in customer.deliveries] == ["email"]
    assert "event_arrived" in customer.reasons("loan")
    assert customer.state.due_ms is None


def test_a_click_on_another_campaign_does_not_end_the_wait():
    cat = catalog(loan_campaign())
    customer = Customer(first_name="Ana").setup(cat)
    customer.event("loan_preapproved", cat, T0, amount=1)
    customer.interaction("click", cat, T0 + HOUR_MS, campaign_id="other")
    customer.run_until(cat, T0 + 5 * DAY_MS)
    assert [d.channel for d in customer.deliveries] == ["email", "sms"]


def test_trigger_condition_reads_the_event_data():
    cat = catalog(make_campaign(triggers=[{"event": "card_transaction", "condition": "event.amount >= 100"}]))
    customer = Customer().setup(cat)
    customer.event("card_transaction", cat, T0, amount=99)
    assert customer.deliveries == [] and "welcome" not in customer.state.campaigns
    customer.event("card_transaction", cat, T0 + 1, amount=100)
    assert len(customer.deliveries) == 1


def test_the_same_event_posted_twice_with_one_id_triggers_once():
    cat = catalog(make_campaign(reentry={"allowed": True}))
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0, event_id="evt-1")
    customer.event("signed_up", cat, T0 + 1, event_id="evt-1")
    assert len(customer.deliveries) == 1


def test_segment_entry_starts_the_campaign():
    cat = catalog(make_campaign(triggers=[{"segment": "vip"}]))
    customer = Customer().setup(cat)
    entered = SegmentChange("vip", 1, "ENTERED", T0)
    customer.feed(
        ReferralClick(code="x", campaign_id="none"), cat, T0, segment_changes=[entered], segments={"vip": T0}
    )
    assert len(customer.deliveries) == 1


def test_referral_click_starts_only_the_campaign_it_names():
    cat = catalog(
        make_campaign("a", triggers=[{"referral": True}]),
        make_campaign("b", triggers=[{"referral": True}]),
    )
    customer = Customer().setup(cat)
    customer.feed(ReferralClick(code="x", campaign_id="b", source="facebook"), cat, T0)
    assert [d.campaign_id for d in customer.deliveries] == ["b"]
    assert customer.state.campaigns["b"].trigger["source"] == "facebook"


def test_the_higher_priority_campaign_wins_an_exclusive_trigger():
    cat = catalog(make_campaign("low", priority=1), make_campaign("high", priority=5))
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    assert [d.campaign_id for d in customer.deliveries] == ["high"]
    lost = [d for d in customer.decisions if d.reason == "lost_priority"]
    assert lost[0].campaign_id == "low" and lost[0].details["winner"] == "high"


def test_equal_priorities_are_broken_by_campaign_id_and_non_exclusive_triggers_all_run():
    cat = catalog(
        make_campaign("beta"),
        make_campaign("alpha"),
        make_campaign("side", triggers=[{"event": "signed_up", "exclusive": False}]),
    )
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    assert sorted(d.campaign_id for d in customer.deliveries) == ["alpha", "side"]


def test_a_customer_is_in_one_run_at_a_time_and_reenters_only_after_the_gap():
    cat = catalog(
        make_campaign(flow=[{"send": "hello"}, {"wait": "1d"}], reentry={"allowed": True, "min_gap": "3d"})
    )
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    customer.event("signed_up", cat, T0 + HOUR_MS)
    assert customer.reasons("welcome").count("already_running") == 1
    customer.run_until(cat, T0 + 2 * DAY_MS)
    customer.event("signed_up", cat, T0 + 2 * DAY_MS)
    assert "reentry_too_soon" in customer.reasons("welcome")
    customer.event("signed_up", cat, T0 + 3 * DAY_MS)
    assert len(customer.deliveries) == 2


def test_without_reentry_a_finished_customer_does_not_enter_again():
    cat = catalog(make_campaign())
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    customer.event("signed_up", cat, T0 + 30 * DAY_MS)
    assert len(customer.deliveries) == 1 and "no_reentry" in customer.reasons()


def test_a_cap_of_three_holds_when_ten_triggers_arrive_at_once():
    cat = catalog(make_campaign(reentry={"allowed": True}, caps=[{"max": 3, "within": "7d"}]))
    customer = Customer().setup(cat)
    for n in range(10):
        customer.event("signed_up", cat, T0 + n)
    assert len(customer.deliveries) == 3
    assert customer.reasons().count("frequency_cap") == 7


def test_a_cap_counts_sends_inside_its_window_only():
    cat = catalog(make_campaign(reentry={"allowed": True}, caps=[{"max": 1, "within": "1d"}]))
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    customer.event("signed_up", cat, T0 + DAY_MS - 1)
    assert len(customer.deliveries) == 1
    customer.event("signed_up", cat, T0 + DAY_MS)  # the first send is exactly one day old: out
    assert len(customer.deliveries) == 2


def test_a_global_channel_cap_counts_every_campaign():
    cat = catalog(
        make_campaign("a"),
        make_campaign("b", triggers=[{"event": "signed_up", "exclusive": False}]),
        make_campaign("c", triggers=[{"event": "paid"}]),
        channel_caps=[Cap(2, 7 * DAY_MS, "email")],
    )
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    customer.event("paid", cat, T0 + 1)
    assert sorted(d.campaign_id for d in customer.deliveries) == ["a", "b"]
    assert [d.campaign_id for d in customer.decisions if d.reason == "frequency_cap"] == ["c"]


def test_quiet_hours_defer_the_send_to_their_end_in_the_customers_time_zone():
    cat = catalog(make_campaign(quiet_hours={"start": "21:00", "end": "08:00"}))
    customer = Customer(timezone="America/Montevideo").setup(cat)
    late = at(2026, 11, 2, 23, 30, "America/Montevideo")
    customer.event("signed_up", cat, late)
    assert customer.deliveries == [] and "quiet_hours" in customer.reasons()
    customer.run_until(cat, late + DAY_MS)
    [delivery] = customer.deliveries
    assert delivery.created_at_ms == at(2026, 11, 3, 8, 0, "America/Montevideo")


def test_quiet_hours_end_at_local_eight_across_a_daylight_saving_change():
    cat = catalog(make_campaign(quiet_hours={"start": "21:00", "end": "08:00"}))
    customer = Customer(timezone="America/New_York").setup(cat, at(2026, 10, 30, 12, 0))
    customer.event(
        "signed_up", cat, at(2026, 10, 31, 22, 0, "America/New_York")
    )  # clocks fall back that night
    customer.run_until(cat, at(2026, 11, 2, 0, 0))
    assert customer.deliveries[0].created_at_ms == at(2026, 11, 1, 8, 0, "America/New_York")


def test_wait_until_a_time_of_day_in_the_customers_zone_skips_a_missing_hour():
    cat = catalog(make_campaign(flow=[{"wait": {"until": "02:30"}}, {"send": "hello"}]))
    customer = Customer(timezone="America/New_York").setup(cat, at(2026, 3, 6, 12, 0))
    customer.event("signed_up", cat, at(2026, 3, 7, 12, 0, "America/New_York"))  # 8 March has no 02:30
    customer.run_until(cat, at(2026, 3, 9, 0, 0))
    assert customer.deliveries[0].created_at_ms == at(2026, 3, 8, 3, 0, "America/New_York")


def test_a_wait_of_a_duration_then_a_branch_on_the_profile():
    flow = [
        {"wait": "1d"},
        {"branch": {"if": "balance >= 1000", "then": "rich", "else": "other"}},
        {"id": "rich", "send": "hello", "next": None},
        {"id": "other", "send": "sms"},
    ]
    content = {
        "hello": {"channel": "email", "subject": "s", "text": "t"},
        "sms": {"channel": "sms", "text": "x"},
    }
    cat = catalog(make_campaign(flow=flow, content=content))
    rich, other = Customer("r", balance=5000).setup(cat), Customer("o", balance=10).setup(cat)
    for customer in (rich, other):
        customer.event("signed_up", cat, T0)
        customer.run_until(cat, T0 + DAY_MS)
    assert [d.channel for d in rich.deliveries] == ["email"]
    assert [d.channel for d in other.deliveries] == ["sms"]


@pytest.mark.parametrize(
    "scope", [{"channel": "email"}, {"campaign_id": "welcome"}, {"category": "news"}, {}]
)
def test_an_opt_out_of_the_channel_campaign_category_or_everything_suppresses_the_send(scope):
    cat = catalog(make_campaign(categories=["news"]))
    customer = Customer().setup(cat)
    customer.opt_out(cat, T0 - 1, **scope)
    customer.event("signed_up", cat, T0)
    assert customer.deliveries == [] and "no_consent" in customer.reasons()


def test_a_customer_without_an_address_for_the_channel_is_suppressed_and_the_flow_goes_on():
    content = {
        "hello": {"channel": "email", "subject": "s", "text": "t"},
        "sms": {"channel": "sms", "text": "x"},
    }
    cat = catalog(make_campaign(content=content, flow=[{"send": "hello"}, {"send": "sms"}]))
    customer = Customer(email=None).setup(cat)
    customer.event("signed_up", cat, T0)
    assert [d.channel for d in customer.deliveries] == ["sms"]
    assert "missing_address" in customer.reasons()


def test_a_template_that_fails_for_a_customer_suppresses_the_send_with_the_reason():
    content = {"hello": {"channel": "email", "subject": "Hi {{ customer.first_name }}", "text": "t"}}
    cat = catalog(make_campaign(content=content))
    customer = Customer().setup(cat)  # no first_name
    customer.event("signed_up", cat, T0)
    assert customer.deliveries == []
    [failure] = [d for d in customer.decisions if d.reason == "template_error"]
    assert "first_name" in failure.details["error"]


def test_control_group_customers_are_tracked_never_messaged_and_can_convert():
    campaign = make_campaign(control_group=50, conversion={"event": "card_activated", "within": "7d"})
    cat = catalog(campaign)
    controls = [c for c in (f"c-{n}" for n in range(200)) if in_control_group(c, campaign)]
    assert 70 < len(controls) < 130
    customer = Customer(controls[0]).setup(cat)
    customer.event("signed_up", cat, T0)
    customer.event("card_activated", cat, T0 + DAY_MS)
    assert customer.deliveries == []
    assert [(m.arm, m.stage) for m in customer.funnel] == [("control", "entered"), ("control", "converted")]


def test_control_group_membership_is_stable_across_versions():
    v1, v2 = make_campaign(control_group=10), make_campaign(version=2, control_group=10)
    assert [in_control_group(f"c-{n}", v1) for n in range(500)] == [
        in_control_group(f"c-{n}", v2) for n in range(500)
    ]


def test_variants_are_assigned_stably_by_weight_and_change_the_content():
    body = dict(
        variants=[
            {"id": "A", "weight": 3},
            {
                "id": "B",
                "weight": 1,
                "content": {"hello": {"channel": "email", "subject": "B subject", "text": "b"}},
            },
        ]
    )
    campaign = make_campaign(**body)
    assigned = [variant_for(f"c-{n}", campaign).variant_id for n in range(2000)]
    assert 1350 < assigned.count("A") < 1650
    assert assigned == [variant_for(f"c-{n}", campaign).variant_id for n in range(2000)]
    cat = catalog(campaign)
    b_customer = Customer(f"c-{assigned.index('B')}").setup(cat)
    b_customer.event("signed_up", cat, T0)
    assert b_customer.deliveries[0].content["subject"] == "B subject"
    assert b_customer.state.campaigns["welcome"].arm == "B"


def test_outside_its_dates_or_paused_a_campaign_starts_nobody():
    cat = catalog(
        make_campaign("later", starts_at="2027-01-01T00:00", priority=3),
        make_campaign("paused", status="paused", priority=2),
        make_campaign("over", ends_at="2026-01-01T00:00", priority=1),
    )
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    assert customer.deliveries == []
    assert customer.reasons().count("not_live") == 3


def test_a_campaign_for_a_segment_starts_only_its_members():
    cat = catalog(make_campaign(segments=["vip"]))
    outsider = Customer().setup(cat)
    outsider.event("signed_up", cat, T0)
    assert outsider.deliveries == [] and "not_targeted" in outsider.reasons()


def test_funnel_moves_from_reached_to_engaged_lead_and_converted_within_the_window():
    cat = catalog(make_campaign(conversion={"event": "card_activated", "within": "7d"}))
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    customer.interaction("open", cat, T0 + 1, campaign_id="welcome")
    customer.interaction("click", cat, T0 + 2, campaign_id="welcome")
    customer.interaction("click", cat, T0 + 3, campaign_id="welcome")
    customer.event("card_activated", cat, T0 + DAY_MS)
    assert [m.stage for m in customer.funnel] == ["entered", "reached", "engaged", "lead", "converted"]


def test_a_conversion_after_the_attribution_window_is_not_counted():
    cat = catalog(make_campaign(conversion={"event": "card_activated", "within": "7d"}))
    customer = Customer().setup(cat)
    customer.event("signed_up", cat, T0)
    customer.event("card_activated", cat, T0 + 7 * DAY_MS + 1)
    assert [m.stage for m in customer.funnel] == ["entered", "reached"]


def test_a_replay_of_the_same_events_gives_the_same_delivery_ids():
    cat = catalog(loan_campaign())

    def run():
        customer = Customer(first_name="Ana").setup(cat)
        customer.event("loan_preapproved", cat, T0, event_id="evt-9", amount=1)
        customer.run_until(cat, T0 + 3 * DAY_MS)
        return [d.delivery_id for d in customer.deliveries], [d.decision_id for d in customer.decisions]

    assert run() == run()


def test_every_email_carries_the_signed_unsubscribe_link_and_tracked_links():
    from engine.campaigns.execution import react
    from engine.campaigns.links import TrackedLinks
    from engine.events import BusinessEvent
    from engine.fold import fold
    from engine.signing import Signer
    from engine.tracking import TrackingLinks
    from tests.engine.campaigns.support import envelope

    tracking = TrackingLinks(Signer(("s" * 32,)), "https://go.bank.example")
    html = '<html><body><p><a href="https://bank.example/offer">See it</a></p></body></html>'
    content = {
        "hello": {"channel": "email", "subject": "s", "html": html, "text": "Visit https://bank.example/x"}
    }
    cat = catalog(make_campaign(content=content, categories=["cards"]))
    customer = Customer().setup(cat)
    env = envelope("c-1", BusinessEvent(name="signed_up"), T0)
    after = fold(customer.state, env, 99)
    [delivery] = react(customer.state, after, env, (), cat, links=TrackedLinks(tracking)).deliveries
    url = delivery.content["unsubscribe_url"]
    assert url.startswith("https://go.bank.example/u/")
    unsubscribe = tracking.read_unsubscribe(url.rsplit("/", 1)[1], now_ms=T0)
    assert unsubscribe.context.delivery_id == delivery.delivery_id and unsubscribe.scope == "campaign"
    body = delivery.content["html"]
    assert "https://bank.example/offer" not in body and "https://go.bank.example/t/c/" in body
    assert "/t/o/" in body and body.endswith("</body></html>")
    assert url.replace("&", "&amp;") in body or url in body  # the footer link (the template had none)
    assert "https://go.bank.example/t/c/" in delivery.content["text"] and url in delivery.content["text"]


def test_push_goes_to_every_token_of_the_customer_with_distinct_ids():
    from engine.events import ContactUpdate, PushToken

    content = {"push": {"channel": "push", "title": "Hi", "body": "b"}}
    cat = catalog(make_campaign(content=content, flow=[{"send": "push"}]))
    customer = Customer(email=None, phone=None).setup(cat)
    customer.feed(
        ContactUpdate(add_push_tokens=(PushToken("android", "tok-a"), PushToken("ios", "tok-i"))), cat, T0 - 1
    )
    customer.event("signed_up", cat, T0)
    assert sorted((d.content["platform"], d.address) for d in customer.deliveries) == [
        ("android", "tok-a"),
        ("ios", "tok-i"),
    ]
    assert len({d.delivery_id for d in customer.deliveries}) == 2


def test_a_deleted_campaign_ends_its_runs_at_their_next_step():
    cat = catalog(loan_campaign())
    customer = Customer(first_name="Ana").setup(cat)
    customer.event("loan_preapproved", cat, T0, amount=1)
    empty = catalog()
    customer.run_until(empty, T0 + 3 * DAY_MS)
    assert [d.channel for d in customer.deliveries] == ["email"]
    assert not customer.state.campaigns["loan"].active


def test_a_branch_loop_is_stopped():
    flow = [
        {"id": "a", "branch": {"if": "balance > 0", "then": "b", "else": "b"}},
        {"id": "b", "branch": {"if": "balance > 0", "then": "a", "else": "a"}},
    ]
    cat = catalog(make_campaign(flow=flow))
    customer = Customer(balance=1).setup(cat)
    customer.event("signed_up", cat, T0)
    assert "step_limit" in customer.reasons()


def test_an_sms_rendered_too_long_is_not_sent_and_the_audit_says_how_long():
    content = {"sms": {"channel": "sms", "text": "{{ customer.story }}"}}
    cat = catalog(make_campaign(content=content, flow=[{"send": "sms"}]))
    customer = Customer(story="✓" * 500).setup(cat)  # not in GSM-7: UCS-2, 67 characters a part
    customer.event("signed_up", cat, T0)
    assert customer.deliveries == []
    [refused] = [d for d in customer.decisions if d.reason == "sms_too_long"]
    assert refused.details["encoding"] == "ucs2" and int(refused.details["segments"]) > 6
