"""The local tooling apart from the gateway: tokens, invoke, the functions' environment, the demo
data."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime

import psycopg
import pytest

from local import apigw, demo, demo_ids, invoke, localdb, stack, state, template, tokens
from ms8.services import learners
from tests.support.factories import Factory


def test_tokens_cli_mints_user_and_service_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    verifier = tokens.Verifier()
    assert tokens.main(["--user", "learner-01"]) == 0
    assert verifier.verify(capsys.readouterr().out.strip())["sub"] == str(demo_ids.LEARNER)
    assert tokens.main(["--user", "globex:admin"]) == 0
    assert verifier.verify(capsys.readouterr().out.strip())["sub"] == str(demo_ids.user_id("globex", "admin"))
    assert tokens.main(["--client", demo_ids.INGEST_CLIENT, "--scope", "ingest"]) == 0
    claims = verifier.verify(capsys.readouterr().out.strip())
    assert (claims["client_id"], claims["scope"]) == (demo_ids.INGEST_CLIENT, "ms8/ingest")
    assert tokens.main(["--user", "trainer-01", "--role", "trainer", "--curl", "/v1/me"]) == 0
    assert capsys.readouterr().out.startswith("curl -s -H 'X-Active-Role: trainer' -H 'Authorization: Bearer ey")


def test_tokens_curl_names_the_port_that_runs(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "running_state", lambda: {"url": "http://127.0.0.1:3050", "pid": 1})
    assert tokens.main(["--user", "learner-01", "--curl", "/v1/me"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(" http://127.0.0.1:3050/v1/me")
    monkeypatch.setattr(state, "running_state", lambda: None)
    monkeypatch.setenv("MS8_PORT", "3051")
    monkeypatch.delenv("MS8_URL", raising=False)
    assert tokens.main(["--user", "learner-01", "--curl", "/v1/me"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(" http://127.0.0.1:3051/v1/me")


def test_invoke_runs_a_template_function_with_an_events_file(owner_url: str) -> None:
    org = demo_ids.org_id(f"invoke-{uuid.uuid4()}")
    with psycopg.connect(owner_url, autocommit=True) as conn:
        factory = Factory(conn)
        factory.sql("INSERT INTO organizations (id, name) VALUES (%s, 'Invoke')", (org,))
        factory.sql("INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, 'L', '{learner}') "
                    "ON CONFLICT (id) DO NOTHING", (demo_ids.LEARNER, org, f"{uuid.uuid4()}@invoke.test"))
    assert invoke.find_function("get_me") == invoke.find_function("GetMeFunction")
    assert invoke.find_function("functions/get_me/").logical_id == "GetMeFunction"
    with pytest.raises(SystemExit):
        invoke.find_function("NoSuchFunction")
    try:
        response = invoke.invoke(invoke.find_function("GetMeFunction"), invoke.load_event("events/get_me.json"))
        assert response["statusCode"] == 200
        assert apigw.json_body(response)["userId"] == str(demo_ids.LEARNER)
    finally:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            Factory(conn).sql("DELETE FROM organizations WHERE id = %s", (org,))


def test_api_functions_get_the_runtime_role_only_and_jobs_the_owner_too() -> None:
    api = stack.function_env("http://127.0.0.1:4566")
    assert api["DATABASE_URL"] == localdb.runtime_url(stack.DB)
    assert "OWNER_DATABASE_URL" not in api
    assert api["S3_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert api["REPORTS_BUCKET"] and api["POWERTOOLS_SERVICE_NAME"] == "ms8-learning-analytics"
    owned = [f.logical_id for f in template.functions() if template.function_environment([f.logical_id], "b")[1]]
    routed = {r.function.logical_id for r in template.routes()}
    assert not set(owned) & routed  # no API function gets the owner secret
    for logical_id in owned:
        assert stack.function_env(None, [logical_id])["OWNER_DATABASE_URL"] == localdb.owner_url(stack.DB)


# --- demo data ------------------------------------------------------------------------------


def test_demo_is_reproducible_and_shaped_as_promised() -> None:
    day = date(2026, 11, 26)
    first, again = demo.generate(day), demo.generate(day)
    assert [(e.event_id, e.verb, e.score, e.occurred_at) for e in first.events] == [
        (e.event_id, e.verb, e.score, e.occurred_at) for e in again.events]
    assert [e.score for e in demo.generate(day, seed=1).events] != [e.score for e in first.events]
    acme = [u for u in first.users if u.org == demo_ids.ACME]
    assert sum("learner" in u.roles for u in acme) == 36
    assert {u.handle for u in acme if "trainer" in u.roles} == {"trainer-01", "trainer-02", "trainer-03"}
    per_trainer: dict[str, int] = {}
    for trainer, _ in first.assignments:
        per_trainer[trainer.handle] = per_trainer.get(trainer.handle, 0) + 1
    assert per_trainer == {"trainer-01": 15, "trainer-02": 12, "trainer-03": 9}
    personas = [first.personas[u.id] for u in first.learners() if u.org == demo_ids.ACME]
    assert {p: personas.count(p) for p in demo.PERSONAS} == {
        "improving": 9, "steady": 12, "declining": 5, "dropped_out": 5, "struggling": 5}
    assert sum("learner" in u.roles for u in first.users if u.org == demo_ids.GLOBEX) == 5
    days = {e.occurred_at.date() for e in first.events}
    assert min(days) >= date(2026, 8, 28) and max(days) < day
    assert len(days) > 80
    assert {e.verb for e in first.events} == {"session", "progressed", "completed", "attempted", "passed", "failed"}
    assert {e.user.id for e in first.events} == {u.id for u in first.learners()}



def test_demo_loads_into_a_fresh_database() -> None:
    name = f"ms8_test_{os.getpid()}_demo"
    localdb.drop_database(name)
    localdb.create_database(name)
    try:
        with psycopg.connect(localdb.owner_url(name), autocommit=True) as conn:
            assert not demo.is_loaded(conn)
            counts = demo.load(conn, now=datetime.now(UTC))
            assert demo.is_loaded(conn)
            assert counts["users"] == 46 and counts["learning_events"] > 4000
            assert counts["comparison_groups"] == 4  # ACME learners: all four types; GLOBEX too few
            assert counts["population_rollups"] > 0
            with conn.transaction():
                conn.execute("SELECT app.begin_maintenance()")
                per_type: dict[str, int] = dict(conn.execute(
                    "SELECT analytics_type, count(*) FROM analytics WHERE organization_id = %s GROUP BY 1",
                    (demo_ids.org_id(demo_ids.ACME),)).fetchall())
                headline = conn.execute(
                    "SELECT min((data->>'mastery')::float), max((data->>'mastery')::float) FROM analytics "
                    "WHERE analytics_type = 'mastery'").fetchone()
                gamified = conn.execute("SELECT count(*) FROM gamification").fetchone()
                points = [p for (p,) in conn.execute(
                    "SELECT points FROM gamification WHERE organization_id = %s",
                    (demo_ids.org_id(demo_ids.ACME),)).fetchall()]
                rows = learners.learner_rows(conn, demo_ids.org_id(demo_ids.ACME), datetime.now(UTC))
                cohorts = dict(conn.execute(
                    "SELECT trainer_id, learners FROM population_rollups WHERE granularity = 'weekly' "
                    "AND trainer_id IS NOT NULL").fetchall())
            assert per_type == dict.fromkeys(("learning_velocity", "engagement", "mastery", "skill_gap"), 36)
            assert headline is not None and 0.3 < headline[0] < headline[1] <= 1.0
            assert gamified == (41,)
            # The 90 days are platform history, capped per hour they occurred in: a spread board,
            # not 35 learners clamped at one hour's 200 points.
            assert len(points) == 36 and len(set(points)) >= 25 and max(points) > 2 * 200, sorted(points)
            # Several learners at risk for each reason; trends both ways; cohorts of 15, 12 and 9.
            reasons = [r.code for row in rows for r in row.risk_reasons]
            assert {c: reasons.count(c) >= 3 for c in ("inactive", "velocity_drop", "below_target")} == dict.fromkeys(
                ("inactive", "velocity_drop", "below_target"), True), reasons
            assert 8 <= sum(row.at_risk for row in rows) <= 24
            assert min(r.trend.velocity for r in rows) < 0 < max(r.trend.velocity for r in rows)
            assert sorted(set(cohorts.values())) == [9, 12, 15]
    finally:
        localdb.drop_database(name)


def test_localdb_urls_prints_what_psql_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert localdb.main(["localdb", "urls"]) == 0
    out = capsys.readouterr().out
    assert localdb.runtime_url(stack.DB) in out and localdb.RUNTIME_PASSWORD in out
    assert localdb.owner_url(stack.DB) in out
