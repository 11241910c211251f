"""PUT /v1/analytics: batch upsert (1..500 items), atomic. Users write their own; a platform
service with the ingest scope writes for users of its organization."""

from ms8.http import handler, make_app, principal_tx
from ms8.models.analytics import AnalyticsBatch, AnalyticsWriteResult
from ms8.services.snapshots import write_batch

app = make_app()


@app.put("/v1/analytics", summary="Upsert analytics (batch, atomic)", tags=["analytics"])
def put_analytics(batch: AnalyticsBatch) -> AnalyticsWriteResult:
    with principal_tx(app, "ingest") as (conn, caller):
        written = write_batch(conn, caller, batch)
        return AnalyticsWriteResult(written=len(written), items=written)


lambda_handler = handler(app, max_body_bytes=1024 * 1024)
