"""Running a worker: the Kafka to use, the topics, the faust worker with the API."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from api.auth import hash_key, mint_key
from api.server import install
from engine.errors import ConfigurationError
from engine.settings import ApiKeySetting, Settings
from ops.gc_tuning import freeze_startup_objects, tune_for_throughput
from ops.gil_switching import switch_often
from ops.imports.scheduler import install_sync_scheduler
from ops.kafka import LocalKafka
from ops.logs import configure_logging
from streams.app import Worker, build_worker
from streams.topic_admin import ensure_topics

DEV_KEY_FILE = "dev-api-key"
DEV_SIGNING_SECRET_FILE = "dev-signing-secret"


def local_kafka(settings: Settings) -> LocalKafka:
    return LocalKafka(settings.data_dir / "kafka", port=settings.local_kafka_port)


def kafka_bootstrap(settings: Settings, *, start_local: bool) -> str:
    """The configured cluster, else the local broker (started first when ``start_local``)."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    kafka = local_kafka(settings)
    return kafka.start().bootstrap if start_local else kafka.bootstrap


def dev_api_key(settings: Settings) -> tuple[Settings, str | None]:
    """With no keys configured, use (or make once) an admin key kept in the data folder."""
    if settings.api_keys:
        return settings, None
    path = settings.data_dir / DEV_KEY_FILE
    if path.is_file():
        secret = path.read_text(encoding="utf-8").strip()
        key_id = secret.split("_")[1]
        key = ApiKeySetting(key_id, hash_key(secret), frozenset({"admin"}))
    else:
        new = mint_key({"admin"}, key_id=f"dev{secrets.token_hex(2)}")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new.secret + "\n")
        secret, key = new.secret, new.setting
    return replace(settings, api_keys=(key,)), secret


def dev_signing_secret(settings: Settings, *, create: bool) -> Settings:
    """With no signing secret configured, use the development one kept in the data folder.

    ``refract up`` (``create``) makes it once; ``refract worker`` only reuses one that ``up``
    made, so a production start without REFRACT_SIGNING_SECRET stops with what to set rather
    than signing links with a secret no other worker knows.
    """
    if settings.signing_secrets:
        return settings
    path = settings.data_dir / DEV_SIGNING_SECRET_FILE
    if path.is_file():
        secret = path.read_text(encoding="utf-8").strip()
    elif create:
        secret = secrets.token_urlsafe(32)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
    else:
        raise ConfigurationError(
            "REFRACT_SIGNING_SECRET is not set: tracking, unsubscribe and callback links are signed"
            " with it. Set it to a long random value, the same on every worker (make one with"
            " python -c 'import secrets; print(secrets.token_urlsafe(32))'); to rotate, put the"
            " new secret first: REFRACT_SIGNING_SECRET=new,old"
        )
    return replace(settings, signing_secrets=(secret,))


def run_worker(
    settings: Settings,
    bootstrap: str,
    *,
    logfile: Path | None = None,
    on_ready: Callable[[Worker], None] | None = None,
) -> None:
    """Create the topics and run a worker with the API and the sync scheduler until SIGINT/SIGTERM."""
    from faust.worker import Worker as FaustWorker

    configure_logging()
    ensure_topics(bootstrap, settings)
    worker = build_worker(settings, bootstrap, on_web_init=lambda w, web: install(w, web))
    install_sync_scheduler(worker)  # scheduled syncs this worker owns (docs/imports.md)
    tune_for_throughput()
    switch_often()

    @worker.app.task  # type: ignore[untyped-decorator]
    async def when_ready() -> None:
        while not worker.is_ready()[0]:
            await asyncio.sleep(0.2)
        freeze_startup_objects()
        if on_ready is not None:
            on_ready(worker)

    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
    faust_worker: Any = FaustWorker(
        worker.app,
        loglevel=settings.log_level,
        logfile=str(logfile) if logfile else None,
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        faust_worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        # The agents have stopped: nothing produces any more, so flush what is queued.
        worker.producer.close()
