"""The files that configure the local broker: ``server.properties`` and ``log4j2.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

NODE_ID = 1


def render_server_properties(*, port: int, controller_port: int, data_dir: Path) -> str:
    """A single-node KRaft broker that is also its own controller, on 127.0.0.1 only.

    Topics are never created on first use: Refract creates its topics explicitly, and a typo in a
    topic name must fail instead of creating a new topic.
    """
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "4",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    lines = ["# Written by `refract kafka start`; rewritten on every start."]
    lines += [f"{key}={_escape_property(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_log4j2_yaml(log_path: Path) -> str:
    """Log at INFO to ``log_path``, rolled at 50 MB with two old files kept."""
    # JSON strings are valid YAML scalars, which quotes any path safely.
    file_name = json.dumps(str(log_path))
    file_pattern = json.dumps(f"{log_path}.%i")
    return (
        "Configuration:\n"
        "  Appenders:\n"
        "    RollingFile:\n"
        "      name: File\n"
        f"      fileName: {file_name}\n"
        f"      filePattern: {file_pattern}\n"
        '      PatternLayout: {pattern: "[%d] %p %m (%c)%n"}\n'
        "      SizeBasedTriggeringPolicy: {size: 50MB}\n"
        "      DefaultRolloverStrategy: {max: 2}\n"
        "  Loggers:\n"
        "    Root: {level: INFO, AppenderRef: [{ref: File}]}\n"
    )


def configured_port(server_properties: str) -> int | None:
    """The client port in a ``server.properties`` written by ``render_server_properties``."""
    for line in server_properties.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "advertised.listeners":
            _, _, port = value.strip().rpartition(":")
            return int(port) if port.isdigit() else None
    return None


def _escape_property(value: str) -> str:
    # java.util.Properties treats a backslash as an escape character.
    return value.replace("\\", "\\\\")
