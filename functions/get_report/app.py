"""GET /v1/reports/{reportId}: a report's metadata and, when it is ready, a fresh download link
(recorded). Another user's report (unless the caller is its organization's admin) is 404."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from ms8.http import handler, make_app, user_tx
from ms8.schemas.reports import Report
from ms8.services.reports import get_report

app = make_app()


@app.get("/v1/reports/<reportId>", summary="A report with a fresh download link", tags=["reports"])
def read_report(report_id: Annotated[UUID, Path(alias="reportId")]) -> Report:
    with user_tx(app) as (conn, caller):
        return get_report(conn, caller, report_id)


lambda_handler = handler(app)
