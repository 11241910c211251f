"""GET /v1/comparison: the caller's values beside their peers', only for groups of 10 or more."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8 import db
from ms8.http import handler, make_app, user_read
from ms8.repositories import comparison
from ms8.schemas.base import AnalyticsType
from ms8.schemas.comparison import Comparison
from ms8.services.comparison import build

app = make_app()


@app.get("/v1/comparison", summary="Own values beside peer averages (k >= 10)", tags=["analytics"])
def get_comparison(analytics_type: Annotated[AnalyticsType | None, Query(alias="type")] = None) -> Comparison:
    # Peer groups are refreshed by a job: a replica's lag is well within their age.
    caller, rows = user_read(app, comparison.READ, (analytics_type,), database=db.reader())
    return build(caller, analytics_type, rows)


lambda_handler = handler(app)
