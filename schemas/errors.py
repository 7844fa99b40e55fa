"""Errors of the schema layer that ``engine.errors`` does not already name.

Decoding raises ``engine.errors.DecodeError`` and ``UnknownSchemaFingerprint``; a schema change
that breaks compatibility raises ``engine.errors.SchemaCompatibilityError``.
"""

from __future__ import annotations

from engine.errors import RefractError, ValidationError


class EncodeError(ValidationError):
    """A value does not fit the Avro schema of its record; ``field`` names where, when known."""

    code = "unencodable"


class SchemaDefinitionError(RefractError):
    """A ``.avsc`` file or a history version is malformed; the message names the file."""

    code = "schema_definition_error"
