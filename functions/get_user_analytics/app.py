"""GET /v1/users/{userId}/analytics: a learner's analytics for a trainer (assigned learners only)
or an org admin (the organization). Users RLS hides are 404, never 403: existence is not revealed."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from ms8.errors import NotFound
from ms8.http import handler, make_app, user_read
from ms8.repositories import analytics
from ms8.schemas.analytics import AnalyticsList
from ms8.schemas.base import AnalyticsType

app = make_app()


@app.get("/v1/users/<userId>/analytics", summary="A user's analytics (trainer, org admin)", tags=["analytics"])
def get_user_analytics(
    user_id: Annotated[UUID, Path(alias="userId")],
    analytics_type: Annotated[AnalyticsType | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> AnalyticsList:
    _, rows = user_read(app, analytics.READ_USER, (user_id, analytics_type, limit), roles=("trainer", "org_admin"))
    found = analytics.user_items(rows)
    if found is None:
        raise NotFound("no such user")
    return AnalyticsList(items=found)


lambda_handler = handler(app)
