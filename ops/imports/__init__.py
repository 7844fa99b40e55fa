"""Importing CSV files into Refract: the runner used by ``refract import`` and the imports API.

``run_import`` streams a file through a sync (``connectors.csv``) into ``<ns>.events`` in
acknowledged batches; ``DigestStore`` makes re-imports of unchanged rows append nothing;
``KeyIndex`` resolves syncs keyed by email or another unique field (local to the machine: see
``key_index``); ``import_file`` runs one import from a command; ``summary`` and ``ProgressBar``
are what a person sees.
"""

from connectors.csv.mapping import INDEXED_FIELDS
from ops.imports.digests import DigestStore, StoredDigest
from ops.imports.errors import ImportStoreBusy
from ops.imports.key_index import KeyIndex
from ops.imports.runner import (
    ERRORS_FILE,
    RESULT_FILE,
    ImportProgress,
    ImportResult,
    imports_folder,
    new_import_id,
    run_import,
)
from ops.imports.session import DIGESTS_DB, KEYS_DB, import_file
from ops.imports.summary import ProgressBar, summary

__all__ = [
    "DIGESTS_DB",
    "ERRORS_FILE",
    "INDEXED_FIELDS",
    "KEYS_DB",
    "RESULT_FILE",
    "DigestStore",
    "ImportProgress",
    "ImportResult",
    "ImportStoreBusy",
    "KeyIndex",
    "ProgressBar",
    "StoredDigest",
    "import_file",
    "imports_folder",
    "new_import_id",
    "run_import",
    "summary",
]
