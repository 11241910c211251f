"""GET /v1/analytics/summary: how many snapshots the caller has for the active role, and the newest."""

from ms8.http import handler, make_app, user_read
from ms8.repositories import analytics
from ms8.schemas.analytics import AnalyticsSummary

app = make_app()


@app.get("/v1/analytics/summary", summary="Own analytics: count and latest", tags=["analytics"])
def analytics_summary() -> AnalyticsSummary:
    _, rows = user_read(app, analytics.READ_SUMMARY)
    count, latest = analytics.summary_of(rows)
    return AnalyticsSummary(count=count, latest=latest)


lambda_handler = handler(app)
