"""Every claim of the five posts as data: its text, the post's number and the test that decides it.

A claim's `parts(table)` picks trials of its study by their params (sweep, case, axis values; see
configs/studies/) and returns the quantities it compares, each with the region the claim asserts.
`stats.verdict` then decides each part and `stats.combine` the claim. Metrics are the per-run
scalars of `report.run_metrics` (accuracies as fractions; `epoch_time` in seconds).
"""

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from dropout_study import stats

ACC = "best_val_accuracy"
INF = math.inf
# "About x" claims hold when our interval lies within x/1.25 .. x*1.25 (ratios) or within one
# accuracy point (differences); "unchanged" times within 10%.
RATIO_TOLERANCE = 1.25
SAME_POINTS = 0.01
SAME_TIME = 1.10


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
    def verdict(self):
        return stats.verdict(self.estimate, self.low, self.high)

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


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim of a post, the post's own figure (or wording) and how we test it."""

    id: str
    study: str
    text: str
    post_number: str
    test: str
    parts: Callable[[stats.Table], list]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A claim evaluated on a table: its parts, the verdict, and why data was missing if it was."""

    claim: Claim
    parts: list
    verdict: str
    missing: str = ""


def evaluate(claim, table):
    """Decides `claim` on `table`; a missing trial or metric gives 'inconclusive', with why."""
    try:
        parts = claim.parts(table)
    except stats.MissingData as e:
        return Outcome(claim, [], stats.INCONCLUSIVE, f"not measured: {e.args[0]}")
    return Outcome(claim, parts, stats.combine(p.verdict for p in parts))


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


def best(table, trials, metric=ACC):
    """The trial with the highest mean `metric` among `trials`."""
    means = {t: np.mean(list(table.values(t, metric).values())) for t in trials}
    return max(means, key=means.get)


def beats(table, a, b, metric=ACC, margin=0.0):
    """Part: metric(a) - metric(b) > margin (points for accuracies)."""
    label = f"{metric}: {a} - {b}"
    return Part(label, table.difference(a, b, metric), low=margin, **_display(metric))


def below(table, a, b, metric):
    """Part: metric(a) - metric(b) < 0 (a lower loss, error or epoch count)."""
    return Part(
        f"{metric}: {a} - {b}", table.difference(a, b, metric), high=0.0, **_display(metric)
    )


def similar(table, a, b, metric=ACC, tolerance=SAME_POINTS):
    """Part: |metric(a) - metric(b)| < tolerance."""
    est = table.difference(a, b, metric)
    return Part(f"{metric}: {a} - {b}", est, -tolerance, tolerance, **_display(metric))


def _display(metric):
    if "accuracy" in metric:
        return {"scale": 100.0, "unit": " pt"}
    if metric == "epoch_time":
        return {"unit": " s"}
    return {}


def slope_part(table, trials, axis, metric, low=-INF, high=INF, relative=False):
    """Part: per-seed least-squares slope of `metric` on `axis` over `trials` (relative: / mean)."""
    xs = [table.params(t)[axis] for t in trials]
    series = table.series(trials, metric)
    if relative:
        series = {s: list(np.asarray(v) / np.nanmean(v)) for s, v in series.items()}
    kind = "relative slope" if relative else "slope"
    label = f"{kind} of {metric} on {axis} ({trials[0]} .. {trials[-1]})"
    return Part(label, stats.slope(xs, series), low, high)


def ratio_part(label, a, b, low=-INF, high=INF):
    """Part: geometric-mean ratio of per-seed values a / b ({seed: value} dicts)."""
    return Part(label, stats.ratio(a, b), low, high, unit="x")


# Post 000: IMDB, CNN vs LSTM, keep probability sweep ----------------------------------------------


def _arch(table, sweep):
    return by_axis(table, "keep", sweep=sweep)


def _dropout_cells(table, sweep):
    """The arch's trials with dropout (keep < 1)."""
    return [t for t in _arch(table, sweep) if table.params(t)["keep"] < 1.0]


def _p000_accuracy(table):
    cnn, lstm = (best(table, _arch(table, s)) for s in ("cnn", "lstm"))
    return [Part(f"{ACC}: {lstm} - {cnn}", table.difference(lstm, cnn, ACC), 0.0, 0.02, 100, " pt")]


