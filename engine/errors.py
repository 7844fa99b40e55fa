"""The one error hierarchy of Refract: every error a caller may catch derives from RefractError."""

from __future__ import annotations


class RefractError(Exception):
    """Root of every error Refract raises on purpose.

    ``code`` is stable (used in HTTP error bodies and logs); ``retriable`` tells a caller whether
    trying the same thing again may succeed.
    """

    code: str = "refract_error"
    retriable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(RefractError):
    """A setting is missing or invalid; the message names the setting and what to do."""

    code = "configuration_error"


class ValidationError(RefractError):
    """Input does not have the expected shape; ``field`` says where (a dotted path)."""

    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownEventType(ValidationError):
    """An event names a type Refract does not know."""

    code = "unknown_event_type"


class DecodeError(RefractError):
    """Bytes could not be decoded into a known record."""

    code = "undecodable"


class UnknownSchemaFingerprint(DecodeError):
    """Single-object encoded bytes carry a schema fingerprint no known schema has."""

    code = "unknown_schema"


class SchemaCompatibilityError(RefractError):
    """A schema change would break readers or writers of an earlier version."""

    code = "schema_incompatible"


class InfrastructureError(RefractError):
    """Kafka, the local broker, or another service did not do what was needed."""

    code = "infrastructure_error"
    retriable = True
