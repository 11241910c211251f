"""The reports bucket in moto's in-process S3, for tests that touch report files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ms8 import config, storage

BUCKET = "ms8-reports-test"


@contextmanager
def reports_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An empty reports bucket; yields a boto3 S3 client on it. The layer's cached client and
    settings are reset on the way in and out."""
    monkeypatch.setenv("REPORTS_BUCKET", BUCKET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)
    config.settings.cache_clear()
    storage.s3_client.cache_clear()
    try:
        with mock_aws():
            client = boto3.client("s3", region_name="eu-west-1")
            client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            yield client
    finally:
        storage.s3_client.cache_clear()
        config.settings.cache_clear()
