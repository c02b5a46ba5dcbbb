"""Statistics over seeds: intervals against scipy's t-tests, the verdict rule on known answers."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from dropout_study import stats


def test_t_interval_matches_the_textbook_formula():
    est = stats.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, df=2) * sd / sqrt(n), sd = 1
    assert est.mean == 2.0 and est.n == 3 and est.sd == pytest.approx(1.0)
    assert (est.low, est.high) == pytest.approx((2.0 - half, 2.0 + half))


def test_t_interval_matches_scipy_one_sample_test():
    x = [0.81, 0.84, 0.79, 0.86, 0.83]
    ci = scipy_stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    est = stats.t_interval(x)
    assert (est.low, est.high) == pytest.approx((ci.low, ci.high))


def test_one_seed_gives_an_unbounded_interval():
    est = stats.t_interval([0.7])
    assert est.mean == 0.7 and est.low == -math.inf and est.high == math.inf
    assert stats.verdict(est, 0.0) == stats.INCONCLUSIVE


@pytest.mark.parametrize("bad", [[], [1.0, math.nan]])
def test_t_interval_rejects_empty_or_nan(bad):
    with pytest.raises(ValueError, match="values"):
        stats.t_interval(bad)


def test_difference_pairs_shared_seeds_like_scipy_ttest_rel():
    a = {0: 1.0, 1: 2.0, 2: 3.5}
    b = {0: 0.5, 1: 0.7, 2: 0.2}
    ci = scipy_stats.ttest_rel([1.0, 2.0, 3.5], [0.5, 0.7, 0.2]).confidence_interval(0.95)
    est = stats.difference(a, b)
    assert est.mean == pytest.approx(5.1 / 3)
    assert (est.low, est.high) == pytest.approx((ci.low, ci.high))


def test_difference_without_shared_seeds_is_welch():
    a = {0: 1.0, 1: 2.0, 2: 3.5}
    b = {10: 0.5, 11: 0.7, 12: 0.2, 13: 0.1}
    ci = scipy_stats.ttest_ind([1.0, 2.0, 3.5], [0.5, 0.7, 0.2, 0.1], equal_var=False)
    ci = ci.confidence_interval(0.95)
    est = stats.difference(a, b)
    assert (est.low, est.high) == pytest.approx((ci.low, ci.high))


def test_pairing_removes_the_seed_effect():
    """A +0.01 gain on top of large seed-to-seed spread: paired sees it, Welch does not."""
    base = {s: 0.80 + 0.05 * s for s in range(3)}
    better = {s: v + 0.01 + 0.0005 * (-1) ** s for s, v in base.items()}
    paired = stats.difference(better, base)
    assert paired.mean == pytest.approx(0.01, abs=5e-4) and paired.sd < 1e-3
    assert stats.verdict(paired, 0.0) == stats.SUPPORTED
    unpaired = stats.welch_interval(list(better.values()), list(base.values()))
    assert stats.verdict(unpaired, 0.0) == stats.INCONCLUSIVE


def test_tied_seeds_never_decide_by_a_zero_width_interval():
    """Every seed gives the same epoch: the t interval has no width, so a sign test decides."""
    three = stats.t_interval([2.0] * 3)
    assert three.se == 0.0 and stats.verdict(three, 5.5, 15.5) == stats.INCONCLUSIVE
    assert stats.p_beyond(three, 5.5, "below") == pytest.approx(0.5**3)
    six = stats.t_interval([2.0] * 6)  # 0.5**6 = 0.016 < 0.025
    assert stats.verdict(six, 5.5, 15.5) == stats.CONTRADICTED
    assert math.isnan(stats.minimal_detectable_effect(six))


def test_discrete_metrics_are_known_to_half_a_step():
    est = stats.t_interval([4.0, 5.0, 6.0], slack=0.5)
    plain = stats.t_interval([4.0, 5.0, 6.0])
    assert (est.low, est.high) == pytest.approx((plain.low - 0.5, plain.high + 0.5))
    diff = stats.difference({0: 5.0, 1: 6.0, 2: 8.0}, {0: 4.0, 1: 4.0, 2: 5.0}, slack=0.5)
    assert diff.slack == 1.0  # a difference of two rounded values: a whole step
    # The widening goes against the evidence in both directions.
    unwidened = dataclasses.replace(diff, slack=0.0)
    assert stats.p_beyond(diff, 0.0, "above") > stats.p_beyond(unwidened, 0.0, "above")


def test_exact_quantities_are_compared_as_they_are():
    est = stats.slope([0.0, 0.5, 0.9], {s: [1841162.0] * 3 for s in range(3)}, exact=True)
    assert est.exact and est.mean == 0.0
    assert stats.verdict(est, high=0.0) == stats.CONTRADICTED  # claim "falls": slope < 0
    assert stats.verdict(est, low=-1.0, high=1.0) == stats.SUPPORTED
    with pytest.raises(ValueError, match="must not vary"):
        stats.t_interval([1.0, 2.0], exact=True)


def test_p_values_agree_with_the_interval_rule():
    rng = np.random.default_rng(1)
    for _ in range(200):
        est = stats.t_interval(rng.normal(rng.normal(), 1.0, size=rng.integers(2, 7)))
        low = float(rng.normal())
        by_interval = (
            stats.SUPPORTED
            if est.low > low
            else stats.CONTRADICTED
            if est.high <= low
            else stats.INCONCLUSIVE
        )
        assert stats.verdict(est, low) == by_interval


def test_minimal_detectable_effect_is_t_quantiles_times_the_standard_error():
    est = stats.t_interval([0.1, 0.3, 0.2, 0.4])
    t = scipy_stats.t.ppf(0.975, 3) + scipy_stats.t.ppf(0.8, 3)
    assert stats.minimal_detectable_effect(est) == pytest.approx(t * est.sd / 2)
    assert stats.minimal_detectable_effect(stats.t_interval([0.3])) == math.inf


def test_holm_adjusts_in_step_down_order():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def _part(p_outside, verdict):
    return stats.Test(p_inside=1.0, p_outside=p_outside, verdict=verdict)


def test_a_claim_is_contradicted_only_after_holm():
    s, c, i = stats.SUPPORTED, stats.CONTRADICTED, stats.INCONCLUSIVE
    # Alone, p = 0.02 contradicts (<= 0.025); among 4 parts Holm needs <= 0.025 / 4.
    assert stats.combine([_part(0.02, c)])[0] == c
    assert stats.combine([_part(0.02, c)] + [_part(0.5, i)] * 3)[0] == i
    assert stats.combine([_part(0.005, c)] + [_part(0.5, i)] * 3)[0] == c
    assert stats.combine([_part(1.0, s)] * 3)[0] == s
    assert stats.combine([_part(1.0, s), _part(0.5, i)])[0] == i


def test_ratio_is_the_geometric_mean_of_per_seed_ratios():
    b = {0: 10.0, 1: 12.0, 2: 11.0}
    est = stats.ratio({s: 1.68 * v for s, v in b.items()}, b)
    assert est.mean == pytest.approx(1.68) and est.low == pytest.approx(1.68)
    with pytest.raises(ValueError, match="positive"):
        stats.ratio({0: 0.0, 1: 1.0}, b)


def test_slope_recovers_a_known_trend_and_skips_missing_points():
    xs = [0.1, 0.3, 0.5, 0.7, 0.9]
    series = {s: [0.9 - 0.2 * x + 0.01 * s for x in xs] for s in range(3)}
    series[2][1] = math.nan
    est = stats.slope(xs, series)
    assert est.mean == pytest.approx(-0.2) and est.high == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="slope"):
        stats.slope(xs, {0: [math.nan] * 4 + [1.0]})


def test_slope_of_a_constant_is_exactly_zero():
    # A parameter count that does not change with the rate: the interval is [0, 0], so the claim
    # "it falls" (slope < 0) is contradicted, not left to round-off.
    est = stats.slope([0.0, 0.3, 0.5, 0.7, 0.9], {s: [1841162.0] * 5 for s in range(3)})
    assert (est.mean, est.low, est.high) == (0.0, 0.0, 0.0)


def _synthetic(effect, noise, seeds=5, seed=0):
    """Per-seed accuracies of A and B with a known true difference `effect` (paired noise)."""
    rng = np.random.default_rng(seed)
    base = 0.8 + 0.03 * rng.standard_normal(seeds)
    a = base + effect + noise * rng.standard_normal(seeds)
    return dict(enumerate(a)), dict(enumerate(base))


@pytest.mark.parametrize(
    "effect, noise, region, expected",
    [
        (0.05, 0.005, (0.0, math.inf), stats.SUPPORTED),  # clear gain, claim "A beats B"
        (-0.05, 0.005, (0.0, math.inf), stats.CONTRADICTED),  # clear loss
        (0.0, 0.02, (0.0, math.inf), stats.INCONCLUSIVE),  # noise only
        (0.001, 0.002, (-0.01, 0.01), stats.SUPPORTED),  # "similar" within one point
        (0.05, 0.005, (-0.01, 0.01), stats.CONTRADICTED),  # far from similar
    ],
)
def test_verdict_on_synthetic_metrics_with_known_answers(effect, noise, region, expected):
    a, b = _synthetic(effect, noise)
    assert stats.verdict(stats.difference(a, b), *region) == expected


def test_verdict_regions_are_open():
    point = stats.Estimate(0.0, 0.0, 0.0, 3, 0.0, exact=True)  # e.g. identical parameter counts
    assert stats.verdict(point, high=0.0) == stats.CONTRADICTED  # claim "falls": slope < 0
    assert stats.verdict(point, low=-1.0, high=1.0) == stats.SUPPORTED
    edge = stats.t_interval([0.4, 0.5, 0.6])
    assert stats.verdict(edge, low=edge.low + 1e-9) == stats.INCONCLUSIVE
    with pytest.raises(ValueError, match="empty"):
        stats.verdict(point, 1.0, 1.0)


def test_combine_needs_parts():
    with pytest.raises(ValueError):
        stats.combine([])
