"""Development defaults of a worker: the signing secret made by `up` and reused by `worker`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from engine.settings import Settings
from ops.runtime import DEV_SIGNING_SECRET_FILE, dev_signing_secret


def test_up_makes_a_private_signing_secret_once_and_worker_reuses_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    made = dev_signing_secret(settings, create=True)
    (secret,) = made.signing_secrets
    assert len(secret) >= 32
    path = tmp_path / DEV_SIGNING_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_signing_secret(settings, create=True).signing_secrets == (secret,)
    assert dev_signing_secret(settings, create=False).signing_secrets == (secret,)


def test_a_worker_without_a_secret_or_a_dev_one_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="REFRACT_SIGNING_SECRET is not set"):
        dev_signing_secret(Settings(data_dir=tmp_path), create=False)
    assert not (tmp_path / DEV_SIGNING_SECRET_FILE).exists()


def test_a_configured_secret_is_used_as_it_is(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, signing_secrets=("configured-secret-0123456789",))
    assert dev_signing_secret(settings, create=True) is settings
    assert not (tmp_path / DEV_SIGNING_SECRET_FILE).exists()
