"""UNet denoising autoencoder of post 004: image (N, H, W, C) -> denoised image of the same shape.

Encoder level l: 2 x (conv 3x3 -> [BN] -> ReLU) -> dropout(encoder_rates[l]) -> skip, max-pool 2x2.
The skip passes through its own dropout (skip_rates[l]) before the decoder concatenates it.
Bottleneck: 2 convs with 2 * filters[-1]. Decoder level l: transposed conv 2x2 stride 2 ->
concat skip -> 2 convs. A 1x1 conv maps to the image channels. `dropout_variant` "spatial" is
Keras' SpatialDropout2D (whole feature maps), "inverted" the elementwise Dropout.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dropout_study import errors, layers
from dropout_study.masks import DEFAULT_SAMPLER
from dropout_study.models import conv, fields
from dropout_study.models.vgg import batch_norm, max_pool_2x2

OUTPUT_ACTIVATIONS = ("sigmoid", "linear")


class UNet(nn.Module):
    """Encoder / decoder with skip connections; H and W must be divisible by 2 ** len(filters)."""

    filters: Sequence[int] = (32, 64, 128)
    encoder_rates: Sequence[float] = (0.1, 0.1, 0.1)
    skip_rates: Sequence[float] = (0.0, 0.0, 0.0)
    dropout_variant: str = "spatial"
    batch_norm: bool = False
    output_activation: str = "sigmoid"
    sampler: str = DEFAULT_SAMPLER
    conv_impl: str = "auto"

    def __post_init__(self):
        levels = len(self.filters)
        fields.check_level_rates("encoder_rates", self.encoder_rates, levels)
        fields.check_level_rates("skip_rates", self.skip_rates, levels)
        fields.check_dropout("dropout_variant", self.dropout_variant, self.sampler)
        errors.check_choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        errors.check_choice("conv_impl", self.conv_impl, conv.IMPLS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, dropout: bool | None = None) -> jax.Array:
        factor = 2 ** len(self.filters)
        if x.ndim != 4 or x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(
                f"UNet with {len(self.filters)} levels needs images (N, H, W, C) with H and W "
                f"divisible by {factor}; got shape {tuple(x.shape)}. Pad or crop the images, or "
                f"use fewer levels (filters)."
            )
        deterministic = not fields.active(train, dropout)
        channels = x.shape[-1]
        skips = []
        for features, enc_rate, skip_rate in zip(
            self.filters, self.encoder_rates, self.skip_rates, strict=True
        ):
            x = self._conv_block(x, features, train)
            x = self._dropout(enc_rate)(x, deterministic=deterministic)
            skips.append(self._dropout(skip_rate)(x, deterministic=deterministic))
            x = max_pool_2x2(x)
        x = self._conv_block(x, 2 * self.filters[-1], train)
        for features, skip in zip(reversed(self.filters), reversed(skips), strict=True):
            x = nn.ConvTranspose(features, (2, 2), strides=(2, 2))(x)
            x = self._conv_block(jnp.concatenate([x, skip], axis=-1), features, train)
        x = conv.Conv(channels, (1, 1), "VALID", self.conv_impl)(x)
        return nn.sigmoid(x) if self.output_activation == "sigmoid" else x

    def _dropout(self, rate: float) -> layers.Dropout:
        return layers.Dropout(rate, variant=self.dropout_variant, sampler=self.sampler)

    def _conv_block(self, x: jax.Array, features: int, train: bool) -> jax.Array:
        for _ in range(2):
            x = conv.Conv(features, (3, 3), "SAME", self.conv_impl)(x)
            x = nn.relu(batch_norm(train)(x) if self.batch_norm else x)
        return x
