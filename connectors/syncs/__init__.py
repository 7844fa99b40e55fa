"""Where scheduled syncs get their files: a watched folder, or an HTTP(S) URL.

``folder`` lists a folder and picks the files not imported yet (``new_files`` is pure, the time
is an argument); ``http`` downloads a URL to a file with the sync's credentials; ``runs`` keeps
each run's record and the files already imported; ``definition`` reads syncs stored as
definitions (or, as before, YAML files in the data folder). Sources raise ``SourceError``
subclasses whose message says what to fix.
"""

from connectors.syncs.definition import (
    SYNC_KIND,
    SYNCS_FOLDER,
    SyncDefinition,
    find_sync,
    sync_body,
    sync_file,
    sync_from_body,
)
from connectors.syncs.errors import (
    SourceCredentialsMissing,
    SourceError,
    SourceFolderMissing,
    SourceRefusedCredentials,
    SourceUnavailable,
)
from connectors.syncs.folder import SourceFile, file_import_id, list_folder, new_files
from connectors.syncs.http import fetch
from connectors.syncs.runs import RunFile, RunStatus, SyncRecords, SyncRun, run_id_for

__all__ = [
    "SYNCS_FOLDER",
    "SYNC_KIND",
    "RunFile",
    "RunStatus",
    "SourceCredentialsMissing",
    "SourceError",
    "SourceFile",
    "SourceFolderMissing",
    "SourceRefusedCredentials",
    "SourceUnavailable",
    "SyncDefinition",
    "SyncRecords",
    "SyncRun",
    "fetch",
    "file_import_id",
    "find_sync",
    "list_folder",
    "new_files",
    "run_id_for",
    "sync_body",
    "sync_file",
    "sync_from_body",
]
