"""MC-dropout inference (Gal & Ghahramani 2016) and calibration measures for its predictions.

`apply_fn(key, x) -> logits` must run the model with dropout ON and batch-norm in inference
mode (models: `train=False, dropout=True`), so only the dropout masks vary between passes.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import entr


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
