"""The shared jar cache: the Kafka broker and its runtime dependencies, fetched once by Maven.

Jars live in ``<cache>/kafka/<version>/libs``. A fetch downloads into a temporary directory next
to it and renames it into place, so a fetch killed half way never leaves a half cache; a file lock
keeps two clones from fetching the same version at once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ops.kafka.errors import KafkaFetchFailed, MavenNotFound

SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
"""The SLF4J binding: without it the broker logs nothing at all."""

FETCH_TIMEOUT_S = 900.0

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.refract</groupId>
  <artifactId>refract-kafka-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def default_cache_dir() -> Path:
    """``$REFRACT_CACHE_DIR``, else ``~/.cache/refract``: shared by every clone of Refract."""
    configured = os.environ.get("REFRACT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "refract"


def libs_dir_for(cache_dir: Path, version: str) -> Path:
    return cache_dir / "kafka" / version / "libs"


def is_installed(libs_dir: Path, version: str) -> bool:
    return (libs_dir / f"kafka_{SCALA_VERSION}-{version}.jar").is_file()


def ensure_installed(cache_dir: Path, version: str, progress: Callable[[str], None] | None = None) -> Path:
    """Return the jars directory of ``version``, downloading it with Maven if it is missing."""
    libs_dir = libs_dir_for(cache_dir, version)
    if is_installed(libs_dir, version):
        return libs_dir
    maven = shutil.which("mvn")
    if maven is None:
        raise MavenNotFound(version, libs_dir)
    version_dir = libs_dir.parent
    version_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(version_dir / ".fetch.lock"):
        # Another clone may have finished the fetch while this one waited for the lock.
        if is_installed(libs_dir, version):
            return libs_dir
        _remove_abandoned_fetches(version_dir)
        if libs_dir.exists():
            shutil.rmtree(libs_dir)
        if progress is not None:
            progress(f"Downloading Kafka {version} and its dependencies with Maven into {libs_dir}")
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=version_dir))
        try:
            _fetch(Path(maven), version, staging)
            os.rename(staging / "libs", libs_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return libs_dir


def _fetch(maven: Path, version: str, staging: Path) -> None:
    pom = staging / "pom.xml"
    pom.write_text(_POM.format(scala=SCALA_VERSION, kafka=version, log4j=LOG4J_VERSION))
    command = [
        str(maven),
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging / 'libs'}",
        "-DincludeScope=runtime",
    ]
    try:
        completed = subprocess.run(
            command,
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise KafkaFetchFailed(version, f"mvn did not finish in {FETCH_TIMEOUT_S:.0f} s") from error
    except OSError as error:
        raise KafkaFetchFailed(version, f"mvn could not run: {error}") from error
    if completed.returncode != 0:
        reason = _first_error_line(completed.stdout + "\n" + completed.stderr)
        raise KafkaFetchFailed(version, f"mvn exited with {completed.returncode}: {reason}")
    if not is_installed(staging / "libs", version):
        missing = f"kafka_{SCALA_VERSION}-{version}.jar"
        raise KafkaFetchFailed(version, f"mvn succeeded but {missing} is missing")


def _first_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("[ERROR]"):
            return line.removeprefix("[ERROR]").strip()
    return lines[-1] if lines else "no output"


def _remove_abandoned_fetches(version_dir: Path) -> None:
    """Delete staging directories left by fetches that were killed (we hold the lock)."""
    for leftover in version_dir.glob(".fetch-*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
