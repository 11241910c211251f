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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from ms8.domain.vocabulary import PEER_K

RandBelow = Callable[[int], int]
# A privacy parameter as an exact ratio (numerator, denominator): the sampler works on integers.
# (Not fractions.Fraction: it imports decimal, a cost every handler importing this would pay.)
Epsilon = tuple[int, int]


def system_randbelow(n: int) -> int:
    """The operating system's randomness (secrets.randbelow), imported on first use only."""
    import secrets

    return secrets.randbelow(n)


K_MIN_GROUP = PEER_K                  # no group of fewer distinct people is released at all
GRID = 10_000                         # sum units per release range (migration 0009's GRID)
BINS = 20                             # histogram bins over the release range (0009's BINS)
EPSILON_MEAN: Epsilon = (1, 1)       # privacy loss of the noisy sum, per release
EPSILON_HISTOGRAM: Epsilon = (1, 1)  # privacy loss of the noisy histogram, per release
EPSILON_RELEASE = EPSILON_MEAN[0] / EPSILON_MEAN[1] + EPSILON_HISTOGRAM[0] / EPSILON_HISTOGRAM[1]
BUDGET_WINDOW = timedelta(days=1)
BUDGET = EPSILON_RELEASE              # per group and rolling day: one fresh release (refreshes are hourly)
DECIMALS = 4


def seeded_randbelow(seed: bytes) -> RandBelow:
    """A deterministic randbelow drawing from SHA-256 in counter mode keyed by `seed` (32 secret
    bytes): unpredictable without the seed, the same stream for the same seed. Uniform by
    rejection (no modulo bias)."""
    import hashlib  # here: only the rollup reads need it

    counter = 0
    buffer = b""

    def take(n: int) -> bytes:
        nonlocal counter, buffer
        while len(buffer) < n:
            buffer += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        out, buffer = buffer[:n], buffer[n:]
        return out

    def randbelow(n: int) -> int:
        if n <= 0:
            raise ValueError("n must be positive")
        bits = n.bit_length()
        nbytes = (bits + 7) // 8
        while True:
            x = int.from_bytes(take(nbytes), "big") >> (8 * nbytes - bits)
            if x < n:
                return x

    return randbelow


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


def discrete_laplace(t: int, s: int = 1, randbelow: RandBelow = system_randbelow) -> int:
    """An integer Z with P(Z = z) proportional to exp(-|z| / (t/s)): scale t/s (CKS20 algorithm 2)."""
    if t <= 0 or s <= 0:
        raise ValueError("the scale must be positive")
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


def laplace_noise(sensitivity: int, epsilon: Epsilon, randbelow: RandBelow) -> int:
    """Noise for a sum that one person moves by at most `sensitivity`: scale sensitivity/epsilon."""
    num, den = epsilon
    return discrete_laplace(sensitivity * den, num, randbelow)


def noisy_average(stats: GroupStats, randbelow: RandBelow = system_randbelow) -> float:
    """The group's average with noise of scale (one range) / EPSILON_MEAN on its sum.

    The count is public (k-anonymity shows it anyway); the sum is what one member moves by at most
    GRID units.
    """
    noisy = stats.sum_units + laplace_noise(GRID, EPSILON_MEAN, randbelow)
    share = min(max(noisy / (stats.user_count * GRID), 0.0), 1.0)
    return stats.low + share * (stats.high - stats.low)


def noisy_histogram(histogram: Sequence[int], randbelow: RandBelow = system_randbelow) -> list[int]:
    """Each bin plus noise of scale 2 / EPSILON_HISTOGRAM (one change moves two bins by one);
    negative counts are read as empty."""
    return [max(n + laplace_noise(2, EPSILON_HISTOGRAM, randbelow), 0) for n in histogram]


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


