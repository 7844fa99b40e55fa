from engine.campaigns.eligibility import in_control_group
from engine.campaigns.inbound import decide_inbound
from engine.campaigns.placements import placement_from_body
from engine.events import Interaction
from tests.engine.campaigns.support import DAY_MS, T0, Customer, catalog, make_campaign

HERO = placement_from_body("home-hero", 1, {"kind": "single", "default": {"title": "Welcome"}})
CAROUSEL = placement_from_body("offers", 1, {"kind": "multiple", "max_items": 2})


def banner(campaign_id, priority=0, **body):
    inbound = {
        "home-hero": {
            "title": "{{ customer.first_name | default: 'Hi' }}, " + campaign_id,
            "cta_url": "https://b.example",
        },
        "offers": {"text": campaign_id},
    }
    return make_campaign(
        campaign_id, triggers=[], flow=[], content={}, inbound=inbound, priority=priority, **body
    )


def shown(answer):
    return [item.campaign_id for item in answer.items]


def test_the_highest_priority_campaign_wins_a_single_placement_rendered_for_the_customer():
    cat = catalog(banner("low", 1), banner("high", 5), banner("also-high", 5))
    customer = Customer(first_name="Ana").setup(cat)
    answer = decide_inbound(customer.state, "c-1", [HERO], cat, T0, cause_id="d1").answers["home-hero"]
    assert shown(answer) == ["also-high"]  # ties go to the smaller campaign id
    assert answer.items[0].content == {"title": "Ana, also-high", "cta_url": "https://b.example"}


def test_a_carousel_shows_up_to_its_maximum_in_priority_order():
    cat = catalog(banner("a", 1), banner("b", 3), banner("c", 2))
    answer = decide_inbound(None, "visitor", [CAROUSEL], cat, T0, cause_id="d1").answers["offers"]
    assert shown(answer) == ["b", "c"]


def test_a_control_group_customer_sees_the_default_and_the_decision_is_recorded():
    campaign = banner("promo", control_group=50)
    cat = catalog(campaign)
    control = next(f"c-{n}" for n in range(100) if in_control_group(f"c-{n}", campaign))
    decision = decide_inbound(None, control, [HERO], cat, T0, cause_id="d1")
    assert decision.answers["home-hero"].default and decision.answers["home-hero"].control == ("promo",)
    [audit] = decision.decisions
    assert (audit.outcome, audit.reason, audit.details["control"]) == (
        "control",
        "control_group",
        "home-hero:promo",
    )


def test_segments_dismissals_and_impression_caps_make_a_campaign_ineligible():
    cat = catalog(
        banner("vip-only", 9, segments=["vip"]),
        banner("capped", 8, impression_caps=[{"max": 2, "within": "1d"}]),
        banner("fallback", 1),
    )
    customer = Customer().setup(cat)
    assert shown(
        decide_inbound(customer.state, "c-1", [HERO], cat, T0, cause_id="d").answers["home-hero"]
    ) == ["capped"]
    for n in range(2):
        customer.feed(Interaction("impression", f"imp-{n}", campaign_id="capped"), cat, T0 + n)
    answer = decide_inbound(customer.state, "c-1", [HERO], cat, T0 + 10, cause_id="d").answers["home-hero"]
    assert shown(answer) == ["fallback"]
    customer.feed(Interaction("dismiss", "dis-1", campaign_id="fallback"), cat, T0 + 20)
    answer = decide_inbound(customer.state, "c-1", [HERO], cat, T0 + 30, cause_id="d").answers["home-hero"]
    assert answer.default
    later = decide_inbound(customer.state, "c-1", [HERO], cat, T0 + 8 * DAY_MS, cause_id="d").answers[
        "home-hero"
    ]
    assert shown(later) == ["capped"]  # the cap's day and the dismissal's week are over


def test_impressions_and_clicks_move_a_banner_campaign_through_its_funnel():
    cat = catalog(banner("promo"))
    customer = Customer().setup(cat)
    customer.feed(Interaction("impression", "imp-1", campaign_id="promo"), cat, T0)
    customer.feed(Interaction("click", "clk-1", campaign_id="promo"), cat, T0 + 1)
    assert [(m.arm, m.stage) for m in customer.funnel] == [
        ("default", "entered"),
        ("default", "reached"),
        ("default", "engaged"),
        ("default", "lead"),
    ]


def test_a_withheld_impression_puts_a_control_customer_in_the_control_arm_only():
    campaign = banner("promo", control_group=50)
    cat = catalog(campaign)
    control = next(f"c-{n}" for n in range(100) if in_control_group(f"c-{n}", campaign))
    customer = Customer(control).setup(cat)
    customer.feed(Interaction("impression", "imp-1", campaign_id="promo", data={"control": "1"}), cat, T0)
    assert [(m.arm, m.stage) for m in customer.funnel] == [("control", "entered")]


def test_a_control_customer_is_entered_once_per_campaign_not_at_every_page_view():
    campaign = banner("promo", control_group=50)
    cat = catalog(campaign)
    control = next(f"c-{n}" for n in range(100) if in_control_group(f"c-{n}", campaign))
    customer = Customer(control).setup(cat)
    # Withheld in both placements of one page: one impression to record, from the first.
    first = decide_inbound(customer.state, control, [HERO, CAROUSEL], cat, T0, cause_id="d1")
    assert first.answers["offers"].control == ("promo",)
    assert first.enters_control == (("home-hero", "promo"),)
    customer.feed(Interaction("impression", "imp-1", campaign_id="promo", data={"control": "1"}), cat, T0)
    # Entered: the next page view still withholds the campaign, and says so in its audit record.
    again = decide_inbound(customer.state, control, [HERO], cat, T0 + 1, cause_id="d2")
    assert again.answers["home-hero"].control == ("promo",) and again.enters_control == ()
    assert again.decisions[0].details["control"] == "home-hero:promo"
