"""The Avro schemas of every record on the log (``schemas/*.avsc``) and the one codec.

Import the codec functions from here: ``from schemas import decode_envelope``.
"""

from schemas.codec import (
    DEFAULT_CODEC,
    Codec,
    decode,
    decode_envelope,
    encode,
    encode_dead_letter,
    encode_envelope,
    encode_event,
    encode_typed,
    fingerprint,
)

__all__ = [
    "DEFAULT_CODEC",
    "Codec",
    "decode",
    "decode_envelope",
    "encode",
    "encode_dead_letter",
    "encode_envelope",
    "encode_event",
    "encode_typed",
    "fingerprint",
]
