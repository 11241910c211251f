"""GET /v1/leaderboard and GET /v1/gamification on the real database: the organization's learners
only, display names and points only, own place, and nothing of other organizations."""

from __future__ import annotations

import json

import pytest

from local import apigw
from tests.support.api import call
from tests.support.factories import Factory, Org

INSERT = "INSERT INTO gamification (user_id, organization_id, role, points, level) VALUES (%s, %s, 'learner', %s, %s)"


@pytest.fixture
def board(factory: Factory) -> Org:
    org = factory.org("Acme", alice=["learner"], bert=["learner"], cleo=["learner"], dana=["learner"],
                      erin=["learner"], fred=["learner", "trainer"], ada=["org_admin"])
    points = {"alice": 50, "bert": 40, "cleo": 40, "dana": 30, "fred": 10, "ada": 100}
    for name, value in points.items():  # erin has none yet; ada is not a learner
        factory.sql(INSERT, (org.users[name], org.id, value, 1))
    other = factory.org("Globex", zed=["learner"])
    factory.sql(INSERT, (other.users["zed"], other.id, 999, 7))
    return org


def entries(body: dict[str, object]) -> list[tuple[object, ...]]:
    return [(e["rank"], e["displayName"], e["points"], e["isYou"]) for e in body["items"]]  # type: ignore[attr-defined, index]


def test_top_n_with_shared_ranks_and_own_place(board: Org) -> None:
    r = call("GET", "/v1/leaderboard", sub=board.users["fred"], role="learner", query={"limit": "3"})
    assert r.status == 200, r.body
    assert entries(r.body) == [(1, "alice", 50, False), (2, "bert", 40, False), (2, "cleo", 40, False)]
    assert r.body["you"] == {"rank": 5, "displayName": "fred", "points": 10, "level": 1, "isYou": True}
    assert r.body["participants"] == 5  # erin (no points) and ada (not a learner) are not on it


def test_own_place_inside_the_top(board: Org) -> None:
    r = call("GET", "/v1/leaderboard", sub=board.users["alice"], query={"limit": "2"})
    assert entries(r.body) == [(1, "alice", 50, True), (2, "bert", 40, False)]
    assert r.body["you"]["rank"] == 1


def test_without_points_or_as_admin_no_own_place(board: Org) -> None:
    for user, role in ((board.users["erin"], None), (board.users["ada"], None), (board.users["fred"], "trainer")):
        r = call("GET", "/v1/leaderboard", sub=user, role=role)
        assert r.status == 200
        assert len(r.body["items"]) == 5 and r.body["participants"] == 5
        if user != board.users["fred"]:
            assert r.body["you"] is None


def test_no_ids_emails_or_other_organizations(board: Org) -> None:
    r = call("GET", "/v1/leaderboard", sub=board.users["erin"], query={"limit": "100"})
    text = json.dumps(r.body)
    assert "zed" not in text and "999" not in text
    for user_id in board.users.values():
        assert str(user_id) not in text
    assert "@" not in text
    assert set(r.body["items"][0]) == {"rank", "displayName", "points", "level", "isYou"}


def test_other_organization_sees_only_its_own(factory: Factory, board: Org) -> None:
    # The newest zed: other tests of the session may hold 999 points too.
    zed = factory.sql("SELECT g.user_id FROM gamification g JOIN users u ON u.id = g.user_id "
                      "WHERE g.points = 999 AND u.name = 'zed' ORDER BY u.created_at DESC LIMIT 1")[0][0]
    r = call("GET", "/v1/leaderboard", sub=zed)
    assert entries(r.body) == [(1, "zed", 999, True)]


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
def test_limit_is_validated(board: Org, limit: str) -> None:
    r = call("GET", "/v1/leaderboard", sub=board.users["alice"], query={"limit": limit})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")


def test_gamification_is_own_and_not_for_services(board: Org) -> None:
    r = call("GET", "/v1/gamification", sub=board.users["alice"])
    assert (r.status, r.body["points"], r.body["level"]) == (200, 50, 1)
    r = call("GET", "/v1/gamification", claims=apigw.service_claims("any", ["ingest"]))
    assert (r.status, r.error_code) == (403, "USERS_ONLY")
    r = call("GET", "/v1/leaderboard", claims=apigw.service_claims("any", ["ingest"]))
    assert (r.status, r.error_code) == (403, "USERS_ONLY")
