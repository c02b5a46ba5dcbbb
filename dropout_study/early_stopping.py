"""Where a run stands, and the best epoch on validation with early stopping.

The best epoch is the one a run's test score is read at: it is chosen on the validation split only.
"""

import dataclasses


def monitor_mode(monitor):
    """'min' for losses, 'max' for accuracy and PSNR."""
    return "min" if monitor.endswith("loss") else "max"


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run stands; saved as JSON with every checkpoint, so a resumed run goes on exactly.

    `history` holds the per-epoch records; `best` is {"epoch", "step", "value"} of the best
    validation epoch so far; `bad_epochs` counts the epochs since it (early stopping).
    """

    step: int = 0
    history: tuple = ()
    best: dict | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    done: bool = False

    def to_json(self):
        """The checkpoint's `meta` item."""
        return {**dataclasses.asdict(self), "history": list(self.history)}

    @classmethod
    def from_json(cls, meta):
        return cls(**{**meta, "history": tuple(meta["history"])})


def update_best(progress, record, *, monitor, min_delta, patience):
    """Early-stopping bookkeeping after an epoch: (new Progress, improved, stop)."""
    value = record[monitor]
    best = progress.best
    sign = 1.0 if monitor_mode(monitor) == "max" else -1.0
    improved = best is None or sign * (value - best["value"]) > min_delta
    if improved:
        best = {"epoch": record["epoch"], "step": record["step"], "value": value}
    bad_epochs = 0 if improved else progress.bad_epochs + 1
    stop = patience > 0 and bad_epochs >= patience
    new = dataclasses.replace(progress, best=best, bad_epochs=bad_epochs, stopped_early=stop)
    return new, improved, stop
