"""docker-compose.yml cannot run here (no Docker engine): check it agrees with the settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from api.auth import mint_key
from ops.config import known_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def worker_env(service: dict[str, Any]) -> dict[str, str]:
    key = mint_key({"admin"}).setting
    value = f"{key.key_id}:{key.secret_sha256}:admin"
    secret = "compose-signing-secret-0123456789"
    env = {}
    for name, raw in service["environment"].items():
        text = re.sub(r"\$\{REFRACT_API_KEYS[^}]*\}", value, str(raw))
        env[name] = re.sub(r"\$\{REFRACT_SIGNING_SECRET[^}]*\}", secret, text)
    return env


def test_compose_has_kafka_two_workers_and_prometheus() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "worker-1", "worker-2", "prometheus"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "healthcheck" in services["kafka"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_each_worker_environment_is_valid_settings_and_matches_its_ports() -> None:
    services = compose()["services"]
    for name in ("worker-1", "worker-2"):
        service = services[name]
        settings = load_settings(env=worker_env(service))
        assert settings.kafka_bootstrap == "kafka:9092"
        assert settings.web_host == name and settings.web_bind == "0.0.0.0"
        assert service["ports"] == [f"{settings.web_port}:{settings.web_port}"]
        assert settings.api_keys, "the workers need API keys"
        assert settings.signing_secrets, "the workers need the signing secret"
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_both_workers_share_one_namespace_and_partition_count() -> None:
    services = compose()["services"]
    one, two = (load_settings(env=worker_env(services[n])) for n in ("worker-1", "worker-2"))
    assert (one.namespace, one.partitions, one.group_id) == (two.namespace, two.partitions, two.group_id)
    assert one.worker_name != two.worker_name


def test_prometheus_scrapes_both_workers_metrics() -> None:
    services = compose()["services"]
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    expected = []
    for name in ("worker-1", "worker-2"):
        settings = load_settings(env=worker_env(services[name]))
        expected.append(f"{settings.web_host}:{settings.web_port}")
    assert sorted(targets) == sorted(expected)
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_workers_use_only_variables_the_settings_read() -> None:
    # A misspelt variable would silently do nothing in a container.
    services = compose()["services"]
    for name in ("worker-1", "worker-2"):
        assert set(services[name]["environment"]) <= known_variables()
