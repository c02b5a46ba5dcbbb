"""When a run has gone wrong: a NaN or Inf loss, or losses far above chance (divergence).

Both stop training with a FloatingPointError that names the step or epoch, the checkpoint that
is kept and the fix.
"""

import math

import jax

from dropout_study import checkpoint

DIVERGED = 100  # an epoch's mean loss over this many times the chance-level loss: diverged
DIVERGED_FIX = (
    "Fix: lower optimizer.learning_rate or set optimizer.grad_clip_norm, in a new --workdir."
)


def check_finite(sums, checkpoints, steps_per_epoch):
    """Raises FloatingPointError naming the first step whose loss was NaN or Inf."""
    bad = int(jax.device_get(sums["nonfinite_step"]))
    if bad < 0:
        return
    epoch, batch = divmod(bad - 1, steps_per_epoch)
    raise FloatingPointError(
        f"the training loss became NaN or Inf at step {bad} (epoch {epoch + 1}, batch "
        f"{batch + 1} of {steps_per_epoch}); training stopped and {_last_good(checkpoints)}. "
        f"{DIVERGED_FIX}"
    )


def chance_loss(task, num_classes):
    """The loss of a predictor that knows nothing: log(K) nats, or an MSE of 1 on [0, 1] images."""
    return 1.0 if task == "denoise" else math.log(max(num_classes, 2))


def _last_good(checkpoints):
    """Words for the newest 'latest' checkpoint, which a stopped run keeps."""
    kept = checkpoints.steps(checkpoint.LATEST)
    if not kept:
        return "no checkpoint had been written yet"
    path = checkpoints.directory / checkpoint.LATEST / str(kept[-1])
    return f"the last good checkpoint, {path}, is kept"


def check_diverged(task, num_classes, checkpoints, train_metrics, val_metrics, epoch):
    """FloatingPointError when an epoch's mean train or validation loss is not finite or over
    DIVERGED times the chance-level loss: per-step losses can stay finite while a run diverges
    (or their epoch sums overflow). The epoch is then not recorded."""
    limit = DIVERGED * chance_loss(task, num_classes)
    bad = {
        f"{split} loss": m["loss"]
        for split, m in (("train", train_metrics), ("validation", val_metrics))
        if not m["loss"] <= limit  # NaN fails too
    }
    if bad:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in bad.items())
        raise FloatingPointError(
            f"training diverged in epoch {epoch + 1} ({shown}; more than {DIVERGED}x the "
            f"chance-level loss {limit / DIVERGED:.3g}); the epoch is not recorded and "
            f"{_last_good(checkpoints)}. {DIVERGED_FIX}"
        )
