"""What a customer sees in each placement of a page: eligible campaigns, ranked, capped, rendered.

Pure: the customer's state (or None for a first-time visitor), the placements asked for, the
campaigns and the moment in; the answer per placement and the audit records out. A campaign is
eligible when it is live, targets the customer (segments), is not refused by consent, was not
dismissed by the customer in the last week and is under its impression caps. Eligible campaigns
are ranked by priority, ties by campaign id (stable). A customer in a campaign's control group is
shown the placement's default instead of that campaign, and the audit says so: one audit record
per call lists what each placement showed and what control-group membership withheld.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine import behaviour
from engine.behaviour import interaction_key
from engine.campaigns.audit import Decision, decision_id
from engine.campaigns.catalog import CampaignCatalog
from engine.campaigns.eligibility import in_control_group, variant_for
from engine.campaigns.model import Campaign
from engine.campaigns.placements import Placement
from engine.campaigns.templates import TemplateRenderError
from engine.state import CustomerState

DISMISSED_FOR_MS = 7 * 86_400_000
"""A campaign the customer dismissed is not shown to them again for a week."""


@dataclass(slots=True, frozen=True)
class ShownItem:
    campaign_id: str
    version: int
    arm: str  # the variant id, or "default"
    content: Mapping[str, str]


@dataclass(slots=True, frozen=True)
class PlacementAnswer:
    placement: Placement
    items: tuple[ShownItem, ...]
    control: tuple[str, ...] = ()  # campaigns withheld because the customer is in their control group

    @property
    def default(self) -> bool:
        return not self.items


@dataclass(slots=True, frozen=True)
class InboundDecision:
    answers: Mapping[str, PlacementAnswer]
    decisions: tuple[Decision, ...]
    # (placement, campaign) for each campaign withheld from a control customer whose state has no
    # run of it yet: the withheld impression to record, which enters them in the control arm. Once
    # entered, another would change nothing a funnel counts, so it is not recorded again.
    enters_control: tuple[tuple[str, str], ...] = ()


def _refusal(campaign: Campaign, state: CustomerState | None, now_ms: int) -> str | None:
    if not campaign.is_live(now_ms):
        return "not_live"
    segments = state.segments if state is not None else {}
    if campaign.segments and not any(s in segments for s in campaign.segments):
        return "not_targeted"
    if state is None:
        return None
    # Most customers have no consent record and no interactions yet: skip building their keys.
    consent = state.consent
    if consent:
        scopes = ("all", f"campaign:{campaign.campaign_id}", *(f"category:{c}" for c in campaign.categories))
        if any(consent.get(scope) is False for scope in scopes):
            return "no_consent"
    history = state.behaviour
    if not history.events:
        return None
    if behaviour.count(history, interaction_key("dismiss", campaign.campaign_id), DISMISSED_FOR_MS, now_ms):
        return "dismissed"
    key = interaction_key("impression", campaign.campaign_id)
    for cap in campaign.impression_caps:
        if behaviour.count(history, key, cap.window_ms, now_ms) >= cap.max_sends:
            return "impression_cap"
    return None


def eligible_campaigns(
    state: CustomerState | None, catalog: CampaignCatalog, now_ms: int
) -> list[tuple[Campaign, str | None]]:
    """Every campaign with (None) or without (the reason) the customer eligible, by priority."""
    ranked = sorted(catalog.campaigns.values(), key=lambda c: (-c.priority, c.campaign_id))
    return [(campaign, _refusal(campaign, state, now_ms)) for campaign in ranked]


def decide_inbound(
    state: CustomerState | None,
    customer_id: str,
    placements: Sequence[Placement],
    catalog: CampaignCatalog,
    now_ms: int,
    *,
    cause_id: str,
) -> InboundDecision:
    """The content of each placement for the customer; ``cause_id`` keys the audit records."""
    answers: dict[str, PlacementAnswer] = {}
    decisions: list[Decision] = []

    def record(campaign_id: str | None, outcome: str, reason: str, **details: str) -> None:
        decisions.append(
            Decision(
                decision_id(customer_id, cause_id, len(decisions)),
                customer_id,
                "inbound",
                campaign_id,
                outcome,
                reason,
                details,
                now_ms,
            )
        )

    variables: dict[str, Any] | None = None
    shown: list[str] = []
    withheld: list[str] = []
    enters_control: dict[str, str] = {}  # campaign -> the first placement that withheld it
    runs = state.campaigns if state is not None else {}
    for placement in placements:
        items: list[ShownItem] = []
        control: list[str] = []
        for campaign in catalog.by_placement.get(placement.placement_id, ()):
            if len(items) >= placement.max_items:
                break
            if _refusal(campaign, state, now_ms) is not None:
                continue
            if in_control_group(customer_id, campaign):
                control.append(campaign.campaign_id)
                withheld.append(f"{placement.placement_id}:{campaign.campaign_id}")
                if campaign.campaign_id not in runs:
                    enters_control.setdefault(campaign.campaign_id, placement.placement_id)
                if placement.kind != "multiple":
                    break  # the default shows in the campaign's place
                continue
            if variables is None:
                attributes = state.attributes if state is not None else {}
                variables = {"customer": {"id": customer_id, **attributes}}
            variant = variant_for(customer_id, campaign)
            campaign_variables = {
                **variables,
                "offer": dict(state.campaign_attributes.get(campaign.campaign_id, {})) if state else {},
                "campaign": {"id": campaign.campaign_id, "name": campaign.name, "version": campaign.version},
            }
            try:
                content = campaign.inbound[placement.placement_id].render(campaign_variables)
            except TemplateRenderError as error:
                record(
                    campaign.campaign_id,
                    "suppressed",
                    "template_error",
                    placement=placement.placement_id,
                    error=error.message,
                )
                continue
            arm = variant.variant_id if variant is not None else "default"
            items.append(ShownItem(campaign.campaign_id, campaign.version, arm, content))
            shown.append(f"{placement.placement_id}:{campaign.campaign_id}:{arm}")
        answers[placement.placement_id] = PlacementAnswer(placement, tuple(items), tuple(control))
    if shown or withheld:
        # One record per page view: what each placement showed (placement:campaign:arm) and what
        # control-group membership withheld (placement:campaign).
        details = {"shown": ",".join(shown)} if shown else {}
        if withheld:
            details["control"] = ",".join(withheld)
        record(None, "shown" if shown else "control", "shown" if shown else "control_group", **details)
    return InboundDecision(answers, tuple(decisions), tuple((p, c) for c, p in enters_control.items()))
