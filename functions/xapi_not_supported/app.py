"""The xAPI resources this LRS does not offer (state, activity profile, agent profile, agents,
activities): 501 with a JSON error naming the resource, after the version check every xAPI
request gets. One function answers them all: it has no other behaviour."""

from ms8.errors import AppError
from ms8.http import make_app
from ms8.xapi.http import check_version, xapi_handler

app = make_app(validation=False)

DOCUMENTS = ("/xapi/activities/state", "/xapi/activities/profile", "/xapi/agents/profile")
LOOKUPS = ("/xapi/agents", "/xapi/activities")


class NotSupported(AppError):
    status, code = 501, "NOT_SUPPORTED"


def _refuse() -> None:
    check_version(app)
    path = app.current_event.path
    raise NotSupported(f"{path} is not supported by this LRS: it offers the statements resource and /about")


for _path in DOCUMENTS:
    for _method in ("get", "put", "post", "delete"):
        getattr(app, _method)(_path, summary="xAPI: not supported (501)", tags=["xapi"],
                              responses={501: {"description": "This LRS offers only statements and /about"}})(_refuse)
for _path in LOOKUPS:
    app.get(_path, summary="xAPI: not supported (501)", tags=["xapi"],
            responses={501: {"description": "This LRS offers only statements and /about"}})(_refuse)

lambda_handler = xapi_handler(app)
