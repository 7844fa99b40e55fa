"""The few HTML pages people see (unsubscribe, an invalid link): plain, accessible, escaped.

Every value is escaped here, at the one place pages are assembled; callers pass text, not markup,
except ``body`` fragments built with ``html_text``. Pages cannot be framed (no clickjacking of the
unsubscribe button) and are never cached.
"""

from __future__ import annotations

import html

from aiohttp import web

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:36rem;"
    "margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}"
    "fieldset{border:1px solid #999;border-radius:4px;padding:1rem}"
    "label{display:block;margin:.4rem 0}"
    "button{font-size:1rem;padding:.6rem 1.2rem;margin-top:1rem;cursor:pointer}"
)


def html_text(text: str) -> str:
    """``text`` escaped for HTML content and attribute values."""
    return html.escape(text, quote=True)


def page(title: str, body: str, *, status: int = 200) -> web.Response:
    """A whole page; ``body`` is markup whose dynamic parts went through ``html_text``."""
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{html_text(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{html_text(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return web.Response(
        text=document, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
    )


def message_page(title: str, message: str, *, status: int) -> web.Response:
    return page(title, f"<p>{html_text(message)}</p>", status=status)


def invalid_link_page() -> web.Response:
    return message_page(
        "This link does not work",
        "The link is incomplete or was changed. If you copied it from a message, copy the whole"
        " link, or open it from the message again.",
        status=404,
    )


def expired_link_page() -> web.Response:
    return message_page("This link has expired", "The link is no longer valid.", status=410)


def try_again_page() -> web.Response:
    return message_page(
        "Please try again",
        "We could not record your request just now. Nothing was changed; please try again in a minute.",
        status=503,
    )
