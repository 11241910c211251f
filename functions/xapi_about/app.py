"""GET /xapi/about: the xAPI versions this LRS speaks (no credential needed, as the specification says)."""

from typing import Any

from ms8.http import make_app
from ms8.xapi.http import xapi_handler

app = make_app(validation=False)

VERSIONS = ["1.0.3", "1.0.2", "1.0.1", "1.0.0"]


@app.get("/xapi/about", summary="xAPI: the versions this LRS supports", tags=["xapi"])
def about() -> dict[str, Any]:
    return {"version": VERSIONS, "extensions": {}}


lambda_handler = xapi_handler(app)
