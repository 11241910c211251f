"""Dealing weighted items into shards of about equal weight, pure (the rollup job's
organizations over its connections)."""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def deal(weights: Sequence[tuple[K, int]], shards: int) -> list[list[K]]:
    """At most `shards` non-empty lists of the items, heaviest first each to the lightest shard so
    far (longest processing time first: within 4/3 of the best split's heaviest shard). Ties
    go to the lower shard, so the same input deals the same way."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    out: list[list[K]] = [[] for _ in range(min(shards, len(weights)))]
    heap = [(0, i) for i in range(len(out))]
    for key, weight in sorted(weights, key=lambda kw: -kw[1]):
        load, i = heapq.heappop(heap)
        out[i].append(key)
        heapq.heappush(heap, (load + max(weight, 0), i))
    return out
