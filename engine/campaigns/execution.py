"""One customer, one event: which campaigns start, how running flows advance, what is sent.

``react`` runs after the fold and the segments, in the same per-customer step. It is pure and
deterministic: the moment is the event's ``received_at_ms`` (a Tick's is its due time), run and
delivery ids derive from the customer, campaign, trigger event and step, so a replay of the same
events gives the same state, the same deliveries and the same audit records.

Order within one event: (1) funnel stages and conversions the event means, (2) runs waiting for
this event move on, (3) runs whose time has come resume, (4) triggers start new runs (with the
orchestration between campaigns answering the same trigger), each new run executing its flow
until it waits or ends.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.campaigns.audit import Decision, decision_id
from engine.campaigns.catalog import CampaignCatalog
from engine.campaigns.eligibility import cap_reached, consent_refused, in_control_group, variant_for
from engine.campaigns.links import MessageLinks, NoLinks, with_opt_out
from engine.campaigns.model import (
    BranchStep,
    Campaign,
    ExitStep,
    SendStep,
    Step,
    Trigger,
    WaitForStep,
    WaitStep,
)
from engine.campaigns.runs import CampaignRun, SendRecord, kept_sends
from engine.campaigns.schedule import next_local_time, quiet_until
from engine.campaigns.templates import TemplateRenderError
from engine.deliveries import Delivery, delivery_id
from engine.events import BusinessEvent, Envelope, Interaction, ReferralClick, Tick
from engine.feedback import MessageContext
from engine.records import quick_init
from engine.segments.calendar import zone
from engine.segments.compiler import evaluate
from engine.segments.context import EvaluationContext, customer_timezone
from engine.segments.membership import SegmentChange
from engine.sms import segments_of
from engine.state import CustomerState, evolve

# An SMS longer than this many parts is not sent (a template gone wrong, or a link-heavy text).
MAX_SMS_SEGMENTS = 6
# Transitions one run may take within one event before it is stopped (a branch loop).
MAX_TRANSITIONS = 50
_NO_LINKS = NoLinks()

# Interaction kinds and the funnel stages they mean for the campaign they name.
_STAGES_OF_INTERACTION: Mapping[str, tuple[str, ...]] = {
    "impression": ("reached",),
    "open": ("engaged",),
    "click": ("engaged", "lead"),
    "lead": ("lead",),
    "conversion": ("converted",),
    "dismiss": ("dismissed",),
    "unsubscribe": ("dismissed",),
    "complaint": ("dismissed",),
}


@quick_init
@dataclass(slots=True, frozen=True)
class FunnelMove:
    """A customer's run of a campaign reached a funnel stage (counted once per run and stage)."""

    campaign_id: str
    version: int
    arm: str  # "control", a variant id, or "default"
    stage: str


@quick_init
@dataclass(slots=True, frozen=True)
class Reaction:
    state: CustomerState
    deliveries: tuple[Delivery, ...] = ()
    decisions: tuple[Decision, ...] = ()
    funnel: tuple[FunnelMove, ...] = ()


def _run_id(campaign_id: str, version: int, cause_id: str) -> str:
    raw = f"{campaign_id}\0{version}\0{cause_id}"
    return "run_" + hashlib.blake2b(raw.encode("utf-8"), digest_size=8).hexdigest()