def _p000_keep_trend(table):
    lstm, cnn = _dropout_cells(table, "lstm"), _dropout_cells(table, "cnn")
    low_keep = [t for t in lstm if table.params(t)["keep"] < 0.4]
    high_keep = [t for t in lstm if table.params(t)["keep"] >= 0.4]
    low_vs_high = stats.difference(table.pooled(low_keep, ACC), table.pooled(high_keep, ACC))
    return [
        slope_part(table, lstm, "keep", ACC, high=0.0),
        Part("LSTM: mean acc keep<0.4 - mean acc keep>=0.4", low_vs_high, 0.0, INF, 100, " pt"),
        slope_part(table, cnn, "keep", ACC, low=-SAME_POINTS),
    ]


def _p000_speed_ratio(table):
    lstm = table.pooled(_arch(table, "lstm"), "epoch_time")
    cnn = table.pooled(_arch(table, "cnn"), "epoch_time")
    return [
        ratio_part(
            "epoch_time LSTM / CNN", lstm, cnn, 1.68 / RATIO_TOLERANCE, 1.68 * RATIO_TOLERANCE
        )
    ]


def _p000_keep_slower(table):
    return [
        slope_part(table, _arch(table, s), "keep", "epoch_time", high=0.05, relative=True)
        for s in ("cnn", "lstm")
    ]


def _time_spread(table, sweep):
    """Per seed: log(slowest / fastest epoch time over the keep sweep)."""
    series = table.series(_arch(table, sweep), "epoch_time")
    return {s: float(np.log(np.nanmax(v) / np.nanmin(v))) for s, v in series.items()}


def _p000_time_sensitivity(table):
    est = stats.difference(_time_spread(table, "lstm"), _time_spread(table, "cnn"))
    return [Part("log(max/min epoch_time over keep): LSTM - CNN", est, 0.0)]


def _p000_convergence(table):
    parts = []
    for sweep in ("cnn", "lstm"):
        trial = best(table, _arch(table, sweep))
        parts.append(Part(f"best_epoch of {trial}", table.cell(trial, "best_epoch"), 5.5, 15.5))
        rise = table.cell(trial, "overfit_loss_rise")
        parts.append(Part(f"val_loss last - min, {trial}", rise, 0.0))
    return parts


# Post 001: VGG-like CIFAR-10 --------------------------------------------------------------------


def _vgg(table, case):
    return one(table, sweep="vgg", case=case)


def _p001_pairs(*pairs):
    """Parts 'a beats b' for (a, b) case names of the vgg sweep."""
    return lambda table: [beats(table, _vgg(table, a), _vgg(table, b)) for a, b in pairs]


def _p001_best_overall(table):
    top = _vgg(table, "conv0p2_dense0p5")
    others = [t for t in table.trials(sweep="vgg") if t != top]
    others += table.trials(sweep="blocks")
    return [beats(table, top, t) for t in others]


def _one_block(table):
    """{(block (1-based), rate): trial} of the 'blocks' sweep (dropout in one block only)."""
    found = {}
    for t in table.trials(sweep="blocks"):
        rates = table.params(t)["rates"]
        active = [i for i, r in enumerate(rates) if r > 0]
        if len(active) == 1:
            found[active[0] + 1, rates[active[0]]] = t
    return found


def _p001_blocks(table):
    base, cells = _vgg(table, "bn"), _one_block(table)
    rates = sorted({r for b, r in cells if (1, r) in cells and (3, r) in cells})
    if 0.5 not in rates:
        raise stats.MissingData("no 'blocks' trials with rate 0.5 in block 1 and in block 3")
    # Shallow blocks more sensitive: the same rate costs more (gains less) in block 1 than in 3.
    parts = [beats(table, cells[3, r], cells[1, r]) for r in rates]
    parts.append(beats(table, cells[3, 0.5], base))
    return parts


def _p001_epochs_not_time(table):
    drop, base = _vgg(table, "conv0p2_dense0p5"), _vgg(table, "bn")
    ratio = table.ratio(drop, base, "epoch_time")
    return [
        Part(f"converge_epoch: {drop} - {base}", table.difference(drop, base, "converge_epoch"), 0),
        Part(f"epoch_time {drop} / {base}", ratio, 1 / SAME_TIME, SAME_TIME, unit="x"),
    ]


# Post 002: what sits between convolutions -------------------------------------------------------


def _arch002(table, case):
    return one(table, sweep="between", case=case)


def _p002_bn_best(table):
    bn = _arch002(table, "bn")
    rivals = ("none", "dropout", "bn_dropout", "spatial")
    return [beats(table, bn, _arch002(table, c)) for c in rivals]


