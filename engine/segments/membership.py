"""Real-time segment membership: after an event, re-evaluate only the segments it may have changed.

A ``SegmentIndex`` is built once per change of the segment definitions: it maps every input (an
attribute, a behaviour history name, a campaign's data) to the segments that read it, and every
segment to the segments that read it through ``in_segment``, in evaluation order. ``update`` then
takes one customer's state before and after an event and returns the new memberships and the
entries and exits, re-evaluating:

* every segment when the customer is new (nothing was evaluated for them yet);
* the segments reading an input the event changed;
* the segments whose registered due time (``CustomerState.segment_due_ms``) has come;
* and the segments that read any of these through ``in_segment`` (after them).

Everything else keeps its result: its inputs did not change and time cannot have changed it yet.
So the memberships always equal an evaluation of every segment from scratch (a property test
checks it). Pure: the time is the event's, never a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Literal, NamedTuple

from engine.behaviour import behaviour_keys
from engine.events import CustomerUpdate, Payload
from engine.segments.compiler import Rule, evaluate
from engine.segments.context import EvaluationContext
from engine.segments.cycles import evaluation_order
from engine.segments.families import Family, families
from engine.segments.nodes import Age, DaysSince, IsBirthday, operands
from engine.segments.timing import evaluate_timed
from engine.state import CustomerState

ChangeKind = Literal["ENTERED", "EXITED"]

_NO_SEGMENTS: frozenset[str] = frozenset()
_AFFECTED_REMEMBERED = 1024
_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(slots=True, frozen=True)
class CompiledSegment:
    """One segment definition as the processor uses it."""

    segment_id: str
    version: int
    rule: Rule


@dataclass(slots=True, frozen=True)
class ChangedInputs:
    """What an event changed: attribute names, behaviour history names, campaigns' data."""

    attributes: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.attributes or self.events or self.campaigns)


NOTHING_CHANGED = ChangedInputs()


def inputs_changed_by(payload: Payload) -> ChangedInputs:
    """The rule inputs an event payload may change (as the fold applies it)."""
    if isinstance(payload, CustomerUpdate):
        if payload.campaign_id is not None:
            return ChangedInputs(campaigns=(payload.campaign_id,))
        return _changed_attributes((*payload.set, *payload.unset))
    keys = behaviour_keys(payload)
    return _changed_events(keys) if keys else NOTHING_CHANGED


# A feed repeats the same few event names and attribute sets: one object each, whose hash the
# index's cache of affected segments finds at once.
@lru_cache(maxsize=1024)
def _changed_attributes(names: tuple[str, ...]) -> ChangedInputs:
    return ChangedInputs(attributes=names)


@lru_cache(maxsize=1024)
def _changed_events(keys: tuple[str, ...]) -> ChangedInputs:
    return ChangedInputs(events=keys)


class SegmentChange(NamedTuple):
    """A customer entered or exited a segment (of that version) at ``at_ms``.

    A named tuple: a busy event makes several, and a tuple is several times cheaper to build
    than a frozen dataclass.
    """

    segment_id: str
    version: int
    kind: ChangeKind
    at_ms: int


@dataclass(slots=True, frozen=True)
class MembershipUpdate:
    """The memberships and due times after an event, and the entries and exits it caused.

    The mappings are the very objects of the state before when they did not change.
    """

    segments: Mapping[str, int]
    segment_due_ms: Mapping[str, int]
    changes: tuple[SegmentChange, ...] = ()
    evaluated: int = 0


