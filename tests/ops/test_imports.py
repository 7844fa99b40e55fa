"""The import runner without Kafka: digests, the key index, dry runs, refusals, the summary, the CLI."""

from __future__ import annotations

import asyncio
import codecs
import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest

from connectors.csv import CsvFormatError, EncodingRefused, HeaderRefused, NotCsvRefused, Sync, load_sync
from engine.events import ContactUpdate, CustomerUpdate
from engine.topics import TopicNames
from ops.cli import main as cli
from ops.imports import (
    DigestStore,
    ImportProgress,
    ImportResult,
    ImportStoreBusy,
    KeyIndex,
    ProgressBar,
    run_import,
    runner,
    summary,
)
from ops.imports.key_index import identity_fields
from ops.imports.runner import _Run
from schemas.codec import decode_envelope
from streams.producer import OutRecord, ProduceFailed

TOPICS = TopicNames("tunit")

CUSTOMERS = """
id: customers
kind: attributes
key: customer_id
columns:
  - first_name
  - {column: email, transforms: [trim, lower]}
  - {column: age, type: integer}
"""
BY_EMAIL = """
id: scores
kind: attributes
key: {column: mail, field: email}
columns:
  - {column: score, type: integer}
"""
PRODUCTS = """
id: products
kind: products
key: customer_id
columns:
  - {column: product, attribute: products}
"""


class FakeProducer:
    """Acknowledges every drain at once (or fails the ones listed), keeping what was queued."""

    def __init__(self, fail_drains: tuple[int, ...] = ()) -> None:
        self.batches: list[list[OutRecord]] = []
        self.fail_drains = fail_drains
        self.drains = 0

    def queue(self, topic: str, keys: list[bytes], values: list[bytes]) -> None:
        self.batches.append([OutRecord(topic, key, value) for key, value in zip(keys, values, strict=True)])

    async def drain(self) -> None:
        self.drains += 1
        if self.drains - 1 in self.fail_drains:
            raise ProduceFailed("broker gone", retriable=True)

    @property
    def records(self) -> list[OutRecord]:
        return [record for batch in self.batches for record in batch]


