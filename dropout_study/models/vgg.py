"""VGG-like CIFAR-10 net of post 001: 3 blocks of 2 convs, batch-norm, per-block dropout, 2 dense.

Per block: conv 3x3 'SAME' -> [BN] -> ReLU -> conv 3x3 'VALID' -> [BN] -> ReLU -> max-pool 2x2 ->
dropout(block_rates[b]). Head: flatten -> (dense(ndense) -> ReLU -> dropout(dense_rates[d])) x 2 ->
dense(num_classes).
On 32x32x3 the spatial size goes 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2, so the flatten is 2*2*256.
Batch-norm uses Keras' momentum 0.99 and epsilon 1e-3; convs keep their bias as in the post.
With block_variant "dropblock" the block size is clipped to the feature map (2x2 after block 3).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dropout_study import errors, layers
from dropout_study.masks import DEFAULT_SAMPLER
from dropout_study.models import conv, fields

BN_MOMENTUM = 0.99  # Keras BatchNormalization defaults
BN_EPSILON = 1e-3
NUM_DENSE = 2  # hidden dense layers of the head, each followed by dropout


def batch_norm(train: bool) -> nn.BatchNorm:
    """Keras-default batch-norm: batch statistics (updating 'batch_stats') iff `train`."""
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max-pool, stride 2, 'VALID' (odd sizes floor), as a reshape + max: x (N, H, W, C).

    Same values as `nn.max_pool(x, (2, 2), (2, 2))`; its gradient is an elementwise compare
    instead of XLA's select-and-scatter, which is slow on CPU.
    """
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class VGG(nn.Module):
    """VGG-like classifier of post 001; image (N, H, W, C) float -> logits (N, num_classes)."""

    filters: Sequence[int] = (64, 128, 256)
    ndense: int = 512
    batch_norm: bool = True
    block_rates: Sequence[float] = (0.2, 0.3, 0.4)
    dense_rates: Sequence[float] = (0.5, 0.5)
    block_variant: str = "inverted"
    dense_variant: str = "inverted"
    block_size: int = 3
    num_classes: int = 10
    sampler: str = DEFAULT_SAMPLER
    conv_impl: str = "auto"

    def __post_init__(self):
        levels = len(self.filters)
        fields.check_level_rates("block_rates", self.block_rates, levels)
        fields.check_level_rates("dense_rates", self.dense_rates, NUM_DENSE)
        fields.check_dropout("block_variant", self.block_variant, self.sampler)
        errors.check_choice("conv_impl", self.conv_impl, conv.IMPLS)
        fields.check_dropout(
            "dense_variant", self.dense_variant, self.sampler, fields.ELEMENTWISE_VARIANTS
        )
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, dropout: bool | None = None) -> jax.Array:
        deterministic = not fields.active(train, dropout)
        for features, rate in zip(self.filters, self.block_rates, strict=True):
            for padding in ("SAME", "VALID"):
                y = conv.Conv(features, (3, 3), padding, self.conv_impl)(x)
                x = self._norm_relu(y, train)
            x = max_pool_2x2(x)
            block_size = min(self.block_size, *x.shape[1:3])  # DropBlock on small late maps
            x = layers.Dropout(
                rate, variant=self.block_variant, block_size=block_size, sampler=self.sampler
            )(x, deterministic=deterministic)
        x = x.reshape(x.shape[0], -1)
        for rate in self.dense_rates:
            x = nn.relu(nn.Dense(self.ndense)(x))
            x = layers.Dropout(rate, variant=self.dense_variant, sampler=self.sampler)(
                x, deterministic=deterministic
            )
        return nn.Dense(self.num_classes)(x)

    def _norm_relu(self, x: jax.Array, train: bool) -> jax.Array:
        return nn.relu(batch_norm(train)(x) if self.batch_norm else x)
