"""The syntax tree of a segment rule: what both the text and the JSON form parse to.

Conditions (``And``, ``Or``, ``Not``, ``Compare``, ``IsNull``, ``Truth``) are true or false;
operands (``Literal``, ``Attribute``, ``Count``, ...) are values. Every node may carry ``where``
(its place in the source) for error messages; it takes no part in equality, so the same rule read
from text and from JSON gives equal trees.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(slots=True, frozen=True)
class Where:
    """A place in a rule's source: line and column (1-based) in text, or a path in JSON."""

    line: int | None = None
    column: int | None = None
    path: str | None = None


Scalar: TypeAlias = str | int | float | bool | dt.date | dt.datetime | None
LiteralValue: TypeAlias = Scalar | tuple[Scalar, ...]

COMPARISON_OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "~")
ORDERING_OPERATORS = frozenset({"<", "<=", ">", ">="})

# Interaction kinds a rule may name (the Interaction kinds plus referral clicks).
INTERACTION_KINDS = (
    "impression",
    "click",
    "dismiss",
    "open",
    "conversion",
    "unsubscribe",
    "lead",
    "complaint",
    "referral_click",
)


def _strict(value: LiteralValue) -> object:
    # True == 1 == 1.0 in Python; a rule distinguishes them, so equality looks at the type too.
    if isinstance(value, tuple):
        return tuple(_strict(item) for item in value)
    return (type(value).__name__, value)


@dataclass(slots=True, frozen=True, eq=False)
class Literal:
    value: LiteralValue
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Literal) and _strict(self.value) == _strict(other.value)

    def __hash__(self) -> int:
        return hash(_strict(self.value))


@dataclass(slots=True, frozen=True)
class Attribute:
    """A profile attribute, by name."""

    name: str
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Age:
    """Whole years since the date in ``attribute``, in the customer's time zone."""

    attribute: str = "birth_date"
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class DaysSince:
    """Whole calendar days from the date (or time) in ``attribute`` to today, customer's zone."""

    attribute: str
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class EventRef:
    """Which of the customer's own events: a business event, or an interaction kind (+ campaign)."""

    event: str | None = None
    interaction: str | None = None
    campaign: str | None = None

    @property
    def key(self) -> str:
        """The name the behaviour history keeps these events under."""
        if self.event is not None:
            return self.event
        if self.campaign:
            return f"interaction:{self.interaction}:{self.campaign}"
        return f"interaction:{self.interaction}"


@dataclass(slots=True, frozen=True)
class Count:
    source: EventRef
    within: str | None = None
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Sum:
    source: EventRef
    field: str
    within: str | None = None
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Last:
    """A field of the data of the latest occurrence of an event."""

    source: EventRef
    field: str
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Offer:
    """A field of the customer's per-campaign data (``campaign_attributes[campaign][field]``)."""

    campaign: str
    field: str
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Ever:
    source: EventRef
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class InSegment:
    segment: str
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class EventField:
    """A field of the data of the event being evaluated (``event.amount``): campaign triggers only."""

    field: str
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class IsBirthday:
    """The anniversary of ``attribute`` is today or within the next ``within`` days."""

    attribute: str
    within: str | None = None
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


Operand: TypeAlias = (
    Literal
    | Attribute
    | Age
    | DaysSince
    | Count
    | Sum
    | Last
    | Offer
    | Ever
    | InSegment
    | IsBirthday
    | EventField
)


@dataclass(slots=True, frozen=True)
class And:
    items: tuple[Condition, ...]
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Or:
    items: tuple[Condition, ...]
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Not:
    item: Condition
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Compare:
    """``left op right``; ``where`` is the place of the operator."""

    left: Operand
    op: str
    right: Operand
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class IsNull:
    """``operand is null`` (or ``is not null`` when ``negated``)."""

    operand: Operand
    negated: bool = False
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(slots=True, frozen=True)
class Truth:
    """An operand used as a condition: true exactly when its value is ``true``."""

    operand: Operand
    where: Where | None = dataclasses.field(default=None, compare=False, repr=False)


Condition: TypeAlias = And | Or | Not | Compare | IsNull | Truth

# Operands whose value changes with time alone.
CLOCK_OPERANDS = (Age, DaysSince, IsBirthday)


def leaves(condition: Condition) -> list[Compare | IsNull | Truth]:
    """The comparisons, null checks and truth tests of ``condition``, left to right."""
    if isinstance(condition, And | Or):
        return [leaf for item in condition.items for leaf in leaves(item)]
    if isinstance(condition, Not):
        return leaves(condition.item)
    return [condition]


def operands(condition: Condition) -> list[Operand]:
    """Every operand in ``condition``, left to right."""
    found: list[Operand] = []
    for leaf in leaves(condition):
        if isinstance(leaf, Compare):
            found += (leaf.left, leaf.right)
        else:
            found.append(leaf.operand)
    return found
