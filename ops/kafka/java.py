"""Find the ``java`` that runs the broker and check it is recent enough."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ops.kafka.errors import JavaNotFound, JavaTooOld

MINIMUM_JAVA_MAJOR = 17
"""Kafka 4 brokers need Java 17."""

_VERSION_PATTERN = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


def find_java() -> Path:
    """Return ``$JAVA_HOME/bin/java`` if it exists, else ``java`` on ``PATH``."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("java")
    if found is None:
        raise JavaNotFound(MINIMUM_JAVA_MAJOR)
    return Path(found)


def parse_java_major(version_output: str) -> int | None:
    """Read the major version from ``java -version`` output (``"1.8.0_292"`` is Java 8)."""
    match = _VERSION_PATTERN.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def check_java(java: Path, *, timeout_s: float = 30) -> int:
    """Return the major version of ``java``, raising JavaTooOld below the minimum."""
    try:
        completed = subprocess.run(
            [str(java), "-version"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise JavaTooOld(MINIMUM_JAVA_MAJOR, f"that does not run ({error})", java) from error
    # java -version writes to stderr; some wrappers write to stdout.
    major = parse_java_major(completed.stderr + completed.stdout)
    if major is None:
        raise JavaTooOld(MINIMUM_JAVA_MAJOR, "of an unknown version", java)
    if major < MINIMUM_JAVA_MAJOR:
        raise JavaTooOld(MINIMUM_JAVA_MAJOR, str(major), java)
    return major
