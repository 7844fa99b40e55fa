"""What a person sees of an import: a one-line progress bar and the final summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from ops.imports.runner import ImportProgress, ImportResult

_REFRESH_S = 0.2


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _where(path: Path) -> str:
    """The path relative to the working folder when it is inside it (shorter to read)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary(result: ImportResult) -> str:
    """One line, e.g. ``imported 9,812 rows (27,401 events) in 3.2 s — 3,066 rows/s; 12 invalid
    rows: see .refract/imports/<id>/errors.csv; 176 unchanged``."""
    seconds = result.duration_s
    rate = f"{result.rows_per_s:,.0f} rows/s"
    if result.dry_run:
        head = (
            f"dry run: {_plural(result.imported, 'row')} would be imported"
            f" ({_plural(result.events, 'event')}), nothing written; checked"
            f" {_plural(result.rows_read, 'row')} in {seconds:.1f} s — {rate}"
        )
    else:
        head = (
            f"imported {_plural(result.imported, 'row')} ({_plural(result.events, 'event')})"
            f" in {seconds:.1f} s — {rate}"
        )
    parts = [head]
    if result.invalid:
        parts.append(f"{_plural(result.invalid, 'invalid row')}: see {_where(result.error_report)}")
    else:
        parts.append("no invalid rows")
    parts.append(f"{result.unchanged:,} unchanged")
    return "; ".join(parts)


class ProgressBar:
    """A ``\\r`` line on ``stream`` (a terminal): percent, rows done, rows/s, invalid rows."""

    def __init__(self, stream: TextIO, label: str = "importing") -> None:
        self._stream = stream
        self._label = label
        self._shown_at = 0.0
        self._width = 0

    def __call__(self, progress: ImportProgress) -> None:
        now = time.monotonic()
        if now - self._shown_at < _REFRESH_S:
            return
        self._shown_at = now
        self._show(self.line(progress))

    @staticmethod
    def line(progress: ImportProgress) -> str:
        rate = progress.rows_read / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
        if progress.total_bytes:
            share = min(1.0, progress.bytes_read / progress.total_bytes)
            filled = int(share * 20)
            bar = f"[{'#' * filled}{'.' * (20 - filled)}] {share:4.0%} "
        else:
            bar = ""
        return (
            f"{bar}{progress.rows_read:,} rows  {rate:,.0f} rows/s"
            f"  {_plural(progress.invalid, 'error')}  {progress.unchanged:,} unchanged"
        )

    def _show(self, text: str) -> None:
        padding = " " * max(0, self._width - len(text))
        self._stream.write(f"\r{self._label} {text}{padding}")
        self._stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """Clear the line, so the summary starts on a clean one."""
        if self._width:
            self._stream.write("\r" + " " * (len(self._label) + 1 + self._width) + "\r")
            self._stream.flush()
            self._width = 0
