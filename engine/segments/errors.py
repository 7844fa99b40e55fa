"""Errors of the segment rule language: a rule that cannot be read, and segments in a loop."""

from __future__ import annotations

from engine.errors import ValidationError


class RuleSyntaxError(ValidationError):
    """A rule cannot be read or would not make sense; the message says where and what to write.

    Text rules carry ``line`` and ``column`` (1-based); JSON rules carry ``path`` (also in
    ``field``), such as ``and[1].count.within``. ``reason`` is the message without the location.
    """

    code = "rule_syntax"

    def __init__(
        self,
        reason: str,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
    ) -> None:
        if line is not None and column is not None:
            where = f"line {line}, column {column}: "
        elif path:
            where = f"at {path}: "
        else:
            where = ""
        super().__init__(f"{where}{reason}", field=path)
        self.reason = reason
        self.line = line
        self.column = column
        self.path = path


class SegmentCycleError(ValidationError):
    """Segments that refer to each other through ``in_segment`` in a loop; ``cycle`` names them."""

    code = "segment_cycle"

    def __init__(self, cycle: tuple[str, ...]) -> None:
        loop = " → ".join((*cycle, cycle[0]))
        super().__init__(
            f"segments refer to each other in a loop: {loop}. A segment cannot depend on itself; "
            "remove one of these in_segment(...) conditions to break the loop."
        )
        self.cycle = cycle
