"""Reads the text form of a rule into its syntax tree. Parsing never runs code: it only builds nodes."""

from __future__ import annotations

import datetime as dt

from engine.segments.errors import RuleSyntaxError
from engine.segments.functions import EVENT_FUNCTIONS, FUNCTION_NAMES, FUNCTION_USAGE, suggestion
from engine.segments.lexer import Token, tokenize
from engine.segments.nodes import (
    Age,
    And,
    Attribute,
    Compare,
    Condition,
    Count,
    DaysSince,
    EventField,
    EventRef,
    Ever,
    InSegment,
    IsBirthday,
    IsNull,
    Last,
    Literal,
    Not,
    Offer,
    Operand,
    Or,
    Scalar,
    Sum,
    Truth,
    Where,
)

# Deepest nesting of parentheses and "not" accepted (bounds the parser's recursion).
MAX_DEPTH = 64
# Longest list literal accepted.
MAX_LIST_ITEMS = 1000

VALUE_HINT = "a number, a text in quotes, true/false or null"
_OPERATOR_HINT = "==, !=, <, <=, >, >=, in, not in, ~, is null or is not null"


def parse_text(source: str) -> Condition:
    """The syntax tree of the text rule ``source``. Raises RuleSyntaxError (with line and column)."""
    return _Parser(tokenize(source)).rule()


def parse_date(text: str) -> dt.date:
    """The day in "YYYY-MM-DD"; ValueError with a reason when it is not one."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f'"{text}" is not a day: write it as "YYYY-MM-DD", such as date("2024-01-31")'
        ) from None


def parse_timestamp(text: str) -> dt.datetime:
    """The moment in ISO 8601 text with a time zone; ValueError with a reason when it is not one."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f'"{text}" is not a moment: write it as "YYYY-MM-DDTHH:MM:SSZ", '
            'such as timestamp("2024-01-31T09:30:00Z")'
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f'"{text}" has no time zone: end it with Z (UTC) or an offset such as +02:00')
    return moment


class _Argument:
    """One argument of a call as written: a text in quotes, or an attribute name."""

    __slots__ = ("is_text", "name", "token", "value")

    def __init__(self, name: str | None, value: str, is_text: bool, token: Token) -> None:
        self.name = name
        self.value = value
        self.is_text = is_text
        self.token = token


def _where(token: Token) -> Where:
    return Where(token.line, token.column)


