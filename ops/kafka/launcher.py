"""A real single-node Apache Kafka broker (KRaft) run from a directory the user owns.

``home`` holds everything of one broker: ``server.properties``, ``log4j2.yaml``, ``kafka.pid``,
``data/`` and ``logs/``. The jars come from a cache shared by every clone (see ``install``).
The broker runs detached in its own session, so it outlives the command that started it.
"""

from __future__ import annotations

import base64
import fcntl
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ops.kafka import install
from ops.kafka.config import configured_port, render_log4j2_yaml, render_server_properties
from ops.kafka.errors import KafkaStartFailed, KafkaStartTimeout, PortInUse
from ops.kafka.java import check_java, find_java
from ops.kafka.ports import HOST, port_answers, port_is_free
from ops.kafka.process import (
    BROKER_MAIN_CLASS,
    adopt,
    is_alive,
    is_our_broker,
    read_pid,
    remove_pid,
    write_pid,
)

KAFKA_VERSION = "4.1.1"

READY_MARKER = b"Kafka Server started"
"""Logged by KafkaRaftServer once both the controller and the broker serve requests."""

LOG_TAIL_LINES = 20
POLL_INTERVAL_S = 0.1
KILL_GRACE_S = 10.0
FORMAT_TIMEOUT_S = 120.0

Progress = Callable[[str], None]


@dataclass(slots=True, frozen=True)
class KafkaStatus:
    """What ``refract kafka status`` reports; ``pid`` is None when the broker is not running."""

    running: bool
    pid: int | None
    bootstrap: str
    home: Path
    log_path: Path
    data_dir: Path


