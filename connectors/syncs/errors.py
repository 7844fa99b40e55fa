"""Errors of sync sources: a folder that is not there, a URL that does not give the file."""

from __future__ import annotations

from engine.errors import RefractError


class SourceError(RefractError):
    """A sync's source could not give its files; the message says what to check."""

    code = "source_error"


class SourceFolderMissing(SourceError):
    """The watched folder does not exist or is not a folder."""

    code = "source_folder_missing"


class SourceCredentialsMissing(SourceError):
    """The environment variable the sync names for its password or token is not set."""

    code = "source_credentials_missing"


class SourceRefusedCredentials(SourceError):
    """The server answered 401 or 403: the credentials are wrong or lack the right."""

    code = "source_unauthorized"


class SourceUnavailable(SourceError):
    """Another HTTP error, a timeout or a broken connection; the next run may succeed."""

    code = "source_unavailable"
    retriable = True
