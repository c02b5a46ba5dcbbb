"""CIFAR-100 family of post 002: five nets identical except what sits between convolutions.

Each stage: `convs_per_stage` x (conv 3x3 'SAME' -> between) -> max-pool 2x2, where `between` is
  "none":              ReLU
  "dropout":           ReLU -> dropout (elementwise)
  "spatial_dropout":   ReLU -> spatial dropout (whole channels)
  "batchnorm":         BN -> ReLU
  "batchnorm_dropout": BN -> ReLU -> dropout (elementwise)
Head "dense": flatten -> dense(dense_units) -> ReLU -> dense; "gap": global average pool -> dense.
The head has no dropout, so the five nets differ only between convolutions.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dropout_study import errors, layers
from dropout_study.masks import DEFAULT_SAMPLER, check_sampler
from dropout_study.models import conv, fields
from dropout_study.models.vgg import batch_norm, max_pool_2x2

ARCHS = ("none", "dropout", "spatial_dropout", "batchnorm", "batchnorm_dropout")
HEADS = ("dense", "gap")
_DROPOUT_VARIANT = {
    "dropout": "inverted",
    "spatial_dropout": "spatial",
    "batchnorm_dropout": "inverted",
}


class ConvFamily(nn.Module):
    """One of the five architectures (`arch`) with a dense or GAP head; x (N, H, W, C) -> logits."""

    arch: str = "batchnorm"
    head: str = "gap"
    filters: Sequence[int] = (64, 128, 256)
    convs_per_stage: int = 2
    rate: float = 0.2
    dense_units: int = 512
    num_classes: int = 100
    sampler: str = DEFAULT_SAMPLER
    conv_impl: str = "auto"

    def __post_init__(self):
        errors.check_choice("arch", self.arch, ARCHS)
        errors.check_choice("head", self.head, HEADS)
        fields.check_rates("rate", self.rate)
        check_sampler(self.sampler)
        errors.check_choice("conv_impl", self.conv_impl, conv.IMPLS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, dropout: bool | None = None) -> jax.Array:
        deterministic = not fields.active(train, dropout)
        for features in self.filters:
            for _ in range(self.convs_per_stage):
                x = conv.Conv(features, (3, 3), "SAME", self.conv_impl)(x)
                x = self._between(x, train, deterministic)
            x = max_pool_2x2(x)
        if self.head == "gap":
            x = jnp.mean(x, axis=(1, 2))
        else:
            x = nn.relu(nn.Dense(self.dense_units)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(x)

    def _between(self, x: jax.Array, train: bool, deterministic: bool) -> jax.Array:
        """What sits between two convolutions in this architecture."""
        if self.arch.startswith("batchnorm"):
            x = batch_norm(train)(x)
        x = nn.relu(x)
        if self.arch in _DROPOUT_VARIANT:
            dropout = layers.Dropout(
                self.rate, variant=_DROPOUT_VARIANT[self.arch], sampler=self.sampler
            )
            x = dropout(x, deterministic=deterministic)
        return x
