"""A watched folder: which files are new, in what order, and their stable import ids."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.syncs import SourceFile, SourceFolderMissing, file_import_id, list_folder, new_files

SECOND_NS = 1_000_000_000
NOW_NS = 1_800_000_000 * SECOND_NS


def test_new_files_are_those_not_seen_oldest_first() -> None:
    old = SourceFile("b.csv", 10, NOW_NS - 100 * SECOND_NS)
    older = SourceFile("c.csv", 10, NOW_NS - 200 * SECOND_NS)
    seen = SourceFile("a.csv", 10, NOW_NS - 300 * SECOND_NS)
    assert new_files([old, seen, older], {seen}, now_ns=NOW_NS, settle_s=5) == [older, old]


def test_a_file_modified_within_the_settle_time_waits_for_a_later_run() -> None:
    writing = SourceFile("a.csv", 10, NOW_NS - 2 * SECOND_NS)
    assert new_files([writing], set(), now_ns=NOW_NS, settle_s=5) == []
    assert new_files([writing], set(), now_ns=NOW_NS + 3 * SECOND_NS, settle_s=5) == [writing]


def test_a_file_replaced_under_the_same_name_is_new_again() -> None:
    first = SourceFile("daily.csv", 10, NOW_NS - 100 * SECOND_NS)
    replaced = SourceFile("daily.csv", 12, NOW_NS - 50 * SECOND_NS)
    assert new_files([replaced], {first}, now_ns=NOW_NS, settle_s=5) == [replaced]


def test_the_import_id_of_a_file_is_the_same_every_time_and_differs_per_file_and_sync() -> None:
    file = SourceFile("daily.csv", 10, NOW_NS)
    assert file_import_id("customers", file) == file_import_id(
        "customers", SourceFile("daily.csv", 10, NOW_NS)
    )
    assert file_import_id("customers", file) != file_import_id("balances", file)
    assert file_import_id("customers", file) != file_import_id(
        "customers", SourceFile("daily.csv", 11, NOW_NS)
    )
    assert file_import_id("customers", file).startswith("customers-")


def test_listing_a_folder_gives_the_matching_regular_files_with_size_and_mtime(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "b.txt").write_text("y\n")
    (tmp_path / ".hidden.csv").write_text("z\n")
    (tmp_path / "sub.csv").mkdir()
    os.utime(tmp_path / "a.csv", ns=(NOW_NS, NOW_NS))
    assert list_folder(tmp_path, "*.csv") == [SourceFile("a.csv", 2, NOW_NS)]


def test_a_missing_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SourceFolderMissing, match="incoming"):
        list_folder(tmp_path / "incoming", "*.csv")
