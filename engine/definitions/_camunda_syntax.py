"""Read Camunda's expression languages: JUEL (`${...}`, `#{...}`) and Camunda 8 FEEL (`=...`), simple forms.

A tokenizer and a recursive-descent parser turn the text into a small syntax tree
(`_camunda_expressions` writes it out as a sandbox expression). Nothing here is evaluated. What lies
outside the subset raises `OutsideSubset` quoting the part that is not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["juel", "feel"]
MAX_TOKENS = 500  # a condition, not a program: the translated text must pass the sandbox's limits too
MAX_NUMBER_DIGITS = 40
MAX_NESTING = 32  # parentheses, ?: and unary operators inside each other; keeps the recursion shallow


class OutsideSubset(Exception):
    def __init__(self, message: str, fragment: str) -> None:
        super().__init__(message)
        self.message = message
        self.fragment = fragment


# -- syntax tree -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Constant:
    value: object


@dataclass(frozen=True)
class Name:
    name: str
    may_be_absent: bool = False  # FEEL and execution.getVariable read an unset variable as null


@dataclass(frozen=True)
class Field:
    base: Node
    name: str


@dataclass(frozen=True)
class Index:
    base: Node
    key: Node


@dataclass(frozen=True)
class Unary:
    op: str  # "not", "-", "empty"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # "or", "and", "==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%"
    left: Node
    right: Node


@dataclass(frozen=True)
class Choice:
    test: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Quantified:
    kind: str  # "some" / "every"
    variable: str
    collection: Node
    condition: Node


Node = Constant | Name | Field | Index | Unary | Binary | Choice | Quantified


# -- tokens ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # "name", "number", "string", "op", "end"
    text: str
    start: int  # where it begins in the text, to quote the rest from it
    value: object = None


_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_OPERATORS = {
    "juel": ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ".", ",", "?", ":",
             "+", "-", "*", "/", "%"),
    "feel": ("!=", "<=", ">=", "=", "<", ">", "(", ")", "[", "]", ".", ",", "+", "-", "*", "/"),
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def tokenize(text: str, dialect: Dialect) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if len(tokens) > MAX_TOKENS:
            raise OutsideSubset(f"the expression has more than {MAX_TOKENS} parts", text[:40])
        char = text[position]
        if char.isspace():
            position += 1
            continue
        token, position = _next_token(text, position, dialect)
        tokens.append(token)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _next_token(text: str, position: int, dialect: Dialect) -> tuple[Token, int]:
    char = text[position]
    quotes = "'\"" if dialect == "juel" else '"'
    if char in quotes:
        return _string(text, position)
    number = _NUMBER.match(text, position)
    if number is not None and (char.isdigit() or char == "."):
        literal = number.group()
        if len(literal) > MAX_NUMBER_DIGITS:
            raise OutsideSubset(f"a number may have at most {MAX_NUMBER_DIGITS} digits", literal[:20])
        value: object = float(literal) if any(c in literal for c in ".eE") else int(literal)
        return Token("number", literal, position, value), number.end()
    name = _NAME.match(text, position)
    if name is not None:
        return Token("name", name.group(), position), name.end()
    operator = next((op for op in _OPERATORS[dialect] if text.startswith(op, position)), None)
    if operator is not None:
        return Token("op", operator, position), position + len(operator)
    fragment = text[position:position + 20]
    if char in "{}" or text.startswith("${", position) or text.startswith("#{", position):
        raise OutsideSubset("text around or between expressions (a composite expression) is not supported; "
                            "write one expression for the whole condition", fragment)
    raise OutsideSubset(f"the character '{char}' is not part of the supported expressions", fragment)


def _string(text: str, position: int) -> tuple[Token, int]:
    quote = text[position]
    chars: list[str] = []
    index = position + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            chars.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        if char == quote:
            return Token("string", text[position:index + 1], position, "".join(chars)), index + 1
        chars.append(char)
        index += 1
    raise OutsideSubset("a text in quotes is not closed", text[position:position + 20])


# -- parser ----------------------------------------------------------------------------------------

_JUEL_WORDS = {"and": "and", "or": "or", "not": "not", "eq": "==", "ne": "!=", "lt": "<", "gt": ">",
               "le": "<=", "ge": ">=", "div": "/", "mod": "%"}
_SYMBOLS = {"&&": "and", "||": "or", "!": "not", "=": "=="}
_LITERALS: dict[str, object] = {"true": True, "false": False, "null": None}
_GETTERS = frozenset({"getVariable", "getVariableLocal"})
_RESERVED = {"instanceof", "empty", *_JUEL_WORDS, *_LITERALS}


class Parser:
    """Recursive descent, one method per precedence level (lowest first), as the JUEL grammar lists them."""

    def __init__(self, text: str, dialect: Dialect) -> None:
        self.text = text
        self.dialect = dialect
        self.tokens = tokenize(text, dialect)
        self.position = 0
        self.bound: list[str] = []  # names bound by FEEL's some/every
        self.nesting = 0

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise OutsideSubset("the expression is empty", self.text)
        node = self.choice()
        if self.peek().kind != "end":
            raise OutsideSubset(f"'{self.peek().text}' is not expected here", self.rest())
        return node

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.position + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.position += 1
        return token

    def operator(self, *wanted: str) -> str | None:
        """The normalised operator at this position if it is one of `wanted` (then consumed)."""
        token = self.peek()
        spelled = token.text if token.kind == "op" else token.text if token.kind == "name" else None
        if spelled is None:
            return None
        normal = _SYMBOLS.get(spelled, spelled) if token.kind == "op" else self._word(spelled)
        if normal in wanted:
            self.position += 1
            return normal
        return None

    def _word(self, spelled: str) -> str | None:
        if self.dialect == "juel":
            return _JUEL_WORDS.get(spelled, "empty" if spelled == "empty" else None)
        return spelled if spelled in {"and", "or"} else None

    def expect(self, text: str) -> None:
        if self.peek().text != text:
            found = self.peek().text or "the end"
            raise OutsideSubset(f"'{text}' is missing before {found!r}", self.rest())
        self.position += 1

    def rest(self) -> str:
        """The text from the current token on, to quote in a refusal."""
        return self.text[self.peek().start:][:40] or self.text[-20:]

    # grammar, lowest precedence first
    def nested(self) -> None:
        """Called on the way into each nested part: a hostile condition must not exhaust the stack."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise OutsideSubset(f"the expression nests more than {MAX_NESTING} levels deep", self.rest())

    def choice(self) -> Node:
        self.nested()
        try:
            return self._choice()
        finally:
            self.nesting -= 1

    def _choice(self) -> Node:
        if self.dialect == "feel" and self.peek().text in {"some", "every"} and self.peek(1).kind == "name":
            return self.quantified()
        test = self.disjunction()
        if self.dialect == "juel" and self.operator("?"):
            then = self.choice()
            self.expect(":")
            return Choice(test, then, self.choice())
        return test

    def quantified(self) -> Node:
        kind = self.take().text
        variable = self.take().text
        self.expect("in")
        collection = self.disjunction()
        self.expect("satisfies")
        self.bound.append(variable)
        try:
            condition = self.choice()
        finally:
            self.bound.pop()
        return Quantified(kind, variable, collection, condition)

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.operator("or"):
            node = Binary("or", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.equality()
        while self.operator("and"):
            node = Binary("and", node, self.equality())
        return node

    def equality(self) -> Node:
        node = self.relation()
        while (op := self.operator("==", "!=")) is not None:
            node = Binary(op, node, self.relation())
        return node

    def relation(self) -> Node:
        node = self.additive()
        while (op := self.operator("<", ">", "<=", ">=")) is not None:
            node = Binary(op, node, self.additive())
        if self.peek().text in {"instanceof", "in", "between"} and self.peek().kind == "name":
            raise OutsideSubset(f"'{self.peek().text}' is not supported", self.rest())
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while (op := self.operator("+", "-")) is not None:
            node = Binary(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while (op := self.operator("*", "/", "%")) is not None:
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        op = self.operator("not", "empty", "-") if self.dialect == "juel" else self.operator("-")
        if op is None:
            return self.postfix()
        self.nested()
        try:
            return Unary(op, self.unary())
        finally:
            self.nesting -= 1

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.peek().text == "(":
                node = self.call(node)
            elif self.operator("."):
                token = self.take()
                if token.kind != "name":
                    raise OutsideSubset("a property name is missing after '.'", self.rest())
                node = Field(node, token.text)
            elif self.dialect == "juel" and self.operator("["):
                key = self.choice()
                self.expect("]")
                node = Index(node, key)
            else:
                return node

    def call(self, callee: Node) -> Node:
        """The two calls editors write in conditions: execution.getVariable('x') and FEEL's not(x)."""
        start = self.rest()
        self.expect("(")
        arguments: list[Node] = []
        while self.peek().text != ")":
            arguments.append(self.choice())
            if not self.operator(","):
                break
        self.expect(")")
        getter = (self.dialect == "juel" and isinstance(callee, Field) and callee.name in _GETTERS
                  and callee.base == Name("execution"))
        if getter and len(arguments) == 1 and isinstance(arguments[0], Constant) \
                and isinstance(arguments[0].value, str):
            return Name(arguments[0].value, may_be_absent=True)
        if self.dialect == "feel" and callee == Name("not", True) and len(arguments) == 1:
            return Unary("not", arguments[0])
        called = _spelled(callee)
        raise OutsideSubset(f"calling '{called}(...)' is not supported; the only call CarePath translates is "
                            "execution.getVariable('name')" + (" and not(...)" if self.dialect == "feel" else ""),
                            f"{called}{start}")

    def primary(self) -> Node:
        token = self.take()
        if token.kind in {"number", "string"}:
            return Constant(token.value)
        if token.kind == "name" and token.text in _LITERALS:
            return Constant(_LITERALS[token.text])
        if token.kind == "name" and not (self.dialect == "juel" and token.text in _RESERVED):
            absent_is_null = self.dialect == "feel" and token.text not in self.bound
            return Name(token.text, absent_is_null)
        if token.text == "(":
            node = self.choice()
            self.expect(")")
            return node
        self.position -= 1
        found = f"'{token.text}'" if token.text else "the end of the expression"
        raise OutsideSubset(f"a value is missing before {found}", self.rest())


def _spelled(node: Node) -> str:
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Field):
        return f"{_spelled(node.base)}.{node.name}"
    return "..."
