"""Statistics over seeds: means with 95% t intervals, paired differences and the verdict rule.

Every number a study reports is a mean over seeds with a Student-t confidence interval. Two
configurations trained with the same seeds share initialisation and batch order, so their
difference is taken per seed (paired); otherwise Welch's interval is used. A claim becomes a
region of a measured quantity, and `verdict` compares the quantity's interval with that region.
"""

import dataclasses
import math

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"

VERDICT_RULE = (
    "Each claim is turned into a region of a measured quantity (for example 'A beats B' is "
    "accuracy(A) - accuracy(B) in (0, +inf); 'about 1.68x' is a ratio in (1.68/1.25, 1.68*1.25)). "
    "The quantity is estimated over seeds with a two-sided 95% Student-t interval: per-seed "
    "differences when both sides share seeds (paired), Welch's interval otherwise, per-seed log "
    "ratios for ratios, per-seed least-squares slopes for trends. The claim is **supported** when "
    "the whole interval lies inside the region, **contradicted** when the interval and the region "
    "do not overlap, and **inconclusive** otherwise (including when fewer than two seeds finished, "
    "which gives an unbounded interval). A claim made of several parts is contradicted if any part "
    "is, supported if every part is, and inconclusive otherwise."
)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean over seeds and its two-sided confidence interval [low, high]."""

    mean: float
    low: float
    high: float
    n: int
    sd: float = math.nan

    def format(self, spec=".4g", scale=1.0):
        """'mean [low, high]' in format `spec` after multiplying by `scale` (100: points)."""
        m, lo, hi = (v * scale for v in (self.mean, self.low, self.high))
        return f"{m:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def t_interval(values, confidence=CONFIDENCE):
    """Mean of `values` (one per seed) with the Student-t interval; unbounded when n < 2."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("values is empty; an estimate needs at least one finished seed.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"values must be finite, got {x.tolist()}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie in (0, 1), e.g. 0.95.")
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(mean, -math.inf, math.inf, 1)
    sd = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=x.size - 1)) * sd / math.sqrt(x.size)
    return Estimate(mean, mean - half, mean + half, int(x.size), sd)


def welch_interval(a, b, confidence=CONFIDENCE):
    """Interval of mean(a) - mean(b) for independent samples (Welch-Satterthwaite df)."""
    a, b = (np.asarray(v, dtype=np.float64).ravel() for v in (a, b))
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both samples need values, got sizes {a.size} and {b.size}.")
    mean = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Estimate(mean, -math.inf, math.inf, min(a.size, b.size))
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Estimate(mean, mean, mean, min(a.size, b.size), 0.0)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=df)) * se
    return Estimate(mean, mean - half, mean + half, min(a.size, b.size), se)


def difference(a, b, confidence=CONFIDENCE):
    """Interval of A - B from {seed: value} dicts: paired over shared seeds when >= 2 are shared."""
    shared = sorted(set(a) & set(b))
    if len(shared) >= 2:
        return t_interval([a[s] - b[s] for s in shared], confidence)
    return welch_interval(list(a.values()), list(b.values()), confidence)


def ratio(a, b, confidence=CONFIDENCE):
    """Geometric-mean ratio A / B with its interval, from per-seed log ratios (paired if shared)."""
    for name, d in (("a", a), ("b", b)):
        if any(v <= 0 for v in d.values()):
            raise ValueError(f"{name} must hold positive values for a ratio, got {d}.")
    log_a = {s: math.log(v) for s, v in a.items()}
    log_b = {s: math.log(v) for s, v in b.items()}
    est = difference(log_a, log_b, confidence)
    return Estimate(math.exp(est.mean), math.exp(est.low), math.exp(est.high), est.n, est.sd)


def slope(xs, series, confidence=CONFIDENCE):
    """Per-seed least-squares slope of y on x; `series` is {seed: [y per x]} (NaN = missing)."""
    x = np.asarray(xs, dtype=np.float64)
    slopes = []
    for ys in series.values():
        y = np.asarray(ys, dtype=np.float64)
        ok = np.isfinite(y)
        if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
            dx, dy = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()  # centred: flat y gives exactly 0
            slopes.append(float(dx @ dy / (dx @ dx)))
    if not slopes:
        raise ValueError(f"a slope needs two distinct x with values for some seed; x={x.tolist()}.")
    return t_interval(slopes, confidence)


def verdict(estimate, low=-math.inf, high=math.inf):
    """Verdict on the claim that the quantity lies in the open region (low, high): VERDICT_RULE."""
    if not low < high:
        raise ValueError(f"region ({low}, {high}) is empty; low must be below high.")
    if low < estimate.low and estimate.high < high:
        return SUPPORTED
    if estimate.high <= low or estimate.low >= high:
        return CONTRADICTED
    return INCONCLUSIVE


def combine(verdicts):
    """One verdict for a claim made of several parts (see VERDICT_RULE)."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("combine needs at least one verdict.")
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return INCONCLUSIVE


class MissingData(KeyError):
    """A trial or metric a comparison needs has no finished seed."""


class Table:
    """Per-seed scalar metrics of a study's trials, with estimates over seeds.

    `rows`: dicts with `trial`, `seed`, `params` (sweep, case, axis values) and `metrics`
    (name -> float; NaN or None when a run did not produce it). Trial order is kept.
    """

    def __init__(self, rows):
        self._params, self._values = {}, {}
        for row in rows:
            self._params.setdefault(row["trial"], dict(row["params"]))
            for metric, value in row["metrics"].items():
                if value is not None and math.isfinite(value):
                    cell = self._values.setdefault((row["trial"], metric), {})
                    cell[row["seed"]] = float(value)

    def trials(self, **match):
        """Trials whose params equal every `match` item, in study order."""
        return [t for t, p in self._params.items() if all(p.get(k) == v for k, v in match.items())]

    def params(self, trial):
        return self._params[trial]

    def metrics(self):
        """Every metric name with at least one value, sorted."""
        return sorted({m for _, m in self._values})

    def values(self, trial, metric):
        """{seed: value}; MissingData when the trial has no finished seed with this metric."""
        if (trial, metric) not in self._values:
            raise MissingData(f"no value of {metric!r} for trial {trial!r}")
        return dict(self._values[trial, metric])

    def cell(self, trial, metric):
        """Mean over seeds with its interval."""
        return t_interval(list(self.values(trial, metric).values()))

    def difference(self, a, b, metric):
        """metric(a) - metric(b), paired over shared seeds."""
        return difference(self.values(a, metric), self.values(b, metric))

    def ratio(self, a, b, metric):
        """metric(a) / metric(b) as a geometric mean over (paired) seeds."""
        return ratio(self.values(a, metric), self.values(b, metric))

    def pooled(self, trials, metric, reduce=np.mean):
        """{seed: reduce(metric over `trials`)} for the seeds every trial has."""
        if not trials:
            raise MissingData(f"no trials to pool for {metric!r}")
        cells = [self.values(t, metric) for t in trials]
        seeds = sorted(set.intersection(*(set(c) for c in cells)))
        if not seeds:
            raise MissingData(f"trials {trials} share no seed with {metric!r}")
        return {s: float(reduce([c[s] for c in cells])) for s in seeds}

    def series(self, trials, metric):
        """{seed: [value per trial, NaN where missing]} for a trend over `trials`."""
        cells = [self._values.get((t, metric), {}) for t in trials]
        seeds = sorted(set().union(*cells))
        if not seeds:
            raise MissingData(f"no value of {metric!r} for trials {trials}")
        return {s: [c.get(s, math.nan) for c in cells] for s in seeds}
