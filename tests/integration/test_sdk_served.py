"""A real worker serves the JavaScript SDK at /sdk/refract.js, without an API key."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from api.sdk_route import sdk_bundle
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.kafka


def test_a_worker_serves_the_minified_sdk_to_anyone_and_revalidates_it(workers: WorkerFactory) -> None:
    worker = workers.start()
    worker.wait_ready()
    url = f"{worker.api.url}/sdk/refract.js"

    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/javascript; charset=utf-8"
        assert answer.read() == sdk_bundle().minified
        etag = answer.headers["ETag"]

    revalidate = urllib.request.Request(url, headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as not_modified:  # urllib treats 304 as an error
        urllib.request.urlopen(revalidate, timeout=30)
    assert not_modified.value.code == 304
