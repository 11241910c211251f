"""The jobs tier runs against the session's PostgreSQL database (tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _database(database: str) -> str:
    return database
