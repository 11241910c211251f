"""GET /v1/comparison: the caller's values beside their peers', only for groups of 10 or more."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8.http import handler, make_app, user_tx
from ms8.models.base import AnalyticsType
from ms8.models.comparison import Comparison
from ms8.services.comparison import compare

app = make_app()


@app.get("/v1/comparison", summary="Own values beside peer averages (k >= 10)", tags=["analytics"])
def get_comparison(analytics_type: Annotated[AnalyticsType | None, Query(alias="type")] = None) -> Comparison:
    with user_tx(app) as (conn, caller):
        return compare(conn, caller, analytics_type)


lambda_handler = handler(app)
