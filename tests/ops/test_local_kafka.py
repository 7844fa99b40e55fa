"""LocalKafka against real processes: fast error cases first, then one real broker lifecycle."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from ops.kafka import (
    KAFKA_VERSION,
    JavaNotFound,
    JavaTooOld,
    KafkaFetchFailed,
    KafkaStartFailed,
    KafkaStartTimeout,
    LocalKafka,
    MavenNotFound,
    PortInUse,
)
from ops.kafka.commands import EXIT_NOT_RUNNING
from ops.kafka.commands import run as run_kafka_command
from ops.kafka.install import libs_dir_for
from ops.kafka.java import parse_java_major
from ops.kafka.ports import port_is_free
from ops.kafka.process import is_alive
from tests.support.waiting import wait_for

RESERVED_PORTS = {9092, 9093, 19092, 19093}


def free_ports(count: int) -> list[int]:
    """Distinct ports nothing listens on, never the ports of the shared development broker."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(probe)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port not in RESERVED_PORTS:
                ports.append(port)
    finally:
        for probe in sockets:
            probe.close()
    return ports


def write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_fake_java(directory: Path, *, reported_version: str, run: str = "exit 0\n") -> Path:
    """A ``java`` that reports ``reported_version`` to ``-version`` and otherwise runs ``run``."""
    return write_script(
        directory / "java",
        f'if [ "$1" = "-version" ]; then\n'
        f"  echo 'openjdk version \"{reported_version}\" 2019-01-15' >&2\n"
        f"  exit 0\n"
        f"fi\n" + run,
    )


def make_fake_install(kafka: LocalKafka) -> None:
    """A jar cache that counts as installed, and a data directory that counts as formatted."""
    libs_dir = libs_dir_for(kafka.cache_dir, kafka.version)
    libs_dir.mkdir(parents=True)
    (libs_dir / f"kafka_2.13-{kafka.version}.jar").write_bytes(b"")
    kafka.data_dir.mkdir(parents=True)
    (kafka.data_dir / "meta.properties").write_text("version=1\n")


