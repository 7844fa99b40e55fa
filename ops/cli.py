"""The ``refract`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from engine.errors import RefractError
from engine.settings import SCOPES, Settings
from ops.config import load_settings


def _fail(message: str) -> int:
    print(f"refract: error: {message}", file=sys.stderr)
    return 1


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "web_port", None):
        overrides["web_port"] = args.web_port
        overrides["worker_name"] = f"worker-{args.web_port}"
    if getattr(args, "name", None):
        overrides["worker_name"] = args.name
    return load_settings(**overrides)


def cmd_up(args: argparse.Namespace, out: TextIO) -> int:
    from ops.runtime import dev_api_key, local_kafka, run_worker

    settings, dev_secret = dev_api_key(_settings(args))
    kafka = None
    if settings.kafka_bootstrap:
        bootstrap = settings.kafka_bootstrap
        print(f"Using the Kafka cluster at {bootstrap} (REFRACT_KAFKA_BOOTSTRAP); starting none.", file=out)
    else:
        kafka = local_kafka(settings)
        started = time.monotonic()
        status = kafka.start(progress=lambda line: print(f"  {line}", file=out, flush=True))
        bootstrap = status.bootstrap
        print(
            f"Kafka running at {bootstrap} (pid {status.pid}, {time.monotonic() - started:.1f} s)", file=out
        )
    logfile = settings.data_dir / "logs" / f"{settings.worker_name}.log"
    key_hint = dev_secret or "<your API key>"

    def ready(worker: object) -> None:
        url = settings.web_url
        print(
            f"""
Refract is ready.
  API          {url}/v1/   (key: {key_hint})
  metrics      {url}/metrics
  health       {url}/healthz, {url}/readyz
  Kafka        {bootstrap}   topics prefixed '{settings.namespace}.'
  data folder  {settings.data_dir.resolve()}
  worker log   {logfile}

Try:
  curl -s -X POST {url}/v1/events -H 'Authorization: Bearer {key_hint}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"customer_id": "c-1", "name": "card_transaction", "data": {{"amount": 120.5}}}}'
  curl -s {url}/v1/customers/c-1 -H 'Authorization: Bearer {key_hint}'

