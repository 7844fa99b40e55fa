"""Opening the import's local RocksDB databases (digests, key index), raw bytes in and out."""

from __future__ import annotations

from pathlib import Path

import rocksdict

from ops.imports.errors import ImportStoreBusy

WRITE_BUFFER_BYTES = 8 * 1024 * 1024
"""Memtable size, set explicitly (RocksDB's 64 MiB default would hold a million digests in RAM)."""
MAX_WRITE_BUFFERS = 2


def open_database(path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
    """Open (creating if needed) the database at ``path``; ``ImportStoreBusy`` if it is locked.

    Read-only access takes no lock, so a dry run works while another import holds the database.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(MAX_WRITE_BUFFERS)
    try:
        if read_only and path.exists():
            return rocksdict.Rdict(str(path), options, access_type=rocksdict.AccessType.read_only())
        return rocksdict.Rdict(str(path), options)
    except Exception as exc:
        if "lock" in str(exc).lower():
            raise ImportStoreBusy(str(path)) from None
        raise
