"""The cyclic garbage collector's pace for the functions that take bulk batches.

A 1,000-event batch is ~10,000 container objects (the validated models and their fields), a
1,000-statement xAPI batch ~100,000 (parsed dicts, lists and strings), all alive until the answer.
At the default threshold of 700 allocations the collector runs young collections every few
hundred of them and middle-generation ones every ten of those, each walking what the batch has
built so far: ~8 % of an ingest batch's CPU, ~15-20 % of an xAPI batch's (docs/PERFORMANCE.md).
The collector stays on; only its young threshold is raised, for the process of such a function.
Reference counting frees a batch as before; the few cycles a request may leave wait a little
longer for the collector.
"""

from __future__ import annotations

import gc

BULK_YOUNG_THRESHOLD = 20_000  # allocations between young collections (default 700)


def for_bulk_batches() -> None:
    """Set this process's young-generation threshold for bulk batches (the older generations'
    thresholds unchanged)."""
    gc.set_threshold(BULK_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
