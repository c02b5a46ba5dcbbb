"""IMDB text classifiers of post 000: a 1-D CNN and an LSTM, both on token ids (N, T), 0 = padding.

Initialisers follow Keras, which the posts used: embeddings U(-0.05, 0.05), Glorot-uniform kernels,
an orthogonal recurrent kernel and a forget-gate bias of 1.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dropout_study import dropout as dropout_lib
from dropout_study import errors, layers
from dropout_study.masks import DEFAULT_SAMPLER
from dropout_study.models import conv, fields
from dropout_study.models.recurrence import lstm_recurrence

INPUT_MODES = ("variational", "standard")


def keras_embedding_init(key, shape, dtype=jnp.float32):
    """Keras' default embedding initialiser: uniform in [-0.05, 0.05)."""
    return jax.random.uniform(key, shape, dtype, -0.05, 0.05)


def last_token_index(tokens: jax.Array) -> jax.Array:
    """Index (N,) of the last non-padding token of each row of `tokens` (N, T); T-1 if none.

    With Keras' 'pre' padding this is always T-1; with 'post' padding it is length - 1.
    """
    not_pad = tokens[:, ::-1] != 0
    return tokens.shape[1] - 1 - jnp.argmax(not_pad, axis=1)


class Embed(nn.Embed):
    """nn.Embed (same parameter) whose lookup skips the bounds check of the gather and of its
    gradient's scatter: ids lie in [0, vocab_size), as run_config checks against the data."""

    def __call__(self, inputs: jax.Array) -> jax.Array:
        if not jnp.issubdtype(inputs.dtype, jnp.integer):
            raise ValueError(f"Embed takes integer token ids, not {inputs.dtype}.")
        return self.embedding.at[inputs].get(mode="promise_in_bounds")


class TextCNN(nn.Module):
    """Embedding -> Conv1D per width -> ReLU -> global max pool -> concat -> dropout -> dense."""

    vocab_size: int = 20000
    embed_dim: int = 128
    num_filters: int = 128
    kernel_sizes: Sequence[int] = (3,)
    num_classes: int = 2
    output_rate: float = 0.5
    dropout_variant: str = "inverted"
    sampler: str = DEFAULT_SAMPLER
    conv_impl: str = "auto"

    def __post_init__(self):
        errors.check_choice("conv_impl", self.conv_impl, conv.IMPLS)
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            raise ValueError(
                f"kernel_sizes={tuple(self.kernel_sizes)} must list one or more widths >= 1."
            )
        fields.check_rates("output_rate", self.output_rate)
        fields.check_dropout(
            "dropout_variant", self.dropout_variant, self.sampler, fields.ELEMENTWISE_VARIANTS
        )
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array, *, train: bool, dropout: bool | None = None):
        """tokens (N, T) int -> logits (N, num_classes)."""
        if tokens.shape[1] < max(self.kernel_sizes):
            raise ValueError(
                f"sequence length {tokens.shape[1]} is shorter than the widest kernel "
                f"{max(self.kernel_sizes)}; pad the sequences or use smaller kernel_sizes."
            )
        x = Embed(self.vocab_size, self.embed_dim, embedding_init=keras_embedding_init)(tokens)
        pooled = []
        for width in self.kernel_sizes:
            glorot = nn.initializers.glorot_uniform()
            y = conv.Conv(self.num_filters, (width,), "VALID", self.conv_impl, glorot)(x)
            pooled.append(nn.relu(jnp.max(y, axis=1)))  # (N, F): relu(max) = max(relu)
        h = jnp.concatenate(pooled, axis=-1)
        h = layers.Dropout(self.output_rate, variant=self.dropout_variant, sampler=self.sampler)(
            h, deterministic=not fields.active(train, dropout)
        )
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.glorot_uniform())(h)


