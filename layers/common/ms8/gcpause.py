"""Pausing Python's cyclic garbage collector around bulk work that builds many acyclic objects.

A parsed batch of 1,000 xAPI statements is ~100,000 dicts, lists and strings, held until the end
of the request. Every few hundred allocations the collector runs, and as the batch piles up its
older-generation collections walk it (and every module object of the process) again and again:
~15-20 % of the CPU of a batch (bench/bench_xapi.py). Reference counting still frees everything as
usual; only cycles wait for the collector, which runs again when the outermost pause ends.
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
