"""PUT /v1/organizations/{orgId}: the platform (directory scope) creates or updates an organization.
Idempotent and versioned: a replay or an older version changes nothing (see `outcome`)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, service_tx
from ms8.schemas.directory import Applied, OrganizationUpsert, OrganizationUpserted
from ms8.services.directory import apply_one

app = make_app()


@app.put("/v1/organizations/<orgId>", summary="Create or update an organization (platform directory)",
         tags=["directory"])
def put_organization(org_id: Annotated[UUID, Path(alias="orgId")], body: OrganizationUpsert) -> Applied:
    with service_tx(app, "directory") as (conn, _):
        return apply_one(conn, OrganizationUpserted(id=org_id, **dict(body)))


lambda_handler = handler(app)
