"""``refract kafka start|stop|status``: human-readable lines around LocalKafka."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from engine.errors import RefractError
from ops.kafka.launcher import KafkaStatus, LocalKafka

ACTIONS = ("start", "stop", "status")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
"""``status`` of a stopped broker, as in LSB init scripts, so scripts can test for it."""


def run(action: str, kafka: LocalKafka, out: TextIO) -> int:
    """Do ``action`` and print what happened to ``out``; errors go to stderr with exit code 1."""
    try:
        if action == "start":
            return _start(kafka, out)
        if action == "stop":
            return _stop(kafka, out)
        if action == "status":
            return _status(kafka, out)
    except RefractError as error:
        print(f"refract: error: {error.message}", file=sys.stderr)
        return EXIT_ERROR
    choices = ", ".join(ACTIONS)
    message = f"unknown kafka action {action!r} (choose from {choices})"
    print(f"refract: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _start(kafka: LocalKafka, out: TextIO) -> int:
    already_running = kafka.status().running
    started_at = time.monotonic()
    status = kafka.start(progress=lambda line: print(line, file=out, flush=True))
    elapsed_s = time.monotonic() - started_at
    print(_running_line(kafka, status), file=out)
    if already_running:
        print("It was already running; nothing was started.", file=out)
    else:
        print(f"Started in {elapsed_s:.1f} s.", file=out)
    return EXIT_OK


def _stop(kafka: LocalKafka, out: TextIO) -> int:
    pid = kafka.status().pid
    if kafka.stop():
        print(f"Kafka stopped (pid {pid}).", file=out)
    else:
        print(f"Kafka was not running (home: {kafka.home}).", file=out)
    return EXIT_OK


def _status(kafka: LocalKafka, out: TextIO) -> int:
    status = kafka.status()
    if status.running:
        print(_running_line(kafka, status), file=out)
        return EXIT_OK
    crash = kafka.crash_report()
    if crash is not None:
        print(
            f"Kafka is not running: it stopped on its own (home: {status.home}). The last error in"
            f" {status.log_path}:\n  {crash}\nStart it again with `refract kafka start`.",
            file=out,
        )
        return EXIT_NOT_RUNNING
    print(
        f"Kafka is not running (home: {status.home}); start it with `refract kafka start`.",
        file=out,
    )
    return EXIT_NOT_RUNNING


def _running_line(kafka: LocalKafka, status: KafkaStatus) -> str:
    return (
        f"Kafka {kafka.version} running at {status.bootstrap} (pid {status.pid}),"
        f" logs: {status.log_path}, data: {status.data_dir}"
    )