class Importer:
    """Runs imports against one data folder, the way ``import_file`` does, minus Kafka."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "imports"
        self.count = 0

    def run(
        self,
        path: Path,
        sync: Sync,
        producer: FakeProducer | None = None,
        *,
        dry_run: bool = False,
        progress: Any = None,
        processes: int = 1,
    ) -> ImportResult:
        self.count += 1
        with (
            DigestStore(self.folder / "digests.db") as digests,
            KeyIndex(self.folder / "keys.db") as keys,
        ):
            return asyncio.run(
                run_import(
                    path,
                    sync,
                    producer=producer,  # type: ignore[arg-type]
                    topics=TOPICS,
                    import_id=f"imp{self.count}",
                    digests=digests,
                    keys=keys,
                    folder=self.folder / f"imp{self.count}",
                    dry_run=dry_run,
                    progress=progress,
                    now_ms=1_000,
                    processes=processes,
                )
            )


@pytest.fixture
def importer(tmp_path: Path) -> Importer:
    return Importer(tmp_path)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def csv_of(rows: int, *, age: str = "{i}") -> str:
    lines = ["customer_id,first_name,email,age"]
    lines += [f"c{i},Name{i},C{i}@Example.com,{age.format(i=i)}" for i in range(rows)]
    return "\n".join(lines) + "\n"


# --- digests and the key index -------------------------------------------------------------------


def test_digest_store_keeps_both_digests_per_sync_and_customer_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "digests.db"
    with DigestStore(path) as store:
        store.put_many([b"s1\0c1"], [b"r" * 16 + b"d" * 16])
        assert store.get("s2", "c1") is None
    with DigestStore(path) as store:
        stored = store.get("s1", "c1")
        assert stored is not None and (stored.raw, stored.row) == (b"r" * 16, b"d" * 16)


def test_a_digest_store_held_by_another_import_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with DigestStore(tmp_path / "digests.db"), pytest.raises(ImportStoreBusy, match="another import"):
        DigestStore(tmp_path / "digests.db")


def test_a_read_only_digest_store_reads_while_another_holds_it(tmp_path: Path) -> None:
    with DigestStore(tmp_path / "digests.db") as store:
        store.put_many([b"s\0c"], [bytes(32)])
        with DigestStore(tmp_path / "digests.db", read_only=True) as reader:
            assert reader.get("s", "c") is not None


def test_key_index_resolves_emails_case_insensitively(tmp_path: Path) -> None:
    with KeyIndex(tmp_path / "keys.db") as index:
        index.record([("email", " Ana@Example.COM ", "c1"), ("national_id", "123", "c2")])
        assert index.lookup("email", "ana@example.com") == "c1"
        assert index.lookup("national_id", "123") == "c2"
        assert index.lookup("email", "bob@example.com") is None


def test_identity_fields_come_from_profile_attributes_and_contacts_but_not_campaign_data() -> None:
    assert identity_fields(CustomerUpdate({"email": "a@x.io", "city": "Salto"})) == [("email", "a@x.io")]
    assert identity_fields(CustomerUpdate({"email": "a@x.io"}, campaign_id="c")) == []
    assert identity_fields(ContactUpdate(email="a@x.io", phone="")) == [("email", "a@x.io")]


# --- importing ------------------------------------------------------------------------------------


def test_an_import_appends_one_event_per_row_keyed_by_customer_with_deterministic_ids(
    tmp_path: Path, importer: Importer
) -> None:
    producer = FakeProducer()
    result = importer.run(write(tmp_path, "a.csv", csv_of(3)), load_sync(CUSTOMERS), producer)
    assert (result.status, result.rows_read, result.imported, result.events) == ("finished", 3, 3, 3)
    keys = [record.key for record in producer.records]
    assert keys == [b"c0", b"c1", b"c2"]
    envelope = decode_envelope(producer.records[1].value or b"")
    assert envelope.customer_id == "c1" and envelope.source == "sync:customers"
    assert envelope.payload == CustomerUpdate({"first_name": "Name1", "email": "c1@example.com", "age": 1})
    stored = json.loads((importer.folder / "imp1" / "result.json").read_text())
    assert stored["imported"] == 3 and stored["status"] == "finished"


def test_rows_are_produced_in_batches_and_counted_only_once_acknowledged(
    tmp_path: Path, importer: Importer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.imports.runner.BATCH_ROWS", 10)
    monkeypatch.setattr("ops.imports.runner.DRAIN_ROWS", 20)
    producer = FakeProducer(fail_drains=(1,))
    path = write(tmp_path, "a.csv", csv_of(45))
    with pytest.raises(ProduceFailed):
        importer.run(path, load_sync(CUSTOMERS), producer)
    assert producer.drains == 2  # the failure stopped the import
    result = json.loads((importer.folder / "imp1" / "result.json").read_text())
    assert result["status"] == "failed" and "broker gone" in result["message"]
    assert result["imported"] == 20  # the 20 rows of the failed drain are not counted
    # A redo appends only the rows Kafka did not acknowledge.
    redo = FakeProducer()
    again = importer.run(path, load_sync(CUSTOMERS), redo)
    assert (again.imported, again.unchanged) == (25, 20)
    assert {r.key for r in redo.records} == {f"c{i}".encode() for i in range(20, 45)}


def test_reimporting_the_same_file_appends_nothing(tmp_path: Path, importer: Importer) -> None:
    path = write(tmp_path, "a.csv", csv_of(50))
    importer.run(path, load_sync(CUSTOMERS), FakeProducer())
    producer = FakeProducer()
    result = importer.run(path, load_sync(CUSTOMERS), producer)
    assert (result.rows_read, result.imported, result.unchanged, result.events) == (50, 0, 50, 0)
    assert producer.records == []


def test_a_reimport_appends_only_changed_rows_and_same_values_in_other_words_are_unchanged(
    tmp_path: Path, importer: Importer
) -> None:
    importer.run(write(tmp_path, "a.csv", csv_of(5)), load_sync(CUSTOMERS), FakeProducer())
    text = csv_of(5).replace("c1,Name1", "c1,Renamed").replace(",3\n", ",003\n")
    producer = FakeProducer()
    result = importer.run(write(tmp_path, "b.csv", text), load_sync(CUSTOMERS), producer)
    assert (result.imported, result.unchanged) == (1, 4)
    assert [r.key for r in producer.records] == [b"c1"]
    # "003" was remembered as text: the next run (of another file: a blank line more) recognizes
    # it before converting.
    third = importer.run(write(tmp_path, "c.csv", text + "\n"), load_sync(CUSTOMERS), FakeProducer())
    assert third.unchanged == 5


MIXED = (
    "customer_id,first_name,email,age\n"
    "c1,Ana,Ana@X.io,30\n"
    "c2,Bob,b@x.io,old\n"
    "c3,Ω,ΩMEGA@X.IO,7\n"  # a lower() beyond Latin-1: the compiled encoder hands it to Python
    "c4,Zoë, ZOË@x.io ,\n"
    ",Eve,e@x.io,3\n"
    "c1,Ana,ana@x.io,31\n"
)


def test_the_compiled_encoder_and_the_python_path_import_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "a.csv", MIXED)
    outcomes = []
    for name in ("compiled", "python"):
        if name == "python":
            monkeypatch.setattr("ops.imports.runner.row_encoder", lambda *args, **kwargs: None)
        importer, producer = Importer(tmp_path / name), FakeProducer()
        result = importer.run(path, load_sync(CUSTOMERS), producer)
        with (
            DigestStore(importer.folder / "digests.db") as digests,
            KeyIndex(importer.folder / "keys.db") as keys,
        ):
            stored = [digests.get("customers", key) for key in ("c1", "c2", "c3", "c4")]
            found = [keys.lookup("email", email) for email in ("ana@x.io", "ωmega@x.io", "zoë@x.io")]
        outcomes.append(
            (
                (result.imported, result.invalid),
                producer.records,
                result.error_report.read_text(),
                stored,
                found,
            )
        )
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == (4, 2) and outcomes[0][4] == ["c1", "c3", "c4"]


QUOTED = (
    "customer_id,first_name,email,age\r\n"
    'c1,"Gil, Ana",a@x.io,30\r\n'
    "\r\n"
    'c2,"say ""hi""\nthere",b@x.io,old\r\n'
    'c3,"two\r\nlines",c@x.io,4\r'
    "c4,Zoe,z@x.io,5\n"
)


@pytest.mark.parametrize("ending", ["", 'c5,"never closed,x@y.z,1\n'])
def test_the_compiled_reader_and_the_csv_module_import_the_same_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    monkeypatch.setattr("ops.imports.runner.TEXT_BLOCK", 7)  # records cut across blocks
    path = write(tmp_path, "a.csv", QUOTED + ending)
    outcomes = []
    for name in ("compiled", "python"):
        if name == "python":
            monkeypatch.setattr("ops.imports.runner.row_encoder", lambda *args, **kwargs: None)
        producer = FakeProducer()
        result = Importer(tmp_path / name).run(path, load_sync(CUSTOMERS), producer)
        counts = (result.rows_read, result.imported, result.invalid)
        outcomes.append((counts, producer.records, result.error_report.read_text()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0][:2] == ((5, 3) if ending else (4, 3))
    assert "4,age,old,'old' is not an integer" in outcomes[0][2]  # the line c2's record starts on


MULTIBYTE = (
    'customer_id,first_name,email,age\nc1,Muñoz,a@x.io,1\nc2,"Ωmega ""Ω""\n😀 ok",b@x.io,2\nc3,Zoë,c@x.io,x\n'
)


@pytest.mark.parametrize("ending", ["", 'c4,"never closed ñ😀,x@y.z,1\n'])
@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["utf-8", "bom"])
def test_utf_8_cut_into_blocks_inside_characters_imports_as_the_csv_module_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str, bom: bytes
) -> None:
    path = write(tmp_path, "a.csv", bom + (MULTIBYTE + ending).encode())
    monkeypatch.setattr("ops.imports.runner.row_encoder", lambda *args, **kwargs: None)
    producer = FakeProducer()
    expected = Importer(tmp_path / "python").run(path, load_sync(CUSTOMERS), producer)
    assert (expected.rows_read, expected.imported) == ((4, 2) if ending else (3, 2))
    monkeypatch.undo()
    for size in (1, 2, 3, 5, 7, 4096):  # blocks end inside 2-, 3- and 4-byte characters
        monkeypatch.setattr("ops.imports.runner.TEXT_BLOCK", size)
        compiled = FakeProducer()
        result = Importer(tmp_path / f"compiled-{size}").run(path, load_sync(CUSTOMERS), compiled)
        assert (result.rows_read, result.imported, result.invalid) == (
            expected.rows_read,
            expected.imported,
            expected.invalid,
        ), size
        assert compiled.records == producer.records, size
        assert result.error_report.read_text() == expected.error_report.read_text()


def _refusals_on_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Path) -> list[str]:
    """The CsvFormatError messages of importing ``path`` with the compiled reader, then without."""
    messages = []
    for name in ("compiled", "python"):
        if name == "python":
            monkeypatch.setattr("ops.imports.runner.row_encoder", lambda *args, **kwargs: None)
        with pytest.raises(CsvFormatError) as refused:
            Importer(tmp_path / name).run(path, load_sync(CUSTOMERS), FakeProducer())
        messages.append(str(refused.value))
    return messages


def test_a_field_over_the_csv_limit_mid_file_fails_the_import_the_same_way_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.imports.runner.TEXT_BLOCK", 4096)
    huge = "x" * (csv.field_size_limit() + 1)
    path = write(tmp_path, "a.csv", csv_of(3) + f"c9,{huge},e@x.io,1\n" + csv_of(300)[33:])
    messages = _refusals_on_both_paths(tmp_path, monkeypatch, path)
    assert messages[0] == messages[1]
    assert "line 5" in messages[0] and "field larger than field limit" in messages[0]


def test_after_handing_a_file_over_to_the_csv_module_the_compiled_reader_is_fed_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quote left open early in a long file: the compiled reader hands over once the quoted
    field passes the csv module's size limit (~32 blocks of 4 KiB), and is not fed (nor keeps)
    the rest of the file; the csv module fails the import on that field, as without it."""
    monkeypatch.setattr("ops.imports.runner.TEXT_BLOCK", 4096)
    head = csv_of(3) + 'c7,"Zoë\nopen,e@x.io,1\n'
    path = write(tmp_path, "a.csv", head + csv_of(60_000)[33:])  # ~2 MB: ~500 blocks
    read = []
    real_read = runner._TextBlocks.read

    def counted(self: Any) -> tuple[str | bytes, bool]:
        read.append(1)
        return real_read(self)

    monkeypatch.setattr("ops.imports.runner._TextBlocks.read", counted)
    messages = _refusals_on_both_paths(tmp_path, monkeypatch, path)
    assert messages[0] == messages[1]
    assert "field larger than field limit" in messages[0]
    assert 32 <= len(read) <= 34 + runner.ENCODED_AHEAD + 1, len(read)


