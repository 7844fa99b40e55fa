"""The visitor of a referral link or landing page: the first-party ``refract_vid`` cookie, and who they are.

The cookie is the one the JavaScript SDK keeps (``v_`` and a random UUID), so a visitor who
followed a referral link is the same visitor on the site's pages. It is not HttpOnly because the
SDK reads it; it is ``SameSite=Lax`` (sent when a person follows a link to Refract, not with a
cross-site form post) and ``Secure`` when the public URL is https.

A visitor is the customer ``anon:<visitor id>``, unless a ``refract_cid`` cookie names a customer
Refract knows (``KnownCustomer``). That cookie is the site's claim (set after its own login); it
is not authentication, so a site should only set it for a signed-in person.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from aiohttp import web

from engine.errors import ValidationError
from engine.visitors import VISITOR_COOKIE, anonymous_customer_id, check_visitor_id, is_anonymous

CUSTOMER_COOKIE = "refract_cid"
COOKIE_MAX_AGE_S = 31_536_000  # a year from the last visit, as the SDK does
MAX_CUSTOMER_ID_CHARS = 128

KnownCustomer = Callable[[str], bool]


def new_visitor_id() -> str:
    return f"v_{uuid.uuid4()}"


def visitor_of(request: web.Request) -> str | None:
    """The visitor id of the request's cookie, when there is a well-formed one."""
    try:
        return check_visitor_id(request.cookies.get(VISITOR_COOKIE))
    except ValidationError:
        return None


def keep_visitor(response: web.StreamResponse, visitor_id: str, *, secure: bool) -> None:
    """(Re)set the visitor cookie on ``response``: a year from now, readable by the SDK."""
    response.set_cookie(
        VISITOR_COOKIE,
        visitor_id,
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        secure=secure,
        httponly=False,
        samesite="Lax",
    )


def customer_of(request: web.Request, visitor_id: str, known: KnownCustomer) -> str:
    """``refract_cid`` when it names a known customer, else the visitor's anonymous customer."""
    claimed = request.cookies.get(CUSTOMER_COOKIE)
    if (
        claimed
        and len(claimed) <= MAX_CUSTOMER_ID_CHARS
        and not is_anonymous(claimed)
        and not any(ord(c) < 32 for c in claimed)
        and known(claimed)
    ):
        return claimed
    return anonymous_customer_id(visitor_id)
