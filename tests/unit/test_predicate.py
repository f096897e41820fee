"""The predicate reader, on what PostgreSQL 15 and 18 actually print (see tests/integration for live checks)."""

import pytest

from chalicelib.migrate.predicate import UnsupportedPredicateError, parse_predicate, strip_constraint_definition

# (as pg_get_constraintdef / pg_get_expr print it, column, values it accepts, values it rejects)
RENDERINGS = [
    ("CHECK ((a = ANY (ARRAY['x'::text, 'y'::text])))", "a", {"x", "y"}, {"z"}),
    (
        "CHECK (((b)::text = ANY ((ARRAY['x'::character varying, 'y'::character varying])::text[])))",
        "b",
        {"x", "y"},
        {"z"},
    ),
    ("CHECK ((c = 'x'::text))", "c", {"x"}, {"y"}),
    ("CHECK ((d <> ALL (ARRAY['x'::text, 'y'::text])))", "d", {"z"}, {"x", "y"}),
    ("CHECK (((e IS NOT NULL) AND ((e)::text = 'x'::text)))", "e", {"x"}, {"y"}),
    ("CHECK ((f = 'it''s'::text))", "f", {"it's"}, {"it"}),
    ("CHECK ((status = ANY (ARRAY['a'::text, 'b'::text]))) NOT VALID", "status", {"a", "b"}, {"c"}),
    ("CHECK ((status = ANY (ARRAY['a'::text]))) NOT ENFORCED", "status", {"a"}, {"c"}),
    ("CHECK (((status = 'a'::text) OR (status = 'b'::text)))", "status", {"a", "b"}, {"c"}),
    ("CHECK ((NOT (status = 'a'::text)))", "status", {"b"}, {"a"}),
    ("CHECK ((status = ANY ('{a,b}'::text[])))", "status", {"a", "b"}, {"c"}),
    ("CHECK ((\"Status\" = 'a'::text))", "Status", {"a"}, {"b"}),
]


@pytest.mark.parametrize(("definition", "column", "accepts", "rejects"), RENDERINGS)
def test_reads_the_value_set_whatever_the_spelling(
    definition: str, column: str, accepts: set[str], rejects: set[str]
) -> None:
    parsed = parse_predicate(strip_constraint_definition(definition), column)
    assert {value for value in accepts | rejects if parsed.evaluate(value)} == accepts


def test_null_passes_a_check_as_sql_says() -> None:
    parsed = parse_predicate("(status = ANY (ARRAY['a'::text]))", "status")
    assert parsed.evaluate(None) is None  # unknown: a CHECK lets NULL through


def test_is_not_null_rejects_null() -> None:
    parsed = parse_predicate("((status IS NOT NULL) AND (status = 'a'::text))", "status")
    assert parsed.evaluate(None) is False


def test_index_predicate_as_printed() -> None:
    parsed = parse_predicate(
        "(status <> ALL (ARRAY['customer_created'::text, 'rejected'::text, 'cancelled'::text]))", "status"
    )
    assert parsed.evaluate("approved") is True
    assert parsed.evaluate("rejected") is False
    assert parsed.literals == {"customer_created", "rejected", "cancelled"}


@pytest.mark.parametrize(
    "expression",
    [
        "(lower(status) = 'a'::text)",  # a function: beyond the reader
        "(other = 'a'::text)",  # another column
        "(status ~ '^a'::text)",  # a regular expression
        "(status = ANY (ARRAY['a'::text]) AND",  # cut short
        "(status = ANY ('{\"a b\",c}'::text[]))",  # a quoted array element
    ],
)
def test_refuses_what_it_cannot_prove(expression: str) -> None:
    with pytest.raises(UnsupportedPredicateError):
        parse_predicate(expression, "status")


def test_a_string_spelling_a_keyword_is_still_a_string() -> None:
    parsed = parse_predicate("(status = ANY (ARRAY['or'::text, 'and'::text]))", "status")
    assert parsed.evaluate("or") is True
    assert parsed.evaluate("x") is False


def test_strip_refuses_what_is_not_a_check() -> None:
    with pytest.raises(UnsupportedPredicateError):
        strip_constraint_definition("UNIQUE (status)")