def _iso(ms: int, timezone: str) -> str:
    """The local minute of ``ms`` (ISO 8601 with its offset), as the audit shows a due time."""
    return _iso_minute(ms // 60_000, timezone)


@functools.lru_cache(maxsize=4096)
def _iso_minute(minute: int, timezone: str) -> str:
    # Waits started by one batch share few due minutes: formatting one costs a zone lookup.
    return dt.datetime.fromtimestamp(minute * 60, zone(timezone)).isoformat(timespec="minutes")


class _Turn:
    """The working copy of one customer's campaign state while one event is handled."""

    def __init__(
        self,
        state: CustomerState,
        envelope: Envelope,
        catalog: CampaignCatalog,
        links: MessageLinks,
        default_timezone: str,
    ) -> None:
        self.state = state
        self.envelope = envelope
        self.catalog = catalog
        self.links = links
        self.now = envelope.received_at_ms
        self.customer_id = state.customer_id
        self.timezone = customer_timezone(state.attributes, default_timezone)
        self.runs: dict[str, CampaignRun] = dict(state.campaigns)
        self.sends: list[SendRecord] = list(state.sends)
        self.deliveries: list[Delivery] = []
        self.decisions: list[Decision] = []
        self.funnel: list[FunnelMove] = []
        self.changed = False

    # --- records ---------------------------------------------------------------------------

    def decide(
        self, kind: str, campaign_id: str | None, outcome: str, reason: str, **details: object
    ) -> None:
        sequence = len(self.decisions)
        self.decisions.append(
            Decision(
                decision_id=decision_id(self.customer_id, self.envelope.event_id, sequence),
                customer_id=self.customer_id,
                kind=kind,
                campaign_id=campaign_id,
                outcome=outcome,
                reason=reason,
                details={
                    name: value if type(value) is str else str(value)
                    for name, value in details.items()
                    if value is not None
                },
                at_ms=self.now,
            )
        )

    def set_run(self, campaign_id: str, run: CampaignRun) -> None:
        self.runs[campaign_id] = run
        self.changed = True

    def stage(self, campaign_id: str, stage: str) -> None:
        run = self.runs.get(campaign_id)
        if run is None or stage in run.stages:
            return
        self.set_run(campaign_id, run.with_stage(stage, self.now))
        self.funnel.append(FunnelMove(campaign_id, run.version, run.arm, stage))
        if stage not in ("entered", "reached"):  # the start and the send have their own records
            self.decide("funnel", campaign_id, "stage", "stage", stage=stage, arm=run.arm)

    # --- the event's meaning for funnels and waiting flows ----------------------------------

    def outcomes(self) -> list[str]:
        payload = self.envelope.payload
        if isinstance(payload, BusinessEvent):
            return [f"event:{payload.name}"]
        if isinstance(payload, Interaction):
            return [f"interaction:{payload.kind}"]
        return []

    def record_funnel(self) -> None:
        payload = self.envelope.payload
        if isinstance(payload, Interaction) and payload.campaign_id:
            campaign_id = payload.campaign_id
            if campaign_id not in self.runs:
                self.start_inbound(campaign_id, payload.kind)
            run = self.runs.get(campaign_id)
            if run is not None:
                for stage in _STAGES_OF_INTERACTION.get(payload.kind, ()):
                    if not run.control:  # a control customer was shown nothing of the campaign
                        self.stage(campaign_id, stage)
        for outcome in self.outcomes():
            for campaign_id in sorted(self.catalog.by_outcome.get(outcome, ())):
                campaign = self.catalog.campaigns[campaign_id]
                run = self.runs.get(campaign_id)
                conversion = campaign.conversion
                if run is None or conversion is None or conversion.waits_for != outcome:
                    continue
                if not self._own_interaction(campaign_id):
                    continue
                # Attribution: from the first message (or, in the control group, from entering).
                since = run.started_ms if run.control else run.stages.get("reached")
                if since is not None and self.now - since <= conversion.window_ms:
                    self.stage(campaign_id, "converted")

    def start_inbound(self, campaign_id: str, kind: str) -> None:
        """A banner-only campaign (inbound content, no trigger) is entered by its first impression.

        Control customers enter it too (the decision API records their withheld impression), so
        the funnel has a control arm to measure uplift against.
        """
        campaign = self.catalog.campaigns.get(campaign_id)
        if (
            campaign is None
            or not campaign.inbound
            or campaign.triggers
            or kind not in ("impression", "click")
        ):
            return
        control = in_control_group(self.customer_id, campaign)
        variant = None if control else variant_for(self.customer_id, campaign)
        run = CampaignRun(
            run_id=_run_id(campaign_id, campaign.version, "inbound:" + self.envelope.event_id),
            version=campaign.version,
            started_ms=self.now,
            variant=variant.variant_id if variant is not None else None,
            control=control,
            ended_ms=self.now,  # no flow to run
        )
        self.set_run(campaign_id, run)
        self.stage(campaign_id, "entered")

    def _own_interaction(self, campaign_id: str) -> bool:
        """An interaction counts for a campaign when it names it (or names none)."""
        payload = self.envelope.payload
        return not isinstance(payload, Interaction) or payload.campaign_id in (None, campaign_id)

    def wake_waiting(self) -> None:
        for outcome in self.outcomes():
            for campaign_id in sorted(self.catalog.by_outcome.get(outcome, ())):
                run = self.runs.get(campaign_id)
                if run is None or not run.active or run.waiting_for != outcome:
                    continue
                if not self._own_interaction(campaign_id):
                    continue
                campaign = self._campaign_of(campaign_id, run)
                if campaign is None:
                    continue
                step = campaign.steps.get(run.step or "")
                if not isinstance(step, WaitForStep):
                    continue
                self.decide(
                    "flow", campaign_id, "advanced", "event_arrived", step=step.step_id, to=step.on_event
                )
                run = run.evolve(waiting_for=None, due_ms=None)
                self.set_run(campaign_id, run)
                self.go(campaign, run, step.on_event)

    def resume_due(self) -> None:
        for campaign_id in sorted(self.runs):
            run = self.runs[campaign_id]
            if not run.active or run.due_ms is None or run.due_ms > self.now:
                continue
            campaign = self._campaign_of(campaign_id, run)
            if campaign is None:
                continue
            step = campaign.steps.get(run.step or "")
            run = run.evolve(due_ms=None, waiting_for=None)
            self.set_run(campaign_id, run)
            if isinstance(step, WaitStep):
                self.go(campaign, run, step.next_step)
            elif isinstance(step, WaitForStep):
                self.decide(
                    "flow", campaign_id, "advanced", "timed_out", step=step.step_id, to=step.on_timeout
                )
                self.go(campaign, run, step.on_timeout)
            elif isinstance(step, SendStep):
                self.go(campaign, run, step.step_id)  # a send deferred by quiet hours
            else:
                self.end(campaign_id, run, "flow_finished")

    def _campaign_of(self, campaign_id: str, run: CampaignRun) -> Campaign | None:
        """The campaign a run follows. A run keeps going on a newer version when its step still exists."""
        campaign = self.catalog.campaigns.get(campaign_id)
        if campaign is None:
            self.end(campaign_id, run, "campaign_ended")
            return None
        return campaign

    # --- triggers and orchestration ------------------------------------------------------------

    def trigger_keys(self, segment_changes: Sequence[SegmentChange]) -> list[tuple[str, str | None]]:
        """(trigger key, campaign the trigger is restricted to) for what this event may start."""
        payload = self.envelope.payload
        keys: list[tuple[str, str | None]] = []
        if isinstance(payload, BusinessEvent):
            keys.append((f"event:{payload.name}", None))
        elif isinstance(payload, ReferralClick):
            keys.append(("referral", payload.campaign_id))
        for change in segment_changes:
            if change.kind == "ENTERED":
                keys.append((f"segment:{change.segment_id}", None))
        return keys

    def start_triggered(self, segment_changes: Sequence[SegmentChange]) -> None:
        keys = self.trigger_keys(segment_changes)
        if not keys:
            return
        payload = self.envelope.payload
        event_data: Mapping[str, object] = payload.data if isinstance(payload, BusinessEvent) else {}
        context: EvaluationContext | None = None
        for key, only_campaign in keys:
            candidates = self.catalog.by_trigger.get(key, ())
            exclusive: list[tuple[Campaign, Trigger]] = []
            everyone: list[tuple[Campaign, Trigger]] = []
            for campaign, trigger in candidates:
                if only_campaign is not None and campaign.campaign_id != only_campaign:
                    continue
                if trigger.condition is not None:
                    if context is None:
                        context = EvaluationContext(
                            attributes=self.state.attributes,
                            now_ms=self.now,
                            campaign_attributes=self.state.campaign_attributes,
                            behaviour=self.state.behaviour,
                            segments=frozenset(self.state.segments),
                            timezone=self.timezone,
                            event_data=event_data,
                        )
                    if not evaluate(trigger.condition, context):
                        continue
                refusal = self.ineligible(campaign)
                if refusal is not None:
                    self.decide("trigger", campaign.campaign_id, "not_started", refusal, trigger=key)
                    continue
                (exclusive if trigger.exclusive else everyone).append((campaign, trigger))
            if exclusive:
                exclusive.sort(key=lambda item: (-item[0].priority, item[0].campaign_id))
                winner = exclusive[0][0]
                for loser, _ in exclusive[1:]:
                    self.decide(
                        "trigger",
                        loser.campaign_id,
                        "not_started",
                        "lost_priority",
                        trigger=key,
                        winner=winner.campaign_id,
                    )
                self.start(winner, key)
            for campaign, _ in everyone:
                if self.ineligible(campaign) is None:  # an exclusive start may have started it
                    self.start(campaign, key)

    def ineligible(self, campaign: Campaign) -> str | None:
        if not campaign.is_live(self.now):
            return "not_live"
        if campaign.segments and not any(s in self.state.segments for s in campaign.segments):
            return "not_targeted"
        run = self.runs.get(campaign.campaign_id)
        if run is not None:
            if run.active:
                return "already_running"
            if not campaign.reentry.allowed:
                return "no_reentry"
            if self.now - run.started_ms < campaign.reentry.min_gap_ms:
                return "reentry_too_soon"
        return None

    def start(self, campaign: Campaign, trigger_key: str) -> None:
        payload = self.envelope.payload
        trigger_data: dict[str, Any] = {"name": trigger_key.partition(":")[2] or trigger_key}
        if isinstance(payload, BusinessEvent):
            trigger_data.update({k: v for k, v in payload.data.items()})
        elif isinstance(payload, ReferralClick):
            trigger_data.update({"source": payload.source, "code": payload.code})
        run_id = _run_id(campaign.campaign_id, campaign.version, self.envelope.event_id)
        control = in_control_group(self.customer_id, campaign)
        variant = None if control else variant_for(self.customer_id, campaign)
        run = CampaignRun(
            run_id=run_id,
            version=campaign.version,
            started_ms=self.now,
            variant=variant.variant_id if variant is not None else None,
            control=control,
            trigger=trigger_data,
        )
        if control:
            # Tracked (conversions count against the start) but never messaged.
            self.set_run(campaign.campaign_id, run.evolve(ended_ms=self.now))
            self.decide(
                "trigger", campaign.campaign_id, "control", "control_group", trigger=trigger_key, run=run_id
            )
            self.stage(campaign.campaign_id, "entered")
            return
        self.set_run(campaign.campaign_id, run)
        self.decide(
            "trigger",
            campaign.campaign_id,
            "started",
            "started",
            trigger=trigger_key,
            run=run_id,
            variant=run.variant,
        )
        self.stage(campaign.campaign_id, "entered")
        run = self.runs[campaign.campaign_id]
        self.go(campaign, run, campaign.first_step)

    # --- executing the flow ---------------------------------------------------------------------

    def end(self, campaign_id: str, run: CampaignRun, reason: str) -> None:
        self.set_run(campaign_id, run.evolve(step=None, due_ms=None, waiting_for=None, ended_ms=self.now))
        self.decide("flow", campaign_id, "finished", reason, run=run.run_id)

    def go(self, campaign: Campaign, run: CampaignRun, step_id: str | None) -> None:
        """Run the flow from ``step_id`` until it waits or ends."""
        campaign_id = campaign.campaign_id
        for _ in range(MAX_TRANSITIONS):
            if step_id is None:
                self.end(campaign_id, run, "flow_finished")
                return
            step: Step | None = campaign.steps.get(step_id)
            if step is None:
                self.end(campaign_id, run, "campaign_ended")
                return
            run = run.evolve(step=step_id, steps_taken=run.steps_taken + 1)
            self.set_run(campaign_id, run)
            if isinstance(step, ExitStep):
                self.end(campaign_id, run, "exit_step")
                return
            if isinstance(step, SendStep):
                next_step, run = self.send(campaign, run, step)
                if next_step is _WAITING:
                    return
                step_id = next_step
                continue
            if isinstance(step, WaitStep):
                due = self.now + step.duration_ms if step.duration_ms is not None else None
                if step.until_minute is not None:
                    due = next_local_time(self.now, step.until_minute, self.timezone)
                assert due is not None
                self.set_run(campaign_id, run.evolve(due_ms=due))
                self.decide(
                    "flow", campaign_id, "waiting", "wait", step=step_id, until=_iso(due, self.timezone)
                )
                return
            if isinstance(step, WaitForStep):
                due = self.now + step.timeout_ms
                self.set_run(campaign_id, run.evolve(due_ms=due, waiting_for=step.waits_for))
                self.decide(
                    "flow",
                    campaign_id,
                    "waiting",
                    "wait_for",
                    step=step_id,
                    until=_iso(due, self.timezone),
                    **{"for": step.waits_for},
                )
                return
            assert isinstance(step, BranchStep)
            context = EvaluationContext(
                attributes=self.state.attributes,
                now_ms=self.now,
                campaign_attributes=self.state.campaign_attributes,
                behaviour=self.state.behaviour,
                segments=frozenset(self.state.segments),
                timezone=self.timezone,
                event_data=run.trigger,
            )
            taken = evaluate(step.condition, context)
            step_id = step.then_step if taken else step.else_step
            self.decide(
                "flow",
                campaign_id,
                "branched",
                "branch",
                step=step.step_id,
                to=step_id or "end",
                result=taken,
            )
        self.end(campaign_id, run, "step_limit")

    def send(self, campaign: Campaign, run: CampaignRun, step: SendStep) -> tuple[Any, CampaignRun]:
        """Send (or suppress, or defer) one message; the next step, or ``_WAITING`` when deferred."""
        campaign_id = campaign.campaign_id
        channel = step.channel
        if not campaign.is_live(self.now):
            self.end(campaign_id, run, "campaign_ended")
            return _WAITING, run
        refused = consent_refused(self.state.consent, channel, campaign)
        if refused is not None:
            self.decide("send", campaign_id, "suppressed", "no_consent", step=step.step_id, scope=refused)
            return step.next_step, run
        addresses = self.addresses(channel)
        if not addresses:
            self.decide(
                "send", campaign_id, "suppressed", "missing_address", step=step.step_id, channel=channel
            )
            return step.next_step, run
        caps = [(cap, campaign_id) for cap in campaign.caps] + [
            (cap, None) for cap in self.catalog.channel_caps
        ]
        cap = cap_reached(self.sends, caps, channel, self.now)
        if cap is not None:
            self.decide(
                "send", campaign_id, "suppressed", "frequency_cap", step=step.step_id, cap=cap.describe()
            )
            return step.next_step, run
        if campaign.quiet_hours is not None:
            until = quiet_until(self.now, campaign.quiet_hours, self.timezone)
            if until is not None:
                self.set_run(campaign_id, run.evolve(due_ms=until))
                self.decide(
                    "send",
                    campaign_id,
                    "deferred",
                    "quiet_hours",
                    step=step.step_id,
                    until=_iso(until, self.timezone),
                )
                return _WAITING, run
        content = campaign.content_for(step.content_id, run.variant)
        sent_any = False
        for index, (platform, address) in enumerate(addresses):
            step_key = step.step_id if index == 0 else f"{step.step_id}#{index}"
            identifier = delivery_id(self.customer_id, campaign_id, run.version, run.run_id, step_key)
            category = campaign.categories[0] if campaign.categories else None
            message = MessageContext(identifier, self.customer_id, campaign_id, channel, category)
            unsubscribe = self.links.unsubscribe_url(message) if channel == "email" else None
            variables = {
                "customer": {"id": self.customer_id, **self.state.attributes},
                "event": dict(run.trigger),
                "offer": dict(self.state.campaign_attributes.get(campaign_id, {})),
                "campaign": {"id": campaign_id, "name": campaign.name, "version": run.version},
                "unsubscribe_url": unsubscribe or "",
            }
            try:
                parts = content.render(variables)
            except TemplateRenderError as error:
                self.decide(
                    "send",
                    campaign_id,
                    "suppressed",
                    "template_error",
                    step=step.step_id,
                    error=error.message,
                )
                return step.next_step, run
            expires_at_ms = self.now + step.expires_after_ms
            # Tracked before the opt-out is added: the unsubscribe link is Refract's own (never
            # tracked), and a body whose only link it would be is then not parsed at all.
            parts = self.links.instrument(parts, message, expires_at_ms)
            parts = with_opt_out(channel, parts, unsubscribe)
            if channel == "sms":
                cost = segments_of(parts.get("text", ""))
                if cost.segments > MAX_SMS_SEGMENTS or cost.segments == 0:
                    self.decide(
                        "send",
                        campaign_id,
                        "suppressed",
                        "sms_too_long",
                        step=step.step_id,
                        segments=cost.segments,
                        encoding=cost.encoding,
                    )
                    return step.next_step, run
            if platform is not None:
                parts["platform"] = platform
            self.deliveries.append(
                Delivery(
                    delivery_id=identifier,
                    customer_id=self.customer_id,
                    campaign_id=campaign_id,
                    campaign_version=run.version,
                    run_id=run.run_id,
                    step_id=step.step_id,
                    channel=channel,
                    address=address,
                    content=parts,
                    created_at_ms=self.now,
                    expires_at_ms=expires_at_ms,
                )
            )
            self.decide(
                "send",
                campaign_id,
                "sent",
                "sent",
                step=step.step_id,
                channel=channel,
                address=_masked(address),
                delivery=identifier,
            )
            sent_any = True
        if sent_any:
            self.sends.append(SendRecord(self.now, channel, campaign_id))
            run = self.runs[campaign_id]
            self.stage(campaign_id, "reached")
            run = self.runs[campaign_id]
        return step.next_step, run

    def addresses(self, channel: str) -> list[tuple[str | None, str]]:
        contacts = self.state.contacts
        if channel == "email":
            return [(None, contacts.email)] if contacts.email else []
        if channel == "sms":
            return [(None, contacts.phone)] if contacts.phone else []
        return [
            (platform, token)
            for platform in sorted(contacts.push_tokens)
            for token in contacts.push_tokens[platform]
        ]

    def result(self) -> Reaction:
        if not self.changed and not self.decisions:
            return Reaction(self.state)
        state = self.state
        if self.changed:
            state = evolve(state, {"campaigns": self.runs, "sends": kept_sends(tuple(self.sends), self.now)})
        return Reaction(state, tuple(self.deliveries), tuple(self.decisions), tuple(self.funnel))


_WAITING = object()


def _masked(address: str) -> str:
    """Enough of an address to recognise it in an audit line, not enough to harvest it."""
    if "@" in address:
        name, _, domain = address.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"***{address[-4:]}" if len(address) > 4 else "***"


def react(
    before: CustomerState | None,
    state: CustomerState,
    envelope: Envelope,
    segment_changes: Sequence[SegmentChange],
    catalog: CampaignCatalog,
    *,
    links: MessageLinks = _NO_LINKS,
    default_timezone: str = "UTC",
) -> Reaction:
    """What ``envelope`` (already folded into ``state``) means for the customer's campaigns."""
    if before is not None and state.events_applied == before.events_applied:
        return Reaction(state)  # a duplicate event id: it triggers nothing a second time
    if not catalog.campaigns and not state.campaigns:
        return Reaction(state)
    turn = _Turn(state, envelope, catalog, links, default_timezone)
    turn.record_funnel()
    turn.wake_waiting()
    if isinstance(envelope.payload, Tick) or state.campaigns_due_ms is not None:
        turn.resume_due()
    turn.start_triggered(segment_changes)
    return turn.result()
