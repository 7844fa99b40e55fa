"""The campaigns a worker runs, with indexes from what happens to the campaigns it concerns.

Built once per change of definitions (not per event): ``by_trigger`` maps a trigger key
("event:card_transaction", "segment:vip", "referral") to the campaigns answering it, and
``by_outcome`` maps what a flow or a conversion waits for to the campaigns waiting for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.campaigns.model import Campaign, Cap, Trigger, WaitForStep


@dataclass(slots=True, frozen=True)
class CampaignCatalog:
    campaigns: Mapping[str, Campaign] = field(default_factory=dict)
    by_trigger: Mapping[str, tuple[tuple[Campaign, Trigger], ...]] = field(default_factory=dict)
    # "event:name" / "interaction:kind" -> campaigns with a conversion or a wait_for on it
    by_outcome: Mapping[str, frozenset[str]] = field(default_factory=dict)
    channel_caps: tuple[Cap, ...] = ()
    # placement id -> the campaigns with inbound content for it, ranked: by priority, ties by id
    by_placement: Mapping[str, tuple[Campaign, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, campaigns: Iterable[Campaign], channel_caps: Iterable[Cap] = ()) -> CampaignCatalog:
        by_id = {campaign.campaign_id: campaign for campaign in campaigns}
        by_trigger: dict[str, list[tuple[Campaign, Trigger]]] = {}
        by_outcome: dict[str, set[str]] = {}
        by_placement: dict[str, list[Campaign]] = {}
        for campaign_id in sorted(by_id):
            campaign = by_id[campaign_id]
            for placement_id in campaign.inbound:
                by_placement.setdefault(placement_id, []).append(campaign)
            for trigger in campaign.triggers:
                by_trigger.setdefault(trigger.key, []).append((campaign, trigger))
            if campaign.conversion is not None:
                by_outcome.setdefault(campaign.conversion.waits_for, set()).add(campaign_id)
            for step in campaign.steps.values():
                if isinstance(step, WaitForStep):
                    by_outcome.setdefault(step.waits_for, set()).add(campaign_id)
        return cls(
            campaigns=by_id,
            by_trigger={key: tuple(items) for key, items in by_trigger.items()},
            by_outcome={key: frozenset(ids) for key, ids in by_outcome.items()},
            channel_caps=tuple(channel_caps),
            # Ranked once here rather than per decision (a page asks for several placements).
            by_placement={
                key: tuple(sorted(items, key=lambda c: (-c.priority, c.campaign_id)))
                for key, items in by_placement.items()
            },
        )

    def with_channel_caps(self, caps: Iterable[Cap]) -> CampaignCatalog:
        return CampaignCatalog(
            self.campaigns, self.by_trigger, self.by_outcome, tuple(caps), self.by_placement
        )


EMPTY_CATALOG = CampaignCatalog()
