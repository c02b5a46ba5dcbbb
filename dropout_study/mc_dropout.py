"""MC-dropout inference (Gal & Ghahramani 2016), calibration measures for its predictions, and
the study's evaluation of a run's best checkpoint with them (`evaluate_mc` -> mc_eval.json).

`apply_fn(key, x) -> logits` must run the model with dropout ON and batch-norm in inference
mode (models: `train=False, dropout=True`), so only the dropout masks vary between passes.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import entr

from dropout_study import xla_options


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be an int >= 1.")
    return value


def _entropy(probs: jax.Array) -> jax.Array:
    """Entropy in nats over the last axis; 0 * log 0 = 0."""
    return jnp.sum(entr(probs), axis=-1)


def mc_predict(
    apply_fn: Callable[[jax.Array, jax.Array], jax.Array],
    key: jax.Array,
    x: jax.Array,
    num_samples: int,
    *,
    return_samples: bool = False,
) -> dict[str, jax.Array]:
    """T = num_samples stochastic passes -> mean prediction and its uncertainty split.

    predictive_entropy = H[mean_t p_t] (total uncertainty); mutual_information =
    H[mean_t p_t] - mean_t H[p_t] (the model/epistemic part). Passes run one after another
    (lax.map) so memory stays that of one pass. Shapes: probs (N, K), samples (T, N, K).
    """
    num_samples = _check_positive_int(num_samples, "num_samples")
    keys = jax.random.split(key, num_samples)
    samples = jax.lax.map(lambda k: jax.nn.softmax(apply_fn(k, x).astype(jnp.float32)), keys)
    mean_probs = jnp.mean(samples, axis=0)
    predictive_entropy = _entropy(mean_probs)
    expected_entropy = jnp.mean(_entropy(samples), axis=0)
    result = {
        "mean_probs": mean_probs,
        "predictive_entropy": predictive_entropy,
        "mutual_information": jnp.maximum(predictive_entropy - expected_entropy, 0.0),
    }
    if return_samples:
        result["samples"] = samples
    return result


def reliability_bins(probs: jax.Array, labels: jax.Array, num_bins: int = 15) -> dict:
    """Reliability diagram data: per confidence bin (equal width on (0, 1]) count, mean
    confidence and accuracy (NaN for empty bins). probs (N, K), integer labels (N,)."""
    num_bins = _check_positive_int(num_bins, "num_bins")
    if probs.ndim != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(
            f"probs must be (N, K) and labels (N,); got probs.shape={probs.shape}, "
            f"labels.shape={labels.shape}."
        )
    confidence = jnp.max(probs, axis=-1)
    correct = (jnp.argmax(probs, axis=-1) == labels).astype(jnp.float32)
    index = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
    in_bin = index[:, None] == jnp.arange(num_bins)  # (N, bins); a reduction, not a scatter-add,
    count, conf_sum, acc_sum = (  # keeps float32 sums accurate for large N
        jnp.sum(jnp.where(in_bin, v[:, None], 0.0), axis=0)
        for v in (jnp.ones_like(confidence), confidence, correct)
    )
    safe = jnp.where(count > 0, count, jnp.nan)
    return {
        "bin_edges": jnp.linspace(0.0, 1.0, num_bins + 1),
        "count": count,
        "confidence": conf_sum / safe,
        "accuracy": acc_sum / safe,
    }


def expected_calibration_error(probs: jax.Array, labels: jax.Array, num_bins: int = 15):
    """ECE = sum_b (n_b / N) |accuracy_b - confidence_b| over equal-width confidence bins."""
    bins = reliability_bins(probs, labels, num_bins)
    if probs.shape[0] == 0:
        raise ValueError(
            f"expected_calibration_error got no examples (probs.shape={probs.shape}); "
            "it needs N >= 1 predictions to average over."
        )
    gap = jnp.nan_to_num(jnp.abs(bins["accuracy"] - bins["confidence"]))
    return jnp.sum(bins["count"] * gap) / jnp.sum(bins["count"])


MC_KEY_SALT = 0x6D63  # folds the run's seed into the MC-dropout key, apart from training keys


ECE_BINS = 15


def _class_logits(logits):
    """(N, K) logits; a binary model's single logit l becomes (0, l), whose softmax is sigmoid."""
    if logits.shape[-1] == 1:
        return jnp.concatenate([jnp.zeros_like(logits), logits], axis=-1)
    return logits


def _calibration(probs, labels):
    """Accuracy, NLL, ECE and reliability bins of predicted probabilities (N, K)."""
    picked = np.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    bins = reliability_bins(probs, labels, ECE_BINS)
    return {
        "accuracy": float(np.mean(np.argmax(probs, axis=-1) == labels)),
        "nll": float(-np.mean(np.log(np.maximum(picked, 1e-12)))),
        "ece": float(expected_calibration_error(probs, labels, ECE_BINS)),
        "bins": {
            k: [None if math.isnan(v) else float(v) for v in np.asarray(b)] for k, b in bins.items()
        },
    }


def evaluate_mc(config, workdir, num_samples):
    """MC dropout (`num_samples` passes, batch-norm in inference mode) against deterministic
    inference, on the test split with the run's best (validation-selected) checkpoint."""
    from dropout_study import data, train, train_step  # imported on use: TensorFlow is slow
    from dropout_study.data import pipeline

    model, variables = train.restore_best(config, workdir)
    dataset = data.load(config.data)

    def apply(key, x, dropout):
        rngs = {"dropout": key} if dropout else {}
        out = train_step.apply_in(
            config.compute_dtype, model.apply, variables, x, train=False, dropout=dropout, rngs=rngs
        )
        return _class_logits(out.astype("float32"))

    @xla_options.jit
    def predict(key, x):  # x: (B, ...) -> (det probs (B, K), MC mean probs, entropy, MI)
        det = jax.nn.softmax(apply(key, x, False))
        mc = mc_predict(lambda k, xb: apply(k, xb, True), key, x, num_samples)
        return det, mc["mean_probs"], mc["predictive_entropy"], mc["mutual_information"]

    key = jax.random.fold_in(jax.random.key(config.seed), MC_KEY_SALT)
    outs, labels = [], []
    for i, batch in enumerate(pipeline.padded_batches(dataset.test, config.eval_batch_size)):
        result = jax.device_get(predict(jax.random.fold_in(key, i), batch["x"]))
        outs.append([np.asarray(r)[batch["mask"]] for r in result])
        labels.append(np.asarray(batch["y"])[batch["mask"]])
    det, mc, entropy, mutual = (np.concatenate(parts) for parts in zip(*outs, strict=True))
    labels = np.concatenate(labels).astype(np.int32)
    return {
        "num_samples": num_samples,
        "num_examples": int(labels.size),
        "deterministic": _calibration(det, labels),
        "mc": {
            **_calibration(mc, labels),
            "predictive_entropy": float(entropy.mean()),
            "mutual_information": float(mutual.mean()),
        },
    }
