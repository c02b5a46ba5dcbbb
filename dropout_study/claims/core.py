"""What a claim is, how it is decided, and the pieces its test is built from.

A claim (`Claim`) holds its text, the post's figure, the validity conditions its runs must meet
and `parts(table)`, which picks trials by their params (sweep, case, axis values; see
configs/studies/) and returns the quantities it compares, each with the region the claim
asserts. `evaluate` checks the conditions on the trials the parts read, then decides each part
and the claim (`stats.test`, `stats.combine`). Metrics are the per-run scalars of
`report.run_metrics`: scores on the test split at the validation-selected checkpoint.
"""

import dataclasses
import math
import statistics
from collections.abc import Callable

import numpy as np

from dropout_study import stats

ACC = "test_accuracy"  # test split, at the checkpoint the validation split selected
FINAL = "final_test_accuracy"  # test split, after the last epoch
INF = math.inf
# "About x" claims hold when our interval lies within x/1.25 .. x*1.25 (ratios) or within one
# accuracy point (differences); "unchanged" times within 10%.
RATIO_TOLERANCE = 1.25
SAME_POINTS = 0.01
SAME_TIME = 1.10
LATE_FRACTION = 0.8  # a best epoch after this fraction of the epochs run: still improving


@dataclasses.dataclass(frozen=True)
class Part:
    """One compared quantity and the open region (low, high) the claim asserts for it."""

    label: str
    estimate: stats.Estimate
    low: float = -INF
    high: float = INF
    scale: float = 1.0  # display only: 100 shows accuracy fractions as points
    unit: str = ""

    @property
    def decision(self):
        return stats.test(self.estimate, self.low, self.high)

    @property
    def verdict(self):
        return self.decision.verdict

    def region(self):
        """The asserted region as text, in display units."""
        lo, hi = self.low * self.scale, self.high * self.scale
        if hi == INF:
            return f"> {lo:g}{self.unit}"
        if lo == -INF:
            return f"< {hi:g}{self.unit}"
        return f"in ({lo:.3g}, {hi:.3g}){self.unit}"

    def shown(self):
        """'mean [low, high]' in display units."""
        spec = ".2f" if self.scale != 1.0 else ".4g"
        return self.estimate.format(spec, self.scale) + self.unit

    def mde(self):
        """The minimal detectable effect in display units (a factor for ratios)."""
        effect = stats.minimal_detectable_effect(self.estimate)
        if math.isnan(effect):
            return "n/a (every seed tied)"
        if self.estimate.log:
            return f"x{math.exp(effect):.3g}" if math.isfinite(effect) else "inf"
        spec = ".2f" if self.scale != 1.0 else ".3g"
        return f"{effect * self.scale:{spec}}{self.unit}"


