"""GET /v1/reports: own reports (an org admin: the organization's), newest first, paged."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8.http import handler, make_app, user_tx
from ms8.schemas.reports import ReportPage
from ms8.services.reports import list_reports

app = make_app()


@app.get("/v1/reports", summary="List reports", tags=["reports"])
def get_reports(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ReportPage:
    with user_tx(app) as (conn, caller):
        return list_reports(conn, caller, limit, cursor)


lambda_handler = handler(app)