@pytest.mark.parametrize("key", ["c7", "c77"])
def test_the_csv_module_reads_on_from_a_character_the_last_block_cut_in_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """Blocks of an odd size over 2-byte characters: every other one ends inside a character
    (which ones, the key's length decides), and the csv module, taking over, must read on from
    that character's first byte."""
    monkeypatch.setattr("ops.imports.runner.TEXT_BLOCK", 4097)
    head = csv_of(3) + f'{key},"' + "Ω" * 140_000 + '",e@x.io,1\n'  # a field over the csv limit
    path = write(tmp_path, "a.csv", head + "Ω" * 40_000 + "\n" + csv_of(100)[33:])
    messages = _refusals_on_both_paths(tmp_path, monkeypatch, path)
    assert messages[0] == messages[1]


def test_reimporting_the_very_same_file_reads_no_row_and_repeats_its_error_report(
    tmp_path: Path, importer: Importer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "a.csv", MIXED)
    first = importer.run(path, load_sync(CUSTOMERS), FakeProducer())

    async def no_rows(*args: object) -> None:
        raise AssertionError("the same file was read again")

    monkeypatch.setattr("ops.imports.runner._Run.raw_rows", no_rows)
    producer = FakeProducer()
    again = importer.run(path, load_sync(CUSTOMERS), producer)
    assert producer.records == []
    assert (again.rows_read, again.imported, again.unchanged, again.invalid, again.errors) == (
        first.rows_read,
        0,
        first.imported,
        first.invalid,
        first.errors,
    )
    assert again.error_report != first.error_report
    assert again.error_report.read_text() == first.error_report.read_text()


