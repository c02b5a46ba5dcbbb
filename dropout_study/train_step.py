"""The jit train and eval steps, the train state and the per-step sums they accumulate.

A step is a pure function of (state, sums, batch, key): its dropout masks and augmentation come
from `key` alone, so the loop in `train` can resume, shard and repeat it exactly.
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from dropout_study import optim
from dropout_study.data import augment

PSNR_PEAK = 1.0  # denoising targets are images on the [0, 1] scale
COMPUTE_DTYPES = ("float32", "bfloat16")  # config.compute_dtype; parameters stay float32


class TrainState(train_state.TrainState):
    """Flax's TrainState plus batch-norm statistics (an empty dict for models without them)."""

    batch_stats: Any = None


def score_name(task):
    """What a task reports next to its loss: 'accuracy', or 'psnr' (dB) for denoising."""
    return "psnr" if task == "denoise" else "accuracy"


def per_example(task, outputs, targets):
    """Per-example (loss, correct): cross-entropy and 0/1 correctness, or MSE and zeros."""
    outputs = outputs.astype(jnp.float32)
    if task == "denoise":  # outputs, targets: (N, H, W, C) images
        mse = jnp.mean(jnp.square(outputs - targets), axis=tuple(range(1, outputs.ndim)))
        return mse, jnp.zeros_like(mse)
    if outputs.shape[-1] == 1:  # one logit per example: binary classification
        logits = outputs[:, 0]
        loss = optax.sigmoid_binary_cross_entropy(logits, targets.astype(jnp.float32))
        return loss, ((logits > 0) == (targets == 1)).astype(jnp.float32)
    loss = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    return loss, (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)


def psnr(mse):
    """PSNR in dB of a mean squared error over a whole split, as data.denoise.psnr defines it."""
    return 10.0 * math.log10(PSNR_PEAK**2 / max(mse, 1e-10))


def zero_train_sums():
    """Running sums of one training epoch; `nonfinite_step`: first step with a NaN/Inf loss."""
    # One array per field: the train step donates them, and a buffer cannot be donated twice.
    sums = {name: jnp.zeros((), jnp.float32) for name in ("loss", "correct", "penalty", "count")}
    return {**sums, "nonfinite_step": jnp.full((), -1, jnp.int32)}


def zero_eval_sums():
    """Running sums of one evaluation pass."""
    return {name: jnp.zeros((), jnp.float32) for name in ("loss", "correct", "count")}


def for_compute(tree, compute_dtype):
    """`tree` (parameters, images) with its floating leaves cast to `compute_dtype`.

    Mixed precision: the train state keeps float32 parameters, optimizer state and batch-norm
    statistics; gradients come back through the cast as float32. Token ids and masks are kept.
    """
    if compute_dtype == "float32":
        return tree
    return jax.tree.map(
        lambda a: a.astype(compute_dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree
    )


def apply_in(compute_dtype, apply_fn, variables, x, **kwargs):
    """`apply_fn(variables, x, **kwargs)` computed in `compute_dtype`: the parameters and a
    floating `x` are cast (batch-norm statistics stay float32); outputs come in that dtype."""
    params = for_compute(variables["params"], compute_dtype)
    return apply_fn({**variables, "params": params}, for_compute(x, compute_dtype), **kwargs)


def train_step(state, sums, batch, key, *, task, l1, l2, augment_kwargs, compute_dtype):
    """One optimiser step on `batch` ({"x", "y"}); returns the new state and epoch sums.

    Dropout and augmentation keys come from `fold_in(key, step)`, so they depend on the step only.
    The loss minimised is the mean per-example loss plus the L1/L2 penalty on kernels; the
    forward and backward passes run in `compute_dtype` (the masks do not depend on it).
    """
    step_key = jax.random.fold_in(key, state.step)
    dropout_key, augment_key = jax.random.split(step_key)
    x = batch["x"]
    if augment_kwargs:
        x = augment.augment(augment_key, x, **augment_kwargs)

    def loss_fn(params):
        outputs, updates = apply_in(
            compute_dtype,
            state.apply_fn,
            {"params": params, "batch_stats": state.batch_stats},
            x,
            train=True,
            rngs={"dropout": dropout_key},
            mutable=["batch_stats"],
        )
        loss, correct = per_example(task, outputs, batch["y"])
        penalty = optim.penalty(params, l1, l2)
        return jnp.mean(loss) + penalty, (loss, correct, penalty, updates)

    grads, (loss, correct, penalty, updates) = jax.grad(loss_fn, has_aux=True)(state.params)
    new_state = state.apply_gradients(
        grads=grads, batch_stats=updates.get("batch_stats", state.batch_stats)
    )
    finite = jnp.isfinite(jnp.mean(loss) + penalty)
    first_bad = jnp.where(
        (sums["nonfinite_step"] < 0) & ~finite, new_state.step, sums["nonfinite_step"]
    )
    return new_state, {
        "loss": sums["loss"] + jnp.sum(loss),
        "correct": sums["correct"] + jnp.sum(correct),
        "penalty": sums["penalty"] + penalty,
        "count": sums["count"] + loss.shape[0],
        "nonfinite_step": first_bad.astype(jnp.int32),
    }


def eval_step(state, sums, batch, *, task, compute_dtype):
    """Adds the masked losses and correct counts of `batch` ({"x", "y", "mask"}) to `sums`."""
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    outputs = apply_in(compute_dtype, state.apply_fn, variables, batch["x"], train=False)
    loss, correct = per_example(task, outputs, batch["y"])
    weights = batch["mask"].astype(jnp.float32)
    return {
        "loss": sums["loss"] + jnp.sum(loss * weights),
        "correct": sums["correct"] + jnp.sum(correct * weights),
        "count": sums["count"] + jnp.sum(weights),
    }


def create_train_state(model, tx, key, sample_x):
    """Initialises parameters (and batch-norm statistics) from `key` on one example's shape."""
    init = jax.jit(functools.partial(model.init, train=False))
    variables = init({"params": key, "dropout": key}, sample_x)
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=tx,
        batch_stats=variables.get("batch_stats", {}),
    )


def means(sums, task):
    """Mean loss and score (accuracy or PSNR) of summed step outputs, and the penalty sum."""
    sums = jax.device_get(sums)
    count = float(sums["count"])
    loss = float(sums["loss"]) / count
    score = psnr(loss) if task == "denoise" else float(sums["correct"]) / count
    out = {"loss": loss, score_name(task): score}
    if "penalty" in sums:
        out["penalty"] = float(sums["penalty"])
    return out
