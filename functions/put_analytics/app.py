"""PUT /v1/analytics: batch upsert (1..500 items), atomic. Users write their own; a platform
service with the ingest scope writes for users of its organization.

The answer is the counts (written, inserted, updated); the written rows (id, version, updated_at)
come back only when asked for with `?return=rows` or `Prefer: return=representation`."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Header, Query

from ms8.http import handler, make_app, principal_tx, service_principal
from ms8.schemas.analytics import AnalyticsBatch, AnalyticsWriteResult
from ms8.services.snapshots import write_batch, write_batch_as_service

# The body is validated once, straight from its JSON text (up to 500 items).
app = make_app(body=AnalyticsBatch)


@app.put("/v1/analytics", summary="Upsert analytics (batch, atomic)", tags=["analytics"])
def put_analytics(
    batch: AnalyticsBatch,
    answer: Annotated[Literal["summary", "rows"], Query(alias="return", description=(
        "summary (default): the counts only; rows: the written rows too"))] = "summary",
    prefer: Annotated[str | None, Header(alias="Prefer", description=(
        "return=representation: the written rows too (as ?return=rows)"))] = None,
) -> AnalyticsWriteResult:
    rows = answer == "rows" or "return=representation" in (prefer or "").replace(" ", "").lower()
    service = service_principal(app, "ingest")
    if service is not None and not rows:  # a platform's batch: one statement (context, upsert, commit)
        return write_batch_as_service(service[0], "ingest", service[1], batch)
    with principal_tx(app, "ingest") as (conn, caller):
        return write_batch(conn, caller, batch, rows=rows)


lambda_handler = handler(app, max_body_bytes=1024 * 1024)
