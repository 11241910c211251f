"""POST /v1/reports: generate a report (PDF, CSV, Excel or JSON) into S3, synchronously, and
answer its metadata with a fresh download link (201), or 503 when storage refused the file."""

from ms8 import db
from ms8.http import handler, make_app, user_tx
from ms8.schemas.reports import Report, ReportRequest
from ms8.services.reports import ReportCreation

app = make_app()


@app.post("/v1/reports", summary="Generate a report", tags=["reports"], status_code=201)
def create_report(request: ReportRequest) -> Report:
    with ReportCreation(request) as creation:
        # What the report shows is read on the replica when there is one (it tolerates lag);
        # the report's row is written on the writer.
        with user_tx(app, database=db.reader()) as (conn, caller):
            creation.gather(conn, caller)
        with user_tx(app) as (conn, caller):
            creation.run(conn, caller)
    return creation.result()


lambda_handler = handler(app)
