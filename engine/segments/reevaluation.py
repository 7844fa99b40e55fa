"""Evaluating new or changed segments over the customers already stored (a backfill), cheaply.

``membership.update`` with ``reevaluate`` is the reference: it evaluates the segments, the
segments that read them and whatever is due, and returns the customer's new memberships. A
backfill calls it for every stored customer, most often for segments that read neither time nor
other segments, for customers with nothing due. ``Reevaluation.update`` does exactly that common
case with what is planned once for all customers, and says when a customer is not that case
(then ``membership.update`` runs). A property test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.segments.compiler import Rule, evaluate
from engine.segments.context import EvaluationContext
from engine.segments.membership import NOTHING_CHANGED, MembershipUpdate, SegmentChange, SegmentIndex
from engine.state import CustomerState, MembershipView


@dataclass(slots=True, frozen=True)
class Reevaluation:
    """Segments to evaluate again over stored customers, planned once for many customers.

    Build it with ``Reevaluation.plan``.
    """

    index: SegmentIndex
    # What ``membership.update`` evaluates for a customer with nothing due: the segments and the
    # segments that read them, in evaluation order, as (segment id, version, rule).
    planned: tuple[tuple[str, int, Rule], ...]
    # Whether ``update`` can do it: no planned rule depends on time or on other segments.
    independent: bool

    @classmethod
    def plan(cls, index: SegmentIndex, segments: Iterable[str]) -> Reevaluation:
        evaluated = index.affected(NOTHING_CHANGED, segments)
        planned = tuple(
            (segment_id, index.segments[segment_id].version, index.segments[segment_id].rule)
            for segment_id in evaluated
        )
        independent = all(not rule.time_dependent and not rule.inputs.segments for _, _, rule in planned)
        return cls(index, planned, independent)

    def update(
        self, state: CustomerState | MembershipView, now_ms: int, *, default_timezone: str = "UTC"
    ) -> MembershipUpdate | None:
        """``membership.update(index, state, state, NOTHING_CHANGED, now_ms, reevaluate=segments)``,
        or None when the customer is not the common case (something due, a membership of a segment
        no longer defined, a due time to drop) or the planned rules are not independent.
        """
        if not self.independent:
            return None
        memberships = state.segments
        due_ms = state.segment_due_ms
        defined = self.index.segments.keys()
        if due_ms:
            for at_ms in due_ms.values():
                if at_ms <= now_ms:
                    return None
            if not defined >= due_ms.keys():
                return None
        if memberships and not defined >= memberships.keys():
            return None
        # No planned rule reads other segments: the context needs no memberships.
        context = EvaluationContext.for_customer(
            state.attributes,
            now_ms,
            campaign_attributes=state.campaign_attributes,
            behaviour=state.behaviour,
            default_timezone=default_timezone,
        )
        changes: list[SegmentChange] = []
        for segment_id, version, rule in self.planned:
            if segment_id in due_ms:
                return None  # a rule that no longer depends on time: its due time is dropped
            member = evaluate(rule, context)
            if member != (segment_id in memberships):
                changes.append(SegmentChange(segment_id, version, "ENTERED" if member else "EXITED", now_ms))
        if not changes:
            return MembershipUpdate(memberships, due_ms, (), len(self.planned))
        new_memberships = dict(memberships)
        for change in changes:
            if change.kind == "ENTERED":
                new_memberships[change.segment_id] = now_ms
            else:
                del new_memberships[change.segment_id]
        return MembershipUpdate(new_memberships, due_ms, tuple(changes), len(self.planned))
