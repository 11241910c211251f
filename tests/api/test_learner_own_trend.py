"""GET /v1/learners/{userId} for a learner: their own drill-down (the weekly trend on their
dashboard), and nobody else's, not even a learner of the same organization."""

from __future__ import annotations

from tests.support.api import call
from tests.support.factories import Factory


def test_a_learner_reads_their_own_weeks_and_no_one_elses(factory: Factory) -> None:
    org = factory.org("Own trend", alice=["learner"], bert=["learner"], tina=["trainer"])
    factory.assign(org.id, org.users["tina"], org.users["alice"])
    own = call("GET", f"/v1/learners/{org.users['alice']}", sub=org.users["alice"])
    assert own.status == 200, own.body
    assert own.body["learner"]["userId"] == str(org.users["alice"])
    assert len(own.body["weeks"]) == 12
    other = call("GET", f"/v1/learners/{org.users['bert']}", sub=org.users["alice"])
    assert (other.status, other.error_code) == (404, "NOT_FOUND")
    # The trainer still reads an assigned learner (and not an unassigned one).
    assert call("GET", f"/v1/learners/{org.users['alice']}", sub=org.users["tina"]).status == 200
    assert call("GET", f"/v1/learners/{org.users['bert']}", sub=org.users["tina"]).status == 404