@dataclasses.dataclass(frozen=True)
class Condition:
    """A validity condition: what the runs must show for the claim to be testable at all.

    `check(table, trials)` returns '' when it holds, else why not (in a few words).
    """

    text: str
    check: Callable[[stats.Table, list], str]


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim of a post, the post's own figure (or wording), its conditions and its test."""

    id: str
    study: str
    text: str
    post_number: str
    test: str
    parts: Callable[[stats.Table], list]
    conditions: tuple = ()


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A claim evaluated on a table: its parts, the verdict, why data was missing if it was,
    each condition with '' (held) or why it failed, and the Holm-adjusted p of each part."""

    claim: Claim
    parts: list
    verdict: str
    missing: str = ""
    conditions: tuple = ()
    adjusted: tuple = ()

    def failed(self):
        """The conditions that failed, with why."""
        return [(c, why) for c, why in self.conditions if why]


def evaluate(claim, table):
    """Decides `claim` on `table`: untested when a condition fails, inconclusive without data."""
    with table.tracking() as trials:
        try:
            parts = claim.parts(table)
        except stats.MissingData as e:
            return Outcome(claim, [], stats.INCONCLUSIVE, f"not measured: {e.args[0]}")
    conditions = tuple((c, _check(c, table, sorted(trials))) for c in claim.conditions)
    verdict, adjusted = stats.combine(p.decision for p in parts)
    if any(why for _, why in conditions):
        verdict = stats.UNTESTED
    return Outcome(claim, parts, verdict, "", conditions, tuple(adjusted))


def _check(condition, table, trials):
    """Why `condition` fails on `trials` ('' when it holds); unmeasurable counts as failed."""
    try:
        return condition.check(table, trials)
    except stats.MissingData as e:
        return f"not measured: {e.args[0]}"


# Validity conditions -----------------------------------------------------------------------------


def _heldout(table, trials):
    bad = [t for t in trials if table.facts(t, "validation") != {"holdout"}]
    return (
        f"selected on the test split ({len(bad)} of {len(trials)} compared trials)" if bad else ""
    )


def _converged(table, trials):
    late = []
    for t in trials:
        best = table.values(t, "best_epoch")
        run = table.values(t, "epochs_run")
        fractions = [best[s] / run[s] for s in best if s in run]
        if fractions and statistics.median(fractions) > LATE_FRACTION:
            late.append(f"{t} (best epoch at {statistics.median(fractions):.0%} of training)")
    return f"still improving: {', '.join(late)}" if late else ""


HELDOUT = Condition(
    "epochs and checkpoints selected on a validation split held out of training", _heldout
)
CONVERGED = Condition(
    f"converged: the median best validation epoch lies in the first {LATE_FRACTION:.0%} of "
    "training for every compared trial",
    _converged,
)
SCORES = (HELDOUT, CONVERGED)  # what every claim about accuracy or loss needs


def min_epochs(count):
    """Condition: every compared run trained at least `count` epochs (planned)."""

    def check(table, trials):
        short = [t for t in trials if min(table.values(t, "num_epochs").values()) < count]
        return f"fewer than {count} epochs: {', '.join(short)}" if short else ""

    return Condition(f"at least {count} epochs of training", check)


def min_train(count):
    """Condition: every compared run trained on at least `count` examples (the post's regime)."""

    def check(table, trials):
        small = [t for t in trials if min(table.values(t, "train_examples").values()) < count]
        return f"fewer than {count:,} training examples: {', '.join(small)}" if small else ""

    return Condition(f"at least {count:,} training examples", check)


def dataset(name):
    """Condition: every compared run trained on dataset `name`."""

    def check(table, trials):
        other = sorted({d for t in trials for d in table.facts(t, "dataset")} - {name})
        return f"run on {', '.join(other)}, not {name}" if other else ""

    return Condition(f"trained and tested on {name}", check)


# Building blocks ---------------------------------------------------------------------------------


def one(table, **params):
    """The single trial with these params; MissingData if there is none."""
    found = table.trials(**params)
    if len(found) != 1:
        raise stats.MissingData(f"{len(found)} trials match {params}, expected one")
    return found[0]


def by_axis(table, axis, **params):
    """Trials matching `params`, sorted by their (numeric) value on `axis`."""
    found = [t for t in table.trials(**params) if axis in table.params(t)]
    if not found:
        raise stats.MissingData(f"no trials with axis {axis!r} and {params}")
    return sorted(found, key=lambda t: table.params(t)[axis])


def best(table, trials, metric="best_val_accuracy"):
    """The trial with the highest mean `metric` among `trials` (validation: selection)."""
    means = {t: np.mean(list(table.values(t, metric).values())) for t in trials}
    return max(means, key=means.get)


def display(metric):
    """Display scale and unit of a metric: points for accuracies, seconds for times."""
    if "accuracy" in metric:
        return {"scale": 100.0, "unit": " pt"}
    if metric == "epoch_time":
        return {"unit": " s"}
    return {}


def beats(table, a, b, metric=ACC, margin=0.0):
    """Part: metric(a) - metric(b) > margin (points for accuracies)."""
    label = f"{metric}: {a} - {b}"
    return Part(label, table.difference(a, b, metric), low=margin, **display(metric))


def below(table, a, b, metric):
    """Part: metric(a) - metric(b) < 0 (a lower loss, error or epoch count)."""
    return Part(f"{metric}: {a} - {b}", table.difference(a, b, metric), high=0.0, **display(metric))


def similar(table, a, b, metric=ACC, tolerance=SAME_POINTS):
    """Part: |metric(a) - metric(b)| < tolerance."""
    est = table.difference(a, b, metric)
    return Part(f"{metric}: {a} - {b}", est, -tolerance, tolerance, **display(metric))


def slope_part(table, trials, axis, metric, low=-INF, high=INF, relative=False):
    """Part: per-seed least-squares slope of `metric` on `axis` over `trials` (relative: / mean)."""
    xs = [table.params(t)[axis] for t in trials]
    series = table.series(trials, metric)
    if relative:
        series = {s: list(np.asarray(v) / np.nanmean(v)) for s, v in series.items()}
    kind = "relative slope" if relative else "slope"
    label = f"{kind} of {metric} on {axis} ({trials[0]} .. {trials[-1]})"
    return Part(label, stats.slope(xs, series, exact=table.kind(metric)["exact"]), low, high)


def ratio_part(label, a, b, low=-INF, high=INF):
    """Part: geometric-mean ratio of per-seed values a / b ({seed: value} dicts)."""
    return Part(label, stats.ratio(a, b), low, high, unit="x")


def registry(study, claims):
    """A decorator that turns `parts(table)` into a Claim of `study`, appended to `claims`.

    So a claim's text, post figure, conditions and test stand together:
    `@claim("000.1", text, post_number, test, conditions)` above its parts function.
    """

    def claim(claim_id, text, post_number, test, conditions=()):
        def register(parts):
            claims.append(Claim(claim_id, study, text, post_number, test, parts, conditions))
            return parts

        return register

    return claim
