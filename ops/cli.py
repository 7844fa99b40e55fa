"""The ``refract`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from engine.errors import RefractError
from engine.settings import SCOPES, Settings
from ops.arguments import COUNT, NON_NEGATIVE_NUMBER, PORT
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
    from ops.runtime import dev_api_key, dev_signing_secret, local_kafka, run_worker

    settings, dev_secret = dev_api_key(_settings(args))
    settings = dev_signing_secret(settings, create=True)
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
    from ops.runtime import dev_api_key, dev_signing_secret, kafka_bootstrap, run_worker

    settings, _ = dev_api_key(_settings(args))
    settings = dev_signing_secret(settings, create=False)
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
    from engine.settings import PUBLIC_SCOPES

    scopes = args.scope or (sorted(PUBLIC_SCOPES) if args.public else [])
    if not scopes:
        return _fail(f"give at least one --scope (one of {', '.join(SCOPES)})")
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        return _fail(f"unknown scope {sorted(unknown)[0]!r}; scopes are {', '.join(SCOPES)}")
    new = mint_key(
        scopes,
        key_id=args.id,
        public=args.public,
        origins=args.origin or (),
        rate_per_s=args.rate_per_s,
        burst=args.burst,
    )
    key = new.setting
    kind = "public key (for the SDK: it is seen in web pages)" if key.public else "API key"
    shown = "" if key.public else ", keep it secret"
    print(f"{kind} (shown once{shown}): {new.secret}", file=out)
    options = [("public", "")] if key.public else []
    options += [("origin", origin) for origin in key.origins]
    options += [("rate_per_s", f"{key.rate_per_s:g}")] if key.rate_per_s is not None else []
    options += [("burst", str(key.burst))] if key.burst is not None else []
    query = "&".join(f"{name}={value}" if value else name for name, value in options)
    print("Configure it with the hash only, either as an environment variable:", file=out)
    print(
        f"  REFRACT_API_KEYS='{key.key_id}:{key.secret_sha256}:{','.join(sorted(key.scopes))}"
        f"{'?' + query if query else ''}'",
        file=out,
    )
    print("or in refract.yaml:", file=out)
    extra = ""
    if key.public:
        extra += ", public: true"
    if key.origins:
        extra += f", origins: [{', '.join(key.origins)}]"
    if key.rate_per_s is not None:
        extra += f", rate_per_s: {key.rate_per_s:g}"
    if key.burst is not None:
        extra += f", burst: {key.burst}"
    print(
        f"  api_keys:\n    - {{id: {key.key_id}, sha256: {key.secret_sha256},"
        f" scopes: [{', '.join(sorted(key.scopes))}]{extra}}}",
        file=out,
    )
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    from connectors.csv import FileRefused, MappingError
    from ops.import_sync import import_sync
    from ops.imports import ProgressBar, import_file, summary
    from ops.logs import configure_logging

    configure_logging()  # the import's log events stay out of the terminal (INFO is dropped)
    settings = _settings(args)

    def definitions() -> Any:
        from engine.topics import TopicNames
        from ops.runtime import kafka_bootstrap
        from streams.definitions import read_definitions

        bootstrap = kafka_bootstrap(settings, start_local=False)
        return read_definitions(bootstrap, TopicNames(settings.namespace).definitions)

    try:
        sync = import_sync(args.sync, definitions)
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


def cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    from engine.segments.calendar import is_known_zone
    from engine.topics import TopicNames
    from ops.explain import explain_lines, read_decisions
    from ops.logs import configure_logging
    from ops.runtime import kafka_bootstrap

    configure_logging()
    if not is_known_zone(args.timezone):
        return _fail(f"--timezone {args.timezone!r} is not an IANA time zone such as America/Montevideo")
    settings = _settings(args)
    bootstrap = kafka_bootstrap(settings, start_local=False)
    topic = TopicNames(settings.namespace).audit
    decisions = list(
        read_decisions(bootstrap, topic, args.customer, settings.partitions, campaign_id=args.campaign)
    )
    if not decisions:
        scope = f" for campaign {args.campaign!r}" if args.campaign else ""
        print(f"No campaign decisions about customer {args.customer!r}{scope} in {topic}.", file=out)
        return 0
    for line in explain_lines(decisions, args.timezone):
        print(line, file=out)
    return 0


def cmd_apply(args: argparse.Namespace, out: TextIO) -> int:
    from engine.topics import TopicNames
    from ops.apply import apply_file, upload_members
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

    def upload(segment_id: str, members: tuple[str, ...]) -> Any:
        from ops.api_client import api_endpoint

        return upload_members(api_endpoint(settings, args.api, args.api_key), segment_id, members)

    outcomes = apply_file(
        text,
        bootstrap,
        TopicNames(settings.namespace).definitions,
        dry_run=args.dry_run,
        folder=Path(args.file).parent,
        upload=upload,
    )
    verb = "would be " if args.dry_run else ""
    for applied in outcomes:
        outcome = applied.outcome if applied.outcome == "unchanged" else verb + applied.outcome
        line = f"{applied.kind} {applied.definition_id}: {outcome} (version {applied.version})"
        listed = applied.list_outcome
        if listed is not None:
            line += f"; list of {listed['members']:,} customers"
            if "added" in listed:
                line += f": {listed['added']:,} added, {listed['removed']:,} removed"
        print(line, file=out)
    return 0


def cmd_segment_test(args: argparse.Namespace, out: TextIO) -> int:
    import json

    from engine.segments import explain
    from ops.api_client import api_endpoint
    from ops.segment_test import (
        fetch_profile,
        fetch_segment_rule,
        moment_ms,
        profile_context,
        read_rule,
        report,
    )

    if (args.rule is None) == (args.segment is None):
        return _fail("give either a RULE text or --segment ID (one of them)")
    if (args.customer is None) == (args.profile is None):
        return _fail("give either --customer ID (read from a running worker) or --profile FILE.json")
    settings = _settings(args)
    rule = read_rule(args.rule) if args.rule is not None else None
    api = None
    if args.customer is not None or rule is None:
        api = api_endpoint(settings, args.api, args.api_key)
    if rule is None:
        assert api is not None
        rule = fetch_segment_rule(api, args.segment)
    if args.profile is not None:
        try:
            profile = json.loads(Path(args.profile).read_bytes())
        except OSError as exc:
            return _fail(f"cannot read {args.profile}: {exc.strerror}")
        except ValueError as exc:
            return _fail(f"{args.profile} is not JSON: {exc}")
    else:
        assert api is not None
        profile = fetch_profile(api, args.customer)
    now_ms = moment_ms(args.at) if args.at else int(time.time() * 1000)
    context = profile_context(profile, now_ms, args.timezone)
    customer = args.customer or str(profile.get("customer_id", args.profile))
    for line in report(customer, rule, explain(rule, context), now_ms):
        print(line, file=out)
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from ops.api_client import api_endpoint
    from ops.export import export_members

    api = api_endpoint(_settings(args), args.api, args.api_key)
    columns = {"attributes": args.attributes, "contacts": args.contacts}
    if args.output is None:
        out.flush()
        sink = getattr(out, "buffer", None)
        if sink is None:
            return _fail("the output cannot take bytes; give --output FILE")
        export_members(api, sink, args.segment, **columns)
        sink.flush()
        return 0
    target = Path(args.output)
    partial = target.with_name(target.name + ".part")  # renamed once whole: a broken export is never FILE
    try:
        with partial.open("wb") as sink:
            rows = export_members(api, sink, args.segment, **columns)
    except OSError as exc:
        return _fail(f"cannot write {partial}: {exc.strerror}")
    except RefractError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    print(f"{rows:,} members of segment {args.segment} written to {target}", file=out)
    return 0


def cmd_referral_create(args: argparse.Namespace, out: TextIO) -> int:
    import json

    from ops.api_client import api_endpoint

    body: dict[str, str] = {"campaign_id": args.campaign, "source": args.source}
    if args.expires:
        body["expires_in"] = args.expires
    api = api_endpoint(_settings(args), args.api, args.api_key)
    link = api.request("POST", "/v1/referrals", body=json.dumps(body).encode("utf-8"))
    print(f"code  {link['code']}", file=out)
    print(f"url   {link['url']}", file=out)
    if link.get("expires_at"):
        print(f"until {link['expires_at']}", file=out)
    return 0


def cmd_bench(args: argparse.Namespace, out: TextIO) -> int:
    from ops.bench.worker_process import drop_bench_namespaces

    try:
        return _run_bench(args, out)
    finally:
        if not args.keep_topics:
            drop_bench_namespaces(out)


def _run_bench(args: argparse.Namespace, out: TextIO) -> int:
    if args.bench_command == "segments":
        from ops.bench.segments import main as bench_segments

        return bench_segments(args, out)
    if args.bench_command == "import":
        from ops.bench.imports import main as bench_import

        return bench_import(args, out)
    if args.bench_command == "decisions":
        from ops.bench.decisions import main as bench_decisions

        return bench_decisions(args, out)
    if args.bench_command == "campaigns":
        from ops.bench.campaigns import main as bench_campaigns

        return bench_campaigns(args, out)
    if args.bench_command == "deliveries":
        from ops.bench.deliveries import main as bench_deliveries

        return bench_deliveries(args, out)
    from ops.bench.ingest import main as bench_ingest

    return bench_ingest(args, out)


def cmd_sdk(args: argparse.Namespace, out: TextIO) -> int:
    from ops.sdk_size import main as sdk_size

    return sdk_size(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refract", description="Real-time customer campaigns on Kafka.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up", help="run everything: the local Kafka (unless configured) and a worker with the API"
    )
    up.add_argument("--web-port", type=PORT, help="API port (default 8080)")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="run one more worker that joins the same group")
    worker.add_argument("--web-port", type=PORT, help="API port of this worker")
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
    create.add_argument("--scope", action="append", help=f"one of {', '.join(SCOPES)}")
    create.add_argument("--id", help="the key's public id (default: random)")
    create.add_argument(
        "--public",
        action="store_true",
        help="a key for the JavaScript SDK: only decisions:read and interactions:write (the default)",
    )
    create.add_argument(
        "--origin", action="append", help="a browser origin a public key may be used from (repeatable)"
    )
    create.add_argument(
        "--rate-per-s",
        type=NON_NEGATIVE_NUMBER,
        help="this key's rate limit in requests/s, 0: unlimited (default: rate_limit_per_s)",
    )
    create.add_argument("--burst", type=COUNT, help="this key's burst (default: rate_limit_burst)")
    create.set_defaults(func=cmd_keys)

    imports = sub.add_parser("import", help="import a CSV file with a sync (see docs/imports.md)")
    imports.add_argument("file", help="the CSV file")
    imports.add_argument(
        "--sync", required=True, help="the sync: a saved sync's id (refract apply) or a YAML file"
    )
    imports.add_argument("--dry-run", action="store_true", help="validate and count; write nothing")
    imports.add_argument(
        "--import-id", help="redo an interrupted import under its id (its events keep their ids)"
    )
    imports.add_argument(
        "--processes",
        type=COUNT,
        default=1,
        help="processes converting the rows of a large file (default 1; worth it with spare CPUs)",
    )
    imports.set_defaults(func=cmd_import)

    apply = sub.add_parser(
        "apply",
        help="save the segments, campaigns and syncs of a YAML file (docs/segments.md, docs/campaigns.md,"
        " docs/imports.md)",
    )
    apply.add_argument(
        "file",
        help="YAML with segments: [{id, name, rule}], campaigns: [{id, ...}] and/or syncs: [{id, kind, ...}]",
    )
    apply.add_argument("--dry-run", action="store_true", help="check the file and show what would change")
    apply.add_argument(
        "--api", help="the API that takes static lists (default REFRACT_API_URL or this machine's)"
    )
    apply.add_argument(
        "--api-key", help="an admin API key for static lists (default REFRACT_API_KEY or the dev key)"
    )
    apply.set_defaults(func=cmd_apply)

    explain = sub.add_parser("explain", help="a customer's campaign decisions, and why, in plain language")
    explain.add_argument("--customer", required=True, help="the customer id")
    explain.add_argument("--campaign", help="only this campaign's decisions")
    explain.add_argument("--timezone", default="UTC", help="show times in this zone (default UTC)")
    explain.set_defaults(func=cmd_explain)

    segment = sub.add_parser("segment", help="segments: test a rule against a customer")
    segment_sub = segment.add_subparsers(dest="segment_command", required=True)
    test = segment_sub.add_parser("test", help="show, clause by clause, why a customer is in or out")
    test.add_argument(
        "rule", nargs="?", help="the rule text, such as 'balance >= 10000 and country == \"UY\"'"
    )
    test.add_argument("--segment", help="test a saved segment's rule instead of a RULE text")
    test.add_argument("--customer", help="the customer id (profile read from a running worker)")
    test.add_argument("--profile", help="a profile JSON file (as GET /v1/customers/{id} answers)")
    test.add_argument("--at", help="evaluate at this ISO 8601 moment (default: now)")
    test.add_argument("--timezone", default="UTC", help="time zone of customers without one (default UTC)")
    test.add_argument("--api", help="the API address (default REFRACT_API_URL or this machine's worker)")
    test.add_argument(
        "--api-key", help="an API key with admin scope (default REFRACT_API_KEY or the dev key)"
    )
    test.set_defaults(func=cmd_segment_test)

    export = sub.add_parser("export", help="write a segment's members as CSV (docs/segments.md)")
    export.add_argument("--segment", required=True, help="the segment id")
    export.add_argument("--attributes", help="attribute columns, separated by commas: first_name,city")
    export.add_argument("--contacts", help="contact columns, separated by commas: email,phone")
    export.add_argument("--output", help="write to this file (default: standard output)")
    export.add_argument("--api", help="the API address (default REFRACT_API_URL or this machine's worker)")
    export.add_argument(
        "--api-key", help="an API key with admin scope (default REFRACT_API_KEY or the dev key)"
    )
    export.set_defaults(func=cmd_export)

    referral = sub.add_parser("referral", help="referral links that start a campaign (docs/referrals.md)")
    referral_sub = referral.add_subparsers(dest="referral_command", required=True)
    mint = referral_sub.add_parser("create", help="mint a signed referral link for a campaign and a source")
    mint.add_argument("--campaign", required=True, help="the campaign id (it needs a landing: section)")
    mint.add_argument("--source", required=True, help="where the link is posted, such as facebook")
    mint.add_argument("--expires", help="how long the link works, such as 30d (default: no expiry)")
    mint.add_argument("--api", help="the API address (default REFRACT_API_URL or this machine's worker)")
    mint.add_argument(
        "--api-key", help="an API key with admin scope (default REFRACT_API_KEY or the dev key)"
    )
    mint.set_defaults(func=cmd_referral_create)

    bench = sub.add_parser("bench", help="benchmarks (print figures and ratios)")
    bench.add_argument(
        "--keep-topics",
        action="store_true",
        help="keep the topics of the run's fresh namespaces (deleted at the end by default)",
    )
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    from ops.bench.ingest import add_arguments

    add_arguments(bench_sub.add_parser("ingest", help="fold speed of one worker vs baselines"))
    from ops.bench.imports import add_arguments as add_import_arguments

    add_import_arguments(bench_sub.add_parser("import", help="CSV import speed vs a bare ceiling"))
    from ops.bench.decisions import add_arguments as add_decision_arguments

    add_decision_arguments(
        bench_sub.add_parser(
            "decisions", help="POST /v1/decisions latency and highest rate vs a bare endpoint"
        )
    )
    from ops.bench.campaigns import add_arguments as add_campaign_arguments

    add_campaign_arguments(
        bench_sub.add_parser(
            "campaigns", help="speed with 30 campaigns vs none, and trigger-to-outbox latency"
        )
    )
    from ops.bench.segments import add_arguments as add_segments_arguments

    add_segments_arguments(
        bench_sub.add_parser("segments", help="cost of 50 segments, change latency, backfill, evaluation")
    )
    from ops.bench.deliveries import add_arguments as add_delivery_arguments

    add_delivery_arguments(
        bench_sub.add_parser("deliveries", help="email and SMS dispatch speed vs bare provider calls")
    )
    bench.set_defaults(func=cmd_bench)

    sdk = sub.add_parser("sdk", help="the JavaScript SDK served at /sdk/refract.js")
    sdk_sub = sdk.add_subparsers(dest="sdk_command", required=True)
    sdk_sub.add_parser("size", help="its size raw, minified and gzipped (target < 8 KB gzipped)")
    sdk.set_defaults(func=cmd_sdk)
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
