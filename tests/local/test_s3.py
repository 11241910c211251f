"""The local S3 (local/s3.py) checks links as S3 does: a presigned link downloads while valid and is
refused (403) once its signature, key or expiry is wrong; unsigned requests are refused; the
objects survive a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from local import s3

BUCKET = "ms8-reports-s3-test"
KEY = "reports/org/user/report.csv"
BODY = b"day,engagement\n2026-12-01,0.5\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[s3.S3]:
    server = s3.S3(port=0, data_dir=tmp_path)
    server.start(BUCKET)
    server.client().put_object(Bucket=BUCKET, Key=KEY, Body=BODY, ContentType="text/csv")
    yield server
    server.stop()


def _link(client: object, expires: int = 60) -> str:
    return client.generate_presigned_url(  # type: ignore[attr-defined, no-any-return]
        "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=expires)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def _error_code(response: httpx.Response) -> str:
    return response.text.split("<Code>")[1].split("</Code>")[0]


def test_a_valid_presigned_link_downloads(store: s3.S3) -> None:
    response = httpx.get(_link(store.client()))
    assert (response.status_code, response.content) == (200, BODY)
    assert response.headers["content-type"] == "text/csv"


def test_a_tampered_signature_is_refused(store: s3.S3) -> None:
    url = _link(store.client())
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    response = httpx.get(_with_query(url, **{"X-Amz-Signature": flipped}))
    assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch"
    assert BODY not in response.content


def test_a_link_to_another_object_with_the_same_signature_is_refused(store: s3.S3) -> None:
    store.client().put_object(Bucket=BUCKET, Key="reports/org/other/secret.csv", Body=b"secret")
    url = _link(store.client()).replace("/user/report.csv", "/other/secret.csv")
    response = httpx.get(url)
    assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch"


def test_a_link_signed_with_another_key_is_refused(store: s3.S3) -> None:
    unknown = s3.client(store.endpoint, "someone-else", "their-secret")
    response = httpx.get(_link(unknown))
    assert response.status_code == 403 and _error_code(response) == "InvalidAccessKeyId"
    wrong_secret = s3.client(store.endpoint, s3.ACCESS_KEY, "not-the-secret")
    response = httpx.get(_link(wrong_secret))
    assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch"


def test_an_expired_link_is_refused(store: s3.S3) -> None:
    # Long enough that a loaded machine still reads it in time, short enough to wait out.
    url = _link(store.client(), expires=4)
    signed = time.monotonic()
    assert httpx.get(url).status_code == 200
    time.sleep(max(0.0, signed + 5.1 - time.monotonic()))
    response = httpx.get(url)
    assert response.status_code == 403 and "expired" in response.text
    longer = _with_query(url, **{"X-Amz-Expires": "3600"})  # stretching the expiry breaks the signature
    assert _error_code(httpx.get(longer)) == "SignatureDoesNotMatch"


def test_a_signature_version_2_link_is_refused(store: s3.S3) -> None:
    import boto3

    legacy = boto3.client("s3", endpoint_url=store.endpoint, region_name=s3.REGION,
                          aws_access_key_id=s3.ACCESS_KEY, aws_secret_access_key=s3.SECRET_KEY)
    url = _link(legacy)
    assert "AWSAccessKeyId=" in url  # boto3's default presigning without signature_version
    assert httpx.get(url).status_code == 403


def test_unsigned_requests_are_refused(store: s3.S3) -> None:
    listing = httpx.get(f"{store.endpoint}/{BUCKET}?list-type=2")
    assert listing.status_code == 403 and _error_code(listing) == "AccessDenied"
    assert KEY not in listing.text
    assert httpx.get(f"{store.endpoint}/{BUCKET}/{KEY}").status_code == 403
    assert httpx.put(f"{store.endpoint}/{BUCKET}/planted.txt", content=b"x").status_code == 403
    assert [o["Key"] for o in store.client().list_objects_v2(Bucket=BUCKET)["Contents"]] == [KEY]


def test_sdk_calls_with_a_wrong_secret_are_refused(store: s3.S3) -> None:
    wrong = s3.client(store.endpoint, s3.ACCESS_KEY, "not-the-secret")
    with pytest.raises(ClientError) as refused:
        wrong.list_objects_v2(Bucket=BUCKET)
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_objects_survive_a_restart(tmp_path: Path) -> None:
    first = s3.S3(port=0, data_dir=tmp_path)
    first.start(BUCKET)
    first.client().put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    first.client().put_object(Bucket=BUCKET, Key="reports/b.pdf", Body=b"%PDF-1.7")
    first.stop()
    assert (tmp_path / BUCKET / KEY).read_bytes() == BODY
    second = s3.S3(port=0, data_dir=tmp_path)
    second.start(BUCKET)
    try:
        assert httpx.get(_link(second.client())).content == BODY
        keys = sorted(o["Key"] for o in second.client().list_objects_v2(Bucket=BUCKET)["Contents"])
        assert keys == sorted([KEY, "reports/b.pdf"])
        second.client().delete_object(Bucket=BUCKET, Key="reports/b.pdf")
    finally:
        second.stop()
    assert not (tmp_path / BUCKET / "reports" / "b.pdf").exists()  # a deleted object stays deleted
