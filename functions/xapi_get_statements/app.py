"""GET /xapi/statements: one statement (statementId, voidedStatementId) or a query (agent, verb,
activity, registration, related_*, since, until, limit, ascending, format) with `more` paging."""

from dataclasses import replace
from typing import Any

from aws_lambda_powertools.event_handler import Response

from ms8.http import make_app
from ms8.services import xapi
from ms8.xapi import multipart
from ms8.xapi.http import (
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
         tags=["xapi"])
def get_statements() -> Response[dict[str, Any]]:
    check_version(app)
    query = params(app)
    languages = accept_languages(header(app, "accept-language"))
    with_attachments = query.get("attachments") == "true"
    with xapi_tx(app) as (conn, _caller):
        if "statementId" in query or "voidedStatementId" in query:
            statement, stored = xapi.get_one(conn, query, languages)
            headers = {**consistent_through(), **last_modified(stored)}
            parts = xapi.attachment_parts(conn, [statement]) if with_attachments else None
            return _answer(statement, [statement], parts, headers)
        after = None
        if "more" in query:
            query, after = decode_more(query["more"])
        q, fmt = xapi.parse_query(query)
        if after is not None:
            q = replace(q, after_seq=after)
        found, next_after = xapi.query(conn, q, fmt, languages)
        parts = xapi.attachment_parts(conn, found) if with_attachments else None
    more = encode_more(query, next_after) if next_after is not None else ""
    return _answer({"statements": found, "more": more}, found, parts, consistent_through())


def _answer(document: Any, found: list[dict[str, Any]], parts: Any, headers: dict[str, str]) -> Response[Any]:
    """JSON, or with attachments=true multipart/mixed: the document, then the attachments' contents."""
    if parts is None:
        return Response(200, "application/json", document, headers=headers)
    content_type, body = multipart.response(document, parts)
    return Response(200, content_type, body, headers=headers)


lambda_handler = xapi_handler(app)
