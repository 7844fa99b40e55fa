"""What every outbound message must carry, and the hook that adds signed links to it.

Email gets an unsubscribe link (in the body when its template did not place one, and as the
``unsubscribe_url`` part the SMTP provider turns into ``List-Unsubscribe`` headers); SMS gets an
opt-out instruction unless its text already has one. Signed URLs (unsubscribe, click and open
tracking) come from a ``MessageLinks`` the worker configures: the engine only knows the interface.
"""

from __future__ import annotations

import html
import re
from typing import Protocol

from engine.events import Channel
from engine.feedback import MessageContext
from engine.tracking import TrackingLinks

SMS_OPT_OUT = "Reply STOP to opt out."
_STOP = re.compile(r"\bSTOP\b")


class MessageLinks(Protocol):
    def unsubscribe_url(self, context: MessageContext) -> str | None:
        """The signed one-click unsubscribe URL for a message, or None when none can be made."""
        ...

    def instrument(
        self, parts: dict[str, str], context: MessageContext, expires_at_ms: int
    ) -> dict[str, str]:
        """``parts`` with tracked links (clicks, opens); may return them unchanged."""
        ...


class NoLinks:
    """No signing secret configured: no unsubscribe URL and no tracking (opt-out text still added)."""

    def unsubscribe_url(self, context: MessageContext) -> str | None:
        return None

    def instrument(
        self, parts: dict[str, str], context: MessageContext, expires_at_ms: int
    ) -> dict[str, str]:
        return parts


class TrackedLinks:
    """Signed links (``engine.tracking``): click tracking in email and SMS, the open pixel, and the
    one-click unsubscribe link scoped to the campaign."""

    def __init__(self, tracking: TrackingLinks) -> None:
        self.tracking = tracking

    def unsubscribe_url(self, context: MessageContext) -> str | None:
        return self.tracking.unsubscribe_url(context, "campaign")

    def instrument(
        self, parts: dict[str, str], context: MessageContext, expires_at_ms: int
    ) -> dict[str, str]:
        # Links outlive the message's delivery deadline: people open emails days later.
        if context.channel == "email":
            if "html" in parts:
                parts["html"] = self.tracking.track_html(parts["html"], context)
            if "text" in parts:
                parts["text"] = self.tracking.track_text(parts["text"], context)
        elif context.channel == "sms" and "text" in parts:
            parts["text"] = self.tracking.track_text(parts["text"], context)
        return parts


def with_opt_out(channel: Channel, parts: dict[str, str], unsubscribe_url: str | None) -> dict[str, str]:
    """``parts`` carrying the opt-out the law expects: an unsubscribe link, or an SMS STOP instruction."""
    if channel == "sms":
        text = parts.get("text", "")
        if not _STOP.search(text):
            parts["text"] = f"{text.rstrip()} {SMS_OPT_OUT}".strip()
        return parts
    if channel != "email" or unsubscribe_url is None:
        return parts
    parts["unsubscribe_url"] = unsubscribe_url
    if (
        "html" in parts
        and unsubscribe_url not in parts["html"]
        and html.escape(unsubscribe_url) not in parts["html"]
    ):
        footer = f'<p style="font-size:12px"><a href="{html.escape(unsubscribe_url)}">Unsubscribe</a></p>'
        body = parts["html"]
        at = body.lower().rfind("</body>")
        parts["html"] = body[:at] + footer + body[at:] if at >= 0 else body + footer
    if "text" in parts and unsubscribe_url not in parts["text"]:
        parts["text"] = f"{parts['text'].rstrip()}\n\nUnsubscribe: {unsubscribe_url}\n"
    return parts
