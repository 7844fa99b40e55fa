"""The Prometheus metrics a worker exposes on /metrics. One registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_PROCESSED = Counter(
    "refract_events_processed",
    "Events folded into customer state, by payload type.",
    ["type"],
    registry=REGISTRY,
)
EVENTS_REPLAYED = Counter(
    "refract_events_replayed",
    "Events skipped because their offset or id was already applied (replays, duplicates).",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "refract_dead_letters",
    "Records sent to the dead-letter topic, by reason code.",
    ["reason"],
    registry=REGISTRY,
)
PROCESSING_LATENCY = Histogram(
    "refract_event_latency_seconds",
    "Time from an event being accepted (received_at) to its effects being in Kafka.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "refract_batch_seconds",
    "Time to process one batch of events (fold, changelog, outputs, state write).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "refract_batch_events",
    "Events per processed batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "refract_consumer_lag",
    "Events in refract.events not yet processed by this worker, by partition.",
    ["partition"],
    registry=REGISTRY,
)
ASSIGNED_PARTITIONS = Gauge(
    "refract_assigned_partitions",
    "Partitions of refract.events this worker is processing.",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "refract_http_requests",
    "HTTP requests answered, by route and status code.",
    ["route", "status"],
    registry=REGISTRY,
)
CHANGELOG_RESTORED = Counter(
    "refract_changelog_records_restored",
    "Changelog records applied to local state by recovery or standby replication.",
    registry=REGISTRY,
)
SEGMENT_CHANGES = Counter(
    "refract_segment_changes",
    "Customers entering and exiting segments, by segment and change (entered, exited).",
    ["segment", "change"],
    registry=REGISTRY,
)
SEGMENTS_DEFINED = Gauge(
    "refract_segments_defined",
    "Segments this worker evaluates (compiled from refract.definitions).",
    registry=REGISTRY,
)
SEGMENT_BACKFILL_CUSTOMERS = Counter(
    "refract_segment_backfill_customers",
    "Existing customers evaluated for new or changed segments.",
    registry=REGISTRY,
)
SEGMENT_BACKFILL_PARTITIONS = Gauge(
    "refract_segment_backfill_partitions",
    "Partitions of this worker whose customers are being evaluated for new or changed segments.",
    registry=REGISTRY,
)
SEGMENT_TICKS = Counter(
    "refract_segment_ticks",
    "Ticks appended for customers whose segments may change by time alone.",
    registry=REGISTRY,
)
CAMPAIGN_FUNNEL = Counter(
    "refract_campaign_funnel",
    "Campaign runs reaching a funnel stage, by campaign, arm (variant, control, default) and stage.",
    ["campaign", "arm", "stage"],
    registry=REGISTRY,
)
DELIVERIES_DECIDED = Counter(
    "refract_deliveries_decided",
    "Outbound messages the processor wrote to the outbox (refract.deliveries).",
    registry=REGISTRY,
)
CAMPAIGNS_DEFINED = Gauge(
    "refract_campaigns_defined",
    "Campaigns this worker runs (compiled from refract.definitions).",
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "refract_http_rate_limited",
    "Requests refused with 429 because their API key spent its rate limit, by key id.",
    ["key_id"],
    registry=REGISTRY,
)
SEGMENT_MEMBERS = Gauge(
    "refract_segment_members",
    "Customers in each segment, over the partitions this worker owns (sum over workers for the total).",
    ["segment"],
    registry=REGISTRY,
)
DELIVERIES_SENT = Counter(
    "refract_deliveries_sent",
    "Deliveries a provider accepted, by channel and provider.",
    ["channel", "provider"],
    registry=REGISTRY,
)
DELIVERIES_FAILED = Counter(
    "refract_deliveries_failed",
    "Deliveries that ended without being sent, by channel and outcome (failed, bounced, rejected, expired).",
    ["channel", "status"],
    registry=REGISTRY,
)
DELIVERIES_RETRIED = Counter(
    "refract_deliveries_retried",
    "Provider calls that failed transiently and were tried again, by channel and provider.",
    ["channel", "provider"],
    registry=REGISTRY,
)
DELIVERIES_SKIPPED = Counter(
    "refract_deliveries_skipped",
    "Deliveries not sent because their id was already done (replays after a crash or rebalance).",
    ["channel"],
    registry=REGISTRY,
)
DELIVERIES_PENDING = Gauge(
    "refract_deliveries_pending",
    "Deliveries taken from Kafka and not finished (sending or waiting to retry).",
    registry=REGISTRY,
)
PROVIDER_LATENCY = Histogram(
    "refract_provider_latency_seconds",
    "Time of one provider call (accepted or not), by provider.",
    ["provider"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
SYNC_RUNS = Counter(
    "refract_sync_runs",
    "Runs of scheduled syncs, by sync and status (finished, failed, nothing_new).",
    ["sync", "status"],
    registry=REGISTRY,
)
SYNC_ROWS = Counter(
    "refract_sync_rows",
    "Rows of scheduled sync runs, by sync and outcome (read, imported, unchanged, invalid).",
    ["sync", "outcome"],
    registry=REGISTRY,
)
