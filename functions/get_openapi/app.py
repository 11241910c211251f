"""GET /v1/openapi.json: the OpenAPI 3.1 document of the whole API.

The document is generated from the code of every function (local/openapi.py) and committed
beside this file; a test fails when it is stale. Serving the file keeps this function free of the
other functions' code and of the database.
"""

from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from ms8.http import handler, make_app

app = make_app()
DOCUMENT = (Path(__file__).parent / "openapi.json").read_text()


@app.get(
    "/v1/openapi.json", summary="This API's OpenAPI document", tags=["meta"],
    responses={200: {"description": "OpenAPI 3.1 document", "content": {"application/json": {}}}},
)
def get_openapi():  # type: ignore[no-untyped-def]  # a Response annotation breaks schema generation
    return Response(status_code=200, content_type="application/json", body=DOCUMENT,
                    headers={"Cache-Control": "max-age=300"})


lambda_handler = handler(app)