def _p002(case_a, case_b, metric=ACC, lower=False):
    def parts(table):
        a, b = _arch002(table, case_a), _arch002(table, case_b)
        return [below(table, a, b, metric) if lower else beats(table, a, b, metric)]

    return parts


def _p002_spatial(table):
    spatial = _arch002(table, "spatial")
    return [
        beats(table, spatial, _arch002(table, "dropout")),
        beats(table, spatial, _arch002(table, "none")),
    ]


# Post 003: rates, variants, regularisers, architectures, MC dropout ------------------------------


def _rate(table, rate):
    return one(table, sweep="rate", rate=rate)


def _p003_half_best(table):
    half = _rate(table, 0.5)
    return [beats(table, half, _rate(table, r)) for r in (0.0, 0.9)]


def _p003_time_grows(table):
    return [slope_part(table, by_axis(table, "rate", sweep="rate"), "rate", "epoch_time", low=0)]


def _p003_train_test(table):
    none, drop = _rate(table, 0.0), _rate(table, 0.5)
    return [
        below(table, drop, none, "final_train_accuracy"),
        beats(table, drop, none, "final_val_accuracy"),
    ]


def _p003_params(table):
    return [slope_part(table, by_axis(table, "rate", sweep="rate"), "rate", "num_params", high=0)]


def _p003_variants(table):
    none = one(table, sweep="variant", case="none")
    parts = [beats(table, t, none) for t in table.trials(sweep="variant") if t != none]
    selu = (one(table, sweep="selu", case=c) for c in ("alpha", "none"))
    return [*parts, beats(table, *selu)]


FINAL = "final_val_accuracy"


def _p003_regularisers(table):
    drop = one(table, sweep="regularizer", case="dropout")
    rivals = ("none", "l1", "l2", "weight_decay", "early_stopping")
    parts = [beats(table, drop, one(table, sweep="regularizer", case=c), FINAL) for c in rivals]
    combos = [t for t in table.trials(sweep="regularizer") if table.params(t)["case"] not in rivals]
    parts += [beats(table, t, drop, FINAL) for t in combos if t != drop]
    return parts


def _p003_architectures(table):
    pairs = (
        (one(table, sweep="variant", case="inverted"), one(table, sweep="variant", case="none")),
        (one(table, sweep="rnn", case="dropout"), one(table, sweep="rnn", case="none")),
        (_rate(table, 0.5), _rate(table, 0.0)),
    )
    return [beats(table, drop, none) for drop, none in pairs]


def _p003_mc(table):
    trial = _rate(table, 0.5)
    parts = [
        Part(f"{trial}: mc - det accuracy", _paired(table, trial, "accuracy"), -SAME_POINTS, INF),
        Part(f"{trial}: mc - det NLL", _paired(table, trial, "nll"), -INF, 0.0),
        Part(f"{trial}: mc - det ECE", _paired(table, trial, "ece"), -INF, 0.0),
    ]
    return [dataclasses.replace(parts[0], scale=100.0, unit=" pt"), *parts[1:]]


def _paired(table, trial, metric):
    return stats.difference(
        table.values(trial, f"mc_{metric}"), table.values(trial, f"det_{metric}")
    )


def _p003_weight_scaling(table):
    standard = one(table, sweep="variant", case="standard")
    inverted = one(table, sweep="variant", case="inverted")
    return [similar(table, standard, inverted)]


# Post 004: UNet denoiser -------------------------------------------------------------------------


def _unet(table, case):
    return one(table, sweep="unet", case=case)


def _p004_faster(table):
    drop, spatial, none = (_unet(table, c) for c in ("dropout", "spatial", "none"))
    return [
        ratio_part(
            "epoch_time dropout / spatial",
            table.values(drop, "epoch_time"),
            table.values(spatial, "epoch_time"),
            low=1.0,
        ),
        ratio_part(
            "epoch_time dropout / none",
            table.values(drop, "epoch_time"),
            table.values(none, "epoch_time"),
            low=2.0,
        ),
    ]


def _p004_better(table):
    drop, spatial = _unet(table, "dropout"), _unet(table, "spatial")
    return [
        below(table, spatial, drop, "min_val_loss"),
        beats(table, spatial, drop, "best_val_psnr"),
    ]


