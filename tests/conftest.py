"""Fixtures of every tier. `database` (a real PostgreSQL, embedded or DATABASE_URL, a freshly migrated
database, the API connecting as the runtime role, as the Lambdas do) starts only when a test asks
for it: the tiers that need it (db, api, http, jobs, local) ask in their own conftest.py; tests/unit
never does, so `pytest tests/unit` runs with no PostgreSQL reachable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from local import localdb, pooler
from tests.support.factories import Factory
from tests.support.s3 import reports_bucket


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    started = localdb.start()
    dbname = f"ms8_test_{os.getpid()}"
    localdb.drop_database(dbname)
    localdb.create_database(dbname)
    os.environ["DATABASE_URL"] = localdb.runtime_url(dbname)
    os.environ["OWNER_DATABASE_URL"] = localdb.owner_url(dbname)
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MS8Test")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    from ms8 import config, db

    config.settings.cache_clear()
    db.runtime.reset()
    db.owner.reset()
    yield dbname
    db.runtime.reset()
    db.owner.reset()
    localdb.drop_database(dbname)
    if started and not localdb.other_databases(dbname):
        localdb.stop()  # ours alone: leave the machine as we found it


@pytest.fixture(scope="module", params=["direct", "pgbouncer"])
def gateway_database_url(request: pytest.FixtureRequest, database: str) -> Iterator[str]:
    """The DATABASE_URL an HTTP test's gateway workers get: the server itself, then PgBouncer in
    transaction mode with ONE server connection for the gateway's two workers (what RDS Proxy
    does in production: a server connection is a client's only for one transaction)."""
    if request.param == "direct":
        yield localdb.runtime_url(database)
        return
    with pooler.pgbouncer(database, pool_size=1) as url:
        yield url


@pytest.fixture(scope="session")
def owner_url(database: str) -> str:
    return localdb.owner_url(database)


@pytest.fixture(scope="session")
def runtime_url(database: str) -> str:
    return localdb.runtime_url(database)


@pytest.fixture
def owner_conn(owner_url: str) -> Iterator[psycopg.Connection]:
    """An owner connection in autocommit; `Factory` opens maintenance transactions on it."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def factory(owner_conn: psycopg.Connection) -> Factory:
    return Factory(owner_conn)


@pytest.fixture
def runtime_conn(runtime_url: str) -> Iterator[psycopg.Connection]:
    """A fresh runtime-role connection (not autocommit), for tests of RLS and the context."""
    with psycopg.connect(runtime_url, prepare_threshold=None) as conn:
        yield conn


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 with an empty reports bucket (tests.support.s3.BUCKET); yields a boto3 client."""
    with reports_bucket(monkeypatch) as client:
        yield client