class LocalKafka:
    """Fetch, configure, start and stop one local broker listening on ``127.0.0.1:port``."""

    def __init__(
        self,
        home: Path,
        *,
        port: int = 9092,
        controller_port: int | None = None,
        version: str = KAFKA_VERSION,
        heap_mb: int = 1024,
        cache_dir: Path | None = None,
    ) -> None:
        self.home = Path(home).expanduser().resolve()
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.version = version
        self.heap_mb = heap_mb
        self.cache_dir = cache_dir if cache_dir is not None else install.default_cache_dir()

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def server_properties_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def log4j_config_path(self) -> Path:
        return self.home / "log4j2.yaml"

    @property
    def pid_path(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "server.log"

    @property
    def stdout_path(self) -> Path:
        return self.home / "logs" / "stdout.log"

    @property
    def libs_dir(self) -> Path:
        return install.libs_dir_for(self.cache_dir, self.version)

    def ensure_installed(self, progress: Progress | None = None) -> Path:
        """Return the jars directory, downloading the broker with Maven the first time."""
        return install.ensure_installed(self.cache_dir, self.version, progress)

    def status(self) -> KafkaStatus:
        pid = self._running_pid()
        return KafkaStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            home=self.home,
            log_path=self.log_path,
            data_dir=self.data_dir,
        )

    def start(self, *, timeout_s: float = 90, progress: Progress | None = None) -> KafkaStatus:
        """Start the broker and wait until it serves clients; if it already runs, just wait.

        Checks run cheapest first (running broker, java, ports) so a mistake is reported before
        a download. ``timeout_s`` bounds the wait for the broker, not the first download.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._locked():
            pid = self._running_pid()
            if pid is not None:
                deadline = time.monotonic() + timeout_s
                self._wait_until_running_broker_answers(pid, deadline, timeout_s)
                return self.status()
            java = find_java()
            check_java(java)
            for port, role in ((self.port, "client"), (self.controller_port, "controller")):
                if not port_is_free(port):
                    raise PortInUse(port, role)
            libs_dir = self.ensure_installed(progress)
            self._write_configuration()
            if not (self.data_dir / "meta.properties").is_file():
                if progress is not None:
                    progress(f"Formatting the data directory {self.data_dir}")
                self._format_storage(java, libs_dir)
            if progress is not None:
                progress(f"Starting Kafka {self.version} at {self.bootstrap}")
            log_offset = _file_size(self.log_path)
            deadline = time.monotonic() + timeout_s
            pid = self._launch(java, libs_dir)
            write_pid(self.pid_path, pid)
            self._wait_until_started(pid, log_offset, deadline, timeout_s)
            return self.status()

    def stop(self, *, timeout_s: float = 30) -> bool:
        """Stop our broker (SIGTERM, then SIGKILL after ``timeout_s``); False if none ran.

        A pid in the pid file that is not our broker is never signalled, only forgotten.
        """
        if not self.home.is_dir():
            return False
        with self._locked():
            pid = read_pid(self.pid_path)
            if pid is None:
                return False
            if not is_our_broker(pid, self.server_properties_path):
                remove_pid(self.pid_path)
                return False
            stopped = _terminate(pid, timeout_s)
            remove_pid(self.pid_path)
            return stopped

    def crash_report(self) -> str | None:
        """Why the broker is gone when it stopped on its own: the last ERROR line of its log.

        None while it runs, after ``stop``, and for a home that never ran a broker. A broker that
        stopped on its own leaves its pid file behind (``stop`` removes it).
        """
        if read_pid(self.pid_path) is None or self._running_pid() is not None:
            return None
        recent = _read_end(self.log_path, max_bytes=1024 * 1024)
        errors = [line for line in recent.splitlines() if " ERROR " in line]
        return errors[-1].strip() if errors else f"no ERROR line at the end of {self.log_path}"

    def _running_pid(self) -> int | None:
        pid = read_pid(self.pid_path)
        if pid is not None and is_our_broker(pid, self.server_properties_path):
            return pid
        return None

    def _write_configuration(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.server_properties_path.write_text(
            render_server_properties(
                port=self.port, controller_port=self.controller_port, data_dir=self.data_dir
            )
        )
        self.log4j_config_path.write_text(render_log4j2_yaml(self.log_path))

    def _java_command(self, java: Path, libs_dir: Path, main_class: str) -> list[str]:
        return [
            str(java),
            f"-Dlog4j2.configurationFile={self.log4j_config_path}",
            "-cp",
            f"{libs_dir}/*",
            main_class,
        ]

    def _format_storage(self, java: Path, libs_dir: Path) -> None:
        """Write ``meta.properties`` with a new cluster id; done once per data directory."""
        command = self._java_command(java, libs_dir, "kafka.tools.StorageTool")
        command += ["format", "-t", _new_cluster_id(), "-c", str(self.server_properties_path)]
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise KafkaStartFailed(
                f"Formatting {self.data_dir} did not finish in {FORMAT_TIMEOUT_S:.0f} s:"
                " check the disk and retry"
            ) from error
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip()
            raise KafkaStartFailed(
                f"Could not format the Kafka data directory {self.data_dir}: delete it and"
                " retry (its topics are lost)",
                _last_lines(output, LOG_TAIL_LINES),
            )

    def _launch(self, java: Path, libs_dir: Path) -> int:
        """Run the broker in its own session with output in ``stdout.log``; return its pid."""
        heap_options = [f"-Xmx{self.heap_mb}m", f"-Xms{min(512, self.heap_mb)}m", "-XX:+UseG1GC"]
        command = self._java_command(java, libs_dir, BROKER_MAIN_CLASS)
        command[1:1] = heap_options
        command.append(str(self.server_properties_path))
        # posix_spawn, unlike subprocess.Popen, leaves no object that warns when the broker
        # outlives it; the broker is reaped by is_alive() or, once we exit, by init.
        truncate = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        file_actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(self.stdout_path), truncate, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        try:
            pid = os.posix_spawn(str(java), command, dict(os.environ), file_actions=file_actions, setsid=True)
        except OSError as error:
            raise KafkaStartFailed(f"Could not run {java}: {error}") from error
        adopt(pid)
        return pid

    def _wait_until_started(self, pid: int, log_offset: int, deadline: float, timeout_s: float) -> None:
        log = _LogFollower(self.log_path, log_offset)
        logged_started = False
        while True:
            if not is_alive(pid):
                remove_pid(self.pid_path)
                raise KafkaStartFailed(
                    f"The Kafka broker exited while starting: see {self.log_path} and {self.stdout_path}",
                    self._log_tail(),
                )
            logged_started = logged_started or log.contains(READY_MARKER)
            if logged_started and port_answers(self.port):
                return
            if time.monotonic() >= deadline:
                # Not self.stop(): this process already holds the home lock.
                _terminate(pid, KILL_GRACE_S)
                remove_pid(self.pid_path)
                raise KafkaStartTimeout(
                    f"The Kafka broker did not start within {timeout_s:.0f} s and was stopped:"
                    f" see {self.log_path}; on a slow machine, start it again",
                    self._log_tail(),
                )
            time.sleep(POLL_INTERVAL_S)

    def _wait_until_running_broker_answers(self, pid: int, deadline: float, timeout_s: float) -> None:
        """Our broker already runs (perhaps still starting): wait for it instead of a second one."""
        try:
            running_port = configured_port(self.server_properties_path.read_text())
        except FileNotFoundError:
            running_port = None
        if running_port is not None and running_port != self.port:
            raise KafkaStartFailed(
                f"The local Kafka broker in {self.home} already runs on port {running_port}"
                f" (pid {pid}), not {self.port}: stop it first with `refract kafka stop`"
            )
        while not port_answers(self.port):
            if not is_alive(pid):
                raise KafkaStartFailed(
                    f"The Kafka broker (pid {pid}) exited while starting: see {self.log_path}",
                    self._log_tail(),
                )
            if time.monotonic() >= deadline:
                raise KafkaStartTimeout(
                    f"The Kafka broker (pid {pid}) runs but does not answer on {self.bootstrap}"
                    f" after {timeout_s:.0f} s: see {self.log_path}, or stop it and start again",
                    self._log_tail(),
                )
            time.sleep(POLL_INTERVAL_S)

    def _log_tail(self) -> str:
        parts = []
        for path in (self.stdout_path, self.log_path):
            tail = _last_lines(_read_end(path), LOG_TAIL_LINES)
            if tail:
                parts.append(f"--- last lines of {path} ---\n{tail}")
        return "\n".join(parts)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One start or stop at a time per home, across processes."""
        with (self.home / "kafka.lock").open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


