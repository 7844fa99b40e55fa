"""Who may get what: consent, frequency caps, control groups and A/B variants (stable per customer)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from engine.campaigns.model import Campaign, Cap, Variant
from engine.campaigns.runs import SendRecord
from engine.events import Channel

_BUCKETS = 10_000


def _bucket(*parts: str) -> int:
    """A stable number in [0, 10000) for the parts (the same on every worker and every replay)."""
    digest = hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS


def in_control_group(customer_id: str, campaign: Campaign) -> bool:
    """Stable: a customer is in or out of a campaign's control group whatever the version."""
    if campaign.control_percent <= 0:
        return False
    return _bucket(customer_id, campaign.campaign_id, "control") < campaign.control_percent * (_BUCKETS / 100)


def variant_for(customer_id: str, campaign: Campaign) -> Variant | None:
    """The A/B variant a customer sees, by weight, stable across versions with the same variants."""
    if not campaign.variants:
        return None
    variants = [v for v in campaign.variants if v.weight > 0]
    if not variants:
        return None
    total = sum(v.weight for v in variants)
    point = _bucket(customer_id, campaign.campaign_id, "variant") * total // _BUCKETS
    for variant in variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return variants[-1]


def consent_refused(consent: Mapping[str, bool], channel: Channel, campaign: Campaign) -> str | None:
    """The consent scope that refuses this send ("channel:email", ...), or None when allowed.

    Refract records opt-outs (and opt-ins back): a scope not recorded allows the message.
    """
    categories = [f"category:{category}" for category in campaign.categories]
    scopes = ("all", f"channel:{channel}", f"campaign:{campaign.campaign_id}", *categories)
    for scope in scopes:
        if consent.get(scope) is False:
            return scope
    return None


def cap_reached(
    sends: Iterable[SendRecord], caps: Iterable[tuple[Cap, str | None]], channel: Channel, now_ms: int
) -> Cap | None:
    """The first cap another send of ``channel`` would break; each cap with the campaign it counts
    (None: every campaign, for global channel caps)."""
    sends = tuple(sends)
    for cap, campaign_id in caps:
        if cap.channel is not None and cap.channel != channel:
            continue
        since = now_ms - cap.window_ms
        counted = sum(
            1
            for send in sends
            if send.at_ms > since
            and (campaign_id is None or send.campaign_id == campaign_id)
            and (cap.channel is None or send.channel == cap.channel)
        )
        if counted >= cap.max_sends:
            return cap
    return None
