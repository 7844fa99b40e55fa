"""A campaign as the engine runs it: typed, validated, with its rules and templates compiled.

``engine.campaigns.definition`` reads the saved body (YAML or JSON) into these records; nothing
here reads text. Times are epoch milliseconds, durations milliseconds, zones IANA names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from engine.campaigns.landing import LandingPage
from engine.campaigns.templates import CompiledContent
from engine.events import Channel
from engine.segments import Rule

CampaignStatus: TypeAlias = Literal["active", "paused"]


@dataclass(slots=True, frozen=True)
class Trigger:
    """What starts a run: a business event (with a condition), a segment entry, or a referral click.

    ``key`` groups triggers that answer the same thing ("event:loan_preapproved",
    "segment:vip", "referral"); among exclusive triggers of one key the orchestration picks one
    campaign per event.
    """

    kind: Literal["event", "segment", "referral"]
    name: str  # event name, segment id, or "" for referrals
    condition: Rule | None = None
    exclusive: bool = True

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(slots=True, frozen=True)
class SendStep:
    step_id: str
    content_id: str
    channel: Channel
    expires_after_ms: int
    next_step: str | None


@dataclass(slots=True, frozen=True)
class WaitStep:
    """Wait ``duration_ms``, or until the next ``until`` (minutes after local midnight)."""

    step_id: str
    duration_ms: int | None
    until_minute: int | None
    next_step: str | None


@dataclass(slots=True, frozen=True)
class WaitForStep:
    """Wait for an interaction or a business event (``waits_for`` key), up to ``timeout_ms``."""

    step_id: str
    waits_for: str  # "interaction:click" or "event:loan_signed"
    timeout_ms: int
    on_event: str | None
    on_timeout: str | None


@dataclass(slots=True, frozen=True)
class BranchStep:
    step_id: str
    condition: Rule
    then_step: str | None
    else_step: str | None


@dataclass(slots=True, frozen=True)
class ExitStep:
    step_id: str


Step: TypeAlias = SendStep | WaitStep | WaitForStep | BranchStep | ExitStep

END = None
"""A step's next step when the run ends after it."""


@dataclass(slots=True, frozen=True)
class Cap:
    """At most ``max_sends`` messages (of ``channel``, or any when None) within ``window_ms``."""

    max_sends: int
    window_ms: int
    channel: Channel | None = None

    def describe(self) -> str:
        what = f"{self.channel} messages" if self.channel else "messages"
        return f"at most {self.max_sends} {what} in {self.window_ms // 3_600_000}h"


@dataclass(slots=True, frozen=True)
class QuietHours:
    """Local minutes after midnight; ``start > end`` spans midnight (e.g. 21:00 to 08:00)."""

    start_minute: int
    end_minute: int


@dataclass(slots=True, frozen=True)
class Variant:
    variant_id: str
    weight: int
    content: Mapping[str, CompiledContent] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Conversion:
    """What counts as converting: a business event or an interaction, within the window."""

    waits_for: str  # "event:loan_signed" or "interaction:conversion"
    window_ms: int


@dataclass(slots=True, frozen=True)
class Reentry:
    allowed: bool = False
    min_gap_ms: int = 0


@dataclass(slots=True, frozen=True)
class Campaign:
    campaign_id: str
    version: int
    name: str
    status: CampaignStatus
    categories: tuple[str, ...]
    groups: tuple[str, ...]
    timezone: str
    starts_at_ms: int | None
    ends_at_ms: int | None
    segments: tuple[str, ...]  # targets; empty: everyone
    priority: int
    triggers: tuple[Trigger, ...]
    steps: Mapping[str, Step]
    first_step: str | None
    content: Mapping[str, CompiledContent]
    inbound: Mapping[str, CompiledContent]  # placement id -> content
    caps: tuple[Cap, ...]
    quiet_hours: QuietHours | None
    control_percent: float
    variants: tuple[Variant, ...]
    reentry: Reentry
    conversion: Conversion | None
    body: Mapping[str, object]  # the saved body, as the API shows it
    updated_at_ms: int = 0
    # At most this many impressions of the campaign's inbound content per customer in a window.
    impression_caps: tuple[Cap, ...] = ()
    landing: LandingPage | None = None  # the referral landing page (engine.campaigns.landing)

    def is_live(self, now_ms: int) -> bool:
        """Active and within its window at ``now_ms``."""
        if self.status != "active":
            return False
        if self.starts_at_ms is not None and now_ms < self.starts_at_ms:
            return False
        return self.ends_at_ms is None or now_ms < self.ends_at_ms

    def content_for(self, content_id: str, variant_id: str | None) -> CompiledContent:
        if variant_id is not None:
            for variant in self.variants:
                if variant.variant_id == variant_id and content_id in variant.content:
                    return variant.content[content_id]
        return self.content[content_id]
