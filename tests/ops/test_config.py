"""Settings: defaults, a YAML file, REFRACT_* variables, and clear errors."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from api.auth import mint_key
from engine.errors import ConfigurationError
from ops.cli import main
from ops.config import load_settings


def test_defaults_need_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert (settings.namespace, settings.partitions, settings.web_port) == ("refract", 4, 8080)
    assert settings.kafka_bootstrap is None
    assert settings.group_id == "refract-processor"


def test_environment_overrides_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "refract.yaml"
    path.write_text("namespace: bank\npartitions: 8\nrocksdb:\n  block_cache_bytes: 1048576\n")
    settings = load_settings(
        env={"REFRACT_PARTITIONS": "12", "REFRACT_KAFKA_BOOTSTRAP": "k:9092"}, settings_file=path
    )
    assert (settings.namespace, settings.partitions, settings.kafka_bootstrap) == ("bank", 12, "k:9092")
    assert settings.rocksdb.block_cache_bytes == 1048576


def test_a_wrong_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="REFRACT_WEB_PORT: 'eighty' is not an integer"):
        load_settings(env={"REFRACT_WEB_PORT": "eighty"})


def test_an_unknown_setting_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "refract.yaml"
    path.write_text("partitons: 8\n")
    with pytest.raises(ConfigurationError, match="partitons: unknown setting"):
        load_settings(env={}, settings_file=path)


def test_api_keys_are_read_with_their_scopes_and_unknown_scopes_refused() -> None:
    key = mint_key({"customers:read", "events:write"}).setting
    raw = f"{key.key_id}:{key.secret_sha256}:customers:read,events:write"
    settings = load_settings(env={"REFRACT_API_KEYS": raw})
    assert settings.api_keys[0].scopes == {"customers:read", "events:write"}
    with pytest.raises(ConfigurationError, match="unknown scopes"):
        load_settings(env={"REFRACT_API_KEYS": f"{key.key_id}:{key.secret_sha256}:everything"})
    with pytest.raises(ConfigurationError, match="refract keys create"):
        load_settings(env={"REFRACT_API_KEYS": "just-a-secret"})


def test_an_invalid_namespace_says_what_is_allowed() -> None:
    with pytest.raises(ConfigurationError, match="letters, digits"):
        load_settings(env={"REFRACT_NAMESPACE": "bad name"})


def test_signing_secrets_are_read_comma_separated_and_hidden_from_repr(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "REFRACT_SIGNING_SECRET": "new-secret-0123456789abcdef, old-secret-0123456789abcdef",
            "REFRACT_MAILGUN_WEBHOOK_KEY": "key-mailgun-secret",
            "REFRACT_TWILIO_AUTH_TOKEN": "twilio-secret",
        }
    )
    assert settings.signing_secrets == ("new-secret-0123456789abcdef", "old-secret-0123456789abcdef")
    assert (settings.mailgun_webhook_key, settings.twilio_auth_token) == (
        "key-mailgun-secret",
        "twilio-secret",
    )
    assert not any(secret in repr(settings) for secret in ("new-secret", "key-mailgun", "twilio-secret"))
    path = tmp_path / "refract.yaml"
    path.write_text("signing_secrets: [file-secret-0123456789abcdef]\n")
    assert load_settings(env={}, settings_file=path).signing_secrets == ("file-secret-0123456789abcdef",)


def test_a_short_signing_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="REFRACT_SIGNING_SECRET"):
        load_settings(env={"REFRACT_SIGNING_SECRET": "short"})


def test_links_point_at_the_public_url_or_else_the_worker() -> None:
    assert load_settings(env={"REFRACT_WEB_PORT": "8090"}).links_url == "http://127.0.0.1:8090"
    public = load_settings(env={"REFRACT_PUBLIC_URL": "https://go.bank.example/refract/"})
    assert public.links_url == "https://go.bank.example/refract"
    with pytest.raises(ConfigurationError, match="REFRACT_PUBLIC_URL"):
        load_settings(env={"REFRACT_PUBLIC_URL": "go.bank.example"})


def test_a_public_key_with_origins_and_its_own_rate_limit_is_read_from_the_environment() -> None:
    key = mint_key({"decisions:read"}, public=True).setting
    raw = (
        f"{key.key_id}:{key.secret_sha256}:decisions:read,interactions:write"
        "?public&origin=https://shop.example&origin=http://localhost:3000&rate_per_s=50&burst=100"
    )
    settings = load_settings(
        env={"REFRACT_API_KEYS": raw, "REFRACT_CORS_ORIGINS": "https://a.example, https://b.example"}
    )
    (read,) = settings.api_keys
    assert read.public and read.origins == ("https://shop.example", "http://localhost:3000")
    assert (read.rate_per_s, read.burst) == (50.0, 100)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    with pytest.raises(ConfigurationError, match="unknown option 'orgin'"):
        load_settings(env={"REFRACT_API_KEYS": f"{key.key_id}:{key.secret_sha256}:decisions:read?orgin=x"})


def test_a_public_key_in_the_settings_file_may_not_hold_other_scopes(tmp_path: Path) -> None:
    key = mint_key({"admin"}).setting
    path = tmp_path / "refract.yaml"
    path.write_text(
        "cors_origins: [https://shop.example]\nrate_limit_per_s: 5\nrate_limit_burst: 10\n"
        f"api_keys:\n  - {{id: {key.key_id}, sha256: {key.secret_sha256}, scopes: [admin], public: true}}\n"
    )
    with pytest.raises(ConfigurationError, match="may only hold the scopes"):
        load_settings(env={}, settings_file=path)
    path.write_text(path.read_text().replace("[admin]", "[decisions:read]"))
    settings = load_settings(env={}, settings_file=path)
    assert settings.api_keys[0].public and settings.cors_origins == ("https://shop.example",)
    assert (settings.rate_limit_per_s, settings.rate_limit_burst) == (5.0, 10)


def test_what_keys_create_prints_for_a_public_key_configures_it(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["keys", "create", "--public", "--origin", "https://shop.example", "--rate-per-s", "20"])
    assert code == 0
    lines = out.getvalue().splitlines()
    variable = next(line for line in lines if "REFRACT_API_KEYS=" in line).split("=", 1)[1].strip("'")
    from_env = load_settings(env={"REFRACT_API_KEYS": variable}).api_keys
    yaml_lines = "\n".join(lines[lines.index("or in refract.yaml:") + 1 :])
    path = tmp_path / "refract.yaml"
    path.write_text(yaml_lines.replace("  api_keys:", "api_keys:", 1))
    from_file = load_settings(env={}, settings_file=path).api_keys
    assert from_env == from_file
    (key,) = from_env
    assert key.public and key.scopes == {"decisions:read", "interactions:write"}
    assert (key.origins, key.rate_per_s) == (("https://shop.example",), 20.0)
