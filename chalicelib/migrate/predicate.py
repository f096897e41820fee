"""Read a one-column SQL predicate, as PostgreSQL's catalog prints it, into something we can evaluate.

``pg_get_constraintdef`` and ``pg_get_expr`` print ``status IN ('a', 'b')`` as
``(status = ANY (ARRAY['a'::text, 'b'::text]))`` on a text column and as
``((status)::text = ANY ((ARRAY['a'::character varying, ...])::text[]))`` on a
varchar one, and the spelling moves between major versions.  Comparing strings
would call equal sets different and, worse, different sets equal.  So we parse the
small language these predicates use (comparisons of one column with literals,
``= ANY``/``<> ALL`` over arrays, ``IN``, ``IS [NOT] NULL``, ``AND``/``OR``/``NOT``)
and evaluate it, with SQL's three-valued logic, for each value the code knows.
Anything outside that language raises ``UnsupportedPredicateError``: the verifier
then reports the constraint as one it cannot prove, never as fine.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

# A value of the column: a string, or None for SQL NULL.  The result is SQL's
# boolean: True, False, or None for NULL ("unknown").
Value = str | None
Truth = bool | None
Predicate = Callable[[Value], Truth]


class UnsupportedPredicateError(ValueError):
    """The expression uses something this reader does not understand."""


@dataclass(frozen=True)
class ParsedPredicate:
    """A predicate over one column, and every literal it spells."""

    evaluate: Predicate
    literals: frozenset[str]


_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<string>'(?:[^']|'')*')
    | (?P<cast>::\s*(?:"[^"]+"|[A-Za-z_]\w*)(?:\.(?:"[^"]+"|[A-Za-z_]\w*))?
          (?:\s+varying)?(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\s*\[\])*)
    | (?P<op><>|!=|=)
    | (?P<punct>[()\[\],])
    | (?P<word>"(?:[^"]|"")+"|[A-Za-z_]\w*)
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise UnsupportedPredicateError(f"unexpected text at {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        position = match.end()
        if kind in ("space", "cast"):
            # Casts between text types do not change which strings are equal.
            continue
        value = match.group()
        if kind == "string":
            value = value[1:-1].replace("''", "'")
        elif kind == "word":
            value = value[1:-1].replace('""', '"') if value.startswith('"') else value.lower()
        tokens.append((kind, value))
    return tokens


def parse_predicate(text: str, column: str) -> ParsedPredicate:
    """Parse ``text``, an expression over ``column``, into a ``ParsedPredicate``.

    Raises ``UnsupportedPredicateError`` for anything but the forms listed in the
    module docstring, or when the expression names another column.
    """
    parser = _Parser(_tokenize(text), column)
    evaluate = parser.expression()
    if parser.position != len(parser.tokens):
        raise UnsupportedPredicateError(f"unexpected {parser.peek_value()!r} after the expression")
    return ParsedPredicate(evaluate, frozenset(parser.literals))


def strip_constraint_definition(definition: str) -> str:
    """``CHECK (expr) NOT VALID`` as ``pg_get_constraintdef`` prints it, down to ``expr``."""
    text = re.sub(r"(\s+NOT\s+(VALID|ENFORCED))+\s*$", "", definition.strip(), flags=re.IGNORECASE)
    text = re.sub(r"\s+NO\s+INHERIT\s*$", "", text, flags=re.IGNORECASE)
    match = re.fullmatch(r"CHECK\s*\((.*)\)", text, flags=re.IGNORECASE | re.DOTALL)
    if match is None:
        raise UnsupportedPredicateError(f"not a CHECK constraint: {definition!r}")
    return match.group(1)


class _BacktrackError(Exception):
    pass


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], column: str) -> None:
        self.tokens = tokens
        self.column = column
        self.position = 0
        self.literals: set[str] = set()

    # -- token helpers ---------------------------------------------------------
    def peek_value(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def peek_kind(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def accept(self, value: str, kind: str | None = None) -> bool:
        if self.peek_value() == value and (kind is None or self.peek_kind() == kind) and self.peek_kind() != "string":
            self.position += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise _BacktrackError(f"expected {value!r}, found {self.peek_value()!r}")

    # -- grammar ---------------------------------------------------------------
    def expression(self) -> Predicate:
        try:
            return self._or()
        except _BacktrackError as error:
            raise UnsupportedPredicateError(str(error)) from None

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self.accept("or", "word"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _any_of(parts)

    def _and(self) -> Predicate:
        parts = [self._not()]
        while self.accept("and", "word"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else _all_of(parts)

    def _not(self) -> Predicate:
        if self.accept("not", "word"):
            inner = self._not()
            return lambda v: None if (r := inner(v)) is None else not r
        return self._primary()

    def _primary(self) -> Predicate:
        start = self.position
        try:
            return self._comparison()
        except _BacktrackError:
            self.position = start
        self.expect("(")
        inner = self._or()
        self.expect(")")
        return inner

    def _comparison(self) -> Predicate:
        left = self._operand()
        if self.accept("is", "word"):
            negated = self.accept("not", "word")
            self.expect("null")
            return _is_null(left, negated)
        negated_in = self.accept("not", "word")
        if self.accept("in", "word"):
            values = self._parenthesised_list()
            return _quantified(left, "<>" if negated_in else "=", "all" if negated_in else "any", values)
        if negated_in:
            raise _BacktrackError("NOT must be followed by IN here")
        if self.peek_kind() != "op":
            raise _BacktrackError(f"expected a comparison, found {self.peek_value()!r}")
        operator = "<>" if self.tokens[self.position][1] in ("<>", "!=") else "="
        self.position += 1
        for quantifier in ("any", "all"):
            if self.accept(quantifier, "word"):
                self.expect("(")
                values = self._array()
                self.expect(")")
                return _quantified(left, operator, quantifier, values)
        right = self._operand()
        return _compare(left, operator, right)

    def _operand(self) -> Callable[[Value], Value]:
        if self.accept("("):
            inner = self._operand()
            self.expect(")")
            return inner
        kind, value = self.tokens[self.position] if self.position < len(self.tokens) else ("", "")
        if kind == "string":
            self.position += 1
            self.literals.add(value)
            return lambda _v: value
        if kind == "word" and value == self.column:
            self.position += 1
            return lambda v: v
        if kind == "word" and value == "null":
            self.position += 1
            return lambda _v: None
        raise _BacktrackError(f"expected {self.column!r} or a literal, found {value!r}")

    def _array(self) -> list[str]:
        if self.accept("("):
            values = self._array()
            self.expect(")")
            return values
        if self.peek_kind() == "string":
            # '{a,b}'::text[]: an array literal.  Quoted or escaped elements are
            # rare enough in a status list that we refuse rather than guess.
            text = self.tokens[self.position][1]
            self.position += 1
            match = re.fullmatch(r"\{([A-Za-z0-9_, ]*)\}", text)
            if match is None:
                raise _BacktrackError(f"array literal {text!r} is not a plain list")
            values = [item.strip() for item in match.group(1).split(",") if item.strip()]
            self.literals.update(values)
            return values
        self.expect("array")
        self.expect("[")
        values = [self._literal()]
        while self.accept(","):
            values.append(self._literal())
        self.expect("]")
        return values

    def _parenthesised_list(self) -> list[str]:
        self.expect("(")
        values = [self._literal()]
        while self.accept(","):
            values.append(self._literal())
        self.expect(")")
        return values

    def _literal(self) -> str:
        if self.accept("("):
            value = self._literal()
            self.expect(")")
            return value
        if self.peek_kind() != "string":
            raise _BacktrackError(f"expected a string literal, found {self.peek_value()!r}")
        value = self.tokens[self.position][1]
        self.position += 1
        self.literals.add(value)
        return value


# -- three-valued logic --------------------------------------------------------


def _any_of(parts: list[Predicate]) -> Predicate:
    def evaluate(v: Value) -> Truth:
        results = [p(v) for p in parts]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False

    return evaluate


def _all_of(parts: list[Predicate]) -> Predicate:
    def evaluate(v: Value) -> Truth:
        results = [p(v) for p in parts]
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True

    return evaluate


def _is_null(operand: Callable[[Value], Value], negated: bool) -> Predicate:
    return lambda v: (operand(v) is None) != negated


def _compare(left: Callable[[Value], Value], operator: str, right: Callable[[Value], Value]) -> Predicate:
    def evaluate(v: Value) -> Truth:
        a, b = left(v), right(v)
        if a is None or b is None:
            return None
        return (a == b) if operator == "=" else (a != b)

    return evaluate


def _quantified(left: Callable[[Value], Value], operator: str, quantifier: str, values: list[str]) -> Predicate:
    def evaluate(v: Value) -> Truth:
        a = left(v)
        if a is None:
            return None if values else (quantifier == "all")
        matches = [(a == b) if operator == "=" else (a != b) for b in values]
        return any(matches) if quantifier == "any" else all(matches)

    return evaluate
