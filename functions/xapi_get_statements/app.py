"""GET /xapi/statements: one statement (statementId, voidedStatementId) or a query (agent, verb,
activity, registration, related_*, since, until, limit, ascending, format) with `more` paging."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from ms8.http import make_app
from ms8.services import xapi
from ms8.xapi.http import (
    BASIC_AUTH,
    check_version,
    consistent_through,
    decode_more,
    encode_more,
    header,
    last_modified,
    params,
    xapi_handler,
    xapi_tx,
)
from ms8.xapi.statements import accept_languages

app = make_app(validation=False)


@app.get("/xapi/statements", summary="xAPI: read statements (by id, or a filtered, paged query)",
         tags=["xapi"], security=BASIC_AUTH)
def get_statements() -> Response[dict[str, Any]]:
    check_version(app)
    query = params(app)
    languages = accept_languages(header(app, "accept-language"))
    with xapi_tx(app) as (conn, _caller):
        if "statementId" in query or "voidedStatementId" in query:
            statement, stored = xapi.get_one(conn, query, languages)
            return Response(200, "application/json", statement, headers={**consistent_through(),
                                                                          **last_modified(stored)})
        after = None
        if "more" in query:
            query, after = decode_more(query["more"])
        q, fmt = xapi.parse_query(query)
        if after is not None:
            q = q.__class__(q.tokens, q.since, q.until, q.ascending, after, q.limit)
        found, next_after = xapi.query(conn, q, fmt, languages)
    more = encode_more(query, next_after) if next_after is not None else ""
    return Response(200, "application/json", {"statements": found, "more": more}, headers=consistent_through())


lambda_handler = xapi_handler(app)
