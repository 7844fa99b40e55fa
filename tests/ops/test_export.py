"""``refract export``: a segment's members CSV copied from the API, against a local HTTP server."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from ops.cli import main
from ops.export import RowCounter, export_path

KEY = "test-admin-key"
CSV = (
    b"customer_id,first_name,notes,email\r\n"
    b'a,Ana,"two\r\nlines",a@example.com\r\nb,Bo,"say ""hi""",\r\nc,,,\r\n'
)


@dataclass
class FakeApi:
    url: str
    queries: list[dict[str, str]] = field(default_factory=list)


FAKE = web.AppKey("fake", FakeApi)


async def members_csv(request: web.Request) -> web.StreamResponse:
    api: FakeApi = request.app[FAKE]
    api.queries.append(dict(request.query))
    if request.headers.get("Authorization") != f"Bearer {KEY}":
        return web.json_response({"error": {"code": "invalid_api_key", "message": "bad key"}}, status=401)
    segment = request.match_info["segment_id"]
    if segment == "nope":
        message = "no segment with id 'nope'"
        return web.json_response({"error": {"code": "segment_not_found", "message": message}}, status=404)
    if "bad name" in request.query.get("attributes", ""):
        message = "attributes: 'bad name' is not an attribute name"
        return web.json_response({"error": {"code": "validation_error", "message": message}}, status=400)
    response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
    await response.prepare(request)
    for start in range(0, len(CSV), 7):  # small chunks: records and quoted cells cut in the middle
        await response.write(CSV[start : start + 7])
    if segment == "broken":
        assert request.transport is not None
        request.transport.close()
        return response
    await response.write_eof()
    return response


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    """A local aiohttp server answering ``GET /v1/segments/{id}/members.csv``, in its own thread."""
    loop = asyncio.new_event_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    api = FakeApi(f"http://127.0.0.1:{sock.getsockname()[1]}")
    app = web.Application()
    app[FAKE] = api
    app.router.add_get("/v1/segments/{segment_id}/members.csv", members_csv)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def export(api: FakeApi, *args: str) -> int:
    return main(["export", "--api", api.url, "--api-key", KEY, *args])


def test_the_export_is_written_to_the_file_with_a_summary_of_the_members(
    fake_api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "vips.csv"
    code = export(
        fake_api, "--segment", "vips", "--attributes", "first_name,notes", "--contacts", "email",
        "--output", str(target),
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert target.read_bytes() == CSV
    assert capsys.readouterr().out == f"3 members of segment vips written to {target}\n"
    assert fake_api.queries == [{"attributes": "first_name,notes", "contacts": "email"}]
    assert not (tmp_path / "vips.csv.part").exists()


def test_without_an_output_file_the_csv_goes_to_standard_output(
    fake_api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(fake_api, "--segment", "vips") == 0
    assert capsys.readouterr().out.encode() == CSV
    assert fake_api.queries == [{}]


def test_an_unknown_segment_is_one_line_from_the_api(
    fake_api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(fake_api, "--segment", "nope", "--output", str(tmp_path / "out.csv")) == 1
    assert capsys.readouterr().err == "refract: error: no segment with id 'nope'\n"
    assert list(tmp_path.iterdir()) == []


def test_a_bad_attribute_is_one_line_from_the_api(
    fake_api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(fake_api, "--segment", "vips", "--attributes", "bad name") == 1
    assert capsys.readouterr().err == "refract: error: attributes: 'bad name' is not an attribute name\n"


def test_a_worker_that_is_not_running_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        assert main(["export", "--api", url, "--api-key", KEY, "--segment", "vips"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"refract: error: cannot reach the Refract API at {url}") and err.count("\n") == 1


def test_a_download_that_breaks_off_leaves_no_file(
    fake_api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.csv"
    assert export(fake_api, "--segment", "broken", "--output", str(target)) == 1
    assert "broke off" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_records_are_counted_across_chunks_and_quoted_newlines() -> None:
    sink = io.BytesIO()
    counter = RowCounter(sink)
    for start in range(0, len(CSV), 3):
        counter.write(CSV[start : start + 3])
    assert counter.records == 4 and sink.getvalue() == CSV


def test_the_path_quotes_the_segment_and_leaves_out_empty_columns() -> None:
    assert export_path("a b") == "/v1/segments/a%20b/members.csv"
    assert export_path("vips", "first_name,city", None) == (
        "/v1/segments/vips/members.csv?attributes=first_name%2Ccity"
    )
