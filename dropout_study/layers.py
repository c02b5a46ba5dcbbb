"""Flax Linen modules over the dropout functions; every mask key is `self.make_rng('dropout')`."""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dropout_study import dropout, masks
from dropout_study.masks import DEFAULT_SAMPLER

VARIANTS = ("inverted", "standard", "spatial", "gaussian", "alpha", "dropblock")


def check_variant(variant: str) -> str:
    """Returns `variant` if it names a dropout variant of `Dropout`, else raises ValueError."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is not one of {VARIANTS}; pick one of these names.")
    return variant


class Dropout(nn.Module):
    """Dropout of the chosen variant; rate 0 or deterministic=True is the eval behaviour.

    Eval is the identity for every variant except "standard", which multiplies by 1 - rate.
    "spatial" takes x (N, *spatial, C); "dropblock" takes x (N, H, W, C) and `block_size`.
    `sampler` picks the mask sampler (`masks.SAMPLERS`); gaussian and dropblock draw their own.
    A `rate` given to __call__ replaces the attribute and may be traced, e.g. the DropBlock
    schedule `dropout.dropblock_rate(step, total_steps, final_rate)` inside a jitted step.
    """

    rate: float
    variant: str = "inverted"
    block_size: int = 7
    sampler: str = DEFAULT_SAMPLER
    broadcast_dims: Sequence[int] = ()

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool, rate=None) -> jax.Array:
        variant = check_variant(self.variant)
        rate = dropout.check_rate(self.rate if rate is None else rate)
        masks.check_sampler(self.sampler)
        active = not deterministic and (isinstance(rate, jax.core.Tracer) or rate > 0.0)
        key = self.make_rng("dropout") if active else None
        if variant == "inverted":
            return dropout.inverted_dropout(
                key, x, rate, deterministic=not active,
                broadcast_dims=self.broadcast_dims, sampler=self.sampler,
            )  # fmt: skip
        if variant == "standard":
            return dropout.standard_dropout(
                key, x, rate, deterministic=deterministic,
                broadcast_dims=self.broadcast_dims, sampler=self.sampler,
            )  # fmt: skip
        if variant == "spatial":
            return dropout.spatial_dropout(
                key, x, rate, deterministic=not active, sampler=self.sampler
            )
        if variant == "gaussian":
            return dropout.gaussian_dropout(key, x, rate, deterministic=not active)
        if variant == "alpha":
            return dropout.alpha_dropout(
                key, x, rate, deterministic=not active, sampler=self.sampler
            )
        return dropout.dropblock(key, x, rate, self.block_size, deterministic=not active)


class DropConnectDense(nn.Module):
    """Dense layer whose kernel is dropped (Wan et al. 2013): one weight mask per batch."""

    features: int
    rate: float
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros
    sampler: str = DEFAULT_SAMPLER

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        rate = dropout.check_rate(self.rate)
        masks.check_sampler(self.sampler)
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        active = not deterministic and rate > 0.0
        key = self.make_rng("dropout") if active else None
        kernel = dropout.dropconnect(
            key, kernel, rate, deterministic=not active, sampler=self.sampler
        )
        y = jnp.dot(x, kernel.astype(x.dtype))
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(x.dtype)
        return y
