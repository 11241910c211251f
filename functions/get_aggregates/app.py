"""GET /v1/aggregates: the organization's daily, weekly or monthly history (trainer, org admin)."""

from datetime import date, timedelta
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8 import db
from ms8.errors import Unprocessable
from ms8.http import handler, make_app, user_tx
from ms8.models.aggregates import AggregateList, Granularity
from ms8.models.base import AnalyticsType, Role
from ms8.repositories import aggregates

app = make_app()
MAX_SPAN_DAYS = 3 * 366


@app.get("/v1/aggregates", summary="Organization history (trainer, org admin)", tags=["analytics"])
def get_aggregates(
    granularity: Annotated[Granularity, Query()] = "daily",
    analytics_type: Annotated[AnalyticsType | None, Query(alias="type")] = None,
    role: Annotated[Role | None, Query()] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> AggregateList:
    end = end or date.today()
    start = start or end - timedelta(days=30)
    if start > end or (end - start).days > MAX_SPAN_DAYS:
        raise Unprocessable(f"'from' must be on or before 'to', at most {MAX_SPAN_DAYS} days apart")
    # Rollups are written by a daily job: a replica's lag is well within their age.
    with user_tx(app, roles=("trainer", "org_admin"), database=db.reader()) as (conn, caller):
        return AggregateList(items=aggregates.history(conn, caller.organization_id,  # type: ignore[arg-type]
                                                      granularity, analytics_type, role, start, end, limit))


lambda_handler = handler(app)
