"""S3 access for report files. boto3 is imported here only, so functions that never touch S3
do not pay for it at cold start."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from ms8.config import settings


@lru_cache(maxsize=1)
def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    cfg = settings()
    return boto3.client(
        "s3",
        endpoint_url=cfg.s3_endpoint_url,
        config=Config(
            connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"},
            signature_version="s3v4",
        ),
    )


def delete_objects(keys: Iterable[str]) -> int:
    """Delete report files; returns how many were asked to go. Raises if S3 refuses."""
    batch = [{"Key": k} for k in keys]
    deleted = 0
    for i in range(0, len(batch), 1000):  # DeleteObjects takes at most 1,000 keys
        chunk = batch[i : i + 1000]
        result = s3_client().delete_objects(
            Bucket=settings().reports_bucket, Delete={"Objects": chunk, "Quiet": True}
        )
        if result.get("Errors"):
            raise RuntimeError(f"S3 refused to delete {len(result['Errors'])} report files")
        deleted += len(chunk)
    return deleted
