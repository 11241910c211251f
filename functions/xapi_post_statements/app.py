"""POST /xapi/statements: one statement or an array (application/json, or multipart/mixed with
attachments), stored all or none, answered with their ids in order. Statements map into learning
events and the learners' days in the same transaction; their analytics and points follow with the
refresh job (RefreshPendingFunction, every minute)."""

from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response

from ms8.collector import for_bulk_batches
from ms8.http import make_app
from ms8.services import xapi
from ms8.xapi.http import check_version, consistent_through, request_body, xapi_handler, xapi_tx

for_bulk_batches()  # ~100,000 objects per batch, alive to the answer (ms8.collector)
app = make_app(validation=False)


@app.post("/xapi/statements", summary="xAPI: store statements (Basic auth, X-Experience-API-Version)",
          tags=["xapi"])
def post_statements() -> Response[list[str]]:
    check_version(app)
    with xapi_tx(app) as (conn, caller):
        body, parts = request_body(app)
        items = xapi.validate_batch(body, parts)
        ids = xapi.store(conn, caller, items, datetime.now(UTC), parts)
    return Response(200, "application/json", ids, headers=consistent_through())


lambda_handler = xapi_handler(app)
