"""MLP of post 003's comparison: flatten -> (dense -> activation -> dropout) per hidden -> dense.

"selu" makes it a self-normalising net (Klambauer et al. 2017), which needs LeCun-normal weights and
alpha dropout; `dropout_variant="auto"` and `kernel_init="auto"` pick those for SELU and
inverted dropout with Glorot-uniform weights (Keras' default) for ReLU.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax

from dropout_study import errors, layers
from dropout_study.masks import DEFAULT_SAMPLER
from dropout_study.models import fields

ACTIVATIONS = {"relu": nn.relu, "selu": nn.selu}
KERNEL_INITS = {
    "glorot_uniform": nn.initializers.glorot_uniform(),
    "lecun_normal": nn.initializers.lecun_normal(),
    "he_normal": nn.initializers.he_normal(),
}
_AUTO = {"relu": ("inverted", "glorot_uniform"), "selu": ("alpha", "lecun_normal")}


class MLP(nn.Module):
    """x (N, ...) -> logits (N, num_classes); one dropout rate per hidden layer."""

    hidden: Sequence[int] = (512, 512)
    rates: Sequence[float] = (0.2, 0.2)
    activation: str = "relu"
    dropout_variant: str = "auto"
    kernel_init: str = "auto"
    num_classes: int = 10
    sampler: str = DEFAULT_SAMPLER

    def __post_init__(self):
        errors.check_choice("activation", self.activation, tuple(ACTIVATIONS))
        fields.check_level_rates("rates", self.rates, len(self.hidden))
        fields.check_dropout(
            "dropout_variant", self.dropout_variant, self.sampler,
            ("auto", *fields.ELEMENTWISE_VARIANTS),
        )  # fmt: skip
        errors.check_choice("kernel_init", self.kernel_init, ("auto", *KERNEL_INITS))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, dropout: bool | None = None) -> jax.Array:
        auto_variant, auto_init = _AUTO[self.activation]
        variant = auto_variant if self.dropout_variant == "auto" else self.dropout_variant
        init = KERNEL_INITS[auto_init if self.kernel_init == "auto" else self.kernel_init]
        deterministic = not fields.active(train, dropout)
        x = x.reshape(x.shape[0], -1)
        for features, rate in zip(self.hidden, self.rates, strict=True):
            x = ACTIVATIONS[self.activation](nn.Dense(features, kernel_init=init)(x))
            x = layers.Dropout(rate, variant=variant, sampler=self.sampler)(
                x, deterministic=deterministic
            )
        return nn.Dense(self.num_classes, kernel_init=init)(x)
