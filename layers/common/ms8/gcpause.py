"""Pausing Python's cyclic garbage collector around bulk work that builds many acyclic objects.

Ingest and recomputation read tens of thousands of event tuples and keep them until the end of the
request. Every few hundred allocations the collector runs, and as the tuples pile up, its full
collections walk all of them again and again: a quarter of the CPU of a batch touching 1,000
learners (bench/bench_ingest.py). Reference counting still frees everything as usual; only cycles
wait for the collector, which runs again when the outermost pause ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # pauses in progress, in any thread
_resume = False  # whether the collector was enabled when the first of them began


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the body with the collector off; it is switched back on when the last pause ends, and
    only if it was on when the first began (nested and concurrent pauses are fine)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