@dataclass(slots=True, frozen=True)
class SegmentIndex:
    """The compiled segments and the indexes from inputs to the segments that read them.

    Build it with ``SegmentIndex.build`` (raises SegmentCycleError on an ``in_segment`` loop).
    """

    segments: Mapping[str, CompiledSegment] = field(default_factory=dict)
    order: tuple[str, ...] = ()
    position: Mapping[str, int] = field(default_factory=dict)
    by_attribute: Mapping[str, frozenset[str]] = field(default_factory=dict)
    by_event: Mapping[str, frozenset[str]] = field(default_factory=dict)
    by_campaign: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Segment -> every segment that reads it, directly or through others.
    dependents: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Time-dependent segments that depend on time only through windows over the customer's events:
    # for a customer who never had any of those events, time cannot change them.
    windows_only: frozenset[str] = frozenset()
    # The behaviour names those windows read.
    window_names: frozenset[str] = frozenset()
    # Whether any rule reads memberships (in_segment).
    reads_memberships: bool = False
    # Segment -> the family it is judged with (segments of one shape over one input).
    families: Mapping[str, Family] = field(default_factory=dict)
    # ``affected`` of the inputs an event changed, when no segment was due: most events of a
    # feed change the same few inputs. Bounded; cleared when full.
    _affected: dict[ChangedInputs, list[str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, segments: Iterable[CompiledSegment]) -> SegmentIndex:
        by_id = {segment.segment_id: segment for segment in segments}
        rules = {segment_id: segment.rule for segment_id, segment in by_id.items()}
        order = evaluation_order(rules)
        by_attribute: dict[str, set[str]] = {}
        by_event: dict[str, set[str]] = {}
        by_campaign: dict[str, set[str]] = {}
        readers: dict[str, set[str]] = {}
        for segment_id, rule in rules.items():
            inputs = rule.inputs
            for name in inputs.attributes:
                by_attribute.setdefault(name, set()).add(segment_id)
            for name in inputs.events:
                by_event.setdefault(name, set()).add(segment_id)
            for name in inputs.campaigns:
                by_campaign.setdefault(name, set()).add(segment_id)
            for name in inputs.segments:
                readers.setdefault(name, set()).add(segment_id)
        dependents: dict[str, frozenset[str]] = {}
        # Reverse evaluation order: a segment's readers come later, so theirs are known already.
        for segment_id in reversed(order):
            closure: set[str] = set()
            for reader in readers.get(segment_id, ()):
                closure.add(reader)
                closure.update(dependents.get(reader, ()))
            if closure:
                dependents[segment_id] = frozenset(closure)
        windows_only = frozenset(
            segment_id for segment_id, rule in rules.items() if rule.time_dependent and _windows_only(rule)
        )
        return cls(
            segments=by_id,
            order=order,
            position={segment_id: index for index, segment_id in enumerate(order)},
            by_attribute={name: frozenset(ids) for name, ids in by_attribute.items()},
            by_event={name: frozenset(ids) for name, ids in by_event.items()},
            by_campaign={name: frozenset(ids) for name, ids in by_campaign.items()},
            dependents=dependents,
            windows_only=windows_only,
            window_names=frozenset(
                name for segment_id in windows_only for name in rules[segment_id].inputs.events
            ),
            reads_memberships=bool(readers),
            families=families(rules),
        )

    def affected_by(self, changed: ChangedInputs) -> list[str]:
        """``affected(changed)``, remembered (do not modify the list)."""
        cached = self._affected.get(changed)
        if cached is None:
            if len(self._affected) >= _AFFECTED_REMEMBERED:
                self._affected.clear()
            cached = self._affected[changed] = self.affected(changed)
        return cached

    def affected(self, changed: ChangedInputs, due: Iterable[str] = ()) -> list[str]:
        """The segments to evaluate again, in evaluation order (dependents after what they read)."""
        direct: set[str] = set(due)
        if changed.attributes:
            by_attribute = self.by_attribute
            for name in changed.attributes:
                direct.update(by_attribute.get(name, _NO_SEGMENTS))
        if changed.events:
            by_event = self.by_event
            for name in changed.events:
                direct.update(by_event.get(name, _NO_SEGMENTS))
        if changed.campaigns:
            by_campaign = self.by_campaign
            for name in changed.campaigns:
                direct.update(by_campaign.get(name, _NO_SEGMENTS))
        if not direct:
            return []
        if self.dependents:
            dependents = self.dependents
            for segment_id in list(direct):
                direct.update(dependents.get(segment_id, _NO_SEGMENTS))
        position = self.position
        return sorted((s for s in direct if s in position), key=position.__getitem__)


EMPTY_INDEX = SegmentIndex()


def _windows_only(rule: Rule) -> bool:
    """Whether only windowed counts and sums make ``rule`` change with time (no dates)."""
    return not any(isinstance(operand, Age | DaysSince | IsBirthday) for operand in operands(rule.condition))


def update(
    index: SegmentIndex,
    before: CustomerState | None,
    after: CustomerState,
    changed: ChangedInputs,
    now_ms: int,
    *,
    reevaluate: Iterable[str] = (),
    default_timezone: str = "UTC",
) -> MembershipUpdate:
    """Memberships of ``after`` once the event that turned ``before`` into it is applied at ``now_ms``.

    ``after.segments`` and ``after.segment_due_ms`` are the memberships carried over by the fold.
    ``reevaluate`` names segments to evaluate whatever changed (a new or changed definition being
    evaluated over existing customers: pass ``before`` = ``after`` and no changed inputs).
    """
    memberships = after.segments
    due_ms = after.segment_due_ms
    if not index.segments:
        if not memberships and not due_ms:
            return MembershipUpdate(memberships, due_ms)
        return _forget_undefined(index, memberships, due_ms)
    if before is None:
        to_evaluate: list[str] = list(index.order)
    else:
        if due_ms and min(due_ms.values()) <= now_ms:
            due = [segment_id for segment_id, at_ms in due_ms.items() if at_ms <= now_ms]
        else:
            due = []
        if due or reevaluate:
            to_evaluate = index.affected(changed, [*due, *reevaluate])
        else:
            to_evaluate = index.affected_by(changed)
    defined = index.segments
    if memberships.keys() <= defined.keys() and due_ms.keys() <= defined.keys():
        stale: list[str] = []
    else:  # segments deleted since this customer was last evaluated
        stale = [s for s in memberships if s not in defined] + [s for s in due_ms if s not in defined]
    if not to_evaluate and not stale:
        return MembershipUpdate(memberships, due_ms)
    new_memberships = dict(memberships)
    new_due = dict(due_ms)
    for segment_id in stale:
        new_memberships.pop(segment_id, None)
        new_due.pop(segment_id, None)

    # The memberships are in the context for in_segment rules only.
    read_by_others = index.reads_memberships

    def current_context() -> EvaluationContext:
        return EvaluationContext.for_customer(
            after.attributes,
            now_ms,
            campaign_attributes=after.campaign_attributes,
            behaviour=after.behaviour,
            segments=frozenset(new_memberships) if read_by_others else _NO_SEGMENTS,
            default_timezone=default_timezone,
        )

    context = current_context()
    changes: list[SegmentChange] = []
    context_is_stale = False
    windows_only = index.windows_only
    # The names windows read that this customer has a history of (``in`` on the history, which
    # may be decoded lazily, rather than iterating it), worked out when first needed.
    present: set[str] | None = None
    family_of = index.families
    # Results of the families judged so far in this pass (a family judges all its members at once;
    # family members read no other segment, so the context they saw is still theirs).
    judged: dict[str, tuple[bool, int | None]] = {}
    for segment_id in to_evaluate:
        segment = defined[segment_id]
        family = family_of.get(segment_id)
        moment: int | None
        if family is not None:
            found = judged.get(segment_id)
            if found is None:
                judged.update(family.judge(context))
                found = judged[segment_id]
            member, moment = found
        else:
            rule = segment.rule
            if context_is_stale and rule.inputs.segments:
                # A segment evaluated earlier in this pass changed: in_segment must see it.
                context_is_stale = False
                context = current_context()
            moment = None
            if not rule.time_dependent:
                member = rule.check(context)
            elif segment_id in windows_only and rule.inputs.events.isdisjoint(
                present if present is not None else (present := _present(index, after))
            ):
                # No occurrence in any window, now or later without a new event: no time to wait for.
                member = rule.check(context)
            else:
                member, moment = evaluate_timed(rule, context)
        if member != (segment_id in new_memberships):
            context_is_stale = True
            if member:
                new_memberships[segment_id] = now_ms
                changes.append(SegmentChange(segment_id, segment.version, "ENTERED", now_ms))
            else:
                del new_memberships[segment_id]
                changes.append(SegmentChange(segment_id, segment.version, "EXITED", now_ms))
        if moment is not None:
            new_due[segment_id] = moment
        elif segment_id in new_due:
            del new_due[segment_id]
    return MembershipUpdate(
        new_memberships if changes or stale else memberships,
        new_due if new_due != due_ms else due_ms,
        tuple(changes),
        len(to_evaluate),
    )


def _present(index: SegmentIndex, state: CustomerState) -> set[str]:
    history = state.behaviour.events
    return {name for name in index.window_names if name in history}


def _forget_undefined(
    index: SegmentIndex, memberships: Mapping[str, int], due_ms: Mapping[str, int]
) -> MembershipUpdate:
    """Drop memberships and due times of segments that are no longer defined (deleted)."""
    defined = index.segments
    kept = {s: at for s, at in memberships.items() if s in defined}
    kept_due = {s: at for s, at in due_ms.items() if s in defined}
    return MembershipUpdate(
        kept if len(kept) != len(memberships) else memberships,
        kept_due if len(kept_due) != len(due_ms) else due_ms,
    )


def evaluate_all(
    index: SegmentIndex, state: CustomerState, now_ms: int, *, default_timezone: str = "UTC"
) -> dict[str, int]:
    """Every segment evaluated from scratch for ``state`` at ``now_ms``: id -> ``now_ms`` for members.

    The reference ``update`` must agree with, and the way to evaluate a new segment over
    existing customers.
    """
    members: dict[str, int] = {}
    for segment_id in index.order:
        context = EvaluationContext.for_customer(
            state.attributes,
            now_ms,
            campaign_attributes=state.campaign_attributes,
            behaviour=state.behaviour,
            segments=frozenset(members),
            default_timezone=default_timezone,
        )
        if evaluate(index.segments[segment_id].rule, context):
            members[segment_id] = now_ms
    return members


def exits_on_erasure(
    index: SegmentIndex, before: CustomerState | None, now_ms: int
) -> tuple[SegmentChange, ...]:
    """The exits of an erased customer: they leave every segment they were in."""
    if before is None or not before.segments:
        return ()
    return tuple(
        SegmentChange(
            segment_id,
            index.segments[segment_id].version if segment_id in index.segments else 0,
            "EXITED",
            now_ms,
        )
        for segment_id in sorted(before.segments)
    )
