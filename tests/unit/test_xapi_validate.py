"""The statement rules of the xAPI specification (ms8.xapi.validate): what passes, what is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ms8.xapi import validate
from ms8.xapi.validate import Invalid

BASE: dict[str, Any] = {
    "id": "6d1f033b-3f70-458c-b53a-e6bb63cbaef9",
    "actor": {"objectType": "Agent", "name": "Ada", "mbox": "mailto:ada@example.org"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
    "object": {"id": "https://lms.example.org/course/1",
               "definition": {"type": "http://adlnet.gov/expapi/activities/course", "name": {"en": "Course"}}},
    "result": {"score": {"scaled": 0.5, "raw": 5, "min": 0, "max": 10}, "success": True, "completion": True,
               "duration": "PT1H2M3.5S"},
    "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7", "platform": "Moodle", "language": "en-GB",
                "contextActivities": {"category": {"id": "https://skills.example.org/sql"}}},
    "timestamp": "2026-11-26T11:00:00.123+01:00",
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path replaced (`...=DELETE` removes it)."""
    st = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = st
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return st


DELETE = object()


def test_a_complete_statement_passes() -> None:
    validate.statement(copy.deepcopy(BASE))


@pytest.mark.parametrize(("path", "value"), [
    ("actor.mbox_sha1sum", "a" * 40),  # two identifiers
    ("actor.mbox", "ada@example.org"),  # no mailto:
    ("actor.objectType", "Person"),
    ("actor", {"objectType": "Group", "name": "no members and no identifier"}),
    ("actor", {"objectType": "Group", "member": [{"objectType": "Group", "mbox": "mailto:g@example.org"}]}),
    ("actor.account", {"homePage": "no-scheme", "name": "x"}),
    ("actor.name", None),  # null
    ("verb.id", "completed"),  # not an IRI
    ("verb.display", {"not a tag!": "x"}),
    ("verb", DELETE),
    ("object.id", "no scheme"),
    ("object.definition.interactionType", "essay"),
    ("object.definition.choices", [{"id": "a"}]),  # interaction component without interactionType
    ("object", {"objectType": "Agent"}),
    ("object", {"objectType": "StatementRef", "id": "not-a-uuid"}),
    ("result.score", {"scaled": 1.5}),
    ("result.score", {"raw": 11, "min": 0, "max": 10}),
    ("result.score", {"min": 5, "max": 5}),
    ("result.success", "yes"),
    ("result.duration", "1 hour"),
    ("result.duration", "P4W1D"),
    ("context.registration", "123"),
    ("context.contextActivities", {"sideways": []}),
    ("context.language", "english language"),
    ("timestamp", "yesterday"),
    ("timestamp", "2026-11-26T11:00:00-00:00"),
    ("timestamp", "2026-13-26T11:00:00Z"),
    ("id", "6d1f033b3f70458cb53ae6bb63cbaef9"),
    # A trailing line feed (a pattern's `$` would match before it).
    ("id", "6d1f033b-3f70-458c-b53a-e6bb63cbaef9\n"),
    ("object", {"objectType": "StatementRef", "id": "6d1f033b-3f70-458c-b53a-e6bb63cbaef9\n"}),
    ("actor.mbox", "mailto:ada@example.org\n"),
    ("actor", {"objectType": "Agent", "mbox_sha1sum": "a" * 40 + "\n"}),
    ("verb.id", "http://adlnet.gov/expapi/verbs/completed\n"),
    ("context.language", "en-US\n"),
    ("version", "1.0.3\n"),
    ("version", "2.0.0"),
    ("unknown", 1),
    ("authority", {"objectType": "Group", "mbox": "mailto:g@example.org",
                   "member": [{"mbox": "mailto:a@example.org"}, {"mbox": "mailto:b@example.org"}]}),
])
def test_invalid_statements_are_refused(path: str, value: Any) -> None:
    with pytest.raises(Invalid):
        validate.statement(_with(path, value))


def test_revision_and_platform_only_with_an_activity() -> None:
    st = _with("object", {"objectType": "Agent", "mbox": "mailto:b@example.org"})
    with pytest.raises(Invalid, match="platform"):
        validate.statement(st)


def test_a_voiding_statement_targets_a_statement_ref() -> None:
    st = _with("verb", {"id": validate.VOIDED})
    with pytest.raises(Invalid, match="StatementRef"):
        validate.statement(st)
    st["object"] = {"objectType": "StatementRef", "id": BASE["id"]}
    st.pop("context")
    validate.statement(st)


def test_substatements_do_not_nest_or_carry_ids() -> None:
    sub = {"objectType": "SubStatement", "actor": BASE["actor"], "verb": BASE["verb"], "object": BASE["object"]}
    st = _with("object", sub)
    st["context"].pop("platform")  # platform and revision go only with an Activity object
    validate.statement(st)
    with pytest.raises(Invalid):
        validate.statement({**st, "object": {**sub, "id": BASE["id"]}})
    with pytest.raises(Invalid):
        validate.statement({**st, "object": {**sub, "object": dict(sub)}})


def test_the_error_names_where_the_problem_is() -> None:
    with pytest.raises(Invalid, match=r"actor\.account\.homePage"):
        validate.statement(_with("actor", {"account": {"homePage": "x", "name": "n"}}))


def test_a_valid_agent_is_not_taken_for_a_valid_activity() -> None:
    # Validity is remembered per kind: the same JSON, valid as an actor, is no Activity object.
    agent = {"name": "Ada", "mbox": "mailto:ada@example.org"}
    validate.statement(_with("actor", dict(agent)))
    st = _with("object", dict(agent))
    st.pop("context")
    with pytest.raises(Invalid, match="object"):
        validate.statement(st)