class LSTM(nn.Module):
    """Single-layer LSTM over time-major inputs (T, N, E) -> hidden states (T, N, H).

    Parameters are Keras' fused layout: input_kernel (E, 4H), recurrent_kernel (H, 4H), bias (4H),
    gates (i, f, g, o). The input projection of all steps is one matmul outside the time loop.
    """

    hidden_dim: int = 128
    unit_forget_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, recurrent_mask: jax.Array | None = None) -> jax.Array:
        width = 4 * self.hidden_dim
        w = self.param("input_kernel", nn.initializers.glorot_uniform(), (x.shape[-1], width))
        u = self.param("recurrent_kernel", nn.initializers.orthogonal(), (self.hidden_dim, width))
        b = self.param("bias", self._bias_init, (width,))
        steps, batch, features = x.shape
        # (T, N, 4H): one 2-D matmul for every time step (its gradients stay 2-D matmuls too).
        xp = (x.reshape(steps * batch, features) @ w).reshape(steps, batch, width) + b
        return lstm_recurrence(xp, u, recurrent_mask)

    def _bias_init(self, key, shape, dtype=jnp.float32):
        """Zeros, with ones in the forget-gate slice when `unit_forget_bias` (Keras' default)."""
        del key
        forget = 1.0 if self.unit_forget_bias else 0.0
        h = self.hidden_dim
        return jnp.zeros(shape, dtype).at[h : 2 * h].set(forget)


class LSTMClassifier(nn.Module):
    """Embedding -> input dropout -> LSTM -> hidden state at the last real token -> dropout -> dense

    input_mode "variational": one input mask per sequence (Gal & Ghahramani 2016, Keras' `dropout`);
    "standard": a fresh mask per time step and unit. The recurrent mask (`recurrent_rate`) is always
    variational: one mask per sequence on h_{t-1}, as Keras' `recurrent_dropout`.
    """

    vocab_size: int = 20000
    embed_dim: int = 128
    hidden_dim: int = 128
    num_classes: int = 2
    input_mode: str = "variational"
    input_rate: float = 0.0
    recurrent_rate: float = 0.0
    output_rate: float = 0.5
    dropout_variant: str = "inverted"
    unit_forget_bias: bool = True
    sampler: str = DEFAULT_SAMPLER

    def __post_init__(self):
        errors.check_choice("input_mode", self.input_mode, INPUT_MODES)
        for site in ("input", "recurrent", "output"):
            fields.check_rates(f"{site}_rate", getattr(self, f"{site}_rate"))
        fields.check_dropout(
            "dropout_variant", self.dropout_variant, self.sampler, fields.ELEMENTWISE_VARIANTS
        )
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array, *, train: bool, dropout: bool | None = None):
        """tokens (N, T) int -> logits (N, num_classes)."""
        on = fields.active(train, dropout)
        batch = tokens.shape[0]
        embed = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=keras_embedding_init)
        x = embed(tokens.T)  # (T, N, E): time-major straight from the lookup, no transpose
        input_mask, recurrent_mask = self._variational_masks(batch, on, x.dtype)
        if self.input_mode == "standard":
            x = self._dropout(self.input_rate)(x, deterministic=not on)
        elif input_mask is not None:
            x = x * input_mask  # (N, E) broadcast over time
        hs = LSTM(self.hidden_dim, self.unit_forget_bias)(x, recurrent_mask)
        h = hs[last_token_index(tokens), jnp.arange(batch)]  # (N, H)
        h = self._dropout(self.output_rate)(h, deterministic=not on)
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.glorot_uniform())(h)

    def _dropout(self, rate: float) -> layers.Dropout:
        return layers.Dropout(rate, variant=self.dropout_variant, sampler=self.sampler)

    def _variational_masks(self, batch: int, on: bool, dtype):
        """(input mask (N, E) or None, recurrent mask (N, H) or None), one draw per sequence."""
        input_rate = self.input_rate if self.input_mode == "variational" else 0.0
        recurrent_rate = self.recurrent_rate
        if not on or (input_rate == 0.0 and recurrent_rate == 0.0):
            return None, None
        input_mask, recurrent_mask = dropout_lib.variational_masks(
            self.make_rng("dropout"), batch, self.embed_dim, self.hidden_dim,
            input_rate, recurrent_rate, dtype, sampler=self.sampler,
        )  # fmt: skip
        return (
            input_mask if input_rate > 0.0 else None,
            recurrent_mask if recurrent_rate > 0.0 else None,
        )
