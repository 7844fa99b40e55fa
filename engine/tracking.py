"""Instrumenting outbound messages: click-tracking links, the open pixel, unsubscribe links.

The campaign engine renders a message, then calls ``TrackingLinks.track_html`` (email) or
``track_text`` (SMS, the plain-text part) to send every http(s) link through
``{links_url}/t/c/{token}``, and ``unsubscribe_url`` for the link and the ``List-Unsubscribe``
header. The tokens are signed (``engine.signing``) and carry what the redirect and the event need,
so the worker that answers needs no lookup. The HTML is tokenized with the standard library's
parser, and only the ``href`` values it finds are replaced: every other byte stays as it was.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from engine.errors import ValidationError
from engine.events import CHANNELS
from engine.feedback import UNSUBSCRIBE_SCOPES, MessageContext, UnsubscribeScope
from engine.signing import InvalidSignature, Signer

OPEN_PURPOSE = "o"
CLICK_PURPOSE = "c"
UNSUBSCRIBE_PURPOSE = "u"
SMS_STATUS_PURPOSE = "s"

LINK_TAGS = frozenset({"a", "area"})
_HTTP = re.compile(r"https?://", re.IGNORECASE)
# What html.parser itself takes for a tag name and an attribute (html/parser.py, tagfind_tolerant
# and attrfind_tolerant): the same rules, so the spans found here are the attributes it reported.
_TAG_NAME = re.compile(r"([a-zA-Z][^\t\n\r\f />\x00]*)(?:\s|/(?!>))*")
_ATTRIBUTE = re.compile(
    r"((?<=[\'\"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*(\'[^\']*\'|\"[^\"]*\"|(?![\'\"])[^>\s]*))?(?:\s|/(?!>))*"
)
_NEWLINE = re.compile("\n")  # the parser counts lines by "\n" only
_TEXT_URL = re.compile(r"\bhttps?://[^\s<>\"]+", re.IGNORECASE)
_TRAILING = ".,;:!?'"


@dataclass(slots=True, frozen=True)
class Click:
    context: MessageContext
    url: str


@dataclass(slots=True, frozen=True)
class Unsubscribe:
    context: MessageContext
    scope: UnsubscribeScope


class TrackingLinks:
    """Makes and reads the signed URLs of one deployment (``links_url``: the public base URL)."""

    def __init__(self, signer: Signer, links_url: str) -> None:
        self.signer = signer
        self.base = links_url.rstrip("/")
        self._own = (f"{self.base}/t/", f"{self.base}/u/")

    # --- making -----------------------------------------------------------------------------

    def _fields(self, context: MessageContext) -> list[str | None]:
        # No category: only an unsubscribe needs it, and every character counts in an SMS.
        return [context.delivery_id, context.customer_id, context.campaign_id, context.channel]

    def click_url(self, context: MessageContext, url: str, *, expires_at_ms: int | None = None) -> str:
        token = self.signer.sign(CLICK_PURPOSE, [*self._fields(context), url], expires_at_ms=expires_at_ms)
        return f"{self.base}/t/c/{token}"

    def open_pixel_url(self, context: MessageContext) -> str:
        return f"{self.base}/t/o/{self.signer.sign(OPEN_PURPOSE, self._fields(context))}.gif"

    def unsubscribe_url(self, context: MessageContext, scope: UnsubscribeScope = "campaign") -> str:
        """The page (and RFC 8058 one-click target) that opts out; ``scope`` is the preselected one."""
        if scope not in UNSUBSCRIBE_SCOPES or (scope == "category" and not context.category):
            raise ValidationError(f"cannot unsubscribe by {scope!r} from this message", "scope")
        fields = [*self._fields(context), scope, context.category]
        return f"{self.base}/u/{self.signer.sign(UNSUBSCRIBE_PURPOSE, fields)}"

    def sms_status_url(self, context: MessageContext) -> str:
        """The ``StatusCallback`` URL of an SMS: Twilio posts delivery receipts there."""
        token = self.signer.sign(SMS_STATUS_PURPOSE, self._fields(context))
        return f"{self.base}/webhooks/twilio/status/{token}"

    def is_own(self, url: str) -> bool:
        """A link that already goes through Refract (tracked, or an unsubscribe link)."""
        return url.startswith(self._own)

    def track_html(
        self,
        document: str,
        context: MessageContext,
        *,
        open_pixel: bool = True,
        expires_at_ms: int | None = None,
    ) -> str:
        """``document`` with its http(s) ``href`` links tracked and the open pixel added."""
        if "href" not in document.lower():
            return self._with_pixel(document, context) if open_pixel else document
        finder = _LinkFinder()
        finder.feed(document)
        finder.close()
        line_starts = [0]
        line_starts.extend(match.end() for match in _NEWLINE.finditer(document))
        pieces: list[str] = []
        done = 0
        for (line, column), tag_text in finder.link_tags:
            start = line_starts[line - 1] + column
            if not document.startswith(tag_text, start):
                continue  # never rewrite what was not found exactly where the parser saw it
            span = _href_span(tag_text)
            if span is None:
                continue
            value_start, value_end = span
            raw = tag_text[value_start:value_end]
            quote = raw[0] if raw[:1] in ("'", '"') else '"'
            url = html.unescape(raw[1:-1] if raw[:1] in ("'", '"') else raw).strip()
            if not _HTTP.match(url) or self.is_own(url):
                continue
            tracked = self.click_url(context, url, expires_at_ms=expires_at_ms)
            pieces.append(document[done : start + value_start])
            pieces.append(quote + html.escape(tracked, quote=True) + quote)
            done = start + value_end
        if open_pixel and f"{self.base}/t/o/" not in document:
            pixel = (
                f'<img src="{html.escape(self.open_pixel_url(context), quote=True)}"'
                ' width="1" height="1" alt="">'
            )
            at = len(document)
            if finder.body_end is not None:
                line, column = finder.body_end
                at = line_starts[line - 1] + column
            if at < done:  # cannot happen (</body> follows the links), but never reorder text
                at = len(document)
            pieces.append(document[done:at])
            pieces.append(pixel)
            done = at
        pieces.append(document[done:])
        return "".join(pieces)

    def _with_pixel(self, document: str, context: MessageContext) -> str:
        """The pixel before ``</body>`` (or at the end): a document without links is not parsed."""
        if f"{self.base}/t/o/" in document:
            return document
        pixel = (
            f'<img src="{html.escape(self.open_pixel_url(context), quote=True)}" width="1" height="1" alt="">'
        )
        at = document.lower().rfind("</body")
        return document + pixel if at < 0 else document[:at] + pixel + document[at:]

    def track_text(self, text: str, context: MessageContext, *, expires_at_ms: int | None = None) -> str:
        """``text`` (an SMS, an email's plain part) with every http(s) URL tracked."""

        def replace(match: re.Match[str]) -> str:
            url, tail = _split_trailing(match.group(0))
            if self.is_own(url):
                return match.group(0)
            return self.click_url(context, url, expires_at_ms=expires_at_ms) + tail

        return _TEXT_URL.sub(replace, text)

    # --- reading ----------------------------------------------------------------------------

    def _context(
        self, fields: tuple[str | None, ...], extra: int, category: str | None = None
    ) -> MessageContext:
        if len(fields) != 4 + extra:
            raise InvalidSignature("the token does not have the expected fields")
        delivery, customer, campaign, channel = fields[:4]
        if not delivery or not customer or not campaign or channel not in CHANNELS:
            raise InvalidSignature("the token does not name a message")
        return MessageContext(delivery, customer, campaign, channel, category)

    def read_open(self, token: str, *, now_ms: int) -> MessageContext:
        return self._context(self.signer.verify(token, OPEN_PURPOSE, now_ms=now_ms), 0)

    def read_click(self, token: str, *, now_ms: int) -> Click:
        fields = self.signer.verify(token, CLICK_PURPOSE, now_ms=now_ms)
        context = self._context(fields, 1)
        url = fields[4]
        # Defence in depth: only http(s) links were ever signed, never a javascript: or data: URL.
        if not url or not _HTTP.match(url):
            raise InvalidSignature("the token does not hold a web link")
        return Click(context, url)

    def read_unsubscribe(self, token: str, *, now_ms: int) -> Unsubscribe:
        fields = self.signer.verify(token, UNSUBSCRIBE_PURPOSE, now_ms=now_ms)
        context = self._context(fields, 2, category=fields[5])
        scope = fields[4]
        if scope not in UNSUBSCRIBE_SCOPES:
            raise InvalidSignature("the token does not hold an unsubscribe scope")
        return Unsubscribe(context, scope)

    def read_sms_status(self, token: str, *, now_ms: int) -> MessageContext:
        return self._context(self.signer.verify(token, SMS_STATUS_PURPOSE, now_ms=now_ms), 0)


class _LinkFinder(HTMLParser):
    """Collects where link tags and the last ``</body>`` are, as the tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.link_tags: list[tuple[tuple[int, int], str]] = []
        self.body_end: tuple[int, int] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in LINK_TAGS:
            text = self.get_starttag_text()
            if text is not None:
                self.link_tags.append((self.getpos(), text))

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.body_end = self.getpos()


def _href_span(tag_text: str) -> tuple[int, int] | None:
    """Where the value of the first ``href`` attribute is in a start tag (quotes included)."""
    name = _TAG_NAME.match(tag_text, 1)
    if name is None:
        return None
    at = name.end()
    while at < len(tag_text):
        attribute = _ATTRIBUTE.match(tag_text, at)
        if attribute is None or attribute.end() == at:
            return None
        if attribute.group(1).lower() == "href":
            # Like the parser, the first href wins; one without a value is no link.
            return attribute.span(3) if attribute.group(3) else None
        at = attribute.end()
    return None


def _split_trailing(url: str) -> tuple[str, str]:
    """A URL in prose and the punctuation after it ("see https://x.com/a)." -> "https://x.com/a")."""
    end = len(url)
    while end > 0:
        last = url[end - 1]
        if last in _TRAILING or (last == ")" and url.count("(", 0, end) < url.count(")", 0, end)):
            end -= 1
        else:
            break
    return url[:end], url[end:]
