from __future__ import annotations

import csv
import io

from connectors.csv import ErrorReport, RowError, write_error_report


def read_report(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_the_report_has_one_line_per_error_under_a_header() -> None:
    out = io.StringIO(newline="")

    report = write_error_report(
        [
            RowError(3, "age", "old", "'old' is not an integer"),
            RowError(3, "born", "1990-13-01", "not a date"),
            RowError(7, None, None, "expected 2 fields, found 3"),
        ],
        out,
    )

    assert read_report(out.getvalue()) == [
        ["line", "column", "value", "reason"],
        ["3", "age", "old", "'old' is not an integer"],
        ["3", "born", "1990-13-01", "not a date"],
        ["7", "", "", "expected 2 fields, found 3"],
    ]
    assert (report.errors, report.invalid_rows) == (3, 2)


def test_values_a_spreadsheet_would_run_as_formulas_are_defused() -> None:
    out = io.StringIO(newline="")
    report = ErrorReport(out)

    report.add(RowError(2, "name", '=HYPERLINK("http://x")', "bad"))
    report.add(RowError(3, "balance", "-12.5", "bad"))

    rows = read_report(out.getvalue())
    assert rows[1][2] == '\'=HYPERLINK("http://x")'
    assert rows[2][2] == "-12.5"


def test_long_values_are_cut() -> None:
    out = io.StringIO(newline="")

    write_error_report([RowError(2, "name", "x" * 1000, "too long")], out)

    assert len(read_report(out.getvalue())[1][2]) == 201
