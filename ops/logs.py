"""Structured logs: structlog events rendered as key=value lines through the stdlib logging."""

from __future__ import annotations

import logging

import structlog


def configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event", "level"], drop_missing=True),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # aiokafka and faust are chatty at INFO about every rebalance detail; keep their warnings.
    for name in ("aiokafka", "faust.transport.drivers.aiokafka"):
        logging.getLogger(name).setLevel(logging.WARNING)
