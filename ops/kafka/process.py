"""The broker process as seen through its pid file and ``/proc``.

A pid file can outlive its process and the pid can be reused by an unrelated program, so a pid
only counts as our broker while ``/proc/<pid>/cmdline`` runs ``kafka.Kafka`` with our
``server.properties``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

BROKER_MAIN_CLASS = "kafka.Kafka"

_EXITED = frozenset({"Z", "X", None})

_spawned: set[int] = set()


def read_pid(pid_path: Path) -> int | None:
    try:
        text = pid_path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(pid_path: Path, pid: int) -> None:
    staging = pid_path.with_suffix(".pid.tmp")
    staging.write_text(f"{pid}\n")
    os.replace(staging, pid_path)


def remove_pid(pid_path: Path) -> None:
    pid_path.unlink(missing_ok=True)


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a process whose threads have all exited (a zombie) does not.

    The main thread of a JVM can be a zombie while other threads still close sockets and
    files, so the process only counts as gone once every thread has exited.
    """
    state = _state(Path(f"/proc/{pid}"))
    if state is None:
        return False
    if state not in _EXITED:
        return True
    if pid in _spawned:
        # Our child: waiting returns once the last thread has exited, and reaps it.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        _spawned.discard(pid)
        return False
    threads = Path(f"/proc/{pid}/task")
    try:
        return any(_state(thread) not in _EXITED for thread in threads.iterdir())
    except FileNotFoundError:
        return False


def _state(proc_entry: Path) -> str | None:
    """The state letter of a process or thread (R, S, D, Z, ...), None if it is gone."""
    try:
        stat = (proc_entry / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The state follows the command name, which is in parentheses and may contain spaces.
    return stat.rpartition(")")[2].split()[0]


def is_our_broker(pid: int, server_properties: Path) -> bool:
    """Whether ``pid`` is a live broker started with exactly this ``server.properties``."""
    if not is_alive(pid):
        return False
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    decoded = [argument.decode(errors="replace") for argument in arguments]
    return BROKER_MAIN_CLASS in decoded and str(server_properties) in decoded


def adopt(pid: int) -> None:
    """Remember that this process spawned the broker ``pid`` and must reap it once it exits.

    Only adopted pids are waited for: a stale pid file may name a reused pid that belongs to
    another child of this process, whose owner must keep its exit status.
    """
    _spawned.add(pid)
