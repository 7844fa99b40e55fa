"""API keys: only the hash is configured; scopes decide what a key may do."""

from __future__ import annotations

import pytest

from api.auth import Authenticator, mint_key
from api.errors import ApiError


def test_a_minted_key_authenticates_and_its_secret_is_not_stored() -> None:
    new = mint_key({"events:write"})
    assert new.secret not in repr(new.setting)
    assert Authenticator([new.setting]).authenticate(new.secret) == new.setting


@pytest.mark.parametrize("presented", ["", "rfk_nope_secret", "not-a-key", None])
def test_unknown_or_missing_keys_are_refused_with_401(presented: str | None) -> None:
    auth = Authenticator([mint_key({"admin"}).setting])
    with pytest.raises(ApiError) as error:
        auth.authenticate(presented)
    assert error.value.status == 401


def test_a_key_with_the_right_id_but_wrong_secret_is_refused() -> None:
    new = mint_key({"admin"}, key_id="k1")
    auth = Authenticator([new.setting])
    with pytest.raises(ApiError) as error:
        auth.authenticate(new.secret[:-2] + "xx")
    assert error.value.code == "invalid_api_key"


def test_a_key_id_that_would_break_the_key_format_is_refused() -> None:
    from engine.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="letters, digits or '-'"):
        mint_key({"admin"}, key_id="back_end")


def request_with(key: str, origin: str | None = None):
    from aiohttp.test_utils import make_mocked_request

    headers = {"X-Api-Key": key}
    if origin is not None:
        headers["Origin"] = origin
    return make_mocked_request("POST", "/v1/decisions", headers=headers)


def test_a_key_with_only_the_sdk_scopes_can_do_nothing_else() -> None:
    from engine.settings import PUBLIC_SCOPES, SCOPES

    sdk = mint_key(PUBLIC_SCOPES, key_id="sdk")
    auth = Authenticator([sdk.setting])
    for scope in PUBLIC_SCOPES:
        assert auth.require(request_with(sdk.secret), scope) == sdk.setting
    for scope in set(SCOPES) - PUBLIC_SCOPES:
        with pytest.raises(ApiError) as error:
            auth.require(request_with(sdk.secret), scope)
        assert (error.value.status, error.value.code) == (403, "insufficient_scope")


@pytest.mark.parametrize("scopes", [{"admin"}, {"decisions:read", "events:write"}, {"customers:read"}])
def test_a_public_key_with_any_other_scope_is_a_configuration_error(scopes: set[str]) -> None:
    from engine.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError, match="may only hold the scopes decisions:read, interactions:write"
    ):
        mint_key(scopes, public=True)


def test_origins_belong_to_public_keys_and_are_written_as_browsers_send_them() -> None:
    from engine.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="public keys only"):
        mint_key({"decisions:read"}, origins=["https://shop.example"])
    for wrong in ("https://shop.example/", "shop.example", "https://shop.example/page", "*"):
        with pytest.raises(ConfigurationError, match="is not an origin"):
            mint_key({"decisions:read"}, public=True, origins=[wrong])


def test_a_public_key_is_refused_from_a_browser_origin_it_does_not_allow() -> None:
    sdk = mint_key({"decisions:read"}, public=True, origins=["https://shop.example"])
    auth = Authenticator([sdk.setting], cors_origins=["https://www.bank.example"])
    assert auth.require(request_with(sdk.secret, "https://shop.example"), "decisions:read")
    assert auth.require(request_with(sdk.secret, "https://www.bank.example"), "decisions:read")
    assert auth.require(request_with(sdk.secret), "decisions:read")  # an app, not a browser
    with pytest.raises(ApiError) as error:
        auth.require(request_with(sdk.secret, "https://evil.example"), "decisions:read")
    assert (error.value.status, error.value.code) == (403, "origin_not_allowed")