def test_a_file_changed_while_it_was_imported_is_read_again_next_time(
    tmp_path: Path, importer: Importer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "a.csv", csv_of(5))
    finish = _Run.finish

    async def finish_then_edit(run: _Run) -> None:
        await finish(run)  # the rows were read; now the file changes (same size)
        path.write_text(csv_of(5).replace("c1,Name1", "c1,Namx1"))
        os.utime(path, ns=(1, 1))

    monkeypatch.setattr(_Run, "finish", finish_then_edit)
    importer.run(path, load_sync(CUSTOMERS), FakeProducer())
    monkeypatch.setattr(_Run, "finish", finish)
    producer = FakeProducer()
    again = importer.run(path, load_sync(CUSTOMERS), producer)
    assert (again.rows_read, again.imported, again.unchanged) == (5, 1, 4)
    assert [r.key for r in producer.records] == [b"c1"]


def test_after_another_file_or_a_failed_import_the_same_file_is_read_again(
    tmp_path: Path, importer: Importer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write(tmp_path, "a.csv", csv_of(30))
    b = write(tmp_path, "b.csv", csv_of(30, age="{i}0"))
    importer.run(a, load_sync(CUSTOMERS), FakeProducer())
    importer.run(b, load_sync(CUSTOMERS), FakeProducer())
    # b changed every age: a's rows are all changed again, though a was imported before.
    producer = FakeProducer()
    assert importer.run(a, load_sync(CUSTOMERS), producer).imported == 29  # 0 is 00 for c0
    # An import of b that fails still changed the digests of the rows Kafka acknowledged (its first
    # 10 changed rows): a is read again, and those rows are imported again.
    monkeypatch.setattr("ops.imports.runner.BATCH_ROWS", 10)
    monkeypatch.setattr("ops.imports.runner.DRAIN_ROWS", 10)
    with pytest.raises(ProduceFailed):
        importer.run(b, load_sync(CUSTOMERS), FakeProducer(fail_drains=(1,)))
    assert importer.run(a, load_sync(CUSTOMERS), FakeProducer()).imported == 10


def test_a_changed_mapping_makes_every_row_changed_once(tmp_path: Path, importer: Importer) -> None:
    path = write(tmp_path, "a.csv", csv_of(4))
    importer.run(path, load_sync(CUSTOMERS), FakeProducer())
    renamed = load_sync(CUSTOMERS.replace("- first_name", "- {column: first_name, attribute: name}"))
    assert importer.run(path, renamed, FakeProducer()).imported == 4
    assert importer.run(path, renamed, FakeProducer()).unchanged == 4


def test_invalid_rows_go_to_the_error_report_and_the_others_are_imported(
    tmp_path: Path, importer: Importer
) -> None:
    text = "customer_id,first_name,email,age\nc1,Ana,a@x.io,30\nc2,Bob,b@x.io,old\n,Eve,e@x.io,3\nc4,Z\n"
    producer = FakeProducer()
    result = importer.run(write(tmp_path, "a.csv", text), load_sync(CUSTOMERS), producer)
    assert (result.rows_read, result.imported, result.invalid) == (4, 1, 3)
    report = result.error_report.read_text().splitlines()
    assert report[0] == "line,column,value,reason"
    assert report[1] == "3,age,old,'old' is not an integer"
    assert report[2].startswith("4,customer_id,,the key is empty")
    assert report[3] == '5,,,"expected 4 fields, found 2; check the delimiter and quoting"'


def test_a_dry_run_validates_and_counts_but_produces_and_stores_nothing(
    tmp_path: Path, importer: Importer
) -> None:
    text = csv_of(6) + "c9,Bad,b@x.io,x\n"
    result = importer.run(write(tmp_path, "a.csv", text), load_sync(CUSTOMERS), None, dry_run=True)
    assert (result.dry_run, result.rows_read, result.imported, result.invalid) == (True, 7, 6, 1)
    assert result.error_report.read_text().count("\n") == 2
    assert importer.run(write(tmp_path, "a.csv", text), load_sync(CUSTOMERS), FakeProducer()).imported == 6


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        (b"PK\x03\x04binary", NotCsvRefused),
        ("customer_id,first_name,email,age\nc1,Mu\xf1oz,a@x.io,1\n".encode("latin-1"), EncodingRefused),
        (b"id,first_name,email,age\nc1,Ana,a@x.io,1\n", HeaderRefused),
    ],
    ids=["not-csv", "latin-1-declared-utf-8", "wrong-header"],
)
def test_a_refused_file_raises_before_anything_is_produced(
    tmp_path: Path, importer: Importer, content: bytes, refusal: type[Exception]
) -> None:
    producer = FakeProducer()
    with pytest.raises(refusal):
        importer.run(write(tmp_path, "a.csv", content), load_sync(CUSTOMERS), producer)
    assert producer.batches == []
    assert not (importer.folder / "imp1").exists()


