"""The noisy release of peer groups (ms8.domain.privacy): the exact sampler, the percentiles, the
guarantee against differencing, and the budget. Seeded random sources make every run the same."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from ms8.domain import privacy


def _rng(seed: int) -> privacy.RandBelow:
    return random.Random(seed).randrange


@pytest.mark.parametrize(("num", "den"), [(0, 1), (1, 2), (1, 1), (3, 2), (5, 1)])
def test_bernoulli_exp_has_probability_exp_minus_gamma(num: int, den: int) -> None:
    draw = _rng(num * 10 + den)
    n = 20_000
    hits = sum(privacy.bernoulli_exp(num, den, draw) for _ in range(n))
    p = math.exp(-num / den)
    assert abs(hits / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-9


@pytest.mark.parametrize(("t", "s"), [(1, 2), (2, 1), (10_000, 1)])
def test_discrete_laplace_is_centred_with_the_right_spread(t: int, s: int) -> None:
    draw = _rng(t * 7 + s)
    samples = [privacy.discrete_laplace(t, s, draw) for _ in range(20_000)]
    q = math.exp(-s / t)
    # P(Z = 0) = (1 - q) / (1 + q); E|Z| = 2q / (1 - q^2)
    p0 = (1 - q) / (1 + q)
    assert abs(samples.count(0) / len(samples) - p0) < 0.02
    mean_abs = 2 * q / (1 - q * q)
    assert statistics.fmean(abs(z) for z in samples) == pytest.approx(mean_abs, rel=0.05)
    assert abs(statistics.fmean(samples)) < 0.05 * mean_abs + 0.02


def test_the_seeded_source_is_uniform_and_the_same_for_the_same_seed() -> None:
    a, b = privacy.seeded_randbelow(b"x" * 32), privacy.seeded_randbelow(b"x" * 32)
    draws = [a(10) for _ in range(10_000)]
    assert draws[:50] == [b(10) for _ in range(50)]
    assert all(abs(draws.count(d) - 1000) < 130 for d in range(10))
    assert privacy.seeded_randbelow(b"y" * 32)(10**6) != privacy.seeded_randbelow(b"x" * 32)(10**6)


def test_a_protected_rollup_is_stable_for_one_state_and_hides_one_learner() -> None:
    cell = privacy.CappedSums(learners=20, active_learners=15, completions=40, seconds=36_000,
                              scored_learners=12, score_micros=8_400_000)
    first = privacy.protect_rollup(cell, 7, privacy.seeded_randbelow(b"s" * 32))
    assert first == privacy.protect_rollup(cell, 7, privacy.seeded_randbelow(b"s" * 32))
    assert first.mean_score is not None and 0 <= first.mean_score <= 1 and first.active_learners <= first.learners
    few_scored = privacy.CappedSums(20, 15, 40, 36_000, 9, 6_300_000)
    assert privacy.protect_rollup(few_scored, 7, privacy.seeded_randbelow(b"s" * 32)).mean_score is None
    assert not privacy.rollup_shown(privacy.CappedSums(20, 9, 1, 1, 1, 1), None)
    assert not privacy.rollup_shown(cell, privacy.CappedSums(9, 9, 0, 0, 0, 0))
    assert privacy.rollup_shown(cell, privacy.CappedSums(10, 10, 0, 0, 0, 0))
    # differencing the score total over one learner leaving: rarely within 0.05
    rnd = random.Random(5)
    after = privacy.CappedSums(19, 14, 40, 36_000, 11, 7_600_000)  # a learner with mean 0.8 left
    hits = 0
    for _ in range(1000):
        x = privacy.protect_rollup(cell, 7, rnd.randrange)
        y = privacy.protect_rollup(after, 7, rnd.randrange)
        guess = (x.learners * (x.mean_score or 0)) - (y.learners * (y.mean_score or 0))
        hits += abs(guess - 0.8) <= 0.05
    assert hits < 50


def test_discrete_laplace_refuses_a_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="positive"):
        privacy.discrete_laplace(0)


def test_quantiles_interpolate_inside_their_bin() -> None:
    hist = [0] * privacy.BINS
    hist[4] = 10  # ten values in [0.20, 0.25)
    assert privacy.quantile(hist, 0.5, 0.0, 1.0) == pytest.approx(0.225)
    assert privacy.quantile(hist, 0.25, 0.0, 1.0) == pytest.approx(0.2125)
    assert privacy.quantile([0] * privacy.BINS, 0.5, 0.0, 1.0) == 0.5  # an empty (noisy) histogram
    assert privacy.dense_histogram([1, 20], [3, 4]) == [3] + [0] * 18 + [4]


def _stats(values: list[float], low: float = 0.0, high: float = 1.0) -> privacy.GroupStats:
    units = sum(round((v - low) / (high - low) * privacy.GRID) for v in values)
    hist = [0] * privacy.BINS
    for v in values:
        hist[min(int((v - low) / (high - low) * privacy.BINS), privacy.BINS - 1)] += 1
    return privacy.GroupStats(len(values), units, hist, low, high)


def test_a_release_is_in_range_ordered_and_never_a_members_exact_value() -> None:
    values = [round(0.3 + 0.4 * i / 35, 4) for i in range(36)]
    draw = _rng(3)
    for _ in range(300):
        out = privacy.release(_stats(values), draw)
        assert 0.0 <= out.p25 <= out.p50 <= out.p75 <= 1.0 and 0.0 <= out.average <= 1.0
        assert out.epsilon == 2.0
    # the median of an odd group is one member's value; the release's is not (but for chance)
    odd = values[:35]
    medians = [privacy.release(_stats(odd), draw).p50 for _ in range(300)]
    assert sum(m == statistics.median(odd) for m in medians) <= 3


def test_a_group_below_k_is_never_released() -> None:
    with pytest.raises(ValueError, match="below k"):
        privacy.release(_stats([0.5] * 9))


def test_differencing_two_releases_does_not_recover_the_member() -> None:
    """36a - 35b over a release before and after one member leaves: the member's value comes out
    within 0.05 about 2.5% of the time (density of the difference of two Laplace draws of scale
    1 / EPSILON_MEAN at 0, times 0.1); the typical error is about 1.5 ranges."""
    rnd = random.Random(36)
    draw = rnd.randrange
    hits, errors = 0, []
    trials = 2000
    for _ in range(trials):
        values = [round(rnd.uniform(0.2, 0.9), 4) for _ in range(36)]
        a = privacy.noisy_average(_stats(values), draw)
        b = privacy.noisy_average(_stats(values[1:]), draw)
        error = 36 * a - 35 * b - values[0]
        errors.append(error)
        hits += abs(error) <= 0.05
    assert hits / trials < 0.05
    assert statistics.fmean(abs(e) for e in errors) > 0.8


def test_the_honest_error_of_the_average_shrinks_with_the_group() -> None:
    """Mean absolute deviation of the released average from the true one: about range / (n * eps)."""
    rnd = random.Random(10)
    for n in (10, 36, 100):
        values = [rnd.uniform(0, 1) for _ in range(n)]
        exact = sum(round(v * privacy.GRID) for v in values) / privacy.GRID / n
        deviation = statistics.fmean(abs(privacy.noisy_average(_stats(values), rnd.randrange) - exact)
                                     for _ in range(3000))
        assert deviation == pytest.approx(privacy.EPSILON_MEAN[1] / (n * privacy.EPSILON_MEAN[0]), rel=0.15)


def test_the_budget_allows_one_release_a_day_and_one_more_when_someone_left() -> None:
    spent = 0.0
    releases = 0
    while privacy.may_release(spent):
        spent += privacy.EPSILON_RELEASE
        releases += 1
    assert (releases, privacy.BUDGET_WINDOW.days) == (1, 1)
    assert privacy.may_release(spent, member_left=True)
