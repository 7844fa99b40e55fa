"""Errors of running an import (the file's own refusals are ``connectors.csv.FileRefused``)."""

from __future__ import annotations

from engine.errors import InfrastructureError


class ImportStoreBusy(InfrastructureError):
    """The digest store or key index is open in another process (another import, or a worker)."""

    code = "import_store_busy"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} is in use by another import on this machine (or a worker running one);"
            " wait for it to finish, or use another data folder (REFRACT_DATA_DIR)"
        )
        self.path = path
