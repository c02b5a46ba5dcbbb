"""Post 000's claims: IMDB sentiment, text CNN vs LSTM over the keep probability."""

import numpy as np

from dropout_study import stats
from dropout_study.claims.core import (
    ACC,
    HELDOUT,
    RATIO_TOLERANCE,
    SAME_POINTS,
    SCORES,
    Part,
    best,
    by_axis,
    min_epochs,
    min_train,
    ratio_part,
    registry,
    slope_part,
)

CLAIMS = []
claim = registry("post000", CLAIMS)


def _arch(table, sweep):
    return by_axis(table, "keep", sweep=sweep)


def _dropout_cells(table, sweep):
    """The arch's trials with dropout (keep < 1)."""
    return [t for t in _arch(table, sweep) if table.params(t)["keep"] < 1.0]


@claim(
    "000.1",
    "CNN and LSTM reach similar accuracy, the LSTM about 1 point better.",
    "LSTM +1 pt",
    "test accuracy of the LSTM minus the CNN, each at its best keep (chosen on validation "
    "accuracy), paired; region (0, 2) pt",
    SCORES,
)
def _accuracy(table):
    cnn, lstm = (best(table, _arch(table, s)) for s in ("cnn", "lstm"))
    return [Part(f"{ACC}: {lstm} - {cnn}", table.difference(lstm, cnn, ACC), 0.0, 0.02, 100, " pt")]


@claim(
    "000.2",
    "LSTM accuracy rises as keep probability falls (best below 0.4); CNN accuracy does not.",
    "LSTM best at keep < 0.4",
    "slope of LSTM test accuracy on keep < 0; LSTM keep<0.4 mean minus keep>=0.4 mean > 0; "
    "slope of CNN test accuracy on keep > -1 pt per unit keep",
    SCORES,
)
def _keep_trend(table):
    lstm, cnn = _dropout_cells(table, "lstm"), _dropout_cells(table, "cnn")
    low_keep = [t for t in lstm if table.params(t)["keep"] < 0.4]
    high_keep = [t for t in lstm if table.params(t)["keep"] >= 0.4]
    low_vs_high = stats.difference(table.pooled(low_keep, ACC), table.pooled(high_keep, ACC))
    return [
        slope_part(table, lstm, "keep", ACC, high=0.0),
        Part("LSTM: mean acc keep<0.4 - mean acc keep>=0.4", low_vs_high, 0.0, np.inf, 100, " pt"),
        slope_part(table, cnn, "keep", ACC, low=-SAME_POINTS),
    ]


@claim(
    "000.3",
    "The CNN trains about 1.68x faster per epoch than the LSTM.",
    "1.68x",
    "LSTM / CNN epoch time (mean over the keep sweep), geometric mean over seeds; region "
    "(1.68/1.25, 1.68*1.25)",
)
def _speed_ratio(table):
    lstm = table.pooled(_arch(table, "lstm"), "epoch_time")
    cnn = table.pooled(_arch(table, "cnn"), "epoch_time")
    bounds = (1.68 / RATIO_TOLERANCE, 1.68 * RATIO_TOLERANCE)
    return [ratio_part("epoch_time LSTM / CNN", lstm, cnn, *bounds)]


@claim(
    "000.4",
    "A smaller keep probability makes training slower, or leaves it unchanged.",
    "slower or same",
    "relative slope of epoch time on keep (per unit keep) < 0.05, for CNN and LSTM",
)
def _keep_slower(table):
    return [
        slope_part(table, _arch(table, s), "keep", "epoch_time", high=0.05, relative=True)
        for s in ("cnn", "lstm")
    ]


def _time_spread(table, sweep):
    """Per seed: log(slowest / fastest epoch time over the keep sweep)."""
    series = table.series(_arch(table, sweep), "epoch_time")
    return {s: float(np.log(np.nanmax(v) / np.nanmin(v))) for s, v in series.items()}


@claim(
    "000.5",
    "Dropout changes the CNN's time per epoch less than the LSTM's.",
    "CNN less affected",
    "log(max/min epoch time over the keep sweep), LSTM minus CNN, paired; region > 0",
)
def _time_sensitivity(table):
    est = stats.difference(_time_spread(table, "lstm"), _time_spread(table, "cnn"))
    return [Part("log(max/min epoch_time over keep): LSTM - CNN", est, 0.0)]


@claim(
    "000.6",
    "Training converges between epochs 6 and 15 and overfits afterwards.",
    "epochs 6-15",
    "epoch of best validation accuracy in [6, 15] and final validation loss above its "
    "minimum, at each architecture's best keep",
    (HELDOUT, min_epochs(16), min_train(20000)),  # the post's 25,000 reviews
)
def _convergence(table):
    parts = []
    for sweep in ("cnn", "lstm"):
        trial = best(table, _arch(table, sweep))
        parts.append(Part(f"best_epoch of {trial}", table.cell(trial, "best_epoch"), 5.5, 15.5))
        rise = table.cell(trial, "overfit_loss_rise")
        parts.append(Part(f"val_loss last - min, {trial}", rise, 0.0))
    return parts
