"""The jobs tier runs against the session's PostgreSQL database (tests/conftest.py); tests that
reshape partitions or refresh views take a scratch database of their own, cloned per test from a
migrated template made once per module."""

import uuid
from collections.abc import Iterator

import pytest

from tests.support.jobs import scratch_database, template_database


@pytest.fixture(autouse=True)
def _database(database: str) -> str:
    return database


def _short(request: pytest.FixtureRequest) -> str:
    """The module's name without `test_jobs_`, for the databases' names."""
    return request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_jobs_")


@pytest.fixture(scope="module")
def template(request: pytest.FixtureRequest) -> Iterator[str]:
    with template_database(f"{_short(request)}_tpl") as name:
        yield name


@pytest.fixture
def scratch(template: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The owner's URL of a fresh scratch database cloned from the module's template."""
    with scratch_database(f"{_short(request)}_{uuid.uuid4().hex[:8]}", template) as url:
        yield url
