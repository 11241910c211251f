"""GET /v1/gamification: the caller's own points, level, badges and streak."""

from datetime import UTC, datetime

from ms8.http import handler, make_app, user_tx
from ms8.models.gamification import GamificationView
from ms8.services.gamification import view

app = make_app()


@app.get("/v1/gamification", summary="Own points, level, badges and streak", tags=["gamification"])
def get_gamification() -> GamificationView:
    with user_tx(app) as (conn, caller):
        return view(conn, caller, datetime.now(UTC))


lambda_handler = handler(app)
