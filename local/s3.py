"""The local S3: moto's S3 behind a check of every request's signature, with the objects kept on
disk between runs.

moto's own IAM authentication checks header-signed requests only; it serves a presigned link
without looking at its signature or its expiry. So every request is verified here first, by
botocore's own SigV4 signer, against the one local key pair (`ACCESS_KEY`/`SECRET_KEY`):

- a header-signed request (`Authorization: AWS4-HMAC-SHA256 ...`, what boto3 sends) and a
  presigned link (`X-Amz-Signature` in the query) are recomputed and compared;
- a presigned link past `X-Amz-Date + X-Amz-Expires` is refused;
- anything unsigned (an anonymous listing, a link without its signature) is refused.

Refusals are S3's 403 XML (`AccessDenied`, `SignatureDoesNotMatch`, `InvalidAccessKeyId`).

Persistence: on `stop()` the bucket's objects are written under `.local/s3/<bucket>/` and on
`start()` they are put back, so a report rendered before a restart of `make run` still downloads
afterwards (its link is signed again on every GET /v1/reports/{id}).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from local.paths import STATE

ACCESS_KEY = "ms8-local"
SECRET_KEY = "ms8-local-secret"
REGION = "eu-west-1"
DEFAULT_PORT = 4566
DATA_DIR = STATE / "s3"

StartResponse = Callable[..., Any]


class SignatureError(Exception):
    """Why a request is refused: an S3 error code and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _parse_authorization(value: str) -> dict[str, str]:
    """`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` -> its three fields."""
    scheme, _, rest = value.partition(" ")
    if scheme != "AWS4-HMAC-SHA256":
        raise SignatureError("AccessDenied", "only AWS Signature Version 4 is accepted")
    fields = {}
    for part in rest.split(","):
        key, _, val = part.strip().partition("=")
        fields[key] = val
    return fields


