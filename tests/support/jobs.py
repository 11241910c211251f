"""Helpers of the scheduled-job tests: a Lambda context, the handlers as deployed, the sample
events, a scratch database for tests that reshape partitions, and per-thread owner connections
for overlapping runs."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql as psql

from local import localdb, runtime, template
from local.paths import EVENTS
from ms8 import config, db

T = TypeVar("T")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_context() -> runtime.LocalContext:
    """A Lambda context as the local tooling builds it (local.apigw)."""
    return runtime.LocalContext("ms8-job-test", str(uuid.uuid4()), memory_limit_in_mb=512, timeout_ms=300_000)


def load_handler(function: str) -> Handler:
    """`lambda_handler` of functions/<function>/app.py, imported as SAM would run it."""
    return runtime.load_handler(template.function_by_dir(function))  # type: ignore[no-any-return]


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def invoke(handler: Handler, event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, lambda_context())


def sql(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One maintenance transaction on a fresh owner connection."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@contextmanager
def template_database(suffix: str) -> Iterator[str]:
    """A migrated database to clone scratch databases from (a clone takes a fraction of a
    migration's time). Yields its name."""
    name = f"ms8_test_{os.getpid()}_{suffix}"
    localdb.drop_database(name)
    localdb.create_database(name)
    try:
        yield name
    finally:
        localdb.drop_database(name)


@contextmanager
def scratch_database(suffix: str, template: str | None = None) -> Iterator[str]:
    """A migrated database of its own (a clone of `template`, or freshly migrated), which the
    jobs' connections point at meanwhile.

    For tests that drop or create partitions: the session database is shared with every other
    test, which expects the partitions the migrations made. Yields the owner URL.
    """
    name = f"ms8_test_{os.getpid()}_{suffix}"
    localdb.drop_database(name)
    if template is None:
        localdb.create_database(name)
    else:
        with psycopg.connect(localdb.admin_url(), autocommit=True) as admin:
            admin.execute(psql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                psql.Identifier(name), psql.Identifier(template), psql.Identifier(localdb.OWNER_ROLE)))
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "OWNER_DATABASE_URL")}
    os.environ["DATABASE_URL"] = localdb.runtime_url(name)
    os.environ["OWNER_DATABASE_URL"] = localdb.owner_url(name)
    config.settings.cache_clear()
    db.owner.reset()
    db.runtime.reset()
    try:
        yield localdb.owner_url(name)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.settings.cache_clear()
        db.owner.reset()
        db.runtime.reset()
        localdb.drop_database(name)


class PerThreadDatabase(db.Database):
    """Stands in for `ms8.db.owner` so that each thread has its own connection, as two Lambda
    containers running the same schedule would."""

    def __init__(self) -> None:
        super().__init__("owner")
        self._local = threading.local()
        self._opened: list[db.Database] = []
        self._guard = threading.Lock()

    def _mine(self) -> db.Database:
        mine: db.Database | None = getattr(self._local, "db", None)
        if mine is None:
            mine = self._local.db = db.Database("owner")
            with self._guard:
                self._opened.append(mine)
        return mine

    def connection(self) -> psycopg.Connection:
        return self._mine().connection()

    def transaction(self, begin: Callable[[psycopg.Connection], T]):  # type: ignore[no-untyped-def]
        return self._mine().transaction(begin)

    def reset(self) -> None:
        with self._guard:
            for opened in self._opened:
                opened.reset()


def run_concurrently(calls: list[Callable[[], T]]) -> list[T]:
    """Start every call at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def target(i: int, call: Callable[[], T]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def refresh_pending() -> dict[str, Any]:
    """Run the every-minute refresh job once, as the Scheduler would: the snapshots and points of
    the learners platform batches noted (their details: users, pointsAwarded, ...)."""
    from ms8.jobs.pending import JOB
    from ms8.jobs.runner import run

    result = run(JOB, {})
    assert result.status == "ok", result.message
    return result.details
