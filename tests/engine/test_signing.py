"""Signed tokens: what is genuine reads back, anything altered, expired or misused is refused."""

from __future__ import annotations

import base64

import pytest

from engine.errors import ConfigurationError, RefractError, ValidationError
from engine.signing import ExpiredToken, InvalidSignature, Signer, key_id, parse_secrets

OLD = "old-secret-0123456789abcdef"
NEW = "new-secret-fedcba9876543210"


def test_a_signed_token_reads_back_its_fields() -> None:
    signer = Signer([NEW])
    token = signer.sign("c", ["dlv_1", "cust-ü", None, "https://x.com/?a=1&b=2"])
    assert signer.verify(token, "c", now_ms=0) == ("dlv_1", "cust-ü", None, "https://x.com/?a=1&b=2")


def test_a_token_is_url_safe_and_starts_with_the_key_id() -> None:
    token = Signer([NEW]).sign("c", ["a/b+c", "d e"])
    assert token.startswith(key_id(NEW) + ".")
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize("position", ["payload", "tag", "key id"])
def test_a_token_altered_anywhere_is_refused(position: str) -> None:
    signer = Signer([NEW])
    kid, payload, tag = signer.sign("c", ["dlv_1", "cust-1"]).split(".")
    flip = {"A": "B"}.get
    if position == "payload":
        payload = (flip(payload[0]) or "A") + payload[1:]
    elif position == "tag":
        tag = tag[:-1] + ("A" if tag[-1] != "A" else "B")
    else:
        kid = "AAAA" if kid != "AAAA" else "BBBB"
    with pytest.raises(InvalidSignature):
        signer.verify(f"{kid}.{payload}.{tag}", "c", now_ms=0)


def test_a_forged_payload_with_the_right_key_id_is_refused() -> None:
    signer = Signer([NEW])
    kid, _, tag = signer.sign("c", ["dlv_1", "cust-1"]).split(".")
    forged = base64.urlsafe_b64encode(b"c\x1f\x1fdlv_1\x1fsomeone-else").rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        signer.verify(f"{kid}.{forged}.{tag}", "c", now_ms=0)


@pytest.mark.parametrize("garbage", ["", "...", "abc", "a.b.c", "xM2M.!!!.###", "é.é.é", "a" * 500])
def test_garbage_is_an_invalid_signature_not_a_crash(garbage: str) -> None:
    with pytest.raises(InvalidSignature):
        Signer([NEW]).verify(garbage, "c", now_ms=0)


def test_a_token_made_for_one_purpose_is_refused_for_another() -> None:
    signer = Signer([NEW])
    token = signer.sign("o", ["dlv_1", "cust-1"])
    with pytest.raises(InvalidSignature, match="not made for 'u'"):
        signer.verify(token, "u", now_ms=0)


def test_a_token_expires_at_its_deadline() -> None:
    signer = Signer([NEW])
    token = signer.sign("c", ["x"], expires_at_ms=1_000)
    assert signer.verify(token, "c", now_ms=999) == ("x",)
    with pytest.raises(ExpiredToken):
        signer.verify(token, "c", now_ms=1_000)


def test_the_expiry_is_signed_and_cannot_be_extended() -> None:
    signer = Signer([NEW])
    kid, _, tag = signer.sign("c", ["x"], expires_at_ms=1_000).split(".")
    extended = base64.urlsafe_b64encode(b"c\x1f99999999\x1fx").rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        signer.verify(f"{kid}.{extended}.{tag}", "c", now_ms=5_000)


def test_after_rotation_old_tokens_still_verify_and_new_ones_use_the_new_secret() -> None:
    before = Signer([OLD]).sign("c", ["x"])
    rotated = Signer([NEW, OLD])
    assert rotated.verify(before, "c", now_ms=0) == ("x",)
    after = rotated.sign("c", ["y"])
    assert after.startswith(key_id(NEW))
    assert Signer([NEW]).verify(after, "c", now_ms=0) == ("y",)
    with pytest.raises(InvalidSignature):
        Signer([NEW]).verify(before, "c", now_ms=0)  # the old secret retired


def test_a_secret_from_another_deployment_does_not_verify() -> None:
    token = Signer(["another-deployment-secret-0000"]).sign("c", ["x"])
    with pytest.raises(InvalidSignature):
        Signer([NEW]).verify(token, "c", now_ms=0)


def test_errors_are_refract_errors_with_stable_codes() -> None:
    assert issubclass(InvalidSignature, RefractError) and issubclass(ExpiredToken, RefractError)
    assert (InvalidSignature.code, ExpiredToken.code) == ("invalid_signature", "expired_token")


def test_no_secret_or_a_short_one_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="REFRACT_SIGNING_SECRET"):
        Signer([])
    with pytest.raises(ConfigurationError, match="at least 16"):
        Signer(["short"])


def test_a_field_holding_the_separator_is_refused() -> None:
    with pytest.raises(ValidationError):
        Signer([NEW]).sign("c", ["a\x1fb"])


def test_secrets_are_read_comma_separated_newest_first() -> None:
    assert parse_secrets(f" {NEW}, {OLD} ,") == (NEW, OLD)
