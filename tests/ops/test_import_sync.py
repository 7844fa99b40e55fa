"""``refract import --sync NAME``: a YAML file, else a saved sync's id, else one clear error."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from connectors.csv import MappingError, load_sync
from connectors.syncs import sync_body
from ops.cli import main as cli
from ops.import_sync import UnknownSync, import_sync
from streams.definitions import DefinitionRecord

SYNC = {"id": "customers", "kind": "attributes", "key": "customer_id", "columns": ["city"]}


def saved(body: dict[str, object], *, deleted: bool = False) -> dict[str, DefinitionRecord]:
    record = DefinitionRecord("sync", str(body["id"]), 2, orjson.dumps(body).decode(), deleted, 1)
    return {record.key: record}


def never_read() -> dict[str, DefinitionRecord]:
    raise AssertionError("the definitions topic was read for a sync file")


def test_a_file_is_read_as_a_sync_without_reading_the_definitions(tmp_path: Path) -> None:
    path = tmp_path / "customers"
    path.write_bytes(orjson.dumps(SYNC))  # JSON is YAML: a file named like an id is still a file
    assert import_sync(str(path), never_read) == load_sync(orjson.dumps(SYNC))


def test_an_id_is_looked_up_among_the_saved_syncs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert import_sync("customers", lambda: saved(sync_body(SYNC))) == load_sync(orjson.dumps(SYNC))


@pytest.mark.parametrize(
    ("name", "definitions", "message"),
    [
        ("customers", dict, "--sync customers: no such file, and no sync 'customers' is saved"),
        (
            "customers",
            lambda: saved(sync_body(SYNC), deleted=True),
            "--sync customers: no such file, and no sync 'customers' is saved",
        ),
        ("missing.yaml", never_read, "--sync missing.yaml: no such file"),
        ("some/folder/sync", never_read, "--sync some/folder/sync: no such file"),
    ],
)
def test_a_name_that_is_neither_a_file_nor_a_saved_sync_is_refused(
    name: str, definitions: object, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownSync) as caught:
        import_sync(name, definitions)  # type: ignore[arg-type]
    assert caught.value.message.startswith(message)


def test_a_saved_sync_that_does_not_validate_names_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MappingError, match=r"columns\[0\]\.type"):
        import_sync("customers", lambda: saved({**SYNC, "columns": [{"column": "city", "type": "?"}]}))


def test_the_cli_says_in_one_line_that_a_sync_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFRACT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "a.csv").write_text("customer_id,city\nc1,Madrid\n")
    assert cli(["import", str(tmp_path / "a.csv"), "--sync", str(tmp_path / "nope.yaml"), "--dry-run"]) == 1
    error = capsys.readouterr().err
    assert error == f"refract: error: --sync {tmp_path / 'nope.yaml'}: no such file\n"
