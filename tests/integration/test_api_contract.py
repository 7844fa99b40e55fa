"""The API's contract, on a real worker and the real broker: schemathesis checks every answer
against the OpenAPI document, scopes do what the document says, and rate limits and CORS hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.auth import mint_key
from api.openapi import load_document, operations
from engine.settings import PUBLIC_SCOPES, SCOPES
from tests.conftest import free_port
from tests.support.kafka import KafkaFixture
from tests.support.workers import ADMIN, WorkerFactory, WorkerProcess, api_keys_variable

pytestmark = pytest.mark.kafka

# Examples per operation: enough to find crashes, few enough to run in CI in about a minute.
EXAMPLES = 25
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
SHOP = "https://shop.example"
SDK = mint_key(PUBLIC_SCOPES, key_id="sdk", public=True, origins=[SHOP])
LIMITED = mint_key({"customers:read"}, key_id="limited", rate_per_s=0.1, burst=2)
ONLY = {s: mint_key({s}, key_id="only-" + s.replace(":", "-")) for s in SCOPES}
ALL_BUT = {s: mint_key(set(SCOPES) - {s, "admin"}, key_id="not-" + s.replace(":", "-")) for s in SCOPES}
KEY_ERRORS = ("missing_api_key", "invalid_api_key", "insufficient_scope", "origin_not_allowed")
SYNC = "id: customers\nkind: attributes\nkey: customer_id\ncolumns:\n  - first_name\n"


@pytest.fixture(scope="module")
def worker(kafka: KafkaFixture, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("contract")
    (tmp / "data" / "syncs").mkdir(parents=True)
    (tmp / "data" / "syncs" / "customers.yaml").write_text(SYNC)
    factory = WorkerFactory(kafka.bootstrap, f"t{uuid.uuid4().hex[:10]}", tmp, free_port)
    keys = [ADMIN.setting, SDK.setting, LIMITED.setting]
    keys += [k.setting for k in ONLY.values()] + [k.setting for k in ALL_BUT.values()]
    try:
        # The provider webhooks are set up, so that their signature checks are what gets tested
        # (an unconfigured webhook answers 503 webhook_not_configured to everything).
        yield factory.start(
            REFRACT_API_KEYS=api_keys_variable(*keys),
            REFRACT_CORS_ORIGINS="https://bank.example",
            REFRACT_MAILGUN_WEBHOOK_KEY="mailgun-webhook-signing-key",
            REFRACT_TWILIO_AUTH_TOKEN="twilio-auth-token",
        )
    finally:
        factory.stop_all()


def test_every_answer_conforms_to_the_document_and_no_request_crashes_the_server(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    # schemathesis' own runner: its example, coverage (boundaries, wrong types) and fuzzing phases,
    # positive and negative inputs, with an admin key so requests get past authentication.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{worker.api.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {ADMIN.secret}",
            "--checks",
            ",".join(CHECKS),
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES),
            "--generation-database",
            "none",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps a cache folder where it runs
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert run.returncode == 0, (
        f"{run.stdout[-12000:]}\n{run.stderr[-3000:]}\n--- worker ---\n{worker.log_tail(60)}"
    )


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def call(worker: WorkerProcess, method: str, path: str, key: str | None) -> tuple[int, Any]:
    body: dict[str, Any] | None = {} if method in ("post", "put") else None
    answer = worker.api.request(method.upper(), concrete(path), body, key=key)
    return answer.status, answer.body


def test_each_operation_needs_exactly_the_scope_its_document_says(worker: WorkerProcess) -> None:
    for operation in operations(load_document()):
        where = f"{operation.method.upper()} {operation.path}"
        if operation.scope is None:
            # Without a key, the answer is not about one (a webhook's 401 is about its signature).
            status, body = call(worker, operation.method, operation.path, None)
            code = body["error"]["code"] if isinstance(body, dict) and "error" in body else None
            assert code not in KEY_ERRORS, (where, status, code)
            assert status not in (401, 403) or operation.path.startswith("/webhooks/"), (where, status)
            continue
        status, body = call(worker, operation.method, operation.path, ALL_BUT[operation.scope].secret)
        assert (status, body["error"]["code"]) == (403, "insufficient_scope"), where
        status, body = call(worker, operation.method, operation.path, ONLY[operation.scope].secret)
        assert status not in (401, 403, 429), (where, body)
        status, body = call(worker, operation.method, operation.path, None)
        assert (status, body["error"]["code"]) == (401, "missing_api_key"), where


def test_the_sdk_public_key_can_do_nothing_but_read_decisions_and_write_interactions(
    worker: WorkerProcess,
) -> None:
    for operation in operations(load_document()):
        if operation.scope is None or operation.scope in PUBLIC_SCOPES:
            continue
        status, body = call(worker, operation.method, operation.path, SDK.secret)
        assert (status, body["error"]["code"]) == (403, "insufficient_scope"), operation.path


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(worker: WorkerProcess) -> None:
    answers = [worker.api.get("/v1/customers/nobody", key=LIMITED.secret) for _ in range(3)]
    assert [a.status for a in answers[:2]] == [404, 404]  # the burst of 2
    limited = answers[2]
    assert limited.status == 429 and limited.body["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    metrics = worker.api.get("/metrics", key=None).body
    assert 'refract_http_rate_limited_total{key_id="limited"} 1.0' in metrics
    assert worker.api.get("/v1/customers/nobody").status == 404  # other keys are not affected


def test_only_public_paths_answer_browsers_and_only_for_configured_origins(worker: WorkerProcess) -> None:
    preflight = {"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    answer = worker.api.request("OPTIONS", "/v1/interactions", key=None, headers=preflight)
    assert answer.status == 204 and answer.headers["Access-Control-Allow-Origin"] == SHOP
    bank = worker.api.request(
        "OPTIONS", "/v1/decisions", key=None, headers={**preflight, "Origin": "https://bank.example"}
    )
    assert bank.headers["Access-Control-Allow-Origin"] == "https://bank.example"
    other = worker.api.request(
        "OPTIONS", "/v1/decisions", key=None, headers={**preflight, "Origin": "https://x.example"}
    )
    assert other.status == 403 and "Access-Control-Allow-Origin" not in other.headers
    events = worker.api.post("/v1/events", {"customer_id": "c1", "name": "x"}, headers={"Origin": SHOP})
    assert events.status == 202 and "Access-Control-Allow-Origin" not in events.headers


def test_the_reference_page_and_the_document_are_served_without_a_key(worker: WorkerProcess) -> None:
    document = worker.api.get("/openapi.json", key=None)
    assert document.status == 200 and document.body == load_document()
    page = worker.api.get("/docs/api", key=None)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "POST /v1/events" in page.body


def test_a_multipart_upload_without_a_boundary_is_refused_not_crashed(worker: WorkerProcess) -> None:
    answer = worker.api.request(
        "POST", "/v1/imports/customers", raw=b"customer_id\nc1\n", content_type="multipart/form-data"
    )
    assert (answer.status, answer.body["error"]["code"]) == (400, "invalid_input")
