"""From statements to learning events (ms8.xapi.mapping): each verb and each result field, as the
table of docs/XAPI.md says."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ms8.xapi import mapping


def _st(verb: str, result: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "actor": {"mbox": "mailto:ada@example.org"},
        "verb": {"id": verb},
        "object": {"id": "https://lms.example.org/mod/quiz/view.php?id=3",
                   "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"}},
        **extra,
    }
    if result is not None:
        st["result"] = result
    return st


@pytest.mark.parametrize("name", sorted(mapping.MAPPED_VERBS))
def test_each_adl_verb_keeps_its_name(name: str) -> None:
    for prefix in mapping.VERB_PREFIXES:
        event = mapping.map_statement(_st(prefix + name))
        assert event is not None and event.verb == name


@pytest.mark.parametrize("verb", ["http://id.tincanapi.com/verb/viewed", "https://w3id.org/xapi/video/verbs/played",
                                  "http://adlnet.gov/expapi/verbs/launched", "urn:x:completed"])
def test_other_verbs_are_activity(verb: str) -> None:
    event = mapping.map_statement(_st(verb))
    assert event is not None and event.verb == "activity"


@pytest.mark.parametrize(("verb", "expected"), [
    ("http://adlnet.gov/expapi/verbs/progressed", "completed"),
    ("http://adlnet.gov/expapi/verbs/experienced", "completed"),
    ("http://id.tincanapi.com/verb/viewed", "completed"),
    ("http://adlnet.gov/expapi/verbs/answered", "answered"),  # a question answered completes nothing
    ("http://adlnet.gov/expapi/verbs/passed", "passed"),
    ("http://adlnet.gov/expapi/verbs/failed", "failed"),
])
def test_result_completion_makes_a_completion(verb: str, expected: str) -> None:
    event = mapping.map_statement(_st(verb, {"completion": True}))
    assert event is not None and event.verb == expected
    assert mapping.map_statement(_st(verb, {"completion": False})).verb != "completed"  # type: ignore[union-attr]


@pytest.mark.parametrize("success", [True, False, None])
def test_result_success(success: bool | None) -> None:
    result = {} if success is None else {"success": success}
    event = mapping.map_statement(_st("http://adlnet.gov/expapi/verbs/attempted", result))
    assert event is not None and event.success is success


@pytest.mark.parametrize(("score", "expected"), [
    ({"scaled": 0.8, "raw": 1, "max": 10}, 0.8),  # scaled wins
    ({"scaled": -0.5}, 0.0),  # negative scaled counts as 0
    ({"raw": 15, "min": 10, "max": 20}, 0.5),  # raw within min..max
    ({"raw": 7, "max": 10}, 0.7),  # min defaults to 0
    ({"raw": 7}, None),  # nowhere to place it
    (None, None),
])
def test_result_score(score: dict[str, float] | None, expected: float | None) -> None:
    result = {} if score is None else {"score": score}
    event = mapping.map_statement(_st("http://adlnet.gov/expapi/verbs/scored", result))
    assert event is not None and event.score == expected


@pytest.mark.parametrize(("duration", "seconds"), [
    ("PT1H2M3S", 3723), ("PT0.5S", 0), ("PT1.6S", 2), ("P1D", 86400), ("P2D", 86400), ("PT90M", 5400), (None, None),
])
def test_result_duration(duration: str | None, seconds: int | None) -> None:
    result = {} if duration is None else {"duration": duration}
    event = mapping.map_statement(_st("http://adlnet.gov/expapi/verbs/experienced", result))
    assert event is not None and event.duration_seconds == seconds


def test_category_context_activities_are_skills_but_not_moodle_source() -> None:
    context = {"contextActivities": {
        "category": [
            {"id": "https://skills.example.org/sql", "definition": {"name": {"en-US": "SQL"}}},
            {"id": "https://skills.example.org/python"},
            {"id": "http://moodle.org", "definition": {"type": mapping.SOURCE_CATEGORY, "name": {"en": "Moodle"}}},
        ],
        "grouping": [{"id": "https://lms.example.org/course/1"}],
    }}
    event = mapping.map_statement(_st("http://adlnet.gov/expapi/verbs/passed", context=context))
    assert event is not None and event.skills == ("SQL", "https://skills.example.org/python")


def test_object_id_and_type() -> None:
    event = mapping.map_statement(_st("http://adlnet.gov/expapi/verbs/completed"))
    assert event is not None
    assert (event.object_id, event.object_type) == ("https://lms.example.org/mod/quiz/view.php?id=3", "assessment")
    long_id = "https://lms.example.org/" + "x" * 300
    shortened = mapping.object_id_of(long_id)
    assert len(shortened) == mapping.MAX_OBJECT_ID and shortened != mapping.object_id_of(long_id + "y")


@pytest.mark.parametrize("obj", [
    {"objectType": "Agent", "mbox": "mailto:b@example.org"},
    {"objectType": "StatementRef", "id": "6d1f033b-3f70-458c-b53a-e6bb63cbaef9"},
])
def test_statements_about_no_activity_map_to_nothing(obj: dict[str, Any]) -> None:
    assert mapping.map_statement({**_st("http://adlnet.gov/expapi/verbs/completed"), "object": obj}) is None


def test_actor_keys() -> None:
    home = "https://moodle.acme.example"
    assert mapping.actor_keys({"mbox": "mailto:Ada@Example.org"}, None) == ("email:ada@example.org",)
    assert mapping.actor_keys({"mbox_sha1sum": "AB" * 20}, None) == ("sha1:" + "ab" * 20,)
    uid = "32e08e30-f8ae-4ce2-94a8-c2bfe38a70cb"
    assert mapping.actor_keys({"account": {"homePage": home + "/", "name": uid}}, home) == (f"id:{uid}",)
    assert mapping.actor_keys({"account": {"homePage": home, "name": "ada@example.org"}}, home) == (
        "email:ada@example.org",)
    assert mapping.actor_keys({"account": {"homePage": "https://elsewhere.example", "name": uid}}, home) == ()
    assert mapping.actor_keys({"openid": "https://id.example/ada"}, home) == ()


def test_user_keys_meet_actor_keys() -> None:
    uid, email = "32e08e30-f8ae-4ce2-94a8-c2bfe38a70cb", "Ada@Example.org"
    keys = set(mapping.user_keys(uid, email))
    sha1 = hashlib.sha1(b"mailto:ada@example.org").hexdigest()  # noqa: S324 - the xAPI identifier
    for actor in ({"mbox": "mailto:ada@example.org"}, {"mbox_sha1sum": sha1},
                  {"account": {"homePage": "https://h.example", "name": uid}}):
        assert set(mapping.actor_keys(actor, "https://h.example")) <= keys
