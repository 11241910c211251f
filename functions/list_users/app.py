"""GET /v1/users: an org admin pages through the organization's users (opaque keyset cursor)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8.http import handler, make_app, user_tx
from ms8.schemas.directory import UserPage
from ms8.services import directory

app = make_app()


@app.get("/v1/users", summary="The organization's users, paged (org admin)", tags=["directory"])
def list_users(
    cursor: Annotated[str | None, Query(max_length=64, description="`nextCursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> UserPage:
    with user_tx(app, roles=("org_admin",)) as (conn, caller):
        return directory.list_users(conn, caller, cursor, limit)


lambda_handler = handler(app)
