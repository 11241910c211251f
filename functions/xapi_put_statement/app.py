"""PUT /xapi/statements?statementId=: one statement under the id the client chose (204)."""

from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response

from ms8.errors import BadRequest
from ms8.http import make_app
from ms8.services import xapi
from ms8.xapi.http import check_version, consistent_through, params, request_body, xapi_handler, xapi_tx
from ms8.xapi.validate import UUID_RE

app = make_app(validation=False)


@app.put("/xapi/statements", summary="xAPI: store one statement with its id (statementId)",
         tags=["xapi"])
def put_statement() -> Response[str]:
    check_version(app)
    query = params(app)
    with xapi_tx(app) as (conn, caller):
        statement_id = query.get("statementId")
        if set(query) != {"statementId"} or not statement_id or not UUID_RE.match(statement_id):
            raise BadRequest("PUT takes exactly one parameter, statementId (a UUID)", code="INVALID_PARAMETER")
        body, parts = request_body(app)
        if not isinstance(body, dict):
            raise BadRequest("PUT takes one statement (a JSON object)", code="INVALID_STATEMENT")
        if "id" in body and str(body["id"]).lower() != statement_id.lower():
            raise BadRequest("the statement's id differs from statementId", code="ID_MISMATCH")
        body = {**body, "id": statement_id} if "id" not in body else body
        xapi.store(conn, caller, xapi.validate_batch(body, parts), datetime.now(UTC), parts)
    return Response(204, None, "", headers=consistent_through())


lambda_handler = xapi_handler(app)
