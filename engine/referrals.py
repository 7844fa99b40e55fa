"""Referral codes and landing-form tokens: the signed values behind ``/r/{code}`` and ``/l/{campaign}``.

A referral code names a campaign, the place it was posted (``source``: facebook, a newsletter, an
ad) and an optional expiry. It is a token of ``engine.signing`` with its own purpose, so a
tracking or unsubscribe token is never accepted as a referral code, nor the other way round; it
carries everything the redirect needs, so any worker can answer without a lookup.

A landing form carries a second token, the CSRF token: it binds the form to the visitor it was
shown to (the ``refract_vid`` cookie) and to the campaign, and expires after ``FORM_TOKEN_TTL_MS``.
The POST is accepted only when the token is genuine *and* names the visitor of the cookie sent with
it: another site can neither read the visitor's cookie nor sign a token for it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from engine.errors import ValidationError
from engine.signing import InvalidSignature, Signer

REFERRAL_PURPOSE = "r"
FORM_PURPOSE = "f"
FORM_TOKEN_TTL_MS = 2 * 3_600_000
SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_MINUTE_MS = 60_000


@dataclass(slots=True, frozen=True)
class ReferralCode:
    campaign_id: str
    source: str


@dataclass(slots=True, frozen=True)
class FormToken:
    visitor_id: str
    campaign_id: str
    issued_at_ms: int


def check_source(value: object, field: str = "source") -> str:
    if not isinstance(value, str) or not SOURCE.fullmatch(value):
        raise ValidationError(
            f"{field}: a source is 1 to 64 letters, digits, '_', '-' or '.' (such as facebook);"
            f" got {value!r}",
            field=field,
        )
    return value


class ReferralCodes:
    """Mints and reads referral codes and landing-form tokens with the deployment's secrets."""

    __slots__ = ("signer",)

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def mint(self, referral: ReferralCode, *, expires_at_ms: int | None = None) -> str:
        check_source(referral.source)
        return self.signer.sign(
            REFERRAL_PURPOSE, [referral.campaign_id, referral.source], expires_at_ms=expires_at_ms
        )

    def read(self, code: str, *, now_ms: int) -> ReferralCode:
        """The referral a genuine, unexpired code names; InvalidSignature or ExpiredToken otherwise."""
        fields = self.signer.verify(code, REFERRAL_PURPOSE, now_ms=now_ms)
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise InvalidSignature("the code does not name a campaign and a source")
        return ReferralCode(fields[0], fields[1])

    def form_token(self, visitor_id: str, campaign_id: str, *, now_ms: int) -> str:
        return self.signer.sign(
            FORM_PURPOSE, [visitor_id, campaign_id, str(now_ms)], expires_at_ms=now_ms + FORM_TOKEN_TTL_MS
        )

    def read_form_token(
        self, token: str, visitor_id: str | None, campaign_id: str, *, now_ms: int
    ) -> FormToken:
        """The token of a form shown to ``visitor_id`` for ``campaign_id``.

        Raises InvalidSignature (forged, another visitor or campaign) or ExpiredToken.
        """
        fields = self.signer.verify(token, FORM_PURPOSE, now_ms=now_ms)
        if len(fields) != 3 or not fields[2] or not fields[2].isdigit():
            raise InvalidSignature("the form token does not have the expected fields")
        if visitor_id is None or fields[0] != visitor_id or fields[1] != campaign_id:
            raise InvalidSignature("the form token was made for another visitor or campaign")
        return FormToken(visitor_id, campaign_id, int(fields[2]))


def click_event_id(code: str, visitor_id: str, now_ms: int) -> str:
    """The same id for the same visitor following the same code within one minute (a reload)."""
    digest = hashlib.sha256(f"{code}\0{visitor_id}\0{now_ms // _MINUTE_MS}".encode()).hexdigest()
    return f"ref_{digest[:32]}"


def lead_id(form_token: str) -> str:
    """One lead per shown form: a double submit (or a resubmission of the same form) repeats the ids."""
    return f"lead_{hashlib.sha256(form_token.encode()).hexdigest()[:32]}"