def verify(method: str, raw_uri: str, headers: dict[str, str], secrets: dict[str, str],
           now: float | None = None) -> None:
    """Raise SignatureError unless the request is signed (header or presigned) by a known key and,
    if presigned, not expired. `headers`: lower-case names; `raw_uri`: path and query as sent."""
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    path, _, query = raw_uri.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if "X-Amz-Signature" in params:
        credential, signed, given = params.get("X-Amz-Credential", ""), params.get("X-Amz-SignedHeaders", ""), \
            params["X-Amz-Signature"]
        stamp = params.get("X-Amz-Date", "")
        try:
            expires_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp() \
                + int(params.get("X-Amz-Expires", "0"))
        except ValueError:
            raise SignatureError("AccessDenied", "X-Amz-Date or X-Amz-Expires is not valid") from None
        if (now or time.time()) > expires_at:
            raise SignatureError("AccessDenied", "Request has expired")
        unsigned_query = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
        url_query = unsigned_query
        signer_class: type = S3SigV4QueryAuth
    elif "authorization" in headers:
        fields = _parse_authorization(headers["authorization"])
        credential, signed, given = fields.get("Credential", ""), fields.get("SignedHeaders", ""), \
            fields.get("Signature", "")
        stamp = headers.get("x-amz-date", "")
        url_query = query
        signer_class = S3SigV4Auth
    else:
        raise SignatureError("AccessDenied", "Access Denied: the request is not signed")
    try:
        access_key, day, region, service, _ = credential.split("/")
    except ValueError:
        raise SignatureError("AccessDenied", "the credential scope is not valid") from None
    if access_key not in secrets:
        raise SignatureError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    signed_headers = {name: headers.get(name, "") for name in signed.split(";") if name}
    if signer_class is S3SigV4QueryAuth:  # presigned: the payload is UNSIGNED-PAYLOAD, never a header's hash
        signed_headers.pop("x-amz-content-sha256", None)
    url = f"http://{headers.get('host', 'localhost')}{path}" + (f"?{url_query}" if url_query else "")
    request = AWSRequest(method=method, url=url, headers=signed_headers)
    request.context["timestamp"] = stamp
    signer = signer_class(Credentials(access_key, secrets[access_key]), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not stamp.startswith(day) or not hmac.compare_digest(expected, given):
        raise SignatureError("SignatureDoesNotMatch", "The request signature we calculated does not match "
                                                      "the signature you provided.")


class SignedOnly:
    """WSGI middleware: a request reaches moto only with a valid signature (`verify`)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], secrets: dict[str, str]) -> None:
        self.app = app
        self.secrets = secrets
        self.refused: list[str] = []  # the codes of refused requests (tests read them)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        query = environ.get("QUERY_STRING")
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (
            quote(environ.get("PATH_INFO", "")) + (f"?{query}" if query else ""))
        try:
            verify(environ["REQUEST_METHOD"], raw, headers, self.secrets)
        except SignatureError as exc:
            self.refused.append(exc.code)
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{exc.code}</Code>'
                    f"<Message>{exc}</Message></Error>").encode()
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


def client(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
    """A boto3 S3 client of a local S3 server, signing with Signature Version 4 as the layer's does
    (ms8.storage); the local key pair unless told otherwise."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, config=Config(signature_version="s3v4"))


def _port_free(port: int) -> bool:
    """Whether 127.0.0.1:`port` can be bound (werkzeug exits the process when it cannot)."""
    if port == 0:
        return True
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class S3:
    """moto's S3 server in a thread of this process, every request signature-checked, with the
    reports bucket; its objects saved to `data_dir` on stop and loaded back on start."""

    def __init__(self, port: int = DEFAULT_PORT, data_dir: Path | None = DATA_DIR) -> None:
        self.port = port
        self.data_dir = data_dir
        self.endpoint = ""
        self.bucket = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.app: SignedOnly | None = None

    def start(self, bucket: str) -> str:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per S3 request
        moto = DomainDispatcherApplication(create_backend_app)
        self.app = SignedOnly(moto, {ACCESS_KEY: SECRET_KEY})
        # The usual port, else the one of the last run (so links issued then still reach it), else any.
        saved = self.data_dir / "port" if self.data_dir else None
        candidates = [self.port] + ([int(saved.read_text())] if saved and saved.is_file() else [])
        port = next((c for c in candidates if _port_free(c)), 0)
        self._server = make_server("127.0.0.1", port, self.app, True, request_handler=MotoRequestHandler)
        if saved is not None and self.port:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(str(self._server.server_address[1]))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="local-s3")
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.bucket = bucket
        client = self.client()
        # another server of this process may have made it (moto keeps one state per process)
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self._restore(client)
        return self.endpoint

    def client(self) -> Any:
        """A boto3 client of this server with the local key pair."""
        return client(self.endpoint)

    def _folder(self) -> Path | None:
        return self.data_dir / self.bucket if self.data_dir else None

    def _restore(self, client: Any) -> int:
        folder = self._folder()
        if folder is None or not folder.is_dir():
            return 0
        count = 0
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            client.put_object(Bucket=self.bucket, Key=file.relative_to(folder).as_posix(), Body=file.read_bytes())
            count += 1
        return count

    def save(self) -> int:
        """Write the bucket's objects under `data_dir/<bucket>/` (replacing what was there)."""
        folder = self._folder()
        if folder is None:
            return 0
        import shutil

        client = self.client()
        tmp = folder.with_name(folder.name + ".saving")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                target = tmp / item["Key"]
                if not target.resolve().is_relative_to(tmp.resolve()):
                    continue  # a key with `..` in it stays in the bucket only
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read())
                count += 1
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        return count

    def _forget(self) -> None:
        """Empty and remove the bucket: what the server's memory loses when its process ends (moto
        keeps its state per process, and a test may start another server in the same one)."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=self.bucket, Key=item["Key"])
        client.delete_bucket(Bucket=self.bucket)

    def stop(self) -> None:
        if self._server is None:
            return
        try:
            self.save()
            self._forget()
        finally:
            self._server.shutdown()
            if self._thread:
                self._thread.join()
            self._server = None
