"""Write events/<function>.json for every HTTP API route in template.yaml: the HTTP API v2 payload
API Gateway sends after its JWT authorizer, with the claims of a demo user.

    python -m local.sample_events           # write the missing ones
    python -m local.sample_events --force   # rewrite all from SAMPLES
"""

from __future__ import annotations

import json
import sys
from typing import Any

from local import apigw, demo_ids, paths, template

# Per route: who calls and what they send. Routes not listed get a learner's GET.
SAMPLES: dict[str, dict[str, Any]] = {
    "GET /v1/me": {"sub": demo_ids.LEARNER},
    "GET /v1/analytics": {"sub": demo_ids.LEARNER, "query": {"limit": "5"}},
    "GET /v1/analytics/summary": {"sub": demo_ids.LEARNER},
    "PUT /v1/analytics": {
        "sub": demo_ids.LEARNER,
        "body": {"items": [{"analyticsType": "mastery", "data": {"mastery": 0.82, "skills": {"sql": 0.9}}}]},
    },
    "GET /v1/users/{userId}/analytics": {
        "sub": demo_ids.TRAINER, "role": "trainer", "path": {"userId": str(demo_ids.LEARNER)},
    },
    "GET /v1/comparison": {"sub": demo_ids.LEARNER, "query": {"type": "engagement"}},
    "POST /v1/events": {
        "sub": demo_ids.LEARNER,
        "body": {"events": [
            {"eventId": "7f0e4a9c-1b2d-4c3e-8f5a-6b7c8d9e0a1b", "verb": "completed", "objectId": "course-sql-101",
             "objectType": "course", "skills": ["sql"], "result": {"durationSeconds": 1800},
             "occurredAt": "2026-11-26T09:30:00Z"},
            {"eventId": "0c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f", "verb": "passed", "objectId": "quiz-sql-101",
             "objectType": "assessment", "skills": ["sql"], "result": {"score": 0.85, "success": True},
             "occurredAt": "2026-11-26T10:00:00Z"},
        ]},
    },
    "GET /v1/gamification": {"sub": demo_ids.LEARNER},
    "GET /v1/leaderboard": {"sub": demo_ids.LEARNER, "query": {"limit": "10"}},
    "GET /v1/aggregates": {"sub": demo_ids.ORG_ADMIN, "query": {"granularity": "weekly", "scope": "organization"}},
    "GET /v1/learners": {"sub": demo_ids.TRAINER, "role": "trainer", "query": {"atRisk": "true"}},
    "GET /v1/learners/{userId}": {
        "sub": demo_ids.TRAINER, "role": "trainer", "path": {"userId": str(demo_ids.LEARNER)},
    },
    "GET /v1/cohorts": {"sub": demo_ids.ORG_ADMIN},
    "POST /v1/reports": {
        "sub": demo_ids.LEARNER,
        "body": {"format": "pdf", "from": "2026-10-28", "to": "2026-11-26", "types": ["engagement", "mastery"]},
    },
    "GET /v1/reports": {"sub": demo_ids.ORG_ADMIN, "query": {"limit": "20"}},
    "GET /v1/reports/{reportId}": {
        "sub": demo_ids.LEARNER, "path": {"reportId": "3d0c6a52-4e0b-4b8e-9a51-0c2f4f7d9e11"},
    },
    "DELETE /v1/users/{userId}": {
        "sub": demo_ids.ORG_ADMIN, "path": {"userId": str(demo_ids.user_id(demo_ids.ACME, "learner-36"))},
    },
    "PUT /v1/organizations/{orgId}": {
        "claims": apigw.service_claims(demo_ids.DIRECTORY_CLIENT, ["directory"]),
        "path": {"orgId": str(demo_ids.org_id(demo_ids.ACME))},
        "body": {"name": "Acme Corporation", "kpis": ["completion rate"], "valuePropositions": [],
                 "version": 1795694400000},
    },
    "PUT /v1/users/{userId}": {
        "claims": apigw.service_claims(demo_ids.DIRECTORY_CLIENT, ["directory"]),
        "path": {"userId": str(demo_ids.user_id(demo_ids.ACME, "learner-37"))},
        "body": {"organizationId": str(demo_ids.org_id(demo_ids.ACME)), "email": "learner-37@acme.example",
                 "name": "Learner 37", "roles": ["learner"], "timezone": "Europe/Berlin",
                 "version": 1795694400000},
    },
    "GET /v1/users": {"sub": demo_ids.ORG_ADMIN, "query": {"limit": "20"}},
    "PUT /v1/users/{userId}/roles": {
        "sub": demo_ids.ORG_ADMIN, "path": {"userId": str(demo_ids.user_id(demo_ids.ACME, "learner-02"))},
        "body": {"roles": ["learner", "trainer"]},
    },
    "PUT /v1/trainers/{trainerId}/learners/{learnerId}": {
        "sub": demo_ids.ORG_ADMIN,
        "path": {"trainerId": str(demo_ids.TRAINER), "learnerId": str(demo_ids.user_id(demo_ids.ACME, "learner-03"))},
    },
    "DELETE /v1/trainers/{trainerId}/learners/{learnerId}": {
        "sub": demo_ids.ORG_ADMIN,
        "path": {"trainerId": str(demo_ids.TRAINER), "learnerId": str(demo_ids.user_id(demo_ids.ACME, "learner-03"))},
    },
    "PUT /v1/skill-targets/{skill}": {
        "sub": demo_ids.ORG_ADMIN, "path": {"skill": "sql"}, "body": {"targetLevel": 0.8},
    },
}


def build(route: template.Route, sample: dict[str, Any]) -> dict[str, Any]:
    path = route.path
    for key, value in (sample.get("path") or {}).items():
        path = path.replace("{" + key + "}", value)
    headers = {"content-type": "application/json", "authorization": "Bearer <verified by API Gateway>"}
    if sample.get("role"):
        headers["x-active-role"] = sample["role"]
    claims = sample.get("claims") or apigw.user_claims(str(sample["sub"]))
    claims = {**claims, "iat": 1764115200, "exp": 1764118800}  # stable files
    body = sample.get("body")
    event = apigw.http_event(
        route.method, path, claims=claims, route=route, path_parameters=sample.get("path"),
        query=sample.get("query"), headers=headers, body=json.dumps(body) if body is not None else None,
        request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    )
    event["requestContext"]["time"] = "26/Nov/2026:12:00:00 +0000"
    event["requestContext"]["timeEpoch"] = 1795694400000
    return event


def main(force: bool) -> None:
    for route in template.routes():
        sample = SAMPLES.get(route.route_key, {"sub": demo_ids.LEARNER})
        target = paths.ROOT / "events" / f"{route.function.event_name}.json"
        if target.exists() and not force:
            continue
        target.write_text(json.dumps(build(route, sample), indent=2) + "\n")
        print(f"wrote {target.relative_to(paths.ROOT)}")


if __name__ == "__main__":
    main("--force" in sys.argv)
