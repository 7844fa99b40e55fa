"""The one settings object of Refract: validated and immutable. ``ops.config`` loads it once."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.campaigns.model import Cap
from engine.channel_settings import ChannelSettings
from engine.errors import ConfigurationError
from engine.segments.calendar import is_known_zone
from engine.signing import MIN_SECRET_LENGTH

SCOPES = (
    "events:write",
    "customers:write",
    "customers:read",
    "imports:write",
    "decisions:read",
    "interactions:write",
    "admin",
)
# The only scopes a public key (the JavaScript SDK's, visible in web pages) may hold.
PUBLIC_SCOPES = frozenset({"decisions:read", "interactions:write"})
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?")


def check_origin(origin: str, where: str) -> str:
    """A browser origin as the Origin header sends it: scheme and host, no path, lowercase."""
    if not _ORIGIN.fullmatch(origin):
        raise ConfigurationError(
            f"{where}: {origin!r} is not an origin; write it as the browser sends it,"
            " e.g. https://shop.example or http://localhost:3000 (no path, no trailing '/')"
        )
    return origin


@dataclass(slots=True, frozen=True)
class ApiKeySetting:
    """An API key as configured: its public id, the SHA-256 of its secret, and its scopes.

    A ``public`` key is meant to be seen (the JavaScript SDK's): it holds only ``PUBLIC_SCOPES``
    and may be used from the browser ``origins`` listed. ``rate_per_s`` and ``burst`` override
    the default rate limit for this key (None: the default; 0 requests/second: unlimited).
    """

    key_id: str
    secret_sha256: str
    scopes: frozenset[str]
    public: bool = False
    origins: tuple[str, ...] = ()
    rate_per_s: float | None = None
    burst: int | None = None

    def __post_init__(self) -> None:
        where = f"API key {self.key_id!r}"
        if self.public and not self.scopes <= PUBLIC_SCOPES:
            raise ConfigurationError(
                f"{where} is public (seen by browsers) so it may only hold the scopes"
                f" {', '.join(sorted(PUBLIC_SCOPES))}; it has {', '.join(sorted(self.scopes))}"
            )
        if self.origins and not self.public:
            raise ConfigurationError(f"{where}: origins are for public keys only (add public: true)")
        for origin in self.origins:
            check_origin(origin, where)
        if self.rate_per_s is not None and not 0 <= self.rate_per_s < math.inf:
            raise ConfigurationError(f"{where}: rate_per_s must be a number >= 0 (0: unlimited)")
        if self.burst is not None and self.burst < 1:
            raise ConfigurationError(f"{where}: burst must be at least 1")


@dataclass(slots=True, frozen=True)
class RocksDBSettings:
    """RocksDB memory, set explicitly: these are per open partition database."""

    block_cache_bytes: int = 16 * 1024 * 1024
    write_buffer_bytes: int = 8 * 1024 * 1024
    max_write_buffers: int = 2
    max_open_files: int = 256


@dataclass(slots=True, frozen=True)
class Settings:
    namespace: str = "refract"
    kafka_bootstrap: str | None = None  # None: run the local broker (refract kafka)
    local_kafka_port: int = 9092
    partitions: int = 4
    replication_factor: int = 1
    data_dir: Path = Path(".refract")
    web_host: str = "127.0.0.1"  # the host other workers and clients reach this worker at
    web_bind: str | None = None  # the address to listen on; default: web_host
    web_port: int = 8080
    worker_name: str = "worker"
    api_keys: tuple[ApiKeySetting, ...] = ()
    max_body_bytes: int = 1024 * 1024
    batch_max_events: int = 2000
    # Wait this long for a batch to fill when fewer events are buffered. 0: take what is there;
    # under load batches form by themselves while the previous batch waits for Kafka.
    batch_within_s: float = 0.0
    standby_replicas: int = 1
    log_level: str = "info"
    # Browser origins allowed to call the public endpoints (api.cors), besides public keys' own.
    cors_origins: tuple[str, ...] = ()
    # Requests per second and burst allowed per API key, per worker process (0: unlimited).
    rate_limit_per_s: float = 1000.0
    rate_limit_burst: int = 2000
    rocksdb: RocksDBSettings = field(default_factory=RocksDBSettings)
    # Global frequency caps per channel, across campaigns (at most N messages in a window).
    channel_caps: tuple[Cap, ...] = ()
    # The time zone of customers without a valid ``timezone`` attribute.
    default_timezone: str = "UTC"
    # For tests and demos only: read "now" (epoch ms) from this file instead of the system clock,
    # so that waits and windows can be fast-forwarded. Unset in production.
    clock_file: Path | None = None
    # How often a worker looks for scheduled syncs that are due (ops.imports.scheduler).
    sync_check_interval_s: float = 15.0
    # Tracking links, unsubscribe links and callback URLs are signed with the first secret and
    # verified with any (rotation). Empty: `refract up` makes a development one (ops.runtime).
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)
    public_url: str | None = None  # the base URL of links in messages; default: web_url
    mailgun_webhook_key: str | None = field(default=None, repr=False)
    twilio_auth_token: str | None = field(default=None, repr=False)
    channels: ChannelSettings = field(default_factory=ChannelSettings)

    def __post_init__(self) -> None:
        if not self.namespace or not all(c.isalnum() or c in "-_." for c in self.namespace):
            raise ConfigurationError(
                f"namespace {self.namespace!r} must be letters, digits, '-', '_' or '.'"
                " (set REFRACT_NAMESPACE)"
            )
        if self.partitions < 1:
            raise ConfigurationError(f"partitions must be at least 1, got {self.partitions}")
        if not 0 < self.web_port < 65536:
            raise ConfigurationError(f"web_port {self.web_port} is not a TCP port")
        if self.max_body_bytes < 1024:
            raise ConfigurationError("max_body_bytes must be at least 1024")
        if self.sync_check_interval_s <= 0:
            raise ConfigurationError("sync_check_interval_s must be positive (REFRACT_SYNC_CHECK_INTERVAL_S)")
        if self.batch_max_events < 1 or self.batch_within_s < 0:
            raise ConfigurationError("batch_max_events must be positive and batch_within_s not negative")
        if not is_known_zone(self.default_timezone):
            raise ConfigurationError(
                f"default_timezone {self.default_timezone!r} is not an IANA time zone such as"
                " America/Montevideo (set REFRACT_DEFAULT_TIMEZONE)"
            )
        if any(len(secret) < MIN_SECRET_LENGTH for secret in self.signing_secrets):
            raise ConfigurationError(
                f"every signing secret must be at least {MIN_SECRET_LENGTH} characters"
                " (set REFRACT_SIGNING_SECRET to long random values, comma-separated)"
            )
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"public_url {self.public_url!r} must start with http:// or https:// (set REFRACT_PUBLIC_URL)"
            )
        for origin in self.cors_origins:
            check_origin(origin, "cors_origins")
        if not 0 <= self.rate_limit_per_s < math.inf or self.rate_limit_burst < 1:
            raise ConfigurationError(
                "rate_limit_per_s must be a number >= 0 (0: unlimited) and rate_limit_burst at least 1"
            )
        for key in self.api_keys:
            unknown = key.scopes - set(SCOPES)
            if unknown:
                raise ConfigurationError(
                    f"API key {key.key_id!r} has unknown scopes {sorted(unknown)};"
                    f" known scopes are {', '.join(SCOPES)}"
                )

    @property
    def group_id(self) -> str:
        return f"{self.namespace}-processor"

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def links_url(self) -> str:
        """Where links in messages point (tracking, unsubscribe, provider callbacks)."""
        return (self.public_url or self.web_url).rstrip("/")
