"""xAPI credentials: Basic-auth key and secret, the secret kept as a scrypt hash.

Checking a scrypt hash is deliberately slow (tens of milliseconds), and a platform sends many
requests with the same credential, so a verified secret is remembered in the process for a few
minutes, keyed by the stored hash: rotating the secret (a new hash) or revoking the key (checked
by the database on every request) takes effect at once. The cache holds an HMAC of the secret
under a per-process random key, never the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
CACHE_SECONDS = 300.0
CACHE_SIZE = 1024

_pepper = secrets.token_bytes(32)
_verified: dict[tuple[str, str], tuple[bytes, float]] = {}


def new_key() -> str:
    return "xk" + secrets.token_hex(10)


def new_secret() -> str:
    return secrets.token_urlsafe(30)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64 parts)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _check(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


def verify(key: str, secret: str, stored: str) -> bool:
    """Whether `secret` matches the stored hash of `key` (constant-time comparisons)."""
    mark = hmac.new(_pepper, secret.encode(), hashlib.sha256).digest()
    cached = _verified.get((key, stored))
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return hmac.compare_digest(cached[0], mark)
    if not _check(secret, stored):
        return False
    if len(_verified) >= CACHE_SIZE:
        _verified.clear()
    _verified[(key, stored)] = (mark, now + CACHE_SECONDS)
    return True


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(key, secret) from `Authorization: Basic ...`, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error):
        return None
    key, sep, secret = decoded.partition(":")
    return (key, secret) if sep and key else None
