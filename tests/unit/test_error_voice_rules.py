"""The rules of the one error voice: what ``envelope_problems`` (make fuzz's check) refuses, and
every sentence of ``PROBLEM_BY_TYPE`` (pydantic's refusals in our words) filled in."""

import json
import re

import pytest

from chalicelib.web.requests import PROBLEM_BY_TYPE, problem_text
from devstack.fuzz_checks import envelope_problems

GOOD = {"error": {"code": "not_found", "message": "no such registration", "details": {}}}


def compact(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def test_a_compact_envelope_in_our_words_passes() -> None:
    assert envelope_problems(404, compact(GOOD)) == []
    assert envelope_problems(200, b"[]") == []


@pytest.mark.parametrize(
    ("status", "raw", "complaint"),
    [
        (404, json.dumps(GOOD).encode(), "not compact"),
        (404, b"<html>Not Found</html>", "not JSON"),
        (404, compact({"message": "no such path"}), "not the envelope"),
        (404, compact({"error": {**GOOD["error"], "code": "nope"}}), "not a code of the table"),
        (405, compact({"error": {**GOOD["error"], "message": "Unsupported method: DELETE"}}), "project's words"),
        (404, compact({"error": {**GOOD["error"], "details": []}}), "not an object"),
        (409, compact(GOOD), "is a 404, answered as 409"),
        (
            400,
            compact(
                {
                    "error": {
                        "code": "invalid_input",
                        "message": "the request body is not valid",
                        "details": {"problems": [{"field": "body.x", "problem": "Input should be a valid string"}]},
                    }
                }
            ),
            "project's words",
        ),
    ],
)
def test_each_way_out_of_the_voice_is_named(status: int, raw: bytes, complaint: str) -> None:
    problems = envelope_problems(status, raw)
    assert any(complaint in p for p in problems), problems


CONTEXT = {"min_length": 3, "max_length": 200, "gt": 0, "ge": 1, "lt": 10, "le": 100, "expected": "'a', 'b' or 'c'"}


@pytest.mark.parametrize("kind", sorted(PROBLEM_BY_TYPE))
def test_every_sentence_fills_in_and_speaks_like_the_rest(kind: str) -> None:
    text = problem_text(kind, "pydantic's own text", CONTEXT)
    assert "{" not in text, text
    assert "pydantic" not in text, text
    assert re.match(r"^(is|must) ", text), text


def test_the_rest_is_said_plainly() -> None:
    assert problem_text("some_new_pydantic_type", "Something pydantic says", {}) == "is not valid"
    assert problem_text("enum", "", {"expected": "'a', 'b' or 'c'"}) == "must be one of a, b, c"
    assert problem_text("string_too_short", "", {"min_length": 1}) == "must not be empty"
    assert problem_text("value_error", "Value error, is not a phone number", {}) == "is not a phone number"
    assert problem_text("string_pattern_mismatch", "", {"pattern": "^x+$"}) == "is not in the expected form"