def test_an_email_keyed_sync_resolves_through_the_index_an_earlier_import_filled(
    tmp_path: Path, importer: Importer
) -> None:
    importer.run(write(tmp_path, "a.csv", csv_of(3)), load_sync(CUSTOMERS), FakeProducer())
    text = "mail,score\nC2@example.com,7\nnobody@example.com,1\n c0@EXAMPLE.com ,9\n"
    producer = FakeProducer()
    result = importer.run(write(tmp_path, "b.csv", text), load_sync(BY_EMAIL), producer)
    assert (result.imported, result.invalid) == (2, 1)
    assert [r.key for r in producer.records] == [b"c2", b"c0"]
    assert decode_envelope(producer.records[0].value or b"").payload == CustomerUpdate({"score": 7})
    line = result.error_report.read_text().splitlines()[1]
    assert line == "3,mail,nobody@example.com,no customer has email nobody@example.com"
    assert importer.run(write(tmp_path, "b.csv", text), load_sync(BY_EMAIL), FakeProducer()).unchanged == 2


def test_products_rows_fold_per_customer_and_reimport_as_unchanged(
    tmp_path: Path, importer: Importer
) -> None:
    text = "customer_id,product\nc1,card\nc1,loan\nc2,savings\n"
    producer = FakeProducer()
    result = importer.run(write(tmp_path, "p.csv", text), load_sync(PRODUCTS), producer)
    assert (result.rows_read, result.imported, result.events) == (3, 2, 2)
    payload = decode_envelope(producer.records[0].value or b"").payload
    assert payload == CustomerUpdate({"products": ("card", "loan")})
    assert importer.run(write(tmp_path, "p.csv", text), load_sync(PRODUCTS), FakeProducer()).unchanged == 2


