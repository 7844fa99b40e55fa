"""A watched folder: the files matching a pattern, and which of them a sync has not imported yet.

A file is known by its name, size and modification time, so a file replaced by a new version
(same name) is new again. Its import id is derived from those and the sync id: importing the
same file again, after a crash, produces the same event ids, which the processor recognizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from connectors.syncs.errors import SourceFolderMissing

_IMPORT_ID_BYTES = 8


@dataclass(slots=True, frozen=True, order=True)
class SourceFile:
    """A file of a watched folder as it was listed (``mtime_ns`` as the file system gives it)."""

    name: str
    size: int
    mtime_ns: int


def list_folder(folder: Path, pattern: str) -> list[SourceFile]:
    """The regular files directly in ``folder`` whose names match ``pattern`` (a glob)."""
    if not folder.is_dir():
        raise SourceFolderMissing(
            f"the source folder {folder} does not exist (or is not a folder): create it or fix source.folder"
        )
    files = []
    for path in folder.glob(pattern):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed while listing
            continue
        if path.is_file() and not path.name.startswith("."):
            files.append(SourceFile(path.name, stat.st_size, stat.st_mtime_ns))
    return files


def new_files(
    files: Iterable[SourceFile], seen: Collection[SourceFile], *, now_ns: int, settle_s: float
) -> list[SourceFile]:
    """The files to import, oldest first: not ``seen``, and unchanged for ``settle_s`` seconds.

    A file modified less than ``settle_s`` before ``now_ns`` may still be being written: it
    waits for a later run.
    """
    settled_before = now_ns - int(settle_s * 1_000_000_000)
    fresh = [f for f in files if f not in seen and f.mtime_ns <= settled_before]
    return sorted(fresh, key=lambda f: (f.mtime_ns, f.name))


def file_import_id(sync_id: str, file: SourceFile) -> str:
    """The import id of ``file`` for ``sync_id``: the same for the same file, every time."""
    material = f"{sync_id}\0{file.name}\0{file.size}\0{file.mtime_ns}".encode()
    digest = hashlib.blake2b(material, digest_size=_IMPORT_ID_BYTES).hexdigest()
    return f"{sync_id[:100]}-{digest}"
