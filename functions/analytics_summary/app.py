"""GET /v1/analytics/summary: how many snapshots the caller has for the active role, and the newest."""

from ms8.http import handler, make_app, user_tx
from ms8.models.analytics import AnalyticsSummary
from ms8.repositories import analytics

app = make_app()


@app.get("/v1/analytics/summary", summary="Own analytics: count and latest", tags=["analytics"])
def analytics_summary() -> AnalyticsSummary:
    with user_tx(app) as (conn, caller):
        count, latest = analytics.summary(conn, caller.user_id, caller.active_role)  # type: ignore[arg-type]
        return AnalyticsSummary(count=count, latest=latest)


lambda_handler = handler(app)
