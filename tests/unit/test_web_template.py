"""template.yaml's web app: a private bucket read only by CloudFront through origin access
control, a public app client with the authorization code flow (PKCE), the app's origin allowed
by the API's CORS, and the local gateway reading those CORS origins as the template gives them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from local import template


def resources() -> dict[str, Any]:
    return template.document()["Resources"]


def test_the_web_bucket_is_private_and_read_only_by_the_distribution() -> None:
    res = resources()
    block = res["WebBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(block[k] is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                          "RestrictPublicBuckets"))
    allow = [s for s in res["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allow) == 1 and allow[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow[0]["Action"] == "s3:GetObject"
    assert "${WebDistribution}" in allow[0]["Condition"]["StringEquals"]["AWS:SourceArn"]["Sub"]
    origin = res["WebDistribution"]["Properties"]["DistributionConfig"]["Origins"][0]
    assert origin["OriginAccessControlId"] == {"GetAtt": "WebOriginAccessControl.Id"}
    oac = res["WebOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")


def test_the_app_client_is_public_and_uses_the_code_flow() -> None:
    client = resources()["WebUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False  # a browser keeps no secret: PKCE instead
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["CallbackURLs"] == [{"Sub": "https://${WebDistribution.DomainName}/app/"}]
    audience = resources()["HttpApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"]
    assert "WebUserPoolClient" in str(audience["audience"])  # its tokens are accepted by the API


def test_cors_allows_the_listed_origins_and_the_apps_own() -> None:
    origins = resources()["HttpApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"]
    assert "https://${WebDistribution.DomainName}" in str(origins)
    # Locally the deploy-time origin is unknown: the listed ones (the parameter's default) remain.
    config = template.cors()
    assert config is not None and config.origins == ("https://app.example.com",)


def test_the_viewer_request_function_routes_app_paths_to_index(tmp_path: Path) -> None:
    """The CloudFront Function's own code, run by Node: the app's routes get index.html, files
    are left alone, `/` and `/app` redirect to `/app/`."""
    code = resources()["WebRewriteFunction"]["Properties"]["FunctionCode"]
    script = tmp_path / "rewrite.js"
    script.write_text(code + """
const cases = ["/app/", "/app/learners/42", "/app/assets/index-1.js", "/app/config.json", "/", "/app", "/other"];
console.log(JSON.stringify(cases.map((uri) => handler({ request: { uri } }))));
""")
    out = json.loads(subprocess.run(["node", str(script)], capture_output=True, text=True, check=True).stdout)
    uris = [r.get("uri") for r in out]
    assert uris[:4] == ["/app/index.html", "/app/index.html", "/app/assets/index-1.js", "/app/config.json"]
    assert [(r.get("statusCode"), r.get("headers", {}).get("location", {}).get("value")) for r in out[4:6]] == \
        [(308, "/app/"), (308, "/app/")]
    assert uris[6] == "/other"
