"""The population rollups' array helpers (migration 0018): app.array_cat_agg concatenates a
group's arrays (NULLs skipped, two-dimensional rows too) and app.array_sorted orders an array as
ORDER BY does, through the body the server's version chose and through the other one as well
(the portable body is what a server before PostgreSQL 18 runs)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.factories import Factory

ROOT = Path(__file__).resolve().parents[2]


def _migration() -> ModuleType:
    path = ROOT / "migrations" / "versions" / "0018_rollup_array_helpers.py"
    spec = importlib.util.spec_from_file_location("migration_0018", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_array_cat_agg_concatenates_a_groups_arrays_and_skips_nulls(factory: Factory) -> None:
    rows = factory.sql(
        "SELECT g, app.array_cat_agg(a ORDER BY n) FROM (VALUES "
        "(1, 1, ARRAY[1.5, 2]::float8[]), (1, 2, NULL), (1, 3, ARRAY[0.25]::float8[]), "
        "(2, 1, NULL::float8[])) v(g, n, a) GROUP BY g ORDER BY g")
    assert rows == [(1, [1.5, 2.0, 0.25]), (2, None)]
    # Rows of three columns stay rows of three columns.
    rows = factory.sql(
        "SELECT app.array_cat_agg(a ORDER BY n) FROM (VALUES "
        "(1, ARRAY[ARRAY[1, 2, 0.5]]::float8[]), (2, ARRAY[ARRAY[3, 1, 7], ARRAY[0, 0, 0]]::float8[])) v(n, a)")
    assert rows == [([[1.0, 2.0, 0.5], [3.0, 1.0, 7.0], [0.0, 0.0, 0.0]],)]


def _sorted_by_order_by(factory: Factory, values: list[Any], kind: str) -> Any:
    return factory.sql(f"SELECT ARRAY(SELECT x FROM unnest(%s::{kind}[]) x ORDER BY x)", (values,))[0][0]


def test_array_sorted_orders_as_order_by_with_either_body(factory: Factory) -> None:
    migration = _migration()
    version = int(factory.sql("SHOW server_version_num")[0][0])
    body = factory.sql("SELECT prosrc FROM pg_proc WHERE oid = 'app.array_sorted(anycompatiblearray)'::regprocedure")
    assert body[0][0].strip() == migration.sorted_body(version)  # the installed body is the one chosen
    rng = random.Random(18)
    cases: list[tuple[list[Any], str]] = [
        ([rng.random() * rng.choice([1, 100, 1e-7]) for _ in range(rng.randint(0, 60))], "float8") for _ in range(20)
    ] + [([rng.randint(-3, 9) for _ in range(rng.randint(0, 40))], "integer") for _ in range(20)]
    cases.append(([3.5, None, -1.0, 3.5, 0.0], "float8"))  # duplicates, and a NULL (last, as ORDER BY)
    portable = migration.SORTED_PORTABLE.replace("$1", "%(a)s")
    builtin = migration.SORTED_BUILTIN.replace("$1", "%(a)s")
    for values, kind in cases:
        expected = _sorted_by_order_by(factory, values, kind)
        assert expected == sorted(values, key=lambda v: (v is None, v or 0))
        cast = f"%(a)s::{kind}[]"
        assert factory.sql(f"SELECT app.array_sorted({cast})", {"a": values})[0][0] == expected
        assert factory.sql(portable.replace("%(a)s", cast), {"a": values})[0][0] == expected
        if version >= 180000:
            assert factory.sql(builtin.replace("%(a)s", cast), {"a": values})[0][0] == expected
    assert factory.sql("SELECT app.array_sorted(NULL::float8[])") == [(None,)]


def test_the_helpers_are_the_owners_alone(factory: Factory) -> None:
    rows = factory.sql(
        "SELECT p.proname, has_function_privilege('ms8_app', p.oid, 'EXECUTE') FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'app' AND p.proname IN ('array_cat_agg', 'array_sorted') ORDER BY 1")
    assert rows == [("array_cat_agg", False), ("array_sorted", False)]
