"""Dealing weighted items into shards (ms8.domain.shards.deal): the rollup job's organizations
over its connections."""

from __future__ import annotations

import pytest

from ms8.domain.shards import deal


def test_the_heaviest_go_first_each_to_the_lightest_shard() -> None:
    weights = [("a", 10), ("b", 70), ("c", 30), ("d", 40), ("e", 0)]

    shards = deal(weights, 2)

    # b (70) to shard 0, d (40) to 1, c (30) to 1 (40 < 70), a (10) to 0 (70 = 70: the lower), e to 1.
    assert shards == [["b", "a"], ["d", "c", "e"]]
    assert sorted(k for s in shards for k in s) == sorted(k for k, _ in weights)


def test_every_item_once_and_loads_within_the_heaviest_item_of_each_other() -> None:
    weights = [(n, (n * 37) % 101 + 1) for n in range(200)]

    shards = deal(weights, 3)

    assert sorted(k for s in shards for k in s) == list(range(200))
    loads = [sum(dict(weights)[k] for k in s) for s in shards]
    assert max(loads) - min(loads) <= max(w for _, w in weights)


def test_no_more_shards_than_items_and_one_shard_keeps_the_order_of_weight() -> None:
    assert deal([("x", 5)], 4) == [["x"]]
    assert deal([], 2) == []
    assert deal([("a", 1), ("b", 3), ("c", 2)], 1) == [["b", "c", "a"]]


def test_a_shard_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        deal([("a", 1)], 0)
