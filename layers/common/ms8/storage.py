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


SERVER_SIDE_ENCRYPTION = "AES256"  # SSE-S3, as the bucket's default encryption


class StorageError(Exception):
    """S3 refused a request or could not be reached (the botocore error is the cause)."""


def put_report(key: str, body: bytes, *, content_type: str, file_name: str, sha256_b64: str) -> None:
    """Store a report file, encrypted, with its content type and download name.

    S3 checks the body against `sha256_b64` (the base64 SHA-256 of `body`) and refuses a
    corrupted upload. Raises StorageError when S3 refuses or cannot be reached; the object may
    then exist or not (e.g. a timeout after S3 stored it), so the caller deletes the key.
    """
    client = s3_client()
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.put_object(
            Bucket=settings().reports_bucket, Key=key, Body=body, ContentType=content_type,
            ContentDisposition=f'attachment; filename="{file_name}"',
            ServerSideEncryption=SERVER_SIDE_ENCRYPTION, ChecksumSHA256=sha256_b64,
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "unknown")
        raise StorageError(f"S3 refused the upload ({code})") from exc
    except BotoCoreError as exc:
        raise StorageError(f"S3 could not be reached ({type(exc).__name__})") from exc


def delete_object(key: str) -> None:
    """Delete one report file (deleting a key that does not exist succeeds)."""
    s3_client().delete_object(Bucket=settings().reports_bucket, Key=key)


def presign_get(key: str, expires_in_s: int) -> str:
    """A presigned GET of a report file, valid for `expires_in_s` seconds. Signed locally (no
    call to S3); whoever holds the URL can download the file until it expires."""
    url: str = s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": settings().reports_bucket, "Key": key}, ExpiresIn=expires_in_s
    )
    return url
