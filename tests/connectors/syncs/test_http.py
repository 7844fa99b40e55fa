"""A URL source: downloaded with Basic or Bearer credentials from the environment; clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.csv import BasicAuth, BearerAuth, UrlSource
from connectors.syncs import (
    SourceCredentialsMissing,
    SourceRefusedCredentials,
    SourceUnavailable,
    fetch,
)
from tests.support.file_server import FileServer

CSV = b"customer_id,city\nc1,Madrid\n"


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer(username="refract", password="s3cret") as server:
        server.put("customers.csv", CSV)
        yield server


def basic(server: FileServer, name: str = "customers.csv") -> UrlSource:
    return UrlSource(server.url(name), BasicAuth("refract", "FILES_PASSWORD"))


async def test_a_file_is_downloaded_with_basic_auth(server: FileServer, tmp_path: Path) -> None:
    size = await fetch(basic(server), tmp_path / "f.csv", environ={"FILES_PASSWORD": "s3cret"}, timeout_s=5)
    assert (size, (tmp_path / "f.csv").read_bytes()) == (len(CSV), CSV)


async def test_a_wrong_password_says_401_and_names_the_variable_not_the_secret(
    server: FileServer, tmp_path: Path
) -> None:
    with pytest.raises(SourceRefusedCredentials) as refused:
        await fetch(basic(server), tmp_path / "f.csv", environ={"FILES_PASSWORD": "wrong-one"}, timeout_s=5)
    assert refused.value.message.startswith("the source answered 401 Unauthorized: check FILES_PASSWORD")
    assert "wrong-one" not in refused.value.message


async def test_an_unset_password_variable_is_named_before_any_request(
    server: FileServer, tmp_path: Path
) -> None:
    with pytest.raises(SourceCredentialsMissing, match="FILES_PASSWORD"):
        await fetch(basic(server), tmp_path / "f.csv", environ={}, timeout_s=5)
    assert server.requests == 0


async def test_a_bearer_token_is_sent_from_its_variable(tmp_path: Path) -> None:
    with FileServer(token="tok-1") as server:
        server.put("a.csv", CSV)
        source = UrlSource(server.url("a.csv"), BearerAuth("FILES_TOKEN"))
        await fetch(source, tmp_path / "f.csv", environ={"FILES_TOKEN": "tok-1"}, timeout_s=5)
        with pytest.raises(SourceRefusedCredentials, match="check FILES_TOKEN"):
            await fetch(source, tmp_path / "f.csv", environ={"FILES_TOKEN": "tok-2"}, timeout_s=5)


async def test_other_http_errors_and_timeouts_are_unavailable_with_the_reason(
    server: FileServer, tmp_path: Path
) -> None:
    environ = {"FILES_PASSWORD": "s3cret"}
    with pytest.raises(SourceUnavailable, match="answered 404 Not Found"):
        await fetch(basic(server, "nothing.csv"), tmp_path / "f.csv", environ=environ, timeout_s=5)
    server.fail_next(503)
    with pytest.raises(SourceUnavailable, match="answered 503") as unavailable:
        await fetch(basic(server), tmp_path / "f.csv", environ=environ, timeout_s=5)
    assert unavailable.value.retriable
    server.delay_s = 2.0
    with pytest.raises(SourceUnavailable, match=r"within 0\.2 s"):
        await fetch(basic(server), tmp_path / "f.csv", environ=environ, timeout_s=0.2)
