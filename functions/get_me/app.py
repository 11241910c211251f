"""GET /v1/me: who the caller is (user id, organization, roles, active role)."""

from ms8.http import handler, make_app, user_read
from ms8.repositories import users
from ms8.schemas.users import Me

app = make_app()


@app.get("/v1/me", summary="The caller", tags=["identity"])
def get_me() -> Me:
    caller, rows = user_read(app, users.READ_ME)
    row = dict(zip(users.ME_KEYS, rows[0], strict=True))  # the context call just found this user
    return Me(user_id=row["id"], organization_id=row["organization_id"], email=row["email"],
              name=row["name"], roles=row["roles"], active_role=caller.active_role,
              timezone=row["timezone"])


lambda_handler = handler(app)
