"""A customer's way through a campaign: the run (where in the flow, waiting for what, until when),
its funnel stages, and the record of sends that frequency caps count.

These live in the customer state (``CustomerState.campaigns`` and ``.sends``) and are stored in its
document, so they are read and written with the profile, once per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.events import Channel
from engine.records import quick_init

FUNNEL_STAGES = ("entered", "reached", "engaged", "lead", "converted", "dismissed")
"""entered: the run started (control group included); reached: a message was sent or a banner
shown; engaged: opened or clicked; lead: clicked through or started the interactive part;
converted: the campaign's conversion happened within its attribution window; dismissed: closed
or unsubscribed."""

# Sends older than this are forgotten (no cap window may be longer).
SENDS_KEPT_MS = 90 * 86_400_000
SENDS_KEPT = 200


@quick_init
@dataclass(slots=True, frozen=True)
class SendRecord:
    at_ms: int
    channel: Channel
    campaign_id: str


@quick_init
@dataclass(slots=True, frozen=True)
class CampaignRun:
    """The latest run of one campaign for one customer (finished runs stay, for re-entry and funnels).

    ``step`` is the step the run is at (None once finished); ``due_ms`` when it resumes by time
    (the end of a wait, a ``wait_for`` timeout, or the end of quiet hours for a deferred send);
    ``waiting_for`` the interaction or event a ``wait_for`` step waits for.
    """

    run_id: str
    version: int
    started_ms: int
    step: str | None = None
    due_ms: int | None = None
    waiting_for: str | None = None
    variant: str | None = None
    control: bool = False
    stages: Mapping[str, int] = field(default_factory=dict)
    ended_ms: int | None = None
    trigger: Mapping[str, Any] = field(default_factory=dict)  # the trigger event's data
    steps_taken: int = 0
    # The stored document this run was read from: written back as it is while the run does not
    # change (a customer's state holds every campaign's latest run; an event changes one or none).
    stored: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def active(self) -> bool:
        return self.ended_ms is None

    @property
    def arm(self) -> str:
        """The funnel arm: "control", the variant id, or "default"."""
        return "control" if self.control else (self.variant or "default")

    def evolve(self, **changes: Any) -> CampaignRun:
        """This run with ``changes``: dataclasses.replace, several times cheaper on the hot path."""
        get = changes.get
        return CampaignRun(
            run_id=self.run_id,
            version=self.version,
            started_ms=self.started_ms,
            step=get("step", self.step),
            due_ms=get("due_ms", self.due_ms),
            waiting_for=get("waiting_for", self.waiting_for),
            variant=self.variant,
            control=self.control,
            stages=get("stages", self.stages),
            ended_ms=get("ended_ms", self.ended_ms),
            trigger=self.trigger,
            steps_taken=get("steps_taken", self.steps_taken),
        )

    def with_stage(self, stage: str, at_ms: int) -> CampaignRun:
        return self.evolve(stages={**self.stages, stage: at_ms})


def run_to_document(run: CampaignRun) -> Mapping[str, Any]:
    if run.stored is not None:
        return run.stored
    doc: dict[str, Any] = {"id": run.run_id, "v": run.version, "at": run.started_ms}
    if run.step is not None:
        doc["step"] = run.step
    if run.due_ms is not None:
        doc["due"] = run.due_ms
    if run.waiting_for is not None:
        doc["for"] = run.waiting_for
    if run.variant is not None:
        doc["var"] = run.variant
    if run.control:
        doc["ctl"] = True
    if run.stages:
        doc["stages"] = dict(run.stages)
    if run.ended_ms is not None:
        doc["end"] = run.ended_ms
    if run.trigger:
        doc["trg"] = dict(run.trigger)
    if run.steps_taken:
        doc["n"] = run.steps_taken
    return doc


def run_from_document(doc: Mapping[str, Any]) -> CampaignRun:
    return CampaignRun(
        run_id=doc["id"],
        version=doc["v"],
        started_ms=doc["at"],
        step=doc.get("step"),
        due_ms=doc.get("due"),
        waiting_for=doc.get("for"),
        variant=doc.get("var"),
        control=doc.get("ctl", False),
        stages=doc.get("stages") or {},
        ended_ms=doc.get("end"),
        trigger=doc.get("trg") or {},
        steps_taken=doc.get("n", 0),
        stored=doc,
    )


def sends_to_document(sends: tuple[SendRecord, ...]) -> list[list[Any]]:
    return [[s.at_ms, s.channel, s.campaign_id] for s in sends]


def sends_from_document(raw: list[list[Any]]) -> tuple[SendRecord, ...]:
    return tuple(SendRecord(at, channel, campaign) for at, channel, campaign in raw)


def kept_sends(sends: tuple[SendRecord, ...], now_ms: int) -> tuple[SendRecord, ...]:
    """The sends a cap may still count at ``now_ms`` (bounded in age and number)."""
    horizon = now_ms - SENDS_KEPT_MS
    kept = tuple(s for s in sends if s.at_ms > horizon)
    return kept[-SENDS_KEPT:]
