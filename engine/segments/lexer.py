"""Splits rule text into tokens, each with its line and column, for the parser."""

from __future__ import annotations

import re
from typing import NamedTuple

from engine.segments.errors import RuleSyntaxError

# Longest rule text accepted: rules are for people to read, and this bounds parsing work.
MAX_RULE_LENGTH = 20_000

KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})
DIGITS = frozenset("0123456789")
# A name: a letter or underscore, then letters, digits or underscores.
_NAME = re.compile(r"[^\W\d]\w*")
_SPACE = re.compile(r"[^\S\n]+")

# Kinds of token: "name", "keyword", "string", "number", "op" (comparison), "punct", "end".
_TWO_CHAR = {"==", "!=", "<=", ">="}
_ONE_CHAR_OPS = {"<", ">", "~"}
_PUNCTUATION = {"(", ")", "[", "]", ",", ".", "=", "-"}
_MISTAKES = {
    "&&": "write and instead of &&",
    "||": "write or instead of ||",
    "<>": "write != for 'not equal'",
    "=>": "write >= for 'greater than or equal'",
    "=<": "write <= for 'less than or equal'",
}
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def is_plain_name(text: str) -> bool:
    """Whether ``text`` can be written bare in a rule (a name that is not a keyword)."""
    return _NAME.fullmatch(text) is not None and text.lower() not in KEYWORDS


class Token(NamedTuple):
    kind: str
    text: str
    value: object
    line: int
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the rule"
        if self.kind == "string":
            return f"the text {self.text}"
        return f"'{self.text}'"


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``, ending with an "end" token. Raises RuleSyntaxError."""
    if len(source) > MAX_RULE_LENGTH:
        raise RuleSyntaxError(
            f"this rule is {len(source)} characters long; the limit is {MAX_RULE_LENGTH}. "
            "Split it into segments and combine them with in_segment(...).",
            1,
            1,
        )
    return list(_Scanner(source).tokens())


class _Scanner:
    def __init__(self, source: str) -> None:
        self.source = source
        self.index = 0
        self.line = 1
        self.line_start = 0

    def _column(self, index: int | None = None) -> int:
        return (self.index if index is None else index) - self.line_start + 1

    def _error(self, reason: str, index: int | None = None) -> RuleSyntaxError:
        return RuleSyntaxError(reason, self.line, self._column(index))

    def tokens(self) -> list[Token]:
        tokens: list[Token] = []
        source = self.source
        while True:
            self._skip_space()
            if self.index >= len(source):
                tokens.append(Token("end", "", None, self.line, self._column()))
                return tokens
            start = self.index
            char = source[start]
            column = self._column()
            pair = source[start : start + 2]
            name = _NAME.match(source, start)
            if name is not None:
                word = name.group()
                self.index = name.end()
                if word.lower() in KEYWORDS:
                    tokens.append(Token("keyword", word, word.lower(), self.line, column))
                else:
                    tokens.append(Token("name", word, word, self.line, column))
            elif char in DIGITS:
                tokens.append(self._number(column))
            elif char in "\"'":
                tokens.append(self._string(char, column))
            elif pair in _MISTAKES:
                raise self._error(_MISTAKES[pair])
            elif pair in _TWO_CHAR:
                self.index += 2
                tokens.append(Token("op", pair, pair, self.line, column))
            elif char in _ONE_CHAR_OPS:
                self.index += 1
                tokens.append(Token("op", char, char, self.line, column))
            elif char in _PUNCTUATION:
                self.index += 1
                tokens.append(Token("punct", char, char, self.line, column))
            elif char == "!":
                raise self._error("write not before a condition, or != for 'not equal'")
            elif char == "&":
                raise self._error("write and to join conditions")
            elif char == "|":
                raise self._error("write or to join conditions")
            else:
                raise self._error(f"unexpected character '{char}'")

    def _skip_space(self) -> None:
        source = self.source
        while self.index < len(source):
            space = _SPACE.match(source, self.index)
            if space is not None:
                self.index = space.end()
                continue
            char = source[self.index]
            if char == "\n":
                self.index += 1
                self.line += 1
                self.line_start = self.index
            elif char == "#":
                # A comment runs to the end of the line.
                while self.index < len(source) and source[self.index] != "\n":
                    self.index += 1
            else:
                return

    def _number(self, column: int) -> Token:
        source = self.source
        start = end = self.index
        while end < len(source) and source[end] in DIGITS:
            end += 1
        is_float = False
        if end + 1 < len(source) and source[end] == "." and source[end + 1] in DIGITS:
            is_float = True
            end += 1
            while end < len(source) and source[end] in DIGITS:
                end += 1
        if end < len(source) and source[end] in "eE":
            exponent = end + 1
            if exponent < len(source) and source[exponent] in "+-":
                exponent += 1
            if exponent < len(source) and source[exponent] in DIGITS:
                is_float = True
                end = exponent
                while end < len(source) and source[end] in DIGITS:
                    end += 1
        if end < len(source) and (source[end].isalpha() or source[end] == "_"):
            word_end = end
            while word_end < len(source) and source[word_end].isalnum():
                word_end += 1
            word = source[start:word_end]
            raise self._error(
                f"'{word}' is not a number; a duration such as \"{word}\" goes in quotes", start
            )
        text = source[start:end]
        self.index = end
        value: int | float = float(text) if is_float else int(text)
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            raise self._error(f"the number {text} is too large", start)
        return Token("number", text, value, self.line, column)

    def _string(self, quote: str, column: int) -> Token:
        source = self.source
        start = self.index
        index = start + 1
        parts: list[str] = []
        while True:
            if index >= len(source) or source[index] == "\n":
                raise self._error(f"this text has no closing quote ({quote})", start)
            char = source[index]
            if char == quote:
                break
            if char == "\\":
                escape = source[index + 1 : index + 2]
                if escape in _ESCAPES:
                    parts.append(_ESCAPES[escape])
                    index += 2
                    continue
                digits = source[index + 2 : index + 6]
                if escape == "u" and len(digits) == 4 and all(d in "0123456789abcdefABCDEF" for d in digits):
                    parts.append(chr(int(digits, 16)))
                    index += 6
                    continue
                raise self._error(
                    'unknown escape in text: write \\\\ for a backslash, \\" for a quote', index
                )
            parts.append(char)
            index += 1
        self.index = index + 1
        return Token("string", source[start : index + 1], "".join(parts), self.line, column)
