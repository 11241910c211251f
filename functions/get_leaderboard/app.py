"""GET /v1/leaderboard: the organization's top learners by points and the caller's own place."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ms8 import db
from ms8.http import handler, make_app, user_read
from ms8.repositories import gamification
from ms8.schemas.gamification import DEFAULT_LEADERBOARD, MAX_LEADERBOARD, Leaderboard
from ms8.services.gamification import leaderboard

app = make_app()


@app.get("/v1/leaderboard", summary="Organization top N by points and own rank", tags=["gamification"])
def get_leaderboard(
    limit: Annotated[int, Query(ge=1, le=MAX_LEADERBOARD)] = DEFAULT_LEADERBOARD,
) -> Leaderboard:
    _, rows = user_read(app, gamification.READ_LEADERBOARD, (limit,), database=db.reader())
    return leaderboard(gamification.board_of(rows), limit)


lambda_handler = handler(app)
