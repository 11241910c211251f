"""DELETE /v1/users/{userId}: an org admin erases a user of the organization (rows and files)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, user_tx
from ms8.schemas.users import Erased
from ms8.services.erasure import erase_user

app = make_app()


@app.delete("/v1/users/<userId>", summary="Erase a user (org admin)", tags=["directory"])
def delete_user(user_id: Annotated[UUID, Path(alias="userId")]) -> Erased:
    with user_tx(app, roles=("org_admin",)) as (conn, _):
        return Erased(user_id=user_id, report_files_deleted=erase_user(conn, user_id))


lambda_handler = handler(app)
