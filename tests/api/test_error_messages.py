"""A client meets the first problem in the error's message, the rest in its details."""

from __future__ import annotations

from tests.support.api import call
from tests.support.factories import Factory


def test_a_bad_batch_names_its_first_problem(factory: Factory) -> None:
    org = factory.org("Messages Org", learner=["learner"])
    reply = call("PUT", "/v1/analytics", sub=org.users["learner"],
                 body={"items": [{"analyticsType": "mastery"}, {"analyticsType": "nonsense", "data": {}}]})
    assert reply.status == 422 and reply.error_code == "VALIDATION_ERROR"
    message = reply.body["error"]["message"]
    assert message.startswith("items.0.data: Field required")
    assert message.endswith(("more problem)", "more problems)"))
    assert len(reply.body["error"]["details"]) >= 2


def test_a_bad_query_parameter_is_named(factory: Factory) -> None:
    org = factory.org("Messages Org 2", learner=["learner"])
    reply = call("GET", "/v1/analytics", sub=org.users["learner"], query={"limit": "0"})
    assert reply.status == 422
    assert reply.body["error"]["message"].startswith("limit: ")
