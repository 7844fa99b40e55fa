"""Errors of the local Kafka broker: each message says in one line what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path

from engine.errors import InfrastructureError


class JavaNotFound(InfrastructureError):
    """No ``java`` executable under ``$JAVA_HOME/bin`` or on ``PATH``."""

    code = "java_not_found"
    retriable = False

    def __init__(self, minimum_major: int) -> None:
        super().__init__(
            f"Java {minimum_major} or newer is needed to run the local Kafka broker, but no java"
            " was found in $JAVA_HOME/bin or on PATH: install openjdk-17-jre-headless"
            " or set JAVA_HOME"
        )
        self.minimum_major = minimum_major


class JavaTooOld(InfrastructureError):
    """The ``java`` found is older than the broker needs (or its version could not be read)."""

    code = "java_too_old"
    retriable = False

    def __init__(self, minimum_major: int, found: str, java: Path) -> None:
        super().__init__(
            f"Java {minimum_major} or newer is needed to run the local Kafka broker, found Java"
            f" {found} at {java}: install openjdk-17-jre-headless or set JAVA_HOME"
        )
        self.minimum_major = minimum_major
        self.found = found
        self.java = java


class MavenNotFound(InfrastructureError):
    """Kafka is not in the jar cache and there is no ``mvn`` on ``PATH`` to fetch it."""

    code = "maven_not_found"
    retriable = False

    def __init__(self, version: str, libs_dir: Path) -> None:
        super().__init__(
            f"Kafka {version} is not in the cache ({libs_dir}) and Maven is needed to download"
            " it, but no mvn was found on PATH: install maven, or copy the Kafka jars"
            f" into {libs_dir}"
        )
        self.version = version
        self.libs_dir = libs_dir


class KafkaFetchFailed(InfrastructureError):
    """Maven could not download the broker jars (network, mirror, or unknown version)."""

    code = "kafka_fetch_failed"

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(
            f"Could not download Kafka {version} with Maven ({reason}): check that Maven Central"
            " (or the mirror in ~/.m2/settings.xml) is reachable and the version exists,"
            " then retry"
        )
        self.version = version
        self.reason = reason


class PortInUse(InfrastructureError):
    """Another program listens on a port the local broker needs."""

    code = "port_in_use"
    retriable = False

    def __init__(self, port: int, role: str = "client") -> None:
        super().__init__(
            f"Port {port} on 127.0.0.1 (the local Kafka broker's {role} port) is already used by"
            " another program: stop it, choose other ports with REFRACT_KAFKA_PORT, or use that"
            " cluster instead with REFRACT_KAFKA_BOOTSTRAP"
        )
        self.port = port
        self.role = role


class KafkaStartFailed(InfrastructureError):
    """The broker process could not be started, or exited before it was ready.

    The first line of the message says what happened; the broker's last log lines follow it
    (also in ``log_tail``).
    """

    code = "kafka_start_failed"

    def __init__(self, summary: str, log_tail: str = "") -> None:
        message = summary if not log_tail else f"{summary}\n{log_tail}"
        super().__init__(message)
        self.summary = summary
        self.log_tail = log_tail


class KafkaStartTimeout(KafkaStartFailed):
    """The broker process runs but did not become ready before the deadline."""

    code = "kafka_start_timeout"
