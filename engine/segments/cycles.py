"""Segments built from other segments (``in_segment``): refuse loops, and order evaluation."""

from __future__ import annotations

from collections.abc import Mapping

from engine.segments.compiler import Rule
from engine.segments.errors import SegmentCycleError


def check_no_cycles(definitions: Mapping[str, Rule]) -> None:
    """Raise SegmentCycleError naming the loop if segments refer to each other in a loop."""
    evaluation_order(definitions)


def evaluation_order(definitions: Mapping[str, Rule]) -> tuple[str, ...]:
    """Segment ids, each after the segments it reads with ``in_segment`` (so those are current).

    Segments referred to but not defined are left out (``in_segment`` of them is false).
    Raises SegmentCycleError on a loop.
    """
    order: list[str] = []
    done: set[str] = set()
    for start in sorted(definitions):
        if start in done:
            continue
        # Depth-first walk with an explicit stack: (segment, its sorted dependencies, next index).
        path: list[str] = [start]
        on_path = {start}
        stack = [(start, sorted(definitions[start].inputs.segments), 0)]
        while stack:
            segment, needs, index = stack[-1]
            if index == len(needs):
                stack.pop()
                path.pop()
                on_path.discard(segment)
                done.add(segment)
                order.append(segment)
                continue
            stack[-1] = (segment, needs, index + 1)
            needed = needs[index]
            if needed in on_path:
                raise SegmentCycleError(tuple(path[path.index(needed) :]))
            if needed in done or needed not in definitions:
                continue
            path.append(needed)
            on_path.add(needed)
            stack.append((needed, sorted(definitions[needed].inputs.segments), 0))
    return tuple(order)
