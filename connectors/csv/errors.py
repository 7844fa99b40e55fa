"""Errors of CSV syncs: a sync definition that does not validate, and a file refused up front.

Every error names where the problem is (a YAML path, a byte offset, the missing columns) and says
what to do, because a person fixing a mapping or re-exporting a file is the one who reads it.
"""

from __future__ import annotations

from engine.errors import ValidationError


class MappingError(ValidationError):
    """A sync definition is invalid; ``field`` is the YAML path, e.g. ``columns[3].type``."""

    code = "invalid_sync"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem, field=path or None)
        self.problem = problem


class FileRefused(ValidationError):
    """A file cannot be imported at all (nothing was read from it as rows)."""

    code = "file_refused"


class EncodingRefused(FileRefused):
    """The bytes are not valid in the declared encoding; ``offset`` is the first bad byte."""

    code = "wrong_encoding"

    def __init__(self, message: str, offset: int, line: int) -> None:
        super().__init__(message)
        self.offset = offset
        self.line = line


class NotCsvRefused(FileRefused):
    """The file is binary or another format (a spreadsheet, an archive, a web page)."""

    code = "not_csv"


class HeaderRefused(FileRefused):
    """The header does not carry the columns the sync reads; ``missing`` names them."""

    code = "wrong_header"

    def __init__(self, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class CsvFormatError(FileRefused):
    """The CSV structure broke down mid-file (e.g. a field over the size limit) at ``line``."""

    code = "malformed_csv"

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line
