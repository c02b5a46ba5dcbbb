"""Statistics over seeds: means with 95% t intervals, paired differences and the verdict rule.

Every number a study reports is a mean over seeds with a Student-t confidence interval. Two
configurations trained with the same seeds share initialisation and batch order, so their
difference is taken per seed (paired); otherwise Welch's interval is used. A claim becomes a
region of a measured quantity, and `test` decides it with one-sided t tests at the region's
bounds (the same decision as comparing the 95% interval with the region).
"""

import contextlib
import dataclasses
import math

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
ALPHA = (1 - CONFIDENCE) / 2  # one-sided level of each bound's test: 0.025
POWER = 0.8  # the power at which the minimal detectable effect is stated
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
UNTESTED = "untested"

VERDICT_RULE = (
    "Each claim is turned into regions of measured quantities (for example 'A beats B' is "
    "accuracy(A) - accuracy(B) in (0, +inf); 'about 1.68x' is a ratio in (1.68/1.25, 1.68*1.25)). "
    "Each quantity is estimated over seeds with a Student-t interval: per-seed differences when "
    "both sides share seeds (paired), Welch's interval otherwise, per-seed log ratios for ratios, "
    "per-seed least-squares slopes for trends. A metric counted in whole steps (an epoch number) "
    "is known only to half a step, so its interval is widened by that much on each side (a whole "
    "step for a difference of two such metrics). A part is **supported** when its two-sided 95% "
    "interval lies inside the region (one-sided tests at 2.5% at the region's bounds), "
    "**contradicted** when the interval and the region do not overlap, **inconclusive** "
    "otherwise. A zero-width interval never decides: when every seed gave the same value of a "
    "measured quantity, a sign test over the seeds replaces the t test (it needs 6 seeds on one "
    "side to decide at 2.5%); only quantities fixed by the config (a parameter count) are compared "
    "exactly. A claim of several parts is **supported** when every part is (an intersection-union "
    "test, no correction needed), **contradicted** when a part is contradicted after a Holm "
    "correction over the parts, and **inconclusive** otherwise. A claim is **untested** when its "
    "runs fail one of its validity conditions (for example, still improving in the last fifth "
    "of training); then no part can support or contradict it. The minimal detectable effect (MDE) "
    "of a part is the distance from the region's bound that the part would detect with 80% power "
    "at the measured seed-to-seed spread: (t_0.975 + t_0.8) x standard error, plus the widening."
)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean over seeds, its two-sided interval [low, high], and what its tests need.

    `se` and `df` are on the test scale (log for ratios, `log=True`); `slack` is the widening of
    a discrete metric; `exact` marks a quantity fixed by the config (no spread, compared as is).
    """

    mean: float
    low: float
    high: float
    n: int
    sd: float = math.nan
    se: float = math.nan
    df: float = math.nan
    slack: float = 0.0
    log: bool = False
    exact: bool = False

    def format(self, spec=".4g", scale=1.0):
        """'mean [low, high]' in format `spec` after multiplying by `scale` (100: points)."""
        m, lo, hi = (v * scale for v in (self.mean, self.low, self.high))
        if self.exact:
            return f"{m:{spec}} (exact)"
        return f"{m:{spec}} [{lo:{spec}}, {hi:{spec}}]"

    def centre(self):
        """The mean on the test scale."""
        return math.log(self.mean) if self.log else self.mean


def _t(probability, df):
    return float(scipy_stats.t.ppf(probability, df=df))


def _from_centre(centre, se, df, n, *, sd=math.nan, slack=0.0, confidence=CONFIDENCE):
    half = _t(0.5 + confidence / 2, df) * se + slack
    return Estimate(centre, centre - half, centre + half, n, sd, se, df, slack)


def t_interval(values, confidence=CONFIDENCE, *, slack=0.0, exact=False):
    """Mean of `values` (one per seed) with the Student-t interval; unbounded when n < 2.

    `slack` widens the interval on each side (half the step of a discrete metric); `exact`
    marks values fixed by the config, which must then all be equal.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("values is empty; an estimate needs at least one finished seed.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"values must be finite, got {x.tolist()}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie in (0, 1), e.g. 0.95.")
    mean = float(x.mean())
    if exact:
        if np.ptp(x) != 0:
            raise ValueError(f"exact values must not vary over seeds, got {x.tolist()}.")
        return Estimate(mean, mean, mean, int(x.size), 0.0, 0.0, x.size - 1.0, exact=True)
    if x.size < 2:
        return Estimate(mean, -math.inf, math.inf, 1, slack=slack)
    sd = float(x.std(ddof=1))
    se = sd / math.sqrt(x.size)
    return _from_centre(
        mean, se, x.size - 1.0, int(x.size), sd=sd, slack=slack, confidence=confidence
    )


def welch_interval(a, b, confidence=CONFIDENCE, *, slack=0.0):
    """Interval of mean(a) - mean(b) for independent samples (Welch-Satterthwaite df)."""
    a, b = (np.asarray(v, dtype=np.float64).ravel() for v in (a, b))
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both samples need values, got sizes {a.size} and {b.size}.")
    mean = float(a.mean() - b.mean())
    n = min(a.size, b.size)
    if a.size < 2 or b.size < 2:
        return Estimate(mean, -math.inf, math.inf, n, slack=slack)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return _from_centre(mean, 0.0, a.size + b.size - 2.0, n, sd=0.0, slack=slack)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return _from_centre(mean, se, df, n, sd=se, slack=slack, confidence=confidence)


def difference(a, b, confidence=CONFIDENCE, *, slack=0.0, exact=False):
    """Interval of A - B from {seed: value} dicts: paired over shared seeds when >= 2 are shared.

    `slack` is each side's widening; the difference's is twice that.
    """
    shared = sorted(set(a) & set(b))
    if len(shared) >= 2 or (exact and shared):
        diffs = [a[s] - b[s] for s in shared]
        return t_interval(diffs, confidence, slack=2 * slack, exact=exact)
    return welch_interval(list(a.values()), list(b.values()), confidence, slack=2 * slack)


def ratio(a, b, confidence=CONFIDENCE):
    """Geometric-mean ratio A / B with its interval, from per-seed log ratios (paired if shared)."""
    for name, d in (("a", a), ("b", b)):
        if any(v <= 0 for v in d.values()):
            raise ValueError(f"{name} must hold positive values for a ratio, got {d}.")
    log_a = {s: math.log(v) for s, v in a.items()}
    log_b = {s: math.log(v) for s, v in b.items()}
    est = difference(log_a, log_b, confidence)
    return dataclasses.replace(
        est, mean=math.exp(est.mean), low=math.exp(est.low), high=math.exp(est.high), log=True
    )


def slope(xs, series, confidence=CONFIDENCE, *, exact=False):
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
    return t_interval(slopes, confidence, exact=exact)


def _bound(estimate, bound):
    return math.log(bound) if estimate.log and bound > 0 else (-math.inf if estimate.log else bound)


def p_beyond(estimate, bound, side):
    """One-sided p-value of the evidence that the quantity lies `side` ('below', 'above') `bound`.

    t test with the interval's widening in the quantity's favour; a sign test when every seed
    gave the same value; exact quantities give 0 or 1; an infinite bound can never be passed.
    """
    if side not in ("below", "above"):
        raise ValueError(f"side={side!r} must be 'below' or 'above'.")
    if math.isinf(bound):
        return 1.0
    b = _bound(estimate, bound)
    sign = -1.0 if side == "below" else 1.0
    # Distance past the bound on `side`, after giving the slack to the other side.
    distance = sign * (estimate.centre() - b) - estimate.slack
    if estimate.exact:
        return 0.0 if sign * (estimate.centre() - b) > 0 else 1.0
    if estimate.n < 2 or not math.isfinite(estimate.se):
        return 1.0
    if estimate.se == 0.0:  # every seed tied: only their count speaks
        return 0.5**estimate.n if distance > 0 else 1.0
    return float(scipy_stats.t.sf(distance / estimate.se, df=estimate.df))


@dataclasses.dataclass(frozen=True)
class Test:
    """A part's decision: p-values for 'inside the region' and 'outside it', and the verdict."""

    p_inside: float
    p_outside: float
    verdict: str


def test(estimate, low=-math.inf, high=math.inf):
    """Decides whether the quantity lies in the open region (low, high): VERDICT_RULE."""
    if not low < high:
        raise ValueError(f"region ({low}, {high}) is empty; low must be below high.")
    p_above_low = 0.0 if low == -math.inf else p_beyond(estimate, low, "above")
    p_below_high = 0.0 if high == math.inf else p_beyond(estimate, high, "below")
    p_inside = max(p_above_low, p_below_high)
    p_outside = min(p_beyond(estimate, low, "below"), p_beyond(estimate, high, "above"))
    if estimate.exact:
        inside = low < estimate.mean < high
        return Test(float(not inside), float(inside), SUPPORTED if inside else CONTRADICTED)
    if p_inside < ALPHA:
        return Test(p_inside, p_outside, SUPPORTED)
    if p_outside <= ALPHA:
        return Test(p_inside, p_outside, CONTRADICTED)
    return Test(p_inside, p_outside, INCONCLUSIVE)


def verdict(estimate, low=-math.inf, high=math.inf):
    """The verdict of `test`."""
    return test(estimate, low, high).verdict


def holm(p_values):
    """Holm step-down adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    k = len(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (k - np.arange(k)) * p[order]))
    out = np.empty(k)
    out[order] = adjusted
    return out.tolist()


def combine(tests):
    """(verdict, Holm-adjusted p_outside per part) of a claim made of several parts' `Test`s.

    Supported when every part is (intersection-union); contradicted when some part's
    Holm-adjusted p_outside is at most ALPHA; inconclusive otherwise.
    """
    tests = list(tests)
    if not tests:
        raise ValueError("combine needs at least one part.")
    adjusted = holm([t.p_outside for t in tests])
    if all(t.verdict == SUPPORTED for t in tests):
        return SUPPORTED, adjusted
    if min(adjusted) <= ALPHA:
        return CONTRADICTED, adjusted
    return INCONCLUSIVE, adjusted


def minimal_detectable_effect(estimate, power=POWER):
    """Distance from a region's bound detected with `power` at this spread (test scale).

    0 for exact quantities; inf with fewer than two seeds; NaN when every seed tied (no spread
    to size it from).
    """
    if estimate.exact:
        return 0.0
    if estimate.n < 2 or not math.isfinite(estimate.se):
        return math.inf
    if estimate.se == 0.0:
        return math.nan
    return (_t(1 - ALPHA, estimate.df) + _t(power, estimate.df)) * estimate.se + estimate.slack


class MissingData(KeyError):
    """A trial or metric a comparison needs has no finished seed."""


class Table:
    """Per-seed scalar metrics of a study's trials, with estimates over seeds.

    `rows`: dicts with `trial`, `seed`, `params` (sweep, case, axis values), `metrics`
    (name -> float; NaN or None when a run did not produce it) and optional `facts` (name ->
    text, such as the dataset or the validation protocol). Trial order is kept.
    """

    def __init__(self, rows, steps=None, exact=()):
        self._steps = dict(steps or {})  # metric -> the step of a discrete metric (epochs: 1)
        self._exact = frozenset(exact)  # metrics fixed by the config, equal for every seed
        self._params, self._values, self._facts = {}, {}, {}
        self._touched = None
        for row in rows:
            self._params.setdefault(row["trial"], dict(row["params"]))
            for name, value in row.get("facts", {}).items():
                self._facts.setdefault((row["trial"], name), set()).add(value)
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

    @contextlib.contextmanager
    def tracking(self):
        """Yields the set of trials whose values are read inside the `with` block."""
        outer, self._touched = self._touched, set()
        try:
            yield self._touched
        finally:
            if outer is not None:
                outer |= self._touched
            self._touched = outer

    def facts(self, trial, name):
        """The set of values of fact `name` over the trial's runs (empty if none recorded)."""
        return set(self._facts.get((trial, name), ()))

    def values(self, trial, metric):
        """{seed: value}; MissingData when the trial has no finished seed with this metric."""
        if self._touched is not None:
            self._touched.add(trial)
        if (trial, metric) not in self._values:
            raise MissingData(f"no value of {metric!r} for trial {trial!r}")
        return dict(self._values[trial, metric])

    def kind(self, metric):
        """The keyword arguments that estimates of `metric` take: its widening, exactness."""
        return {"slack": self._steps.get(metric, 0.0) / 2, "exact": metric in self._exact}

    def cell(self, trial, metric):
        """Mean over seeds with its interval."""
        return t_interval(list(self.values(trial, metric).values()), **self.kind(metric))

    def difference(self, a, b, metric):
        """metric(a) - metric(b), paired over shared seeds."""
        return difference(self.values(a, metric), self.values(b, metric), **self.kind(metric))

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
        if self._touched is not None:
            self._touched.update(trials)
        cells = [self._values.get((t, metric), {}) for t in trials]
        seeds = sorted(set().union(*cells))
        if not seeds:
            raise MissingData(f"no value of {metric!r} for trials {trials}")
        return {s: [c.get(s, math.nan) for c in cells] for s in seeds}