def _error(token: Token, reason: str) -> RuleSyntaxError:
    return RuleSyntaxError(reason, token.line, token.column)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    # --- token helpers ---

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at(self, kind: str, value: object = None, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == kind and (value is None or token.value == value)

    def expect(self, kind: str, value: object, reason: str) -> Token:
        if not self.at(kind, value):
            raise _error(self.peek(), reason)
        return self.advance()

    def deeper(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(token, f"this rule nests more than {MAX_DEPTH} levels deep; simplify it")

    # --- conditions ---

    def rule(self) -> Condition:
        if self.at("end"):
            raise _error(self.peek(), "the rule is empty: write a condition, such as balance >= 100")
        condition = self.disjunction()
        token = self.peek()
        if token.kind != "end":
            if token.kind == "punct" and token.value == ")":
                raise _error(token, "this ')' has no matching '('")
            raise _error(
                token,
                f"unexpected {token.describe()} after a complete condition; join conditions with and / or",
            )
        return condition

    def disjunction(self) -> Condition:
        first = self.peek()
        items = [self.conjunction()]
        while self.at("keyword", "or"):
            self.advance()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items), _where(first))

    def conjunction(self) -> Condition:
        first = self.peek()
        items = [self.negation()]
        while self.at("keyword", "and"):
            self.advance()
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items), _where(first))

    def negation(self) -> Condition:
        token = self.peek()
        if token.kind == "keyword" and token.value == "not":
            self.advance()
            self.deeper(token)
            item = self.negation()
            self.depth -= 1
            return Not(item, _where(token))
        return self.primary()

    def primary(self) -> Condition:
        token = self.peek()
        if token.kind == "punct" and token.value == "(":
            self.advance()
            self.deeper(token)
            if self.at("punct", ")"):
                raise _error(self.peek(), "expected a condition inside ( )")
            condition = self.disjunction()
            self.depth -= 1
            self.expect(
                "punct",
                ")",
                f"expected ')' to close the '(' at line {token.line}, column {token.column}",
            )
            return condition
        if token.kind == "end":
            raise _error(token, "expected a condition, such as balance >= 100, at the end of the rule")
        if not self.starts_operand(token):
            raise _error(token, f"expected a condition, such as balance >= 100, but found {token.describe()}")
        operand = self.operand()
        return self.tail(operand, token)

    def tail(self, left: Operand, start: Token) -> Condition:
        token = self.peek()
        if token.kind == "op":
            self.advance()
            op = str(token.value)
            right = self.operand_after(op, token)
            condition: Condition = Compare(left, op, right, _where(token))
        elif token.kind == "keyword" and token.value == "in":
            self.advance()
            condition = Compare(left, "in", self.operand_after("in", token), _where(token))
        elif token.kind == "keyword" and token.value == "not" and self.at("keyword", "in", 1):
            self.advance()
            self.advance()
            condition = Compare(left, "not in", self.operand_after("not in", token), _where(token))
        elif token.kind == "keyword" and token.value == "is":
            self.advance()
            negated = False
            if self.at("keyword", "not"):
                self.advance()
                negated = True
            self.expect("keyword", "null", "expected null after 'is': write is null or is not null")
            condition = IsNull(left, negated, _where(token))
        elif token.kind == "punct" and token.value == "=":
            raise _error(
                token,
                'write == to compare; a single = only names a function argument, as in within="7d"',
            )
        elif self.ends_condition(token):
            return Truth(left, _where(start))
        else:
            raise _error(
                token,
                f"expected an operator ({_OPERATOR_HINT}), or and / or, but found {token.describe()}",
            )
        after = self.peek()
        if after.kind == "op" or (after.kind == "keyword" and after.value in ("in", "is")):
            raise _error(
                after,
                "compare one thing at a time: write, for example, x > 1 and x < 5 instead of 1 < x < 5",
            )
        return condition

    def ends_condition(self, token: Token) -> bool:
        return (
            token.kind == "end"
            or (token.kind == "keyword" and token.value in ("and", "or"))
            or (token.kind == "punct" and token.value == ")")
        )

    # --- operands ---

    def starts_operand(self, token: Token) -> bool:
        if token.kind in ("string", "number", "name"):
            return True
        if token.kind == "keyword":
            return token.value in ("true", "false", "null")
        if token.kind == "punct":
            return token.value == "[" or (token.value == "-" and self.at("number", None, 1))
        return False

    def operand_after(self, op: str, op_token: Token) -> Operand:
        token = self.peek()
        if not self.starts_operand(token):
            if op in ("in", "not in"):
                hint = 'a list, such as ["UY", "AR"], or an attribute holding a list'
            elif op == "~":
                hint = 'a pattern in quotes, such as "^Monte"'
            else:
                hint = f"{VALUE_HINT}, or an attribute"
            found = "" if token.kind == "end" else f", but found {token.describe()}"
            raise _error(token, f"expected a value after '{op_token.text}' ({hint}){found}")
        return self.operand()

    def operand(self) -> Operand:
        token = self.peek()
        if token.kind == "punct" and token.value == "[":
            return self.list_literal()
        if token.kind == "name":
            if self.at("punct", "(", 1):
                return self.call()
            self.advance()
            if token.text == "event" and self.at("punct", "."):
                return EventField(self.field_after("event"), _where(token))
            if self.at("punct", "."):
                raise _error(
                    self.peek(),
                    f"'{token.text}' is an attribute and has no fields; fields follow "
                    'last(...) or offer(...), such as offer("loan-q4").rate',
                )
            if token.text == "age":
                return Age("birth_date", _where(token))
            return Attribute(token.text, _where(token))
        return Literal(self.scalar("a value"), _where(token))

    def scalar(self, what: str) -> Scalar:
        token = self.peek()
        if token.kind == "name" and token.text in ("date", "timestamp") and self.at("punct", "(", 1):
            literal = self.call()
            assert isinstance(literal, Literal) and not isinstance(literal.value, tuple)
            return literal.value
        self.advance()
        if token.kind in ("string", "number"):
            assert isinstance(token.value, str | int | float)
            return token.value
        if token.kind == "keyword" and token.value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[str(token.value)]
        if token.kind == "punct" and token.value == "-" and self.at("number"):
            number = self.advance().value
            assert isinstance(number, int | float)
            return -number
        raise _error(token, f"expected {what} ({VALUE_HINT}), but found {token.describe()}")

    def list_literal(self) -> Literal:
        opening = self.advance()
        items: list[Scalar] = []
        while not self.at("punct", "]"):
            token = self.peek()
            if token.kind == "end":
                raise _error(
                    token,
                    f"expected ']' to close the list opened at line {opening.line}, column {opening.column}",
                )
            if token.kind == "keyword" and token.value == "null":
                raise _error(token, "null cannot be in a list; add a separate condition: or x is null")
            if token.kind == "name" and token.text not in ("date", "timestamp"):
                raise _error(
                    token,
                    f'a list holds values written out, such as ["UY", "AR"]; '
                    f"'{token.text}' is not one (put text in quotes)",
                )
            items.append(self.scalar("a value in the list"))
            if len(items) > MAX_LIST_ITEMS:
                raise _error(token, f"a list may hold at most {MAX_LIST_ITEMS} values")
            if self.at("punct", ","):
                self.advance()
            elif not self.at("punct", "]"):
                raise _error(self.peek(), "expected ',' or ']' in the list")
        self.advance()
        return Literal(tuple(items), _where(opening))

    # --- calls ---

    def call(self) -> Operand:
        name_token = self.advance()
        name = name_token.text
        if name not in FUNCTION_USAGE:
            raise _error(
                name_token,
                f"unknown function '{name}'{suggestion(name, FUNCTION_NAMES) or '.'} "
                f"The functions are: {', '.join(FUNCTION_NAMES)}",
            )
        self.advance()
        arguments = self.arguments(name)
        where = _where(name_token)
        result: Operand
        if name in EVENT_FUNCTIONS:
            result = self.event_call(name, arguments, where, name_token)
        elif name == "in_segment":
            result = InSegment(self.one_text(name, arguments, name_token), where)
        elif name == "offer":
            campaign = self.one_text(name, arguments, name_token)
            result = Offer(campaign, self.field_after(name), where)
        elif name == "days_since":
            result = DaysSince(self.one_attribute(name, arguments, name_token), where)
        elif name == "age":
            if not arguments:
                result = Age("birth_date", where)
            else:
                result = Age(self.one_attribute(name, arguments, name_token), where)
        elif name == "is_birthday":
            named = self.named(name, arguments, ("within",))
            positional = [argument for argument in arguments if argument.name is None]
            attribute = self.one_attribute(name, positional, name_token)
            within = named.get("within")
            result = IsBirthday(attribute, None if within is None else within.value, where)
        elif name == "attr":
            result = Attribute(self.one_text(name, arguments, name_token), where)
        else:
            result = self.literal_call(name, arguments, name_token, where)
        if name not in ("last", "offer") and self.at("punct", "."):
            raise _error(self.peek(), f"{name}(...) has no fields to pick with '.'")
        return result

    def arguments(self, function: str) -> list[_Argument]:
        arguments: list[_Argument] = []
        while not self.at("punct", ")"):
            token = start = self.peek()
            name: str | None = None
            if token.kind == "name" and self.at("punct", "=", 1):
                name = token.text
                self.advance()
                self.advance()
                token = self.peek()
            if token.kind == "string":
                self.advance()
                arguments.append(_Argument(name, str(token.value), True, start))
            elif token.kind == "name" and token.text == "attr" and self.at("punct", "(", 1):
                attribute = self.call()
                assert isinstance(attribute, Attribute)
                arguments.append(_Argument(name, attribute.name, False, start))
            elif token.kind == "name" and not self.at("punct", "(", 1):
                self.advance()
                arguments.append(_Argument(name, token.text, False, start))
            else:
                found = "nothing" if token.kind == "end" else token.describe()
                raise _error(
                    token,
                    f"expected an argument of {function}(...), such as "
                    f"{FUNCTION_USAGE[function]}, but found {found}",
                )
            if self.at("punct", ","):
                self.advance()
            elif not self.at("punct", ")"):
                raise _error(
                    self.peek(),
                    f"expected ',' or ')' in {function}(...), such as {FUNCTION_USAGE[function]}",
                )
        self.advance()
        return arguments

    def named(
        self, function: str, arguments: list[_Argument], allowed: tuple[str, ...]
    ) -> dict[str, _Argument]:
        named: dict[str, _Argument] = {}
        for argument in arguments:
            if argument.name is None:
                continue
            if argument.name not in allowed:
                takes = ", ".join(f"{name}=" for name in allowed)
                raise _error(
                    argument.token,
                    f"{function}(...) has no argument '{argument.name}'"
                    f"{suggestion(argument.name, list(allowed)) or '.'} It takes {takes}",
                )
            if argument.name in named:
                raise _error(argument.token, f"{argument.name}= is given twice")
            if not argument.is_text:
                raise _error(
                    argument.token,
                    f"{argument.name}= takes a text in quotes, such as {FUNCTION_USAGE[function]}",
                )
            named[argument.name] = argument
        return named

    def event_call(self, function: str, arguments: list[_Argument], where: Where, at: Token) -> Operand:
        for argument in arguments:
            if argument.name is None:
                raise _error(
                    argument.token,
                    f"{function}(...) takes named arguments, such as {FUNCTION_USAGE[function]}",
                )
        named = self.named(function, arguments, EVENT_FUNCTIONS[function])
        event, interaction, campaign = (
            named[key].value if key in named else None for key in ("event", "interaction", "campaign")
        )
        if event is None and interaction is None:
            raise _error(
                at,
                f'{function}(...) needs event="..." (a business event) or interaction="..." '
                f"(such as click or open): {FUNCTION_USAGE[function]}",
            )
        if event is not None and interaction is not None:
            raise _error(named["interaction"].token, "give either event= or interaction=, not both")
        if campaign is not None and interaction is None:
            raise _error(
                named["campaign"].token,
                'campaign= goes with interaction=, such as ever(interaction="click", campaign="card-upsell")',
            )
        source = EventRef(event, interaction, campaign)
        within = named["within"].value if "within" in named else None
        if function == "count":
            return Count(source, within, where)
        if function == "sum":
            if "field" not in named:
                raise _error(at, f'sum(...) needs field="...": {FUNCTION_USAGE["sum"]}')
            return Sum(source, named["field"].value, within, where)
        if function == "ever":
            return Ever(source, where)
        return Last(source, self.field_after(function), where)

    def field_after(self, function: str) -> str:
        if not self.at("punct", "."):
            raise _error(
                self.peek(),
                f"{function}(...) needs a field after it, such as {FUNCTION_USAGE[function]}",
            )
        self.advance()
        token = self.advance()
        if token.kind in ("name", "keyword", "string"):
            return str(token.value) if token.kind == "string" else token.text
        raise _error(token, f"expected a field name after '.', such as {FUNCTION_USAGE[function]}")

    def only_positional(self, function: str, arguments: list[_Argument], at: Token) -> _Argument:
        if len(arguments) != 1 or arguments[0].name is not None:
            token = arguments[1].token if len(arguments) > 1 else (arguments[0].token if arguments else at)
            raise _error(token, f"{function}(...) takes one value: {FUNCTION_USAGE[function]}")
        return arguments[0]

    def one_text(self, function: str, arguments: list[_Argument], at: Token) -> str:
        argument = self.only_positional(function, arguments, at)
        if not argument.is_text:
            raise _error(
                argument.token,
                f"put the value in quotes: {FUNCTION_USAGE[function]}",
            )
        return argument.value

    def one_attribute(self, function: str, arguments: list[_Argument], at: Token) -> str:
        argument = self.only_positional(function, arguments, at)
        if argument.is_text:
            raise _error(
                argument.token,
                f"write the attribute name without quotes, such as {FUNCTION_USAGE[function]} "
                '(use attr("...") for a name with spaces)',
            )
        return argument.value

    def literal_call(self, function: str, arguments: list[_Argument], at: Token, where: Where) -> Literal:
        text = self.one_text(function, arguments, at)
        try:
            value: Scalar = parse_date(text) if function == "date" else parse_timestamp(text)
        except ValueError as exc:
            raise _error(arguments[0].token, str(exc)) from None
        return Literal(value, where)
