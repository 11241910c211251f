"""xAPI credentials (ms8.xapi.credentials): scrypt hashes, the verification cache, Basic auth."""

from __future__ import annotations

import base64

from ms8.xapi import credentials


def test_a_secret_verifies_against_its_hash_only() -> None:
    stored = credentials.hash_secret("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert credentials.verify("k1", "s3cret", stored)
    assert not credentials.verify("k1", "s3cret!", stored)
    assert not credentials.verify("k1", "s3cret", "not-a-hash")


def test_the_cache_follows_rotation() -> None:
    old = credentials.hash_secret("first")
    assert credentials.verify("k2", "first", old)  # now cached
    new = credentials.hash_secret("second")
    assert not credentials.verify("k2", "first", new)
    assert credentials.verify("k2", "second", new)
    assert not credentials.verify("k2", "second", old)  # the cached entry of the old hash holds only "first"


def test_basic_auth_header() -> None:
    header = "Basic " + base64.b64encode(b"key:pa:ss").decode()
    assert credentials.parse_basic(header) == ("key", "pa:ss")
    assert credentials.parse_basic("Bearer abc") is None
    assert credentials.parse_basic("Basic !!!") is None
    assert credentials.parse_basic("Basic " + base64.b64encode(b"nocolon").decode()) is None
    assert credentials.parse_basic(None) is None
