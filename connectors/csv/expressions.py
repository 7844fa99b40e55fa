"""The language of calculated columns: ``first_name + " " + last_name``, ``balance * 100``.

A deliberately tiny language, parsed here and compiled into closures (never ``eval``): numbers,
quoted strings, names of other columns, ``+ - * /``, unary minus and parentheses. Nothing can be
called and nothing has attributes, so an expression can only compute from the row's values.
Types are checked when the sync is loaded: ``+`` joins two strings or adds two numbers; ``- * /``
take numbers; ``/`` always gives a decimal. A missing input (an empty cell) makes the result
missing too, as in SQL.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from connectors.csv.values import CellError
from engine.values import AttributeValue

NUMERIC = ("integer", "decimal")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


class ExpressionError(ValueError):
    """An expression does not parse or does not type-check; the message says where and why."""


@dataclass(slots=True, frozen=True)
class Constant:
    value: str | int | float


@dataclass(slots=True, frozen=True)
class Reference:
    name: str


@dataclass(slots=True, frozen=True)
class Negate:
    operand: Node


@dataclass(slots=True, frozen=True)
class Binary:
    operator: str
    left: Node
    right: Node


Node: TypeAlias = Constant | Reference | Negate | Binary


@dataclass(slots=True, frozen=True)
class Expression:
    """A parsed expression and its source text (what the sync definition stores)."""

    source: str
    root: Node

    @property
    def references(self) -> tuple[str, ...]:
        """The column names the expression reads, in order of first use."""
        names: list[str] = []
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Reference):
                if node.name not in names:
                    names.append(node.name)
            elif isinstance(node, Negate):
                stack.append(node.operand)
            elif isinstance(node, Binary):
                stack.extend((node.right, node.left))
        return tuple(names)


Evaluator: TypeAlias = Callable[[Sequence[AttributeValue | None]], AttributeValue | None]


def parse_expression(source: str) -> Expression:
    """Parse ``source``; raises ``ExpressionError`` naming the position of the problem."""
    parser = _Parser(_tokenize(source))
    root = parser.expression()
    parser.expect_end()
    return Expression(source=source, root=root)


def infer_type(expression: Expression, types: Mapping[str, str]) -> str:
    """The type ("string", "integer" or "decimal") of ``expression`` given its inputs' types."""
    return _infer(expression.root, types)


def compile_expression(expression: Expression, positions: Mapping[str, int]) -> Evaluator:
    """A function of a row's values (indexed by ``positions``) to the expression's value.

    Raises ``CellError`` for a division by zero or a result out of range.
    """
    evaluate = _compile(expression.root, positions)

    def checked(values: Sequence[AttributeValue | None]) -> AttributeValue | None:
        value = evaluate(values)
        if isinstance(value, float) and not math.isfinite(value):
            raise CellError("the result is not a finite number")
        if isinstance(value, int) and not _LONG_MIN <= value <= _LONG_MAX:
            raise CellError("the result is out of range for an integer (64 bits)")
        return value

    return checked


# --- tokens ----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class _Token:
    kind: str  # "number", "string", "name", "operator", "end"
    text: str
    position: int
    value: str | int | float | None = None


_OPERATORS = "+-*/()"


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    length = len(source)
    while index < length:
        char = source[index]
        if char.isspace():
            index += 1
        elif char in _OPERATORS:
            tokens.append(_Token("operator", char, index))
            index += 1
        elif char.isascii() and (char.isdigit() or char == "."):
            start = index
            while index < length and source[index].isascii() and source[index].isdigit():
                index += 1
            if index < length and source[index] == ".":
                index += 1
                while index < length and source[index].isascii() and source[index].isdigit():
                    index += 1
            text = source[start:index]
            if text == ".":
                raise ExpressionError(f"unexpected '.' at position {start}")
            number: int | float = float(text) if "." in text else int(text)
            tokens.append(_Token("number", text, start, number))
        elif char in "\"'":
            start = index
            end = source.find(char, index + 1)
            if end < 0:
                raise ExpressionError(f"the string starting at position {start} is not closed")
            tokens.append(_Token("string", source[start : end + 1], start, source[start + 1 : end]))
            index = end + 1
        elif char.isascii() and (char.isalpha() or char == "_"):
            start = index
            while (
                index < length
                and source[index].isascii()
                and (source[index].isalnum() or source[index] == "_")
            ):
                index += 1
            tokens.append(_Token("name", source[start:index], start))
        else:
            raise ExpressionError(
                f"unexpected '{char}' at position {index}; expressions have only column names,"
                " numbers, quoted strings, + - * / and parentheses"
            )
    tokens.append(_Token("end", "", length))
    return tokens


