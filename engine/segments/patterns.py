"""Regular expressions for ``~``, checked so that matching one cannot take unbounded time.

Python's ``re`` backtracks, so some patterns take exponential time on a crafted input, such as
``(a+)+$``. A pattern is therefore accepted only when it:

* is at most ``MAX_PATTERN_LENGTH`` characters long;
* repeats no group that itself contains a repetition or an alternative (``(a+)+``, ``(a|ab)*``);
* has few enough choices: the product, over its repetitions, of the number of ways each can
  match (``MAX_INPUT_LENGTH`` for ``*``, ``+`` and ``{n,}``; m - n + 1 for ``{n,m}``; 2 for ``?``)
  is at most ``MAX_CHOICES``. ``.*a.*b`` passes; ``.*a.*b.*c`` and ``a?a?…`` (17 times) do not.
* uses no back-references, look-arounds or conditionals, and no counted repetition above
  ``MAX_COUNTED_REPEAT``.

And a value is matched only when it is at most ``MAX_INPUT_LENGTH`` characters long (a longer one
does not match). Together these keep the worst accepted pattern on the worst value to about 20 ms
(measured); ordinary patterns take about a microsecond.
"""

from __future__ import annotations

import re

MAX_PATTERN_LENGTH = 200
MAX_INPUT_LENGTH = 256
MAX_CHOICES = MAX_INPUT_LENGTH**2
MAX_COUNTED_REPEAT = 100

_COUNTED = re.compile(r"\{(\d*)(,?)(\d*)\}")


class _Group:
    __slots__ = ("has_alternation", "has_repeat")

    def __init__(self) -> None:
        self.has_repeat = False
        self.has_alternation = False


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled, or ValueError with a reason a person understands."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"this pattern is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"this is not a valid pattern: {exc.msg}") from None
    _check_structure(pattern)
    return compiled


def _check_structure(pattern: str) -> None:
    stack = [_Group()]
    choices = 1
    # What the last atom was: a closed group (its _Group), a plain atom (True) or nothing (None).
    previous: _Group | bool | None = None
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1 : index + 2]
            if escaped.isdigit() and escaped != "0":
                raise ValueError("back-references such as \\1 are not allowed in a pattern")
            index += 2
            previous = True
            continue
        if char == "[":
            index = _skip_class(pattern, index)
            previous = True
            continue
        if char == "(":
            if pattern.startswith("(?", index):
                kind = pattern[index + 2 : index + 4]
                if kind[:1] in ("=", "!") or kind in ("<=", "<!"):
                    raise ValueError("look-arounds such as (?=...) are not allowed in a pattern")
                if kind[:1] == "(":
                    raise ValueError("conditionals such as (?(1)...) are not allowed in a pattern")
                if kind == "P=":
                    raise ValueError("back-references such as (?P=name) are not allowed")
                if kind[:1] == "#":
                    index = pattern.index(")", index) + 1
                    continue
                index = _group_body(pattern, index)
                if pattern[index - 1] == ")":
                    # A flags-only group such as (?i) applies to the whole pattern.
                    continue
            else:
                index += 1
            stack.append(_Group())
            previous = None
            continue
        if char == ")":
            closed = stack.pop()
            outer = stack[-1]
            outer.has_repeat |= closed.has_repeat
            outer.has_alternation |= closed.has_alternation
            previous = closed
            index += 1
            continue
        if char == "|":
            stack[-1].has_alternation = True
            previous = None
            index += 1
            continue
        repeat = _repeat_at(pattern, index)
        if repeat is not None:
            length, lower, upper = repeat
            if upper is not None and upper > MAX_COUNTED_REPEAT:
                raise ValueError(f"a counted repetition may be at most {{{MAX_COUNTED_REPEAT}}}")
            if isinstance(previous, _Group) and (previous.has_repeat or previous.has_alternation):
                raise ValueError(
                    "a repeated group contains a repetition or an alternative, as in (a+)+ "
                    "or (a|b)*; such patterns can take very long to match. Write it without "
                    "repeating the group"
                )
            choices *= MAX_INPUT_LENGTH if upper is None else upper - lower + 1
            if choices > MAX_CHOICES:
                raise ValueError(
                    "this pattern repeats too many things (*, +, ?, {n,m}) to be matched "
                    "quickly; use fewer repetitions, such as at most two .* or +"
                )
            stack[-1].has_repeat = True
            index += length
            # A lazy (?) or possessive (+) marker belongs to the repetition just read.
            if index < len(pattern) and pattern[index] in "?+":
                index += 1
            previous = None
            continue
        previous = True
        index += 1


def _repeat_at(pattern: str, index: int) -> tuple[int, int, int | None] | None:
    """(length, lower bound, upper bound or None) of a repetition starting at ``index``, if any."""
    char = pattern[index]
    if char == "*":
        return 1, 0, None
    if char == "+":
        return 1, 1, None
    if char == "?":
        return 1, 0, 1
    if char == "{":
        match = _COUNTED.match(pattern, index)
        if match and (match.group(1) or match.group(3)):
            lower, comma, upper = match.groups()
            low = int(lower) if lower else 0
            if not comma:
                return match.end() - index, low, low
            return match.end() - index, low, int(upper) if upper else None
    return None


def _group_body(pattern: str, index: int) -> int:
    """The index where the body of the "(?...)" group at ``index`` starts (after its prefix)."""
    rest = pattern[index + 2 :]
    if rest.startswith("P<"):
        return pattern.index(">", index) + 1
    if rest[:1] in (":", ">"):
        return index + 3
    # Flags, as in (?i) or (?i:...): re.compile has already checked the syntax.
    end = index + 2
    while pattern[end] not in ":)":
        end += 1
    return end + 1


def _skip_class(pattern: str, index: int) -> int:
    """The index just after the character class starting at ``index``."""
    index += 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def matches(pattern: re.Pattern[str], value: str) -> bool:
    """Whether ``pattern`` is found in ``value``; values over the length limit never match."""
    return len(value) <= MAX_INPUT_LENGTH and pattern.search(value) is not None
