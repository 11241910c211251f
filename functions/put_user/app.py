"""PUT /v1/users/{userId}: the platform (directory scope) creates or updates a user (email, name,
roles, organization). Versioned like the bus events; a user never changes organization (409)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, service_tx
from ms8.schemas.directory import Applied, UserUpsert, UserUpserted
from ms8.services.directory import apply_one

app = make_app()


@app.put("/v1/users/<userId>", summary="Create or update a user (platform directory)", tags=["directory"])
def put_user(user_id: Annotated[UUID, Path(alias="userId")], body: UserUpsert) -> Applied:
    with service_tx(app, "directory") as (conn, _):
        return apply_one(conn, UserUpserted(id=user_id, **dict(body)))


lambda_handler = handler(app)
