"""The top-level message of a validation error names the first problem (the details list all)."""

from __future__ import annotations

from ms8.http import first_problem


def test_the_message_names_the_first_problem_and_counts_the_rest() -> None:
    details = [
        {"loc": ["body", "items", "0", "data"], "msg": "Field required", "type": "missing"},
        {"loc": ["body", "items", "1", "analyticsType"], "msg": "Input should be 'mastery'", "type": "enum"},
        {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100", "type": "le"},
    ]
    assert first_problem(details) == "items.0.data: Field required (and 2 more problems)"
    assert first_problem(details[2:]) == "limit: Input should be less than or equal to 100"
    assert first_problem(details[:2]) == "items.0.data: Field required (and 1 more problem)"


def test_a_problem_with_the_whole_body_says_body() -> None:
    assert first_problem([{"loc": ["body"], "msg": "Field required", "type": "missing"}]) == "body: Field required"
    assert first_problem([]) == "the request is not valid"
