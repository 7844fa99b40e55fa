"""The local Apache Kafka broker behind ``refract kafka start|stop|status``."""

from ops.kafka.errors import (
    JavaNotFound,
    JavaTooOld,
    KafkaFetchFailed,
    KafkaStartFailed,
    KafkaStartTimeout,
    MavenNotFound,
    PortInUse,
)
from ops.kafka.launcher import KAFKA_VERSION, KafkaStatus, LocalKafka

__all__ = [
    "KAFKA_VERSION",
    "JavaNotFound",
    "JavaTooOld",
    "KafkaFetchFailed",
    "KafkaStartFailed",
    "KafkaStartTimeout",
    "KafkaStatus",
    "LocalKafka",
    "MavenNotFound",
    "PortInUse",
]