def release(stats: GroupStats, randbelow: RandBelow = system_randbelow) -> Release:
    """A fresh noisy release of one group (of at least K_MIN_GROUP members)."""
    if stats.user_count < K_MIN_GROUP:
        raise ValueError(f"a group of {stats.user_count} is below k = {K_MIN_GROUP}")
    average = noisy_average(stats, randbelow)
    noisy = noisy_histogram(stats.histogram, randbelow)
    p25, p50, p75 = (quantile(noisy, q, stats.low, stats.high) for q in (0.25, 0.5, 0.75))
    return Release(round(average, DECIMALS), round(p25, DECIMALS), round(p50, DECIMALS), round(p75, DECIMALS),
                   EPSILON_RELEASE)


# --- population rollups, as read by someone who may not see each learner (a trainer reading the
# organization's): noisy figures from sums where each learner adds a bounded amount ---

CAP_COMPLETIONS_PER_DAY = 1           # a learner counts at most this many completions per day of a period
CAP_SECONDS_PER_DAY = 2 * 3600        # ... and at most two hours a day
EPSILON_ROLLUP_EACH: Epsilon = (1, 2)  # per noisy sum; six sums per row
EPSILON_ROLLUP = 6 * EPSILON_ROLLUP_EACH[0] / EPSILON_ROLLUP_EACH[1]
SCORE_UNIT = 1_000_000                # per-learner mean scores are summed in micro-units


@dataclass(frozen=True, slots=True)
class CappedSums:
    """A rollup row's bounded-contribution sums (population_rollups.capped)."""

    learners: int
    active_learners: int
    completions: int
    seconds: int
    scored_learners: int
    score_micros: int


@dataclass(frozen=True, slots=True)
class ProtectedFigures:
    learners: int
    active_learners: int
    active_share: float
    completions: int
    velocity: float
    mean_score: float | None
    minutes_per_active_learner: float | None


def rollup_shown(cell: CappedSums, outside_own: CappedSums | None) -> bool:
    """Whether a reader who may not see each learner gets this row at all: at least k learners
    and k active learners in it and, when the reader sees a part of it individually (a trainer's
    own cohort), at least k learners and k active learners outside that part too (else the row
    minus what they know would be a smaller group)."""
    parts = [cell] if outside_own is None else [cell, outside_own]
    return all(p.learners >= K_MIN_GROUP and p.active_learners >= K_MIN_GROUP for p in parts)


def protect_rollup(cell: CappedSums, days: int, randbelow: RandBelow) -> ProtectedFigures:
    """The row's figures from its capped sums, each sum with discrete Laplace noise of scale
    (one learner's largest contribution) / EPSILON_ROLLUP_EACH. `randbelow` is seeded from the
    row's state (app.release_seeds): the same row always gives the same figures. The mean score
    is shown only when at least k learners have a scored assessment."""
    def noisy(value: int, sensitivity: int) -> int:
        return value + laplace_noise(sensitivity, EPSILON_ROLLUP_EACH, randbelow)

    learners = max(noisy(cell.learners, 1), 1)
    active = min(max(noisy(cell.active_learners, 1), 0), learners)
    completions = max(noisy(cell.completions, CAP_COMPLETIONS_PER_DAY * days), 0)
    seconds = max(noisy(cell.seconds, CAP_SECONDS_PER_DAY * days), 0)
    scored = max(noisy(cell.scored_learners, 1), 1)
    score = max(noisy(cell.score_micros, SCORE_UNIT), 0)
    return ProtectedFigures(
        learners=learners, active_learners=active, active_share=round(active / learners, DECIMALS),
        completions=completions, velocity=round(completions * 7 / (learners * days), DECIMALS),
        mean_score=(round(min(score / SCORE_UNIT / scored, 1.0), DECIMALS)
                    if cell.scored_learners >= K_MIN_GROUP else None),
        minutes_per_active_learner=round(seconds / 60 / active, DECIMALS) if active else None,
    )


def may_release(spent: float, member_left: bool = False) -> bool:
    """Whether a group that spent `spent` in the current window gets a fresh release.

    A group someone left (an erasure, a value aging out) is always released again: an erased
    person's value must leave the published figures at the next refresh. That release is still
    charged, and it is one more release of the same size, so the guarantee per release holds.
    """
    return member_left or spent + EPSILON_RELEASE <= BUDGET + 1e-9
