"""Placements: named places on a site or app where campaigns show banners, carousels or pop-ups.

A placement is a ``Definition`` (``placement:<id>``) with its kind, platform, size and the default
content shown when no campaign wins (or the customer is in a control group). Campaigns declare
their content per placement under ``inbound:``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from engine.campaigns.templates import INBOUND_PARTS
from engine.errors import ValidationError

PLACEMENT_KIND = "placement"
PLACEMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
PlacementKind: TypeAlias = Literal["single", "multiple", "popup"]
PLATFORMS = ("web", "ios", "android")
MAX_ITEMS = 10


@dataclass(slots=True, frozen=True)
class Placement:
    placement_id: str
    version: int
    name: str
    kind: PlacementKind
    platform: str
    max_items: int  # 1 unless kind is multiple
    open_delay_ms: int  # pop-ups only
    size: str | None
    default: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    updated_at_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.placement_id,
            "version": self.version,
            "name": self.name,
            "kind": self.kind,
            "platform": self.platform,
            "max_items": self.max_items,
            "open_delay_ms": self.open_delay_ms,
            "size": self.size,
            "default": dict(self.default),
            "updated_at_ms": self.updated_at_ms,
        }


def definition_key(placement_id: str) -> str:
    return f"{PLACEMENT_KIND}:{placement_id}"


def check_placement_id(value: object, field: str = "id") -> str:
    if not isinstance(value, str) or not PLACEMENT_ID.fullmatch(value):
        raise ValidationError(
            f"{field}: a placement id is 1 to 100 letters, digits, '_', '-' or '.'; got {value!r}",
            field=field,
        )
    return value


def placement_from_body(
    placement_id: str, version: int, body: Mapping[str, Any], updated_at_ms: int = 0
) -> Placement:
    """The placement a saved body describes; ValidationError naming the field when it is wrong."""
    check_placement_id(placement_id)
    if not isinstance(body, Mapping):
        raise ValidationError("a placement is a mapping with kind, platform and default content")
    allowed = {"id", "kind", "name", "platform", "size", "max_items", "open_delay_ms", "default"}
    unknown = sorted(str(k) for k in body if k not in allowed)
    if unknown:
        raise ValidationError(
            f"{unknown[0]}: unknown field; a placement has {', '.join(sorted(allowed - {'id'}))}",
            field=unknown[0],
        )
    kind = body.get("kind", "single")
    if kind not in ("single", "multiple", "popup"):
        raise ValidationError(f"kind: expected single, multiple or popup, got {kind!r}", field="kind")
    platform = body.get("platform", "web")
    if platform not in PLATFORMS:
        raise ValidationError(
            f"platform: expected one of {', '.join(PLATFORMS)}, got {platform!r}", "platform"
        )
    max_items = body.get("max_items", 5 if kind == "multiple" else 1)
    if not isinstance(max_items, int) or isinstance(max_items, bool) or not 1 <= max_items <= MAX_ITEMS:
        raise ValidationError(f"max_items: expected 1 to {MAX_ITEMS}, got {max_items!r}", field="max_items")
    if kind != "multiple" and max_items != 1:
        raise ValidationError("max_items: only a multiple placement (a carousel) shows several", "max_items")
    delay = body.get("open_delay_ms", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 600_000:
        raise ValidationError(f"open_delay_ms: expected 0 to 600000, got {delay!r}", field="open_delay_ms")
    if kind != "popup" and delay:
        raise ValidationError("open_delay_ms: only a pop-up opens after a delay", field="open_delay_ms")
    default = body.get("default") or {}
    if not isinstance(default, Mapping):
        raise ValidationError("default: expected a mapping of content parts", field="default")
    for name, value in default.items():
        if name not in INBOUND_PARTS or not isinstance(value, str):
            raise ValidationError(
                f"default.{name}: content parts are texts named {', '.join(INBOUND_PARTS)}", f"default.{name}"
            )
    size = body.get("size")
    if size is not None and not isinstance(size, str):
        raise ValidationError(f"size: expected a text such as 728x90, got {size!r}", field="size")
    name = body.get("name", placement_id)
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name: expected a text", field="name")
    return Placement(
        placement_id=placement_id,
        version=version,
        name=name,
        kind=kind,
        platform=platform,
        max_items=max_items,
        open_delay_ms=delay,
        size=size,
        default=dict(default),
        body={k: v for k, v in body.items() if k != "id"},
        updated_at_ms=updated_at_ms,
    )
