"""Audit records: every decision about a customer and a campaign, and why, in plain language.

The processor and the decisions API write them to ``refract.audit``: one ``Decision`` record per
event (or decision request) and customer (``audit_record``), holding every decision it caused, in
order (a run start is typically three: started, the send, the wait). ``refract explain`` reads
them back (``decisions_of``) and prints ``describe(decision)`` for each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.records import quick_init


@quick_init
@dataclass(slots=True, frozen=True)
class Decision:
    """``kind``: trigger, send, flow, funnel or inbound; ``outcome``: what happened; ``reason``: why."""

    decision_id: str
    customer_id: str
    kind: str
    campaign_id: str | None
    outcome: str
    reason: str
    details: Mapping[str, str] = field(default_factory=dict)
    at_ms: int = 0

    def to_record(self) -> dict[str, Any]:
        """The Avro dict of ``schemas/Decision.avsc`` (a record holding this one decision)."""
        return {**self.to_step(), "customer_id": self.customer_id, "occurred_at": self.at_ms, "then": []}

    def to_step(self) -> dict[str, Any]:
        """The Avro dict of ``schemas/DecisionStep.avsc``: this decision under another's ``then``."""
        return {
            "decision_id": self.decision_id,
            "kind": self.kind,
            "campaign_id": self.campaign_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "details": dict(self.details),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Decision:
        return cls(
            decision_id=record["decision_id"],
            customer_id=record["customer_id"],
            kind=record["kind"],
            campaign_id=record.get("campaign_id"),
            outcome=record["outcome"],
            reason=record["reason"],
            details=dict(record.get("details") or {}),
            at_ms=int(record["occurred_at"]),
        )


def audit_record(decisions: Sequence[Decision]) -> dict[str, Any]:
    """The one ``refract.audit`` record of the decisions one event caused for one customer.

    One record instead of one per decision: a run start decides three or four things, and each
    record on the log costs an encoding and a produce. ``decisions_of`` gives them back.
    """
    if not decisions:
        raise ValueError("an audit record holds at least one decision")
    first = decisions[0]
    record = first.to_record()
    for decision in decisions[1:]:
        if decision.customer_id != first.customer_id or decision.at_ms != first.at_ms:
            raise ValueError("one audit record holds the decisions of one customer at one moment")
        record["then"].append(decision.to_step())
    return record


def decisions_of(record: Mapping[str, Any]) -> list[Decision]:
    """The decisions of one ``refract.audit`` record, in order (a version 1 record holds one)."""
    first = Decision.from_record(record)
    return [first] + [
        Decision(
            decision_id=step["decision_id"],
            customer_id=first.customer_id,
            kind=step["kind"],
            campaign_id=step.get("campaign_id"),
            outcome=step["outcome"],
            reason=step["reason"],
            details=dict(step.get("details") or {}),
            at_ms=first.at_ms,
        )
        for step in record.get("then") or ()
    ]


def decision_id(customer_id: str, cause_id: str, sequence: int) -> str:
    """Deterministic: the n-th decision caused by one event is the same id on a replay."""
    raw = f"{customer_id}\0{cause_id}\0{sequence}"
    return "dec_" + hashlib.blake2b(raw.encode("utf-8"), digest_size=12).hexdigest()


_REASONS = {
    "started": "entered the campaign",
    "control_group": "is in the control group: tracked, never messaged (shown the default)",
    "not_live": "the campaign is paused, or outside its start and end dates",
    "not_targeted": "is not in any of the campaign's target segments",
    "already_running": "is already in a run of this campaign, and re-entry is not allowed",
    "no_reentry": "went through this campaign before, and re-entry is not allowed",
    "reentry_too_soon": "entered this campaign too recently to enter again",
    "lost_priority": "another campaign with a higher priority answered the same trigger",
    "condition_false": "the trigger's condition was false for this event",
    "sent": "a message went to the outbox",
    "no_consent": "the customer opted out of this channel, campaign or category",
    "missing_address": "the customer has no address for this channel",
    "frequency_cap": "a frequency cap was reached",
    "quiet_hours": "it was quiet hours in the customer's time zone: the send waits until they end",
    "template_error": "the message's template failed for this customer, so nothing was sent",
    "sms_too_long": "the SMS came out longer than 6 parts (or empty), so it was not sent",
    "campaign_ended": "the campaign ended or was paused while the customer was in it",
    "flow_finished": "the flow reached its end",
    "exit_step": "the flow reached an exit step",
    "wait": "waits",
    "wait_for": "waits for",
    "event_arrived": "what the flow waited for happened",
    "timed_out": "what the flow waited for did not happen in time",
    "branch": "took a branch",
    "step_limit": "the flow took too many steps at once (a loop?) and was stopped",
    "stage": "moved along the funnel",
    "shown": "was shown banners (placement:campaign:variant)",
    "no_consent_inbound": "opted out of this campaign or its category",
    "dismissed": "dismissed this campaign recently",
    "impression_cap": "saw this campaign's banner as often as its impression cap allows",
}


def describe(decision: Decision, timezone: str = "UTC") -> str:
    """One line a person understands: when, which campaign, what happened and why."""
    when = dt.datetime.fromtimestamp(decision.at_ms / 1000, dt.UTC)
    try:
        from zoneinfo import ZoneInfo

        when = when.astimezone(ZoneInfo(timezone))
    except (ValueError, KeyError):
        pass
    campaign = f"[{decision.campaign_id}] " if decision.campaign_id else ""
    text = _REASONS.get(decision.reason, decision.reason.replace("_", " "))
    details = decision.details
    extra = ""
    if decision.reason in ("wait", "wait_for", "quiet_hours") and "until" in details:
        extra = f" (until {details['until']})"
    if decision.reason == "wait_for" and "for" in details:
        kind, _, name = details["for"].partition(":")
        extra = (f" a {name}" if kind == "interaction" else f" the event {name}") + extra
    if decision.reason == "sent":
        channel, address, step = (details.get(k, "?") for k in ("channel", "address", "step"))
        extra = f" ({channel} to {address}, step {step})"
    elif decision.reason == "lost_priority" and "winner" in details:
        extra = f" ({details['winner']})"
    elif decision.kind == "inbound":
        parts = [f"shown {details['shown']}"] if details.get("shown") else []
        if details.get("control"):
            parts.append(f"withheld for the control group {details['control']}")
        extra = f" ({'; '.join(parts)})" if parts else ""
    elif decision.reason == "stage" and "stage" in details:
        extra = f": {details['stage']}"
    elif decision.reason == "template_error" and "error" in details:
        extra = f" ({details['error']})"
    elif decision.reason == "frequency_cap" and "cap" in details:
        extra = f" ({details['cap']})"
    elif decision.reason == "branch" and "to" in details:
        extra = f" to {details['to']}"
    return f"{when:%Y-%m-%d %H:%M:%S %Z} {campaign}{decision.outcome}: {text}{extra}"
