"""DELETE /v1/trainers/{trainerId}/learners/{learnerId}: an org admin ends an assignment
(idempotent: `removed` is false when there was none)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, user_tx
from ms8.schemas.directory import Unassignment
from ms8.services import directory

app = make_app()


@app.delete("/v1/trainers/<trainerId>/learners/<learnerId>", summary="Unassign a learner (org admin)",
            tags=["directory"])
def unassign_learner(
    trainer_id: Annotated[UUID, Path(alias="trainerId")], learner_id: Annotated[UUID, Path(alias="learnerId")]
) -> Unassignment:
    with user_tx(app, roles=("org_admin",)) as (conn, caller):
        return directory.unassign_learner(conn, caller, trainer_id, learner_id)


lambda_handler = handler(app)