class _LogFollower:
    """Reads a log file from an offset on, looking for a marker written after that offset."""

    def __init__(self, path: Path, offset: int) -> None:
        self._path = path
        self._position = offset
        self._carry = b""

    def contains(self, marker: bytes) -> bool:
        size = _file_size(self._path)
        if size < self._position:
            # The log rolled over since the offset was taken: the new file is all new.
            self._position = 0
            self._carry = b""
        if size == self._position:
            return False
        with self._path.open("rb") as log_file:
            log_file.seek(self._position)
            chunk = log_file.read(size - self._position)
        self._position += len(chunk)
        window = self._carry + chunk
        self._carry = window[-len(marker) :]
        return marker in window


def _terminate(pid: int, timeout_s: float) -> bool:
    """SIGTERM ``pid``, SIGKILL it if it still runs after ``timeout_s``; False if it was gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not _wait_for_exit(pid, timeout_s):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_for_exit(pid, KILL_GRACE_S)
    return True


def _wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


def _new_cluster_id() -> str:
    """A Kafka Uuid as ``kafka-storage random-uuid`` prints it, without starting a JVM."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_end(path: Path, max_bytes: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as log_file:
            log_file.seek(max(0, _file_size(path) - max_bytes))
            return log_file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _last_lines(text: str, count: int) -> str:
    return "\n".join(text.strip().splitlines()[-count:])
