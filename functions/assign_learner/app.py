"""PUT /v1/trainers/{trainerId}/learners/{learnerId}: an org admin assigns a learner to a trainer
(idempotent). The trainer must hold `trainer`, the learner `learner` (422 otherwise)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, user_tx
from ms8.schemas.directory import Assignment
from ms8.services import directory

app = make_app()


@app.put("/v1/trainers/<trainerId>/learners/<learnerId>", summary="Assign a learner to a trainer (org admin)",
         tags=["directory"])
def assign_learner(
    trainer_id: Annotated[UUID, Path(alias="trainerId")], learner_id: Annotated[UUID, Path(alias="learnerId")]
) -> Assignment:
    with user_tx(app, roles=("org_admin",)) as (conn, caller):
        return directory.assign_learner(conn, caller, trainer_id, learner_id)


lambda_handler = handler(app)
