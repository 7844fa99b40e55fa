"""Channel settings from REFRACT_* variables and the settings file; secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from ops.config import known_variables, load_settings


def test_nothing_configured_means_no_channel() -> None:
    assert load_settings({}).channels.enabled_channels() == ()


def test_environment_variables_configure_providers_field_by_field() -> None:
    settings = load_settings(
        {
            "REFRACT_SMTP_HOST": "smtp.example.net",
            "REFRACT_SMTP_PORT": "465",
            "REFRACT_SMTP_SECURITY": "tls",
            "REFRACT_SMTP_USERNAME": "refract",
            "REFRACT_SMTP_PASSWORD": "s3cret",
            "REFRACT_SMTP_RATE_PER_S": "25",
            "REFRACT_TWILIO_ACCOUNT_SID": "AC1",
            "REFRACT_TWILIO_AUTH_TOKEN": "tok",
            "REFRACT_TWILIO_FROM_NUMBER": "+15005550006",
            "REFRACT_DELIVERY_MAX_ATTEMPTS": "7",
        }
    ).channels
    assert settings.smtp is not None and settings.smtp.port == 465 and settings.smtp.rate_per_s == 25.0
    assert settings.enabled_channels() == ("email", "sms")
    assert (settings.email, settings.sms, settings.retry.max_attempts) == ("smtp", "twilio", 7)


def test_secrets_never_show_in_a_repr() -> None:
    env = {"REFRACT_SMTP_HOST": "h", "REFRACT_SMTP_USERNAME": "u", "REFRACT_SMTP_PASSWORD": "pa55word"}
    assert "pa55word" not in repr(load_settings(env))


def test_the_settings_file_configures_channels(tmp_path: Path) -> None:
    path = tmp_path / "refract.yaml"
    path.write_text(
        "channels:\n"
        "  email_from: news@shop.example\n"
        "  mailgun: {domain: mg.shop.example, region: eu}\n"
        "  retry: {max_attempts: 3}\n"
    )
    settings = load_settings({"REFRACT_MAILGUN_API_KEY": "key-1"}, settings_file=path).channels
    assert settings.mailgun is not None and settings.mailgun.url == "https://api.eu.mailgun.net"
    assert settings.email_from == "news@shop.example" and settings.retry.max_attempts == 3


def test_a_secret_in_the_settings_file_is_refused_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "refract.yaml"
    path.write_text("channels:\n  mailgun: {domain: mg.shop.example, api_key: key-1}\n")
    with pytest.raises(ConfigurationError, match="REFRACT_MAILGUN_API_KEY"):
        load_settings({}, settings_file=path)


def test_two_email_providers_need_a_choice() -> None:
    env = {"REFRACT_SMTP_HOST": "h", "REFRACT_MAILGUN_DOMAIN": "d", "REFRACT_MAILGUN_API_KEY": "k"}
    with pytest.raises(ConfigurationError, match="REFRACT_EMAIL_PROVIDER"):
        load_settings(env)
    assert load_settings({**env, "REFRACT_EMAIL_PROVIDER": "mailgun"}).channels.email == "mailgun"


def test_a_partly_configured_provider_names_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match="REFRACT_APNS_KEY_FILE"):
        load_settings({"REFRACT_APNS_KEY_ID": "K"})


def test_every_channel_variable_is_known() -> None:
    known = known_variables()
    for name in ("REFRACT_SMTP_HOST", "REFRACT_SMS_GATEWAY_BODY_TEMPLATE", "REFRACT_DELIVERY_MAX_PENDING"):
        assert name in known
