"""What a webhook request amounts to: the events to append, or why it is ignored."""

from __future__ import annotations

from dataclasses import dataclass

from engine.feedback import Feedback


@dataclass(slots=True, frozen=True)
class ParsedWebhook:
    """``feedback`` to append; when empty, ``ignored`` says why (for the log, never an error)."""

    feedback: tuple[Feedback, ...] = ()
    ignored: str | None = None
