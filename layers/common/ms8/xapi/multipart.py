"""Statements with attachments: `multipart/mixed` requests and responses (xAPI Communication 1.5.2).

The first part is the statement(s) as application/json; every other part is one attachment's raw
content with an `X-Experience-API-Hash` header equal to the `sha2` of an attachment of those
statements. An attachment sent this way has no `fileUrl`; one with a `fileUrl` has no part. Pure.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any, NamedTuple

from ms8.xapi.validate import Invalid


class Part(NamedTuple):
    content_type: str
    content: bytes


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip().strip('"'):
            return value.strip().strip('"')
    raise Invalid("Content-Type", "multipart/mixed needs a boundary parameter")


def _headers(block: bytes) -> dict[str, str]:
    found = {}
    for line in block.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise Invalid("multipart", f"malformed part header {line[:40]!r}")
        found[name.strip().lower()] = value.strip()
    return found


def parse(body: bytes, content_type: str) -> tuple[Any, dict[str, Part]]:
    """(the statements JSON, attachments by sha2) of a multipart/mixed request."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise Invalid("multipart", "the body is not multipart/mixed with that boundary")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n"):
            raise Invalid("multipart", "a boundary is not followed by a line break")
        head, sep, content = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            raise Invalid("multipart", "a part has no header block")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        parts.append((_headers(head), content))
    first_headers, first = parts[0]
    if first_headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise Invalid("multipart", "the first part must be the statements as application/json")
    try:
        statements = json.loads(first)
    except ValueError:
        raise Invalid("multipart", "the first part is not valid JSON") from None
    attachments: dict[str, Part] = {}
    for headers, content in parts[1:]:
        sha2 = headers.get("x-experience-api-hash")
        if not sha2:
            raise Invalid("multipart", "an attachment part has no X-Experience-API-Hash header")
        if headers.get("content-transfer-encoding", "binary").lower() != "binary":
            raise Invalid("multipart", "an attachment part's Content-Transfer-Encoding must be binary")
        attachments[sha2] = Part(headers.get("content-type", "application/octet-stream"), content)
    return statements, attachments


def declared(statements: Iterable[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """The sha2 of the statements' attachments: (sent as parts, i.e. without fileUrl; all)."""
    inline, every = set(), set()
    for st in statements:
        items = list(st.get("attachments") or ())
        obj = st.get("object") or {}
        if obj.get("objectType") == "SubStatement":
            items += obj.get("attachments") or ()
        for item in items:
            every.add(item["sha2"])
            if "fileUrl" not in item:
                inline.add(item["sha2"])
    return inline, every


def check(statements: list[dict[str, Any]], parts: dict[str, Part]) -> None:
    """Every part is an attachment of the statements, and every attachment without fileUrl has its part."""
    inline, every = declared(statements)
    extra = set(parts) - every
    if extra:
        raise Invalid("multipart", "a part's X-Experience-API-Hash matches no attachment of the statements")
    missing = inline - set(parts)
    if missing:
        raise Invalid("attachments", "an attachment without fileUrl has no part in the request")


def response(document: Any, parts: Iterable[tuple[str, Part]]) -> tuple[str, bytes]:
    """(Content-Type, body) of a multipart/mixed answer: the JSON document, then each attachment."""
    boundary = "ms8-" + secrets.token_hex(12)
    out = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
           json.dumps(document, separators=(",", ":")).encode(), b"\r\n"]
    for sha2, part in parts:
        out += [f"--{boundary}\r\nContent-Type: {part.content_type}\r\nContent-Transfer-Encoding: binary\r\n"
                f"X-Experience-API-Hash: {sha2}\r\n\r\n".encode(), part.content, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/mixed; boundary={boundary}", b"".join(out)