def broker_processes(server_properties: Path) -> list[int]:
    """Pids of every process whose command line names this server.properties."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(server_properties).encode() in arguments and is_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def make_kafka(tmp_path: Path) -> Iterator[Callable[..., LocalKafka]]:
    """Factory of LocalKafka homes in tmp_path; every broker it made is stopped afterwards."""
    made: list[LocalKafka] = []

    def make(**options: object) -> LocalKafka:
        if "port" not in options:
            options["port"], options["controller_port"] = free_ports(2)
        kafka = LocalKafka(tmp_path / f"home-{len(made)}", **options)  # type: ignore[arg-type]
        made.append(kafka)
        return kafka

    yield make
    for kafka in made:
        kafka.stop(timeout_s=10)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('Picked up JAVA_TOOL_OPTIONS: -Xss1m\nopenjdk version "11.0.2" 2019-01-15', 11),
        ('java version "1.8.0_292"', 8),
        ("command not found", None),
    ],
)
def test_java_major_version_is_read_from_java_version_output(output, major):
    assert parse_java_major(output) == major


def test_start_without_java_says_to_install_java(make_kafka, tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    kafka = make_kafka()

    with pytest.raises(JavaNotFound) as raised:
        kafka.start()

    message = str(raised.value)
    assert "Java 17 or newer" in message
    assert "JAVA_HOME" in message
    assert "\n" not in message
    assert not kafka.pid_path.exists()


@pytest.mark.parametrize("found_through", ["JAVA_HOME", "PATH"])
def test_start_with_java_11_says_java_17_is_needed(make_kafka, tmp_path, monkeypatch, found_through):
    java = make_fake_java(tmp_path / "jdk11" / "bin", reported_version="11.0.2")
    if found_through == "JAVA_HOME":
        monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk11"))
    else:
        monkeypatch.delenv("JAVA_HOME", raising=False)
        monkeypatch.setenv("PATH", f"{java.parent}{os.pathsep}{os.environ['PATH']}")
    kafka = make_kafka()

    with pytest.raises(JavaTooOld) as raised:
        kafka.start()

    message = str(raised.value)
    assert f"found Java 11 at {java}" in message
    assert "\n" not in message


def test_fetch_without_maven_says_to_install_maven(make_kafka, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    kafka = make_kafka(port=free_ports(1)[0], cache_dir=tmp_path / "cache")

    with pytest.raises(MavenNotFound) as raised:
        kafka.ensure_installed()

    assert "mvn" in str(raised.value)
    assert str(kafka.libs_dir) in str(raised.value)
    assert not kafka.libs_dir.exists()


def test_failed_fetch_leaves_no_partial_cache(make_kafka, tmp_path, monkeypatch):
    fake_maven = write_script(
        tmp_path / "bin" / "mvn",
        'mkdir -p "$(dirname "$3")/libs" && touch "$(dirname "$3")/libs/half.jar"\n'
        'echo "[ERROR] Failed to collect dependencies for kafka_2.13:0.0.0" && exit 1\n',
    )
    monkeypatch.setenv("PATH", f"{fake_maven.parent}{os.pathsep}{os.environ['PATH']}")
    kafka = make_kafka(port=free_ports(1)[0], cache_dir=tmp_path / "cache", version="0.0.0")

    with pytest.raises(KafkaFetchFailed) as raised:
        kafka.ensure_installed()

    assert "Failed to collect dependencies" in str(raised.value)
    assert not kafka.libs_dir.exists()
    assert list(kafka.libs_dir.parent.glob(".fetch-*")) == []


@pytest.mark.parametrize("taken", ["client", "controller"])
def test_start_on_a_taken_port_names_the_port(make_kafka, taken):
    client_port, controller_port = free_ports(2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", client_port if taken == "client" else controller_port))
        listener.listen()
        kafka = make_kafka(port=client_port, controller_port=controller_port)

        with pytest.raises(PortInUse) as raised:
            kafka.start()

    taken_port = raised.value.port
    assert taken_port == (client_port if taken == "client" else controller_port)
    assert f"Port {taken_port}" in str(raised.value)
    assert "REFRACT_KAFKA_PORT" in str(raised.value)
    assert "REFRACT_KAFKA_BOOTSTRAP" in str(raised.value)
    assert not kafka.pid_path.exists()


def test_broker_that_exits_while_starting_is_reported_with_its_output(make_kafka, tmp_path, monkeypatch):
    make_fake_java(
        tmp_path / "jdk" / "bin",
        reported_version="17.0.2",
        run='echo "Exception in thread main: no such listener" && exit 1\n',
    )
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    kafka = make_kafka(cache_dir=tmp_path / "cache")
    make_fake_install(kafka)

    with pytest.raises(KafkaStartFailed) as raised:
        kafka.start(timeout_s=20)

    assert not isinstance(raised.value, KafkaStartTimeout)
    assert "no such listener" in raised.value.log_tail
    assert not kafka.pid_path.exists()


def test_broker_that_never_gets_ready_is_stopped_after_the_timeout(make_kafka, tmp_path, monkeypatch):
    make_fake_java(
        tmp_path / "jdk" / "bin",
        reported_version="17.0.2",
        run='echo "waiting for the controller quorum"\n'
        "trap 'exit 0' TERM\nwhile true; do sleep 0.05; done\n",
    )
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    kafka = make_kafka(cache_dir=tmp_path / "cache")
    make_fake_install(kafka)

    with pytest.raises(KafkaStartTimeout) as raised:
        kafka.start(timeout_s=1)

    assert "waiting for the controller quorum" in raised.value.log_tail
    assert "waiting for the controller quorum" in str(raised.value)
    assert broker_processes(kafka.server_properties_path) == []
    assert not kafka.status().running


def test_stop_never_signals_a_process_that_is_not_our_broker(make_kafka):
    kafka = make_kafka()
    kafka.home.mkdir(parents=True)
    kafka.pid_path.write_text(f"{os.getpid()}\n")

    assert kafka.status().running is False
    assert kafka.stop() is False
    assert not kafka.pid_path.exists()


def test_stop_of_a_home_that_never_ran_a_broker_stops_nothing(make_kafka):
    assert make_kafka().stop() is False


def test_broker_lifecycle_start_use_restart_stop(make_kafka):
    kafka = make_kafka()  # the default, shared jar cache: downloaded at most once per machine

    status = kafka.start(timeout_s=120)

    assert status.running
    assert status.pid is not None
    assert status.bootstrap == kafka.bootstrap
    assert kafka.status() == status
    assert status.log_path.is_file()
    assert (status.data_dir / "meta.properties").is_file()

    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    topic = "refract-test.lifecycle"
    futures = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    futures[topic].result(timeout=30)
    assert topic in admin.list_topics(timeout=10).topics

    again = kafka.start()
    assert again.pid == status.pid
    assert broker_processes(kafka.server_properties_path) == [status.pid]

    assert kafka.stop() is True

    after = kafka.status()
    assert not after.running
    assert after.pid is None
    assert not is_alive(status.pid)
    wait_for(lambda: port_is_free(kafka.port), timeout_s=10, message=f"port {kafka.port} free")
    assert port_is_free(kafka.controller_port)


def test_default_version_is_the_pinned_kafka_version(make_kafka):
    assert make_kafka().version == KAFKA_VERSION == "4.1.1"


def test_status_of_a_broker_that_stopped_on_its_own_quotes_the_last_error_of_its_log(make_kafka):
    kafka = make_kafka()
    kafka.home.mkdir(parents=True)
    dead = subprocess.Popen(["true"])  # a pid that no longer runs
    dead.wait()
    kafka.pid_path.write_text(f"{dead.pid}\n")  # left behind: stop() would have removed it
    kafka.log_path.parent.mkdir(parents=True, exist_ok=True)
    kafka.log_path.write_text(
        "[2026-11-27 07:15:01,594] ERROR Error while accepting connection (kafka.network.DataPlaneAcceptor)\n"
        "[2026-11-27 07:15:33,192] ERROR Shutdown broker because all log dirs in /data have failed\n"
        "[2026-11-27 07:15:33,199] INFO [GroupCoordinator id=1] Stabilized group g\n"
    )
    out = io.StringIO()

    assert run_kafka_command("status", kafka, out) == EXIT_NOT_RUNNING

    text = out.getvalue()
    assert "stopped on its own" in text
    assert "ERROR Shutdown broker because all log dirs in /data have failed" in text
    assert "refract kafka start" in text


def test_status_after_a_stop_does_not_call_it_a_crash(make_kafka):
    kafka = make_kafka()
    kafka.home.mkdir(parents=True)
    kafka.log_path.parent.mkdir(parents=True, exist_ok=True)
    kafka.log_path.write_text("[2026-11-27 07:15:33,192] ERROR something that was later fixed\n")
    out = io.StringIO()

    assert run_kafka_command("status", kafka, out) == EXIT_NOT_RUNNING

    assert "stopped on its own" not in out.getvalue()
