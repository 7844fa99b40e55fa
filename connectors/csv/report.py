"""The error report of an import: one CSV line per bad cell (line, column, value, reason), streamed.

People open this report in a spreadsheet, so a value that a spreadsheet would run as a formula
(it starts with =, +, @ or -) is written with a leading apostrophe, and long values are cut.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from connectors.csv.reader import RowError

REPORT_COLUMNS = ("line", "column", "value", "reason")
# Longest cell value copied into the report; the line number finds the rest in the file.
VALUE_CHARACTERS = 200
_FORMULA_STARTS = ("=", "+", "@", "-", "\t", "\r")


class ErrorReport:
    """Writes ``RowError``s to ``stream`` (a text stream opened with ``newline=""``) as they come.

    ``errors`` counts the lines written, ``invalid_rows`` the distinct rows they are about.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._writer = csv.writer(stream)
        self._writer.writerow(REPORT_COLUMNS)
        self._last_line = -1
        self.errors = 0
        self.invalid_rows = 0

    def add(self, error: RowError) -> None:
        self._writer.writerow((error.line, error.column or "", _safe(error.value), error.reason))
        self.errors += 1
        # The reader yields the errors of one row together.
        if error.line != self._last_line:
            self.invalid_rows += 1
            self._last_line = error.line

    def copy_from(self, report: TextIO, *, invalid_rows: int, errors: int) -> None:
        """Repeat an earlier report of the same rows (read from ``report``) and its counts."""
        next(csv.reader(report), None)  # its header: this report has written its own
        for line in report:
            self._stream.write(line)
        self.errors += errors
        self.invalid_rows += invalid_rows


def write_error_report(errors: Iterable[RowError], stream: TextIO) -> ErrorReport:
    """Write every error of ``errors`` to ``stream``; returns the report with its counts."""
    report = ErrorReport(stream)
    for error in errors:
        report.add(error)
    return report


def _safe(value: str | None) -> str:
    if value is None:
        return ""
    if len(value) > VALUE_CHARACTERS:
        value = value[:VALUE_CHARACTERS] + "…"
    if value.startswith(_FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
