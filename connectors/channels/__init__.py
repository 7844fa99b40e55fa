"""Outbound providers: email (SMTP, Mailgun), SMS (Twilio, an HTTP gateway), push (FCM, APNs).

Each provider sends one ``engine.deliveries.Delivery`` and answers with a ``SendReceipt`` or a
``ProviderError`` saying whether trying again may help. ``build_providers`` makes the ones the
settings configure.
"""

from connectors.channels.base import Provider, SendReceipt
from connectors.channels.build import Providers, build_providers
from connectors.channels.errors import ChannelError, InvalidAddress, InvalidPushToken, ProviderError

__all__ = [
    "ChannelError",
    "InvalidAddress",
    "InvalidPushToken",
    "Provider",
    "ProviderError",
    "Providers",
    "SendReceipt",
    "build_providers",
]