CLAIMS = (
    Claim(
        "000.1",
        "post000",
        "CNN and LSTM reach similar accuracy, the LSTM about 1 point better.",
        "LSTM +1 pt",
        "best-keep LSTM minus best-keep CNN best validation accuracy, paired; region (0, 2) pt",
        _p000_accuracy,
    ),
    Claim(
        "000.2",
        "post000",
        "LSTM accuracy rises as keep probability falls (best below 0.4); CNN accuracy does not.",
        "LSTM best at keep < 0.4",
        "slope of LSTM accuracy on keep < 0; LSTM keep<0.4 mean minus keep>=0.4 mean > 0; "
        "slope of CNN accuracy on keep > -1 pt per unit keep",
        _p000_keep_trend,
    ),
    Claim(
        "000.3",
        "post000",
        "The CNN trains about 1.68x faster per epoch than the LSTM.",
        "1.68x",
        "LSTM / CNN epoch time (mean over the keep sweep), geometric mean over seeds; region "
        "(1.68/1.25, 1.68*1.25)",
        _p000_speed_ratio,
    ),
    Claim(
        "000.4",
        "post000",
        "A smaller keep probability makes training slower, or leaves it unchanged.",
        "slower or same",
        "relative slope of epoch time on keep (per unit keep) < 0.05, for CNN and LSTM",
        _p000_keep_slower,
    ),
    Claim(
        "000.5",
        "post000",
        "Dropout changes the CNN's time per epoch less than the LSTM's.",
        "CNN less affected",
        "log(max/min epoch time over the keep sweep), LSTM minus CNN, paired; region > 0",
        _p000_time_sensitivity,
    ),
    Claim(
        "000.6",
        "post000",
        "Training converges between epochs 6 and 15 and overfits afterwards.",
        "epochs 6-15",
        "epoch of best validation accuracy in [6, 15] and final validation loss above its "
        "minimum, at each architecture's best keep",
        _p000_convergence,
    ),
    Claim(
        "001.1",
        "post001",
        "Batch-norm beats the plain network.",
        "BN > plain",
        "best validation accuracy, bn minus plain, paired; region > 0",
        _p001_pairs(("bn", "plain")),
    ),
    Claim(
        "001.2",
        "post001",
        "Conv dropout 0.2 beats the batch-norm baseline; conv dropout 0.5 hurts.",
        "0.2 > BN > 0.5",
        "conv0.2 minus bn > 0 and bn minus conv0.5 > 0, paired",
        _p001_pairs(("conv0p2", "bn"), ("bn", "conv0p5")),
    ),
    Claim(
        "001.3",
        "post001",
        "Half the filters without dropout beats full filters with conv dropout 0.5.",
        "half > full+0.5",
        "half minus conv0.5 > 0, paired",
        _p001_pairs(("half", "conv0p5")),
    ),
    Claim(
        "001.4",
        "post001",
        "Dense dropout helps marginally: 0.5 > 0.2 > 0.",
        "0.5 > 0.2 > 0",
        "dense0.5 minus dense0.2 > 0 and dense0.2 minus bn > 0, paired",
        _p001_pairs(("dense0p5", "dense0p2"), ("dense0p2", "bn")),
    ),
    Claim(
        "001.5",
        "post001",
        "Conv dropout 0.2 with dense dropout 0.5 is the best configuration.",
        "0.8831",
        "conv0.2+dense0.5 minus every other configuration > 0, paired (absolute accuracy not "
        "compared: the cpu scale trains a narrower net on a CIFAR-10 subset)",
        _p001_best_overall,
    ),
    Claim(
        "001.6",
        "post001",
        "With 1024-unit dense layers: conv+dense dropout > dense only > none.",
        "conv+dense > dense > none",
        "with doubled dense width (1024 in the post): conv0.2+dense0.5 minus dense0.5 > 0 and "
        "dense0.5 minus no dropout > 0, paired",
        _p001_pairs(("wide_conv0p2_dense0p5", "wide_dense0p5"), ("wide_dense0p5", "wide_none")),
    ),
    Claim(
        "001.7",
        "post001",
        "Dropout in one block only: shallow blocks are more sensitive; the third block gains "
        "even at 0.5.",
        "block 3 gains at 0.5",
        "block-3-only minus block-1-only > 0 at each one-block rate run (0.2, 0.5); block-3-only "
        "at 0.5 minus bn > 0, paired",
        _p001_blocks,
    ),
    Claim(
        "001.8",
        "post001",
        "Dropout needs more epochs but not more time per epoch.",
        "more epochs, same time",
        "converge epoch (first within 1 pt of the run's best), conv0.2+dense0.5 minus bn > 0; "
        "epoch time ratio in (1/1.1, 1.1)",
        _p001_epochs_not_time,
    ),
    Claim(
        "002.1",
        "post002",
        "Batch-norm between convolutions is best.",
        "BN best",
        "bn minus none, dropout, bn+dropout and spatial > 0, paired",
        _p002_bn_best,
    ),
    Claim(
        "002.2",
        "post002",
        "Dropout between convolutions is worse than nothing.",
        "dropout < none",
        "none minus dropout > 0, paired",
        _p002("none", "dropout"),
    ),
    Claim(
        "002.3",
        "post002",
        "Batch-norm converges in fewer epochs.",
        "BN faster",
        "converge epoch, bn minus none < 0, paired",
        _p002("bn", "none", "converge_epoch", lower=True),
    ),
    Claim(
        "002.4",
        "post002",
        "Spatial (channel) dropout works where element dropout does not.",
        "spatial > dropout",
        "spatial minus dropout > 0 and spatial minus none > 0, paired",
        _p002_spatial,
    ),
    Claim(
        "002.5",
        "post002",
        "Cutout helps.",
        "Cutout > none",
        "bn+cutout minus bn > 0, paired",
        _p002("bn_cutout", "bn"),
    ),
    Claim(
        "003.1",
        "post003",
        "A dropout rate of about 0.5 is best.",
        "0.5 best",
        "rate 0.5 minus rate 0 > 0 and rate 0.5 minus rate 0.9 > 0, paired",
        _p003_half_best,
    ),
    Claim(
        "003.2",
        "post003",
        "Training time grows with the dropout rate.",
        "grows",
        "slope of epoch time on rate > 0",
        _p003_time_grows,
    ),
    Claim(
        "003.3",
        "post003",
        "With dropout, training accuracy is lower and test accuracy higher than without.",
        "train lower, test higher",
        "final-epoch train accuracy (dropout on), rate 0.5 minus rate 0 < 0; final validation "
        "accuracy, rate 0.5 minus rate 0 > 0, paired",
        _p003_train_test,
    ),
    Claim(
        "003.4",
        "post003",
        "Trainable parameters fall as the dropout rate rises.",
        "fall",
        "slope of the trainable-parameter count on rate < 0",
        _p003_params,
    ),
    Claim(
        "003.5",
        "post003",
        "Each dropout variant (standard, inverted, spatial, alpha with SELU, Gaussian, "
        "DropBlock) regularises: it beats no dropout.",
        "each helps",
        "each conv-block variant minus none (VGG-like net) > 0; alpha dropout minus none (SELU "
        "MLP) > 0, paired",
        _p003_variants,
    ),
    Claim(
        "003.6",
        "post003",
        "Dropout beats L1, L2, weight decay and early stopping, and combining them helps.",
        "dropout best; combos better",
        "last-epoch validation accuracy (MLP): dropout minus each alternative > 0; each "
        "combination minus dropout > 0, paired",
        _p003_regularisers,
    ),
    Claim(
        "003.7",
        "post003",
        "Dropout helps CNNs, RNNs and MLPs alike.",
        "helps all",
        "with minus without dropout > 0 for the VGG-like CNN (inverted, conv blocks), the LSTM "
        "(rnn sweep) and the MLP (rate 0.5 vs 0), paired",
        _p003_architectures,
    ),
    Claim(
        "003.8",
        "post003",
        "MC dropout at inference beats deterministic inference (accuracy, NLL, calibration).",
        "MC better",
        "on the rate-0.5 model: MC minus deterministic accuracy > -1 pt, NLL < 0, ECE < 0, "
        "paired over seeds",
        _p003_mc,
    ),
    Claim(
        "003.9",
        "post003",
        "Weight scaling at inference is equivalent to inverted dropout.",
        "equivalent",
        "standard minus inverted best validation accuracy in (-1, 1) pt, paired",
        _p003_weight_scaling,
    ),
    Claim(
        "004.1",
        "post004",
        "Spatial dropout is faster per epoch than element dropout, which more than doubles the "
        "time per epoch.",
        "dropout > 2x",
        "epoch time dropout / spatial > 1 and dropout / none > 2 (geometric means over seeds)",
        _p004_faster,
    ),
    Claim(
        "004.2",
        "post004",
        "Spatial dropout gives a better denoiser than element dropout.",
        "spatial better",
        "min validation loss spatial minus dropout < 0; best validation PSNR spatial minus "
        "dropout > 0, paired",
        _p004_better,
    ),
)


def for_study(name):
    """The claims tested by study `name`."""
    return [c for c in CLAIMS if c.study == name]
