"""Post 003's claims: rates, variants, other regularisers, CNN / RNN / MLP, MC dropout.

The case names below are keys of the sweeps in configs/studies/post003.py, which imports them
from here.
"""

import dataclasses

from dropout_study import stats
from dropout_study.claims.core import (
    ACC,
    FINAL,
    INF,
    SAME_POINTS,
    SCORES,
    Part,
    beats,
    below,
    by_axis,
    one,
    registry,
    similar,
    slope_part,
)

NONE, DROPOUT = "none", "dropout"
STANDARD, INVERTED, SPATIAL, GAUSSIAN, DROPBLOCK = (
    "standard",
    "inverted",
    "spatial",
    "gaussian",
    "dropblock",
)
ALPHA = "alpha"
L1, L2, WEIGHT_DECAY, EARLY_STOPPING = "l1", "l2", "weight_decay", "early_stopping"
DROPOUT_L2, DROPOUT_EARLY_STOPPING = "dropout_l2", "dropout_early_stopping"
STOPS_EARLY = (EARLY_STOPPING, DROPOUT_EARLY_STOPPING)

CLAIMS = []
claim = registry("post003", CLAIMS)


def _rate(table, rate):
    return one(table, sweep="rate", rate=rate)


@claim(
    "003.1",
    "A dropout rate of about 0.5 is best.",
    "0.5 best",
    "test accuracy, rate 0.5 minus rate 0 > 0 and rate 0.5 minus rate 0.9 > 0, paired",
    SCORES,
)
def _half_best(table):
    half = _rate(table, 0.5)
    return [beats(table, half, _rate(table, r)) for r in (0.0, 0.9)]


@claim(
    "003.2",
    "Training time grows with the dropout rate.",
    "grows",
    "slope of epoch time on rate > 0",
)
def _time_grows(table):
    return [slope_part(table, by_axis(table, "rate", sweep="rate"), "rate", "epoch_time", low=0)]


@claim(
    "003.3",
    "With dropout, training accuracy is lower and test accuracy higher than without.",
    "train lower, test higher",
    "final-epoch train accuracy (dropout on), rate 0.5 minus rate 0 < 0; final-epoch test "
    "accuracy, rate 0.5 minus rate 0 > 0, paired",
    SCORES,
)
def _train_test(table):
    none, drop = _rate(table, 0.0), _rate(table, 0.5)
    return [
        below(table, drop, none, "final_train_accuracy"),
        beats(table, drop, none, FINAL),
    ]


@claim(
    "003.4",
    "Trainable parameters fall as the dropout rate rises.",
    "fall",
    "slope of the trainable-parameter count on rate < 0 (the count is fixed by the config: "
    "compared exactly)",
)
def _params(table):
    return [slope_part(table, by_axis(table, "rate", sweep="rate"), "rate", "num_params", high=0)]


@claim(
    "003.5",
    "Each dropout variant (standard, inverted, spatial, alpha with SELU, Gaussian, "
    "DropBlock) regularises: it beats no dropout.",
    "each helps",
    "test accuracy, each conv-block variant minus none (VGG-like net) > 0; alpha dropout minus "
    "none (SELU MLP) > 0, paired",
    SCORES,
)
def _variants(table):
    none = one(table, sweep="variant", case=NONE)
    parts = [beats(table, t, none) for t in table.trials(sweep="variant") if t != none]
    selu = (one(table, sweep="selu", case=c) for c in (ALPHA, NONE))
    return [*parts, beats(table, *selu)]


def _judged(table, case):
    """(trial, metric): early stopping at the checkpoint it restores, the others at the end."""
    metric = ACC if case in STOPS_EARLY else FINAL
    return one(table, sweep="regularizer", case=case), metric


def _beats_at(table, a, b):
    """Part: a beats b, each judged where its own rule puts it (`_judged`)."""
    (ta, ma), (tb, mb) = _judged(table, a), _judged(table, b)
    est = stats.difference(table.values(ta, ma), table.values(tb, mb))
    return Part(f"{ta} ({ma}) - {tb} ({mb})", est, low=0.0, scale=100.0, unit=" pt")


@claim(
    "003.6",
    "Dropout beats L1, L2, weight decay and early stopping, and combining them helps.",
    "dropout best; combos better",
    "test accuracy (MLP) after the last epoch, and for early stopping at the checkpoint it "
    "restores: dropout minus each alternative > 0; each combination minus dropout > 0, paired",
    SCORES,
)
def _regularisers(table):
    parts = [_beats_at(table, DROPOUT, c) for c in (NONE, L1, L2, WEIGHT_DECAY, EARLY_STOPPING)]
    return parts + [_beats_at(table, c, DROPOUT) for c in (DROPOUT_L2, DROPOUT_EARLY_STOPPING)]


@claim(
    "003.7",
    "Dropout helps CNNs, RNNs and MLPs alike.",
    "helps all",
    "test accuracy with minus without dropout > 0 for the VGG-like CNN (inverted, conv blocks), "
    "the LSTM (rnn sweep) and the MLP (rate 0.5 vs 0), paired",
    SCORES,
)
def _architectures(table):
    pairs = (
        (one(table, sweep="variant", case=INVERTED), one(table, sweep="variant", case=NONE)),
        (one(table, sweep="rnn", case=DROPOUT), one(table, sweep="rnn", case=NONE)),
        (_rate(table, 0.5), _rate(table, 0.0)),
    )
    return [beats(table, drop, none) for drop, none in pairs]


def _paired(table, trial, metric):
    return stats.difference(
        table.values(trial, f"mc_{metric}"), table.values(trial, f"det_{metric}")
    )


@claim(
    "003.8",
    "MC dropout at inference beats deterministic inference (accuracy, NLL, calibration).",
    "MC better",
    "on the test split with the rate-0.5 model's validation-selected checkpoint: MC minus "
    "deterministic accuracy > -1 pt, NLL < 0, ECE < 0, paired over seeds",
    SCORES,
)
def _mc(table):
    trial = _rate(table, 0.5)
    parts = [
        Part(f"{trial}: mc - det accuracy", _paired(table, trial, "accuracy"), -SAME_POINTS, INF),
        Part(f"{trial}: mc - det NLL", _paired(table, trial, "nll"), -INF, 0.0),
        Part(f"{trial}: mc - det ECE", _paired(table, trial, "ece"), -INF, 0.0),
    ]
    return [dataclasses.replace(parts[0], scale=100.0, unit=" pt"), *parts[1:]]


@claim(
    "003.9",
    "Weight scaling at inference is equivalent to inverted dropout.",
    "equivalent",
    "test accuracy, standard minus inverted in (-1, 1) pt, paired",
    SCORES,
)
def _weight_scaling(table):
    standard = one(table, sweep="variant", case=STANDARD)
    inverted = one(table, sweep="variant", case=INVERTED)
    return [similar(table, standard, inverted)]
