"""GET /v1/analytics: the caller's own analytics for the active role, newest first."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8.http import handler, make_app, user_read
from ms8.repositories import analytics
from ms8.schemas.analytics import AnalyticsList
from ms8.schemas.base import AnalyticsType

app = make_app()


@app.get("/v1/analytics", summary="Own analytics", tags=["analytics"])
def list_analytics(
    analytics_type: Annotated[AnalyticsType | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> AnalyticsList:
    _, rows = user_read(app, analytics.READ_RECENT, (analytics_type, limit))
    return AnalyticsList(items=analytics.items(rows))


lambda_handler = handler(app)
