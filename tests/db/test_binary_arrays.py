"""Arrays built in PostgreSQL's binary format (ms8.repositories.binary_arrays) arrive as the same
values psycopg's own element-by-element dumping sends: NULLs, empty strings, escapes, non-ASCII
text, float extremes, time zones."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from ms8.repositories import binary_arrays as arrays

CASES: list[tuple[str, Callable[[Any], bytes], Sequence[Any]]] = [
    ("uuid[]", arrays.uuids, [uuid.uuid4(), None, uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]),
    ("text[]", arrays.texts, ["a", "", None, "é\x1fx", "'\"{},\\ NULL", "日本語"]),
    ("float8[]", arrays.float8s, [0.1, None, 1.0, 0.0, -0.0, 5e-324, 0.30000000000000004, 1.7976931348623157e308]),
    ("real[]", arrays.float8s, [0.1, 0.7, None, 0.333333333333]),  # cast on the server, as ingest does
    ("boolean[]", arrays.bools, [True, False, None]),
    ("integer[]", arrays.int4s, [0, -1, None, 2**31 - 1, -(2**31)]),
    ("timestamptz[]", arrays.timestamptzs, [
        datetime(2026, 12, 6, 17, 0, 0, 123456, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2000, 1, 1, tzinfo=UTC),
    ]),
]


@pytest.mark.parametrize(("pg_type", "build", "values"), CASES, ids=[c[0] for c in CASES])
def test_the_server_reads_what_psycopg_would_send(
    runtime_conn: psycopg.Connection, pg_type: str, build: Callable[[Any], bytes], values: Sequence[Any]
) -> None:
    row = runtime_conn.execute(f"SELECT %b::{pg_type}, %b::{pg_type}", (build(values), list(values))).fetchone()
    assert row is not None
    packed, reference = row
    assert packed == reference
    assert len(packed) == len(values)


@pytest.mark.parametrize("build", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_an_empty_array(runtime_conn: psycopg.Connection, build: Callable[[Any], bytes]) -> None:
    assert runtime_conn.execute("SELECT cardinality(%b)", (build([]),)).fetchone() == (0,)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        arrays.timestamptzs([datetime(2026, 1, 1)])
