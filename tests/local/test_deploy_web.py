"""local.deploy_web: config.json from the stack's outputs, and the upload to the web bucket
(moto's S3): types, caching, and files of earlier builds removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import deploy_web

OUTPUTS = {
    "ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/",
    "WebIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool",
    "WebClientId": "web-client-1",
    "WebSignInDomain": "ms8.auth.eu-west-1.amazoncognito.com",
}


def test_config_names_the_api_the_issuer_the_client_and_the_endpoints() -> None:
    assert deploy_web.app_config(OUTPUTS) == {
        "apiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com",
        "auth": {"issuer": OUTPUTS["WebIssuer"], "clientId": "web-client-1", "scope": "openid email profile",
                 "authorizationEndpoint": "https://ms8.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
                 "tokenEndpoint": "https://ms8.auth.eu-west-1.amazoncognito.com/oauth2/token"},
    }
    # No domain: the app reads the endpoints from the issuer's discovery document.
    assert "tokenEndpoint" not in deploy_web.app_config({**OUTPUTS, "WebSignInDomain": ""})["auth"]
    # No app client (another issuer): no sign-in configured.
    assert deploy_web.app_config({**OUTPUTS, "WebClientId": ""})["auth"] is None


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="web", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield s3


def test_publish_uploads_with_types_and_caching_and_removes_stale_files(bucket: Any, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "assets" / "index-new.js").write_text("1")
    bucket.put_object(Bucket="web", Key="app/assets/index-old.js", Body=b"0")
    bucket.put_object(Bucket="web", Key="elsewhere.txt", Body=b"kept")
    objects = deploy_web.files(tmp_path, deploy_web.app_config(OUTPUTS))
    stale = deploy_web.publish(bucket, "web", objects)
    assert stale == ["app/assets/index-old.js"]
    keys = sorted(o["Key"] for o in bucket.list_objects_v2(Bucket="web")["Contents"])
    assert keys == ["app/assets/index-new.js", "app/config.json", "app/index.html", "elsewhere.txt"]
    js = bucket.head_object(Bucket="web", Key="app/assets/index-new.js")
    assert js["CacheControl"] == deploy_web.IMMUTABLE and "javascript" in js["ContentType"]
    page = bucket.head_object(Bucket="web", Key="app/index.html")
    assert (page["CacheControl"], page["ContentType"]) == ("no-cache", "text/html")
    config = json.loads(bucket.get_object(Bucket="web", Key="app/config.json")["Body"].read())
    assert config["auth"]["clientId"] == "web-client-1"


def test_an_unbuilt_app_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="make web"):
        deploy_web.files(tmp_path, {})
