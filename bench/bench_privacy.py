"""What the noise of peer comparison costs honest users, and what it leaves an attacker.

For groups of n learners with realistic values (mastery drawn around 0.65, spread 0.15, within
0..1), 2,000 groups per size: the typical and 95th-percentile deviation of the released average
and median from the exact ones, and how often the differencing attack (n*a - (n-1)*b over the
releases before and after one member leaves) lands within 0.05 of that member's value. Pure
Python over ms8.domain.privacy, seeded: the same table every run.

    .venv/bin/python bench/bench_privacy.py [--groups 2000]
"""

from __future__ import annotations

import argparse
import random
import statistics

import _common

from ms8.domain import privacy


def _stats(values: list[float]) -> privacy.GroupStats:
    hist = [0] * privacy.BINS
    for v in values:
        hist[min(int(v * privacy.BINS), privacy.BINS - 1)] += 1
    return privacy.GroupStats(len(values), sum(round(v * privacy.GRID) for v in values), hist, 0.0, 1.0)


def _p95(xs: list[float]) -> float:
    return sorted(xs)[int(0.95 * len(xs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    args = parser.parse_args()
    rnd = random.Random(2026)
    rows = [["group size", "avg: mean |dev|", "avg: p95 |dev|", "median: mean |dev|", "median: p95 |dev|",
             "attack within 0.05"]]
    for n in (10, 20, 36, 100, 500):
        dev_avg, dev_median, hits = [], [], 0
        for _ in range(args.groups):
            values = [min(max(rnd.gauss(0.65, 0.15), 0.0), 1.0) for _ in range(n)]
            exact = sum(round(v * privacy.GRID) for v in values) / privacy.GRID / n
            before = privacy.release(_stats(values), rnd.randrange)
            after = privacy.noisy_average(_stats(values[1:]), rnd.randrange)
            dev_avg.append(abs(before.average - exact))
            dev_median.append(abs(before.p50 - statistics.median(values)))
            hits += abs(n * before.average - (n - 1) * after - values[0]) <= 0.05
        rows.append([str(n), f"{statistics.fmean(dev_avg):.4f}", f"{_p95(dev_avg):.4f}",
                     f"{statistics.fmean(dev_median):.4f}", f"{_p95(dev_median):.4f}", f"{hits / args.groups:.1%}"])
    mean, hist = (n / d for n, d in (privacy.EPSILON_MEAN, privacy.EPSILON_HISTOGRAM))
    print(f"Peer comparison release (epsilon {mean} on the sum, {hist} on a {privacy.BINS}-bin histogram), "
          f"{args.groups} groups per size")
    print(_common.table(rows))


if __name__ == "__main__":
    main()
