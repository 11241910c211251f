"""The differencing defence of peer comparison: a noisy release of a group's average and
percentiles (docs/SECURITY.md, "Peer comparison").

Each release adds discrete Laplace noise to the group's sum (in integer grid units of the release
range) and to each bin of its histogram; the percentiles are read from the noisy histogram. One
member changing their value (or leaving, or joining) moves the sum by at most one range and two
bins by one: with the noise scales below, each release is epsilon-differentially private for
every member's value (epsilon = EPSILON_MEAN + EPSILON_HISTOGRAM). Fresh noise is drawn only when
the group's state changed (the caller compares digests) and only while the group's budget over a
rolling window allows; otherwise the previous release stands, so repeated refreshes cannot be
averaged.

The sampler is exact (integer arithmetic only, Canonne, Kamath and Steinke 2020, "The discrete
Gaussian for differential privacy", algorithms 1 and 2): no floating-point noise whose low bits
could leak the value. It draws from any `randbelow` source: `secrets.randbelow` in production, a
seeded `random.Random` in tests.

Pure: no database.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction

RandBelow = Callable[[int], int]

K_MIN_GROUP = 10                      # no group of fewer distinct people is released at all
GRID = 10_000                         # sum units per release range (migration 0009's GRID)
BINS = 20                             # histogram bins over the release range (0009's BINS)
EPSILON_MEAN = Fraction(1)            # privacy loss of the noisy sum, per release
EPSILON_HISTOGRAM = Fraction(1)       # privacy loss of the noisy histogram, per release
EPSILON_RELEASE = EPSILON_MEAN + EPSILON_HISTOGRAM
BUDGET_WINDOW = timedelta(days=7)
BUDGET = 7 * EPSILON_RELEASE          # per group and rolling window: one fresh release a day
DECIMALS = 4


def _bernoulli_exp_le1(num: int, den: int, randbelow: RandBelow) -> bool:
    """True with probability exp(-num/den), for 0 <= num <= den (CKS20 algorithm 1)."""
    k = 1
    while randbelow(den * k) < num:  # Bernoulli(gamma / k)
        k += 1
    return k % 2 == 1


def bernoulli_exp(num: int, den: int, randbelow: RandBelow) -> bool:
    """True with probability exp(-num/den), for num >= 0, den >= 1."""
    while num > den:
        if not _bernoulli_exp_le1(1, 1, randbelow):
            return False
        num -= den
    return _bernoulli_exp_le1(num, den, randbelow)


def discrete_laplace(scale: Fraction, randbelow: RandBelow = secrets.randbelow) -> int:
    """An integer Z with P(Z = z) proportional to exp(-|z| / scale) (CKS20 algorithm 2)."""
    if scale <= 0:
        raise ValueError("the scale must be positive")
    t, s = scale.numerator, scale.denominator  # scale = t / s
    while True:
        u = randbelow(t)
        if not bernoulli_exp(u, t, randbelow):
            continue
        v = 0
        while bernoulli_exp(1, 1, randbelow):
            v += 1
        y = (u + t * v) // s
        negative = randbelow(2) == 1
        if negative and y == 0:
            continue
        return -y if negative else y


@dataclass(frozen=True, slots=True)
class GroupStats:
    """A group's exact statistics, as the comparison view holds them.

    `sum_units`: the sum of the members' values mapped to 0..GRID over [low, high];
    `histogram`: members per bin, BINS bins over [low, high].
    """

    user_count: int
    sum_units: int
    histogram: Sequence[int]
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Release:
    average: float
    p25: float
    p50: float
    p75: float
    epsilon: float


def dense_histogram(bins: Sequence[int], counts: Sequence[int]) -> list[int]:
    """The view's sparse histogram (1-based bin numbers and their counts) as BINS counts."""
    dense = [0] * BINS
    for b, n in zip(bins, counts, strict=True):
        dense[b - 1] += n
    return dense


def noisy_average(stats: GroupStats, randbelow: RandBelow = secrets.randbelow) -> float:
    """The group's average with noise of scale (one range) / EPSILON_MEAN on its sum.

    The count is public (k-anonymity shows it anyway); the sum is what one member moves by at most
    GRID units.
    """
    noisy = stats.sum_units + discrete_laplace(GRID / EPSILON_MEAN, randbelow)
    share = min(max(noisy / (stats.user_count * GRID), 0.0), 1.0)
    return stats.low + share * (stats.high - stats.low)


def noisy_histogram(histogram: Sequence[int], randbelow: RandBelow = secrets.randbelow) -> list[int]:
    """Each bin plus noise of scale 2 / EPSILON_HISTOGRAM (one change moves two bins by one);
    negative counts are read as empty."""
    scale = 2 / EPSILON_HISTOGRAM
    return [max(n + discrete_laplace(scale, randbelow), 0) for n in histogram]


def quantile(histogram: Sequence[int], q: float, low: float, high: float) -> float:
    """The q-quantile of a histogram over [low, high], interpolated linearly inside its bin."""
    total = sum(histogram)
    width = (high - low) / len(histogram)
    if total == 0:
        return low + (high - low) * q
    target = q * total
    before = 0
    for i, n in enumerate(histogram):
        if n and before + n >= target:
            return low + width * (i + (target - before) / n)
        before += n
    return high


def release(stats: GroupStats, randbelow: RandBelow = secrets.randbelow) -> Release:
    """A fresh noisy release of one group (of at least K_MIN_GROUP members)."""
    if stats.user_count < K_MIN_GROUP:
        raise ValueError(f"a group of {stats.user_count} is below k = {K_MIN_GROUP}")
    average = noisy_average(stats, randbelow)
    noisy = noisy_histogram(stats.histogram, randbelow)
    p25, p50, p75 = (quantile(noisy, q, stats.low, stats.high) for q in (0.25, 0.5, 0.75))
    return Release(round(average, DECIMALS), round(p25, DECIMALS), round(p50, DECIMALS), round(p75, DECIMALS),
                   float(EPSILON_RELEASE))


def may_release(spent: float) -> bool:
    """Whether a group that spent `spent` in the current window can afford one more release."""
    return spent + float(EPSILON_RELEASE) <= float(BUDGET) + 1e-9
