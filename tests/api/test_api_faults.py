"""The database unreachable or restarted: 503 JSON fast, and the next request recovers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import psycopg
import pytest

from local import localdb
from ms8 import config, db
from tests.support.api import call
from tests.support.factories import Factory


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://ms8_app:x@127.0.0.1:{port}/ms8")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    config.settings.cache_clear()
    db.runtime.reset()
    yield
    monkeypatch.undo()
    config.settings.cache_clear()
    db.runtime.reset()


def test_database_down_is_503_json_quickly(factory: Factory, database_down: None) -> None:
    start = time.monotonic()
    r = call("GET", "/v1/analytics", sub="9f1c1f7e-0000-4000-8000-000000000001")
    assert (r.status, r.error_code) == (503, "DATABASE_UNAVAILABLE")
    assert r.body["error"]["requestId"]
    assert "Traceback" not in str(r.body)
    assert time.monotonic() - start < 3


def test_connection_killed_between_requests_recovers(factory: Factory) -> None:
    org = factory.org(alice=["learner"])
    assert call("GET", "/v1/me", sub=org.users["alice"]).status == 200
    pid = db.runtime.connection().info.backend_pid
    with psycopg.connect(localdb.admin_url(), autocommit=True) as admin:
        # What a database restart or a proxy's idle timeout does to a warm Lambda's connection.
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    r = call("GET", "/v1/me", sub=org.users["alice"])
    assert r.status == 200, r.body
    assert db.runtime.connection().info.backend_pid != pid
