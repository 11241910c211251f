"""The collector's pace for bulk functions: its young threshold raised, the collector on, the
older generations' thresholds as they were; both bulk functions set it when loaded."""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from ms8.collector import BULK_YOUNG_THRESHOLD, for_bulk_batches

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*before)
    if enabled:
        gc.enable()


def test_the_young_threshold_is_raised_and_the_rest_kept() -> None:
    gc.set_threshold(700, 11, 12)
    for_bulk_batches()
    assert gc.get_threshold() == (BULK_YOUNG_THRESHOLD, 11, 12)
    assert gc.isenabled()


@pytest.mark.parametrize("function", ["post_events", "xapi_post_statements"])
def test_the_bulk_functions_set_it_when_loaded(function: str) -> None:
    gc.set_threshold(700, 10, 10)
    spec = importlib.util.spec_from_file_location(f"_bulk_{function}", ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert gc.get_threshold()[0] == BULK_YOUNG_THRESHOLD
