"""GET /v1/cohorts: the organization's trainers with their cohort's size, learners at risk and
share active in the last 7 days (org admin)."""

from datetime import UTC, datetime

from ms8 import db
from ms8.http import handler, make_app, user_tx
from ms8.schemas.learners import CohortList
from ms8.services import learners

app = make_app()


@app.get("/v1/cohorts", summary="Trainer cohorts (org admin)", tags=["analytics"])
def list_cohorts() -> CohortList:
    # Cohort views tolerate a replica's lag (seconds against days of activity).
    with user_tx(app, roles=("org_admin",), database=db.reader()) as (conn, caller):
        return learners.cohort_summaries(conn, caller.organization_id, datetime.now(UTC))


lambda_handler = handler(app)
