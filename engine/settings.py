"""The one settings object of Refract: validated and immutable. ``ops.config`` loads it once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.channel_settings import ChannelSettings
from engine.errors import ConfigurationError

SCOPES = (
    "events:write",
    "customers:write",
    "customers:read",
    "imports:write",
    "decisions:read",
    "interactions:write",
    "admin",
)


@dataclass(slots=True, frozen=True)
class ApiKeySetting:
    """An API key as configured: its public id, the SHA-256 of its secret, and its scopes."""

    key_id: str
    secret_sha256: str
    scopes: frozenset[str]


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
    rocksdb: RocksDBSettings = field(default_factory=RocksDBSettings)
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
        if self.batch_max_events < 1 or self.batch_within_s < 0:
            raise ConfigurationError("batch_max_events must be positive and batch_within_s not negative")
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
