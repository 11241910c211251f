"""GET /v1/learners: a trainer's learners, or an org admin's (the organization's, or one cohort's
with trainerId), each with headline metrics, trend, last activity and at-risk reasons."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8 import db
from ms8.errors import NotFound
from ms8.http import handler, make_app, user_tx
from ms8.repositories import learners as repo
from ms8.schemas.learners import LearnerList
from ms8.services import learners

app = make_app()


@app.get("/v1/learners", summary="Learners with metrics and at-risk reasons (trainer, org admin)",
         tags=["analytics"])
def list_learners(
    trainer_id: Annotated[UUID | None, Query(alias="trainerId", description="One cohort (org admin)")] = None,
    at_risk: Annotated[bool, Query(alias="atRisk", description="Only learners at risk")] = False,
) -> LearnerList:
    now = datetime.now(UTC)
    # Cohort views tolerate a replica's lag (seconds against days of activity).
    with user_tx(app, roles=("trainer", "org_admin"), database=db.reader()) as (conn, caller):
        org = caller.organization_id
        assert org is not None
        if caller.active_role == "trainer":
            if trainer_id is not None and trainer_id != caller.user_id:
                raise NotFound("no such cohort")
            trainer_id = caller.user_id
        elif trainer_id is not None and not repo.is_trainer(conn, org, trainer_id):
            raise NotFound("no such trainer")
        items = learners.learner_rows(conn, org, now, trainer_id=trainer_id, at_risk_only=at_risk)
    return LearnerList(items=items, trainer_id=trainer_id, at_risk=sum(1 for r in items if r.at_risk), as_of=now)


lambda_handler = handler(app)