def test_latin_1_and_bom_files_are_read_in_their_encoding(tmp_path: Path, importer: Importer) -> None:
    latin = load_sync(CUSTOMERS + "encoding: latin-1\n")
    text = "customer_id,first_name,email,age\nc1,Muñoz,a@x.io,1\n"
    producer = FakeProducer()
    importer.run(write(tmp_path, "l.csv", text.encode("latin-1")), latin, producer)
    bom = b"\xef\xbb\xbf" + text.replace("c1", "c2").encode()
    importer.run(write(tmp_path, "b.csv", bom), load_sync(CUSTOMERS), producer)
    payloads = [decode_envelope(r.value or b"").payload for r in producer.records]
    names = [p.set["first_name"] for p in payloads if isinstance(p, CustomerUpdate)]
    assert names == ["Muñoz", "Muñoz"]


def test_progress_is_reported_as_batches_go_and_at_the_end(
    tmp_path: Path, importer: Importer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.imports.runner.BATCH_ROWS", 10)
    seen: list[ImportProgress] = []
    path = write(tmp_path, "a.csv", csv_of(25))
    importer.run(path, load_sync(CUSTOMERS), FakeProducer(), progress=seen.append)
    assert len(seen) >= 3
    assert (seen[-1].rows_read, seen[-1].imported) == (25, 25)
    assert seen[-1].bytes_read == seen[-1].total_bytes


# --- what a person sees ---------------------------------------------------------------------------


def result_of(**changes: Any) -> ImportResult:
    values: dict[str, Any] = dict(
        import_id="20260101-000000-abcdef",
        sync_id="customers",
        status="finished",
        dry_run=False,
        rows_read=10_000,
        imported=9_812,
        unchanged=176,
        invalid=12,
        errors=14,
        events=27_401,
        duration_s=3.2,
        started_at_ms=0,
        error_report=Path("/nowhere/errors.csv"),
    )
    values.update(changes)
    return ImportResult(**values)


def test_the_summary_says_rows_events_speed_invalid_rows_and_unchanged() -> None:
    assert summary(result_of()) == (
        "imported 9,812 rows (27,401 events) in 3.2 s — 3,125 rows/s;"
        " 12 invalid rows: see /nowhere/errors.csv; 176 unchanged"
    )


def test_the_summary_of_a_clean_dry_run_says_nothing_was_written() -> None:
    text = summary(result_of(dry_run=True, invalid=0, unchanged=0, imported=1, events=1, rows_read=1))
    assert text.startswith("dry run: 1 row would be imported (1 event), nothing written;")
    assert text.endswith("no invalid rows; 0 unchanged")


def test_the_progress_line_shows_share_rows_speed_and_errors() -> None:
    line = ProgressBar.line(ImportProgress(50_000, 40_000, 0, 3, 40_000, 2.0, 500, 1000))
    assert line == "[##########..........]  50% 50,000 rows  25,000 rows/s  3 errors  0 unchanged"


def test_the_cli_refuses_a_file_with_one_line_and_exit_code_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFRACT_DATA_DIR", str(tmp_path / "data"))
    sync = write(tmp_path, "sync.yaml", CUSTOMERS)
    path = write(tmp_path, "a.csv", b"id;name\n1;2\n")
    assert cli(["import", str(path), "--sync", str(sync), "--dry-run"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"refract: error: {path}: the header lacks 'customer_id'")
    assert error.count("\n") == 1


def test_the_cli_dry_run_prints_the_summary_and_exits_0_with_invalid_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFRACT_DATA_DIR", str(tmp_path / "data"))
    sync = write(tmp_path, "sync.yaml", CUSTOMERS)
    path = write(tmp_path, "a.csv", csv_of(2) + "c3,X,x@y.io,old\n")
    assert cli(["import", str(path), "--sync", str(sync), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: 2 rows would be imported (2 events), nothing written;")
    assert "1 invalid row: see " in out and out.rstrip().endswith("0 unchanged")


def test_the_cli_names_the_sync_file_of_a_bad_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFRACT_DATA_DIR", str(tmp_path / "data"))
    sync = write(tmp_path, "sync.yaml", CUSTOMERS.replace("type: integer", "type: integr"))
    assert cli(["import", str(write(tmp_path, "a.csv", csv_of(1))), "--sync", str(sync)]) == 1
    assert capsys.readouterr().err.startswith(f"refract: error: {sync}: columns[2].type: 'integr'")


def test_rows_converted_in_a_pool_of_processes_are_the_same_events_in_the_same_order(
    tmp_path: Path, importer: Importer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.imports.runner.POOL_MIN_BYTES", 0)
    monkeypatch.setattr("ops.imports.runner.CHUNK_ROWS", 7)
    # The pool serves the Python path: the compiled encoder would take these rows itself.
    monkeypatch.setattr("ops.imports.runner.row_encoder", lambda *args, **kwargs: None)
    text = csv_of(60) + "c99,Bad,b@x.io,x\n"
    inline, pooled = FakeProducer(), FakeProducer()
    first = importer.run(write(tmp_path, "a.csv", text), load_sync(CUSTOMERS), inline)
    second = Importer(tmp_path / "other").run(
        write(tmp_path, "a.csv", text), load_sync(CUSTOMERS), pooled, processes=2
    )
    assert (second.imported, second.invalid) == (first.imported, first.invalid) == (60, 1)
    assert [(r.key, r.value) for r in pooled.records] == [(r.key, r.value) for r in inline.records]
    assert second.error_report.read_text() == first.error_report.read_text()


def test_the_cli_refuses_an_import_id_that_is_not_a_plain_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFRACT_DATA_DIR", str(tmp_path / "data"))
    sync = write(tmp_path, "sync.yaml", CUSTOMERS)
    path = write(tmp_path, "a.csv", csv_of(1))
    assert cli(["import", str(path), "--sync", str(sync), "--dry-run", "--import-id", "../up"]) == 1
    assert capsys.readouterr().err.startswith("refract: error: '../up' is not an import id")
