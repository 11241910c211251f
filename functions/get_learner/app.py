"""GET /v1/learners/{userId}: one learner's row, last 12 weeks and skills (trainer: an assigned
learner; org admin: a learner of the organization; learner: their own, for the trend on their
dashboard). Anyone else's id answers 404."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8 import db
from ms8.errors import NotFound
from ms8.http import handler, make_app, user_tx
from ms8.schemas.learners import LearnerDetail
from ms8.services import learners

app = make_app()


@app.get("/v1/learners/<userId>", summary="One learner's drill-down (trainer, org admin; a learner: their own)",
         tags=["analytics"])
def get_learner(user_id: Annotated[UUID, Path(alias="userId")]) -> LearnerDetail:
    # Cohort views tolerate a replica's lag (seconds against days of activity).
    with user_tx(app, roles=("learner", "trainer", "org_admin"), database=db.reader()) as (conn, caller):
        assert caller.organization_id is not None
        if caller.active_role == "learner" and user_id != caller.user_id:
            raise NotFound("no such learner")
        cohort = caller.user_id if caller.active_role == "trainer" else None
        detail = learners.learner_detail(conn, caller.organization_id, user_id, datetime.now(UTC), trainer_id=cohort)
    if detail is None:
        raise NotFound("no such learner")
    return detail


lambda_handler = handler(app)
