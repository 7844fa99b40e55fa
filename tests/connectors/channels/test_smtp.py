"""SmtpProvider against a local aiosmtpd server: the message, TLS and auth, and reply mapping."""

from __future__ import annotations

import email

import pytest

from connectors.channels.errors import InvalidAddress, ProviderError
from connectors.channels.smtp import SmtpProvider, build_message
from engine.channel_settings import SmtpSettings
from tests.conftest import free_port
from tests.connectors.channels.conftest import make_delivery
from tests.support.providers.keys import Certificate
from tests.support.providers.smtp import FakeSmtp


def plain(port: int, **extra: object) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security="none", **extra)  # type: ignore[arg-type]


async def test_a_message_has_both_parts_a_stable_message_id_and_one_click_unsubscribe() -> None:
    with FakeSmtp(free_port()) as server:
        provider = SmtpProvider(plain(server.port))
        delivery = make_delivery(unsubscribe_url="https://r.example/u/abc")
        receipt = await provider.send(delivery)
        await provider.close()
    [mail] = server.received
    message = mail.message
    assert receipt.provider_message_id == f"<{delivery.delivery_id}@shop.example>"
    assert message["Message-ID"] == receipt.provider_message_id
    assert message["List-Unsubscribe"] == "<https://r.example/u/abc>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "Hi Ana"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content().strip() == "<p>Hi Ana</p>"  # type: ignore[union-attr]
    assert mail.recipients == ("ana@example.com",)


def test_a_delivery_is_the_same_bytes_each_time_it_is_built_as_a_retry_needs() -> None:
    delivery = make_delivery()
    assert build_message(delivery, None).data == build_message(delivery, None).data


def test_a_part_that_holds_the_usual_boundary_gets_another_one() -> None:
    usual = email.message_from_bytes(build_message(make_delivery(), None).data).get_boundary()
    assert usual is not None
    text = f"Hi Ana, quoting {usual} in the text"

    message = email.message_from_bytes(build_message(make_delivery(text=text), None).data)

    assert message.get_boundary() != usual
    assert message.get_payload(0).get_payload(decode=True).decode() == text  # type: ignore[union-attr]


async def test_non_ascii_subjects_and_sender_names_arrive_intact() -> None:
    with FakeSmtp(free_port()) as server:
        provider = SmtpProvider(plain(server.port))
        await provider.send(
            make_delivery(subject="Tu préstamo está listo ✓", **{"from": "Tienda Ñandú <news@shop.example>"})
        )
        await provider.close()
    [mail] = server.received
    assert mail.message["Subject"] == "Tu préstamo está listo ✓"
    assert mail.message["From"] == "Tienda Ñandú <news@shop.example>"
    assert mail.mail_from == "news@shop.example"


async def test_messages_reuse_pooled_connections() -> None:
    with FakeSmtp(free_port()) as server:
        provider = SmtpProvider(plain(server.port, pool_size=2))
        for _ in range(5):
            await provider.send(make_delivery())
        assert len(provider._idle) == 1  # one connection served five sequential sends
        await provider.close()
    assert len(server.received) == 5


async def test_starttls_with_auth_sends_to_a_relay_that_requires_both(certificate: Certificate) -> None:
    with FakeSmtp(free_port(), certificate=certificate, username="relay", password="s3cret") as server:
        settings = SmtpSettings(
            host="localhost",
            port=server.port,
            security="starttls",
            username="relay",
            password="s3cret",
            ca_file=certificate.cert_file,
        )
        provider = SmtpProvider(settings)
        await provider.send(make_delivery())
        await provider.close()
    assert len(server.received) == 1


async def test_implicit_tls_sends(certificate: Certificate) -> None:
    with FakeSmtp(free_port(), certificate=certificate, implicit_tls=True) as server:
        settings = SmtpSettings(
            host="localhost", port=server.port, security="tls", ca_file=certificate.cert_file
        )
        provider = SmtpProvider(settings)
        await provider.send(make_delivery())
        await provider.close()
    assert len(server.received) == 1


async def test_a_wrong_password_is_a_permanent_failure(certificate: Certificate) -> None:
    with FakeSmtp(free_port(), certificate=certificate, username="relay", password="right") as server:
        settings = SmtpSettings(
            host="localhost",
            port=server.port,
            username="relay",
            password="wrong",
            ca_file=certificate.cert_file,
        )
        provider = SmtpProvider(settings)
        with pytest.raises(ProviderError) as caught:
            await provider.send(make_delivery())
        await provider.close()
    assert not caught.value.retriable
    assert caught.value.provider_code == "535"


async def test_421_is_retriable_and_the_next_attempt_goes_through() -> None:
    with FakeSmtp(free_port()) as server:
        server.fail_next(1, "421 4.7.0 Try again later")
        provider = SmtpProvider(plain(server.port))
        with pytest.raises(ProviderError) as caught:
            await provider.send(make_delivery())
        assert caught.value.retriable and caught.value.provider_code == "421"
        await provider.send(make_delivery())
        await provider.close()
    assert len(server.received) == 1


async def test_an_unknown_mailbox_bounces_without_retry() -> None:
    with FakeSmtp(free_port()) as server:
        server.refuse("nobody@example.com")
        provider = SmtpProvider(plain(server.port))
        with pytest.raises(ProviderError) as caught:
            await provider.send(make_delivery(address="nobody@example.com"))
        await provider.close()
    assert not caught.value.retriable
    assert caught.value.status == "bounced"
    assert caught.value.provider_code == "550"


async def test_a_refused_connection_is_retriable() -> None:
    provider = SmtpProvider(plain(free_port(), timeout_s=2.0))
    with pytest.raises(ProviderError) as caught:
        await provider.send(make_delivery())
    assert caught.value.retriable


async def test_a_malformed_address_is_refused_before_connecting() -> None:
    provider = SmtpProvider(plain(free_port()))
    with pytest.raises(InvalidAddress):
        await provider.send(make_delivery(address="not an address"))
