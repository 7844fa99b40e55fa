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
