"""PUT /v1/users/{userId}/roles: an org admin sets a user's roles. The organization's last org
admin keeps that role (409 LAST_ORG_ADMIN); losing `trainer` or `learner` ends those assignments."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, user_tx
from ms8.schemas.directory import RolesChanged, RolesUpdate
from ms8.services import directory

app = make_app()


@app.put("/v1/users/<userId>/roles", summary="Change a user's roles (org admin)", tags=["directory"])
def put_user_roles(user_id: Annotated[UUID, Path(alias="userId")], body: RolesUpdate) -> RolesChanged:
    with user_tx(app, roles=("org_admin",)) as (conn, caller):
        return directory.change_roles(conn, caller, user_id, body.roles)


lambda_handler = handler(app)
