"""GET /v1/aggregates: population rollups of the organization or of a trainer's cohort (trainer:
their own cohort by default; org admin: the organization by default, any cohort by trainerId)."""

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8 import db
from ms8.errors import NotFound, Unprocessable
from ms8.http import handler, make_app, user_tx
from ms8.repositories import learners
from ms8.schemas.aggregates import Granularity, RollupList, RollupScope
from ms8.services import population

app = make_app()
MAX_SPAN_DAYS = 3 * 366


@app.get("/v1/aggregates", summary="Population rollups of the organization or a cohort (trainer, org admin)",
         tags=["analytics"])
def get_aggregates(
    granularity: Annotated[Granularity, Query()] = "daily",
    start: Annotated[date | None, Query(alias="from", description="First period start (12 periods back)")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last period start; default today (UTC)")] = None,
    scope: Annotated[RollupScope | None, Query(description="Default: own cohort (trainer), organization")] = None,
    trainer_id: Annotated[UUID | None, Query(alias="trainerId", description="The cohort's trainer")] = None,
) -> RollupList:
    end = end or datetime.now(UTC).date()
    start = start or population.default_window(granularity, end)
    if start > end or (end - start).days > MAX_SPAN_DAYS:
        raise Unprocessable(f"'from' must be on or before 'to', at most {MAX_SPAN_DAYS} days apart")
    # Rollups are written by a daily job: a replica's lag is well within their age.
    with user_tx(app, roles=("trainer", "org_admin"), database=db.reader()) as (conn, caller):
        org = caller.organization_id
        assert org is not None
        if caller.active_role == "trainer":
            scope = scope or "cohort"
            if trainer_id is not None and trainer_id != caller.user_id:
                raise NotFound("no such cohort")
            trainer_id = caller.user_id if scope == "cohort" else trainer_id
        else:
            scope = scope or ("cohort" if trainer_id is not None else "organization")
            if scope == "cohort" and trainer_id is None:
                raise Unprocessable("scope=cohort needs trainerId (the cohort's trainer)")
            if trainer_id is not None and not learners.is_trainer(conn, org, trainer_id):
                raise NotFound("no such trainer")
        if scope == "organization" and trainer_id is not None:
            raise Unprocessable("trainerId names a cohort: use scope=cohort (or leave scope out)")
        if scope == "cohort":
            assert trainer_id is not None
            items = population.cohort_rollups(conn, org, trainer_id, granularity, start, end)
        elif caller.active_role == "trainer":  # sees only their cohort's learners individually
            items = population.protected_organization_rollups(conn, org, caller.user_id, granularity, start, end)
        else:
            items = population.organization_rollups(conn, org, granularity, start, end)
    message = None if items else (
        f"No {granularity} rollups of this {scope} with a period starting from {start} to {end}. "
        "The rollup job writes each period once it has ended (UTC days); pass 'from' and 'to' for another window."
    )
    return RollupList(items=items, granularity=granularity, scope=scope, trainer_id=trainer_id,
                      start=start, end=end, message=message)


lambda_handler = handler(app)
