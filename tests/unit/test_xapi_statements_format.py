"""Statements as stored and returned (ms8.xapi.statements) and multipart bodies (ms8.xapi.multipart)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ms8.xapi import multipart, statements
from ms8.xapi.validate import Invalid

ST: dict[str, Any] = {
    "actor": {"objectType": "Agent", "name": "Ada", "mbox": "mailto:ada@example.org"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed", "fr": "terminé"}},
    "object": {"id": "https://lms.example.org/course/1", "objectType": "Activity",
               "definition": {"name": {"en-GB": "Course", "de": "Kurs"}}},
    "context": {"registration": "EC531277-B57B-4C15-8D91-D292C5B2B8F7",
                "instructor": {"account": {"homePage": "https://lms.example.org", "name": "bob"}},
                "contextActivities": {"parent": {"id": "https://lms.example.org/program/9"}}},
}


def test_complete_sets_what_the_lrs_sets_and_arrays_context_activities() -> None:
    done = statements.complete(ST, "id-1", "2026-01-01T00:00:00.000Z", {"objectType": "Agent"})
    assert (done["id"], done["stored"], done["timestamp"], done["version"]) == (
        "id-1", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", statements.VERSION)
    assert done["context"]["contextActivities"]["parent"] == [{"id": "https://lms.example.org/program/9"}]
    assert statements.same(ST, done)
    assert not statements.same({**ST, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}, done)


def test_tokens_cover_every_filter() -> None:
    tokens = set(statements.tokens(statements.complete(ST, "i", "s", {"mbox": "mailto:lrs@example.org"})))
    assert {"a:mbox:mailto:ada@example.org", "A:mbox:mailto:ada@example.org", "v:http://adlnet.gov/expapi/verbs/completed",
            "o:https://lms.example.org/course/1", "O:https://lms.example.org/course/1",
            "O:https://lms.example.org/program/9", "A:account:https://lms.example.org bob",
            "A:mbox:mailto:lrs@example.org", "r:ec531277-b57b-4c15-8d91-d292c5b2b8f7"} == tokens


def test_formats() -> None:
    ids = statements.render(ST, "ids", [])
    assert ids["actor"] == {"objectType": "Agent", "mbox": "mailto:ada@example.org"}
    assert ids["verb"] == {"id": ST["verb"]["id"]} and ids["object"] == {"id": ST["object"]["id"]}
    canonical = statements.render(ST, "canonical", statements.accept_languages("fr;q=0.9, de"))
    assert canonical["verb"]["display"] == {"fr": "terminé"}
    assert canonical["object"]["definition"]["name"] == {"de": "Kurs"}
    assert statements.render(ST, "exact", []) is ST
    assert statements.accept_languages("en-GB;q=0.5, fr, *;q=0.1, de;q=0") == ["fr", "en-gb"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-26T11:00:00Z", datetime(2026, 11, 26, 11, tzinfo=UTC)),
    ("2026-11-26T12:00:00.5+01:00", datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=timezone(timedelta(hours=1)))),
    ("2026-11-26T11:00:00", datetime(2026, 11, 26, 11, tzinfo=UTC)),  # no offset: UTC
    ("2026-11-26T11:00:00.123456789Z", datetime(2026, 11, 26, 11, 0, 0, 123456, tzinfo=UTC)),
])
def test_parse_instant(text: str, expected: datetime) -> None:
    assert statements.parse_instant(text) == expected
    assert statements.format_instant(expected).endswith("Z")


def _multipart(parts: list[tuple[dict[str, str], bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for headers, body in parts:
        out += f"--{boundary}\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        out += b"\r\n" + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_round_trip_and_checks() -> None:
    content = b"hello"
    sha2 = hashlib.sha256(content).hexdigest()
    st = {**ST, "attachments": [{"usageType": "http://example.org/u", "display": {"en": "a"},
                                 "contentType": "text/plain", "length": 5, "sha2": sha2}]}
    import json

    body = _multipart([({"Content-Type": "application/json"}, json.dumps([st]).encode()),
                       ({"Content-Type": "text/plain", "X-Experience-API-Hash": sha2}, content)])
    parsed, parts = multipart.parse(body, "multipart/mixed; boundary=b0undary")
    assert parsed == [st] and parts[sha2] == multipart.Part("text/plain", content)
    multipart.check(parsed, parts)
    with pytest.raises(Invalid):
        multipart.check(parsed, {})  # an attachment without fileUrl and without its part
    with pytest.raises(Invalid):
        multipart.parse(body, "multipart/mixed")  # no boundary
    ctype, out = multipart.response({"statements": []}, [(sha2, parts[sha2])])
    again, again_parts = multipart.parse(out, ctype)
    assert again == {"statements": []} and again_parts[sha2].content == content
