"""The population rollups' bigint sum (migration 0021): app.sum_bigint equals sum(bigint) cast
to bigint wherever that fits (NULLs skipped, NULL without a value), fails past the bigint
range as the cast does, and is the owner's only."""

from __future__ import annotations

import random

import psycopg
import pytest

from tests.support.factories import Factory

MAX = 2**63 - 1


def test_sum_bigint_equals_the_built_in_sum_cast_to_bigint(factory: Factory) -> None:
    rng = random.Random(21)
    groups = [[rng.choice([None, rng.randint(-10**12, 10**12), rng.randint(0, 9)]) for _ in range(rng.randint(0, 30))]
              for _ in range(40)]
    groups += [[None, None], [], [MAX, -1, 1], [-MAX - 1, 5]]
    rows = factory.sql(
        "SELECT g, app.sum_bigint(v), sum(v)::bigint FROM unnest(%s::int[], %s::bigint[]) x(g, v) "
        "GROUP BY g ORDER BY g",
        ([g for g, values in enumerate(groups) for _ in values], [v for values in groups for v in values]))
    assert rows and all(ours == builtin for _, ours, builtin in rows)
    assert {g: ours for g, ours, _ in rows} == {
        g: (None if all(v is None for v in values) else sum(v for v in values if v is not None))
        for g, values in enumerate(groups) if values}
    assert factory.sql("SELECT app.sum_bigint(v) FROM (SELECT 1::bigint WHERE false) x(v)") == [(None,)]


def test_sum_bigint_fails_past_the_bigint_range_as_the_cast_does(factory: Factory) -> None:
    for statement in ("SELECT app.sum_bigint(v) FROM unnest(%s::bigint[]) v",
                      "SELECT sum(v)::bigint FROM unnest(%s::bigint[]) v"):
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            factory.sql(statement, ([MAX, 1],))


def test_sum_bigint_fails_where_a_partial_sum_leaves_the_range(factory: Factory) -> None:
    """Unlike sum() (whose state is wider), a partial sum past the range is an error even if later
    rows would bring it back: the documented difference, moot for the rollups' non-negative sums."""
    assert factory.sql("SELECT sum(v)::bigint FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(v, n)",
                       ([MAX, 1, -1],)) == [(MAX,)]
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        factory.sql("SELECT app.sum_bigint(v ORDER BY n) FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(v, n)",
                    ([MAX, 1, -1],))


def test_sum_bigint_is_not_the_runtime_roles(factory: Factory) -> None:
    rows = factory.sql("SELECT has_function_privilege('ms8_app', 'app.sum_bigint(bigint)', 'EXECUTE')")
    assert rows == [(False,)]
