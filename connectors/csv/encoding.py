"""What the bytes of an uploaded file are: its text encoding, or a refusal because it is not text.

A file is judged before any row is read: its first bytes tell a byte order mark, a spreadsheet,
an archive or a web page apart from CSV text, and a ``ByteChecker`` validates every byte in the
declared encoding (no NUL bytes, valid UTF-8) and reports the first bad one by offset and line.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from connectors.csv.errors import EncodingRefused, NotCsvRefused

try:
    from connectors.csv._native import utf8_prefix
except ImportError:  # pragma: no cover - the install builds it; without Rust, the decoder checks
    utf8_prefix = None

UTF8_BOM = codecs.BOM_UTF8
CHUNK_BYTES = 1 << 20

# First bytes of formats people upload instead of CSV, and what to tell them.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive or an Excel (.xlsx) workbook; export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel (.xls) workbook; export the sheet as CSV"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive; decompress it first"),
    (b"\xff\xfe", "UTF-16 text; save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text; save it as UTF-8"),
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<?xml")


def decoding_codec(prefix: bytes, declared: str) -> str:
    """The Python codec to read a file starting with ``prefix`` that is declared ``declared``.

    A UTF-8 byte order mark is honoured (and stripped) when UTF-8 is declared, and refused when
    Latin-1 is declared, since such a file is almost surely UTF-8.
    """
    for signature, what in _SIGNATURES:
        if prefix.startswith(signature):
            raise NotCsvRefused(f"the file is {what}, not CSV text")
    if prefix.lstrip()[:14].lower().startswith(_HTML_STARTS):
        raise NotCsvRefused(
            "the file is a web page (HTML or XML), not CSV; if it came from a URL, check the URL"
            " and the credentials (a login page is HTML)"
        )
    has_bom = prefix.startswith(UTF8_BOM)
    if declared == "latin-1":
        if has_bom:
            raise EncodingRefused(
                "the file starts with a UTF-8 byte order mark but the sync says latin-1; set encoding: utf-8",
                offset=0,
                line=1,
            )
        return "latin-1"
    return "utf-8-sig" if has_bom else "utf-8"


class ByteChecker:
    """Validates a file fed chunk by chunk: no NUL bytes, and valid UTF-8 when the codec is UTF-8.

    Raises ``NotCsvRefused`` or ``EncodingRefused`` naming the offset and line of the first bad
    byte; ``finish`` catches a UTF-8 sequence cut off by the end of the file. UTF-8 is checked by
    the compiled module when it is installed (~10x faster than decoding: this pass reads the
    whole file before an import starts), else by Python's incremental decoder.
    """

    __slots__ = ("_cut_off", "_decoder", "_lines", "_offset", "_utf8")

    def __init__(self, codec: str, *, compiled: bool = True) -> None:
        utf8 = codec.startswith("utf-8")
        self._utf8 = utf8 and compiled and utf8_prefix is not None
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict") if utf8 and not self._utf8 else None
        self._cut_off = b""  # the start of a character at the end of the last chunk
        self._offset = 0
        self._lines = 0

    def feed(self, chunk: bytes) -> None:
        nul = chunk.find(b"\0")
        if nul >= 0:
            raise NotCsvRefused(
                f"the file has a NUL byte at offset {self._offset + nul}"
                f" (line {self._line_at(chunk, nul)}): it is binary, not CSV text"
            )
        if self._utf8:
            pending = len(self._cut_off)
            data = self._cut_off + chunk if pending else chunk
            valid, cut_off = utf8_prefix(data)
            if valid < len(data) and not cut_off:
                self._refuse(chunk, valid - pending, data[valid])
            self._cut_off = data[valid:]
        elif self._decoder is not None:
            pending = len(self._decoder.getstate()[0])
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                self._refuse(chunk, exc.start - pending, exc.object[exc.start])
        self._lines += chunk.count(b"\n")
        self._offset += len(chunk)

    def finish(self) -> None:
        if self._cut_off:
            self._refuse(b"", -len(self._cut_off), self._cut_off[0])
        if self._decoder is not None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                self._refuse(b"", exc.start - len(exc.object), exc.object[exc.start])

    def _refuse(self, chunk: bytes, index: int, byte: int) -> None:
        raise EncodingRefused(
            f"byte {self._offset + index} (line {self._line_at(chunk, index)}, value 0x{byte:02x})"
            " is not valid UTF-8; the file may be Latin-1: set encoding: latin-1 in the sync,"
            " or save the file as UTF-8",
            offset=self._offset + index,
            line=self._line_at(chunk, index),
        )

    def _line_at(self, chunk: bytes, index: int) -> int:
        return self._lines + chunk.count(b"\n", 0, max(index, 0)) + 1


def check_stream(stream: BinaryIO, codec: str) -> None:
    """Read ``stream`` to its end through a ``ByteChecker`` (in constant memory)."""
    checker = ByteChecker(codec)
    while chunk := stream.read(CHUNK_BYTES):
        checker.feed(chunk)
    checker.finish()