class _Parser:
    """Recursive descent over the grammar::

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := "-" unary | number | string | name | "(" expression ")"
    """

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def expression(self) -> Node:
        node = self._term()
        while self._peek().text in ("+", "-") and self._peek().kind == "operator":
            operator = self._next().text
            node = Binary(operator, node, self._term())
        return node

    def _term(self) -> Node:
        node = self._unary()
        while self._peek().text in ("*", "/") and self._peek().kind == "operator":
            operator = self._next().text
            node = Binary(operator, node, self._unary())
        return node

    def _unary(self) -> Node:
        token = self._peek()
        if token.kind == "operator" and token.text == "-":
            self._next()
            return Negate(self._unary())
        return self._primary()

    def _primary(self) -> Node:
        token = self._next()
        if token.kind in ("number", "string"):
            assert token.value is not None
            return Constant(token.value)
        if token.kind == "name":
            following = self._peek()
            if following.kind == "operator" and following.text == "(":
                raise ExpressionError(
                    f"'{token.text}(' at position {token.position}: expressions cannot call"
                    " functions; use a transform (trim, lower, upper) on the source column"
                )
            return Reference(token.text)
        if token.kind == "operator" and token.text == "(":
            node = self.expression()
            closing = self._next()
            if closing.kind != "operator" or closing.text != ")":
                raise ExpressionError(f"expected ')' at position {closing.position}")
            return node
        if token.kind == "end":
            raise ExpressionError(f"the expression ends too early (position {token.position})")
        raise ExpressionError(f"unexpected '{token.text}' at position {token.position}")

    def expect_end(self) -> None:
        token = self._peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected '{token.text}' at position {token.position}")


# --- types -----------------------------------------------------------------------------------


def _infer(node: Node, types: Mapping[str, str]) -> str:
    if isinstance(node, Constant):
        value = node.value
        if isinstance(value, str):
            return "string"
        return "integer" if isinstance(value, int) else "decimal"
    if isinstance(node, Reference):
        found = types.get(node.name)
        if found is None:
            raise ExpressionError(
                f"'{node.name}' is not a column of this sync; use the attribute name of a column"
                " read from the file"
            )
        if found not in ("string", *NUMERIC):
            raise ExpressionError(
                f"'{node.name}' is {_a(found)} column; expressions use string, integer and decimal"
                " columns only"
            )
        return found
    if isinstance(node, Negate):
        operand = _infer(node.operand, types)
        if operand not in NUMERIC:
            raise ExpressionError("unary '-' needs a number, not a string")
        return operand
    left, right = _infer(node.left, types), _infer(node.right, types)
    if node.operator == "+" and left == right == "string":
        return "string"
    if left not in NUMERIC or right not in NUMERIC:
        if node.operator == "+":
            raise ExpressionError(
                f"cannot add {_a(left)} and {_a(right)}; '+' joins two strings or adds two numbers"
            )
        raise ExpressionError(f"'{node.operator}' needs two numbers, not {_a(left)} and {_a(right)}")
    if node.operator == "/" or "decimal" in (left, right):
        return "decimal"
    return "integer"


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


# --- evaluation ------------------------------------------------------------------------------


def _compile(node: Node, positions: Mapping[str, int]) -> Evaluator:
    if isinstance(node, Constant):
        constant = node.value
        return lambda values: constant
    if isinstance(node, Reference):
        position = positions[node.name]
        return lambda values: values[position]
    if isinstance(node, Negate):
        operand = _compile(node.operand, positions)

        def negate(values: Sequence[AttributeValue | None]) -> AttributeValue | None:
            value = operand(values)
            return None if value is None else -value  # type: ignore[operator]

        return negate
    left, right = _compile(node.left, positions), _compile(node.right, positions)
    apply = _OPERATIONS[node.operator]
    divides = node.operator == "/"

    def binary(values: Sequence[AttributeValue | None]) -> AttributeValue | None:
        a = left(values)
        if a is None:
            return None
        b = right(values)
        if b is None:
            return None
        if divides and b == 0:
            raise CellError("division by zero")
        result: AttributeValue = apply(a, b)
        return result

    return binary


# Operand types are checked when the sync is loaded (``infer_type``), so these see only
# str + str or numbers.
_OPERATIONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
