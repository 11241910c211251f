"""GET /v1/gamification: the caller's own points, level, badges and streak."""

from datetime import UTC, datetime

from ms8.http import handler, make_app, user_read
from ms8.repositories import gamification
from ms8.schemas.gamification import GamificationView
from ms8.services.gamification import view

app = make_app()


@app.get("/v1/gamification", summary="Own points, level, badges and streak", tags=["gamification"])
def get_gamification() -> GamificationView:
    caller, rows = user_read(app, gamification.READ_OWN)
    return view(gamification.own_of(rows), caller, datetime.now(UTC))


lambda_handler = handler(app)
