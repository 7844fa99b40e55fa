"""``refract export --segment ID``: a segment's members as CSV, read from a running worker's API.

The worker streams ``GET /v1/segments/{id}/members.csv``; this copies it as it arrives, counting
the rows, so a file of a million members never sits in memory.
"""

from __future__ import annotations

import urllib.parse
from typing import BinaryIO

from ops.api_client import ApiEndpoint


def export_path(segment_id: str, attributes: str | None = None, contacts: str | None = None) -> str:
    """The API path of a segment's members with the given comma-separated columns."""
    query = {name: value for name, value in (("attributes", attributes), ("contacts", contacts)) if value}
    path = f"/v1/segments/{urllib.parse.quote(segment_id, safe='')}/members.csv"
    return path + ("?" + urllib.parse.urlencode(query) if query else "")


class RowCounter:
    """A sink that passes CSV bytes on and counts the records in them (quoted newlines are not ends)."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._quoted = False
        self.records = 0

    def write(self, chunk: bytes) -> int:
        self._sink.write(chunk)
        if b'"' not in chunk and not self._quoted:
            self.records += chunk.count(b"\n")
            return len(chunk)
        # A doubled quote inside a quoted cell flips twice, so parity tells inside from outside.
        for part_index, part in enumerate(chunk.split(b'"')):
            if part_index:
                self._quoted = not self._quoted
            if not self._quoted:
                self.records += part.count(b"\n")
        return len(chunk)


def export_members(
    api: ApiEndpoint,
    sink: BinaryIO,
    segment_id: str,
    *,
    attributes: str | None = None,
    contacts: str | None = None,
) -> int:
    """Write the segment's members CSV into ``sink``; the members written (the header not counted)."""
    counter = RowCounter(sink)
    api.download(export_path(segment_id, attributes, contacts), counter)
    return max(counter.records - 1, 0)
