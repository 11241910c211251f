"""The demo data in a database of its own, for tests that write to it (others keep their counts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from local import demo, localdb


@contextmanager
def demo_database(name: str) -> Iterator[str]:
    """A fresh, migrated database `name` holding the demo; dropped afterwards."""
    localdb.drop_database(name)
    localdb.create_database(name)
    try:
        with psycopg.connect(localdb.owner_url(name), autocommit=True) as conn:
            demo.load(conn)
        yield name
    finally:
        localdb.drop_database(name)
