"""Optimisers from config (the posts' Keras Adam, AdamW, SGD with momentum), schedules, L1/L2.

Adam defaults are Keras' (`learning_rate=1e-3`, `epsilon=1e-7`), which the posts used; post 001
states `learning_rate=2e-3`. L1 and L2 are penalties added to the loss with Keras' convention
(`l1 * sum|w|`, `l2 * sum w**2`); decoupled weight decay is AdamW's. Penalties and decay apply to
kernels only (parameters with two or more axes), as Keras' `kernel_regularizer` does.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step")


def default_config():
    """Adam with Keras' defaults, constant learning rate, no clipping."""
    return ml_collections.ConfigDict(
        {
            "name": "adam",
            "learning_rate": 1e-3,
            "b1": 0.9,
            "b2": 0.999,
            "eps": 1e-7,
            "momentum": 0.9,  # sgd only
            "nesterov": False,  # sgd only
            "weight_decay": 0.0,  # adamw only (decoupled)
            "schedule": "constant",
            "warmup_epochs": 0.0,  # cosine only
            "decay_epochs": (),  # step only: epochs at which the rate is multiplied by decay_factor
            "decay_factor": 0.1,
            "grad_clip_norm": 0.0,  # 0 = no clipping
        }
    )


def learning_rate_schedule(config, steps_per_epoch, num_epochs):
    """The learning rate as a function of the step (an optax schedule)."""
    lr = config.learning_rate
    if config.schedule == "constant":
        return optax.constant_schedule(lr)
    if config.schedule == "cosine":
        total = steps_per_epoch * num_epochs
        warmup = round(config.warmup_epochs * steps_per_epoch)
        if warmup == 0:  # optax warns about a zero-length warmup
            return optax.cosine_decay_schedule(lr, max(total, 1))
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total, warmup + 1))
    if config.schedule == "step":
        boundaries = {round(e * steps_per_epoch): config.decay_factor for e in config.decay_epochs}
        return optax.piecewise_constant_schedule(lr, boundaries)
    raise ValueError(f"optimizer.schedule={config.schedule!r} is unknown; use one of {SCHEDULES}.")


def kernel_mask(params):
    """True for kernels (two or more axes), False for biases and batch-norm scales/offsets."""
    return jax.tree.map(lambda p: p.ndim > 1, params)


def create_optimizer(config, steps_per_epoch, num_epochs):
    """The optax transformation an `optimizer` config describes."""
    lr = learning_rate_schedule(config, steps_per_epoch, num_epochs)
    if config.name == "adam":
        opt = optax.adam(lr, b1=config.b1, b2=config.b2, eps=config.eps)
    elif config.name == "adamw":
        opt = optax.adamw(
            lr,
            b1=config.b1,
            b2=config.b2,
            eps=config.eps,
            weight_decay=config.weight_decay,
            mask=kernel_mask,
        )
    elif config.name == "sgd":
        opt = optax.sgd(lr, momentum=config.momentum or None, nesterov=config.nesterov)
    else:
        raise ValueError(f"optimizer.name={config.name!r} is unknown; use one of {OPTIMIZERS}.")
    if config.grad_clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), opt)
    return opt


def penalty(params, l1=0.0, l2=0.0):
    """Keras-style `l1 * sum|w| + l2 * sum w**2` over the kernels of `params` (a scalar)."""
    kernels = [p for p in jax.tree.leaves(params) if p.ndim > 1]
    total = jnp.zeros((), jnp.float32)
    if l1:
        total += l1 * sum(jnp.sum(jnp.abs(k)) for k in kernels)
    if l2:
        total += l2 * sum(jnp.sum(jnp.square(k)) for k in kernels)
    return total