Ctrl-C stops the worker{", then the Kafka broker it started" if kafka else ""}.""",
            file=out,
            flush=True,
        )

    print(f"Starting worker {settings.worker_name} (log: {logfile}) ...", file=out, flush=True)
    try:
        run_worker(settings, bootstrap, logfile=logfile, on_ready=ready)
    finally:
        if kafka is not None:
            print("Stopping Kafka ...", file=out, flush=True)
            kafka.stop()
            print("Stopped.", file=out, flush=True)
    return 0


def cmd_worker(args: argparse.Namespace, out: TextIO) -> int:
    from ops.runtime import dev_api_key, kafka_bootstrap, run_worker

    settings, _ = dev_api_key(_settings(args))
    bootstrap = kafka_bootstrap(settings, start_local=False)
    run_worker(settings, bootstrap)
    return 0


def cmd_kafka(args: argparse.Namespace, out: TextIO) -> int:
    from ops.kafka.commands import run
    from ops.runtime import local_kafka

    settings = _settings(args)
    if settings.kafka_bootstrap:
        print(
            f"REFRACT_KAFKA_BOOTSTRAP names {settings.kafka_bootstrap}: Refract uses that cluster"
            " and manages no local broker.",
            file=out,
        )
        return 0
    return run(args.action, local_kafka(settings), out)


def cmd_topics(args: argparse.Namespace, out: TextIO) -> int:
    from ops.runtime import kafka_bootstrap
    from streams.topic_admin import ensure_topics

    settings = _settings(args)
    bootstrap = kafka_bootstrap(settings, start_local=False)
    created = ensure_topics(bootstrap, settings)
    print(f"created: {', '.join(created) or 'nothing (all topics exist)'}", file=out)
    return 0


def cmd_keys(args: argparse.Namespace, out: TextIO) -> int:
    from api.auth import mint_key

    unknown = set(args.scope) - set(SCOPES)
    if unknown:
        return _fail(f"unknown scope {sorted(unknown)[0]!r}; scopes are {', '.join(SCOPES)}")
    new = mint_key(args.scope, key_id=args.id)
    key = new.setting
    print(f"API key (shown once, keep it secret): {new.secret}", file=out)
    print("Configure it with the hash only, either as an environment variable:", file=out)
    print(f"  REFRACT_API_KEYS='{key.key_id}:{key.secret_sha256}:{','.join(sorted(key.scopes))}'", file=out)
    print("or in refract.yaml:", file=out)
    print(
        f"  api_keys:\n    - {{id: {key.key_id}, sha256: {key.secret_sha256},"
        f" scopes: [{', '.join(sorted(key.scopes))}]}}",
        file=out,
    )
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    from connectors.csv import FileRefused, MappingError, load_sync
    from ops.imports import ProgressBar, import_file, summary
    from ops.logs import configure_logging

    configure_logging()  # the import's log events stay out of the terminal (INFO is dropped)
    settings = _settings(args)
    try:
        sync = load_sync(Path(args.sync).read_bytes())
    except OSError as exc:
        return _fail(f"cannot read the sync {args.sync}: {exc.strerror}")
    except MappingError as exc:
        return _fail(f"{args.sync}: {exc.message}")
    path = Path(args.file)
    if not path.is_file():
        return _fail(f"{args.file}: no such file")
    bootstrap = None
    if not args.dry_run:
        from ops.runtime import kafka_bootstrap
        from streams.topic_admin import ensure_topics

        bootstrap = kafka_bootstrap(settings, start_local=False)
        ensure_topics(bootstrap, settings)
    label = "checking" if args.dry_run else "importing"
    bar = ProgressBar(sys.stderr, label) if sys.stderr.isatty() else None
    try:
        result = import_file(
            path,
            sync,
            settings,
            bootstrap=bootstrap,
            dry_run=args.dry_run,
            import_id=args.import_id,
            progress=bar,
            processes=max(1, args.processes),
        )
    except FileRefused as exc:
        return _fail(f"{args.file}: {exc.message}")
    finally:
        if bar is not None:
            bar.close()
    print(summary(result), file=out)
    return 0


def cmd_apply(args: argparse.Namespace, out: TextIO) -> int:
    from engine.topics import TopicNames
    from ops.apply import apply_file
    from ops.logs import configure_logging
    from ops.runtime import kafka_bootstrap
    from streams.topic_admin import ensure_topics

    configure_logging()  # log events go to the logging module, not into the command's output
    settings = _settings(args)
    try:
        text = Path(args.file).read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    bootstrap = kafka_bootstrap(settings, start_local=False)
    ensure_topics(bootstrap, settings)
    outcomes = apply_file(text, bootstrap, TopicNames(settings.namespace).definitions, dry_run=args.dry_run)
    verb = "would be " if args.dry_run else ""
    for applied in outcomes:
        outcome = applied.outcome if applied.outcome == "unchanged" else verb + applied.outcome
        print(f"segment {applied.segment_id}: {outcome} (version {applied.version})", file=out)
    return 0


def cmd_bench(args: argparse.Namespace, out: TextIO) -> int:
    if args.bench_command == "import":
        from ops.bench.imports import main as bench_import

        return bench_import(args, out)
    if args.bench_command == "deliveries":
        from ops.bench.deliveries import main as bench_deliveries

        return bench_deliveries(args, out)
    from ops.bench.ingest import main as bench_ingest

    return bench_ingest(args, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refract", description="Real-time customer campaigns on Kafka.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up", help="run everything: the local Kafka (unless configured) and a worker with the API"
    )
    up.add_argument("--web-port", type=int, help="API port (default 8080)")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="run one more worker that joins the same group")
    worker.add_argument("--web-port", type=int, help="API port of this worker")
    worker.add_argument("--name", help="worker name (its data folder); default worker-<port>")
    worker.set_defaults(func=cmd_worker)

    kafka = sub.add_parser("kafka", help="the local Kafka broker")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(func=cmd_kafka)

    topics = sub.add_parser("topics", help="create Refract's topics")
    topics.set_defaults(func=cmd_topics)

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="mint a key and print how to configure it")
    create.add_argument("--scope", action="append", required=True, help=f"one of {', '.join(SCOPES)}")
    create.add_argument("--id", help="the key's public id (default: random)")
    create.set_defaults(func=cmd_keys)

    imports = sub.add_parser("import", help="import a CSV file with a sync (see docs/imports.md)")
    imports.add_argument("file", help="the CSV file")
    imports.add_argument("--sync", required=True, help="the sync definition (YAML file)")
    imports.add_argument("--dry-run", action="store_true", help="validate and count; write nothing")
    imports.add_argument(
        "--import-id", help="redo an interrupted import under its id (its events keep their ids)"
    )
    imports.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes converting the rows of a large file (default 1; worth it with spare CPUs)",
    )
    imports.set_defaults(func=cmd_import)

    apply = sub.add_parser("apply", help="save the segments of a YAML file (see docs/segments.md)")
    apply.add_argument("file", help="YAML with segments: [{id, name, rule}]")
    apply.add_argument("--dry-run", action="store_true", help="check the file and show what would change")
    apply.set_defaults(func=cmd_apply)

    bench = sub.add_parser("bench", help="benchmarks (print figures and ratios)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    from ops.bench.ingest import add_arguments

    add_arguments(bench_sub.add_parser("ingest", help="fold speed of one worker vs baselines"))
    from ops.bench.imports import add_arguments as add_import_arguments

    add_import_arguments(bench_sub.add_parser("import", help="CSV import speed vs a bare ceiling"))
    from ops.bench.deliveries import add_arguments as add_delivery_arguments

    add_delivery_arguments(
        bench_sub.add_parser("deliveries", help="email and SMS dispatch speed vs bare provider calls")
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("up", "worker"):
        from ops.imports.service import enable_api_imports

        enable_api_imports()  # POST /v1/imports on the workers this process runs
    try:
        code: int = args.func(args, sys.stdout)
        return code
    except RefractError as exc:
        return _fail(exc.message)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
