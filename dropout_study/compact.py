"""Dropout that skips the dropped work, each variant beside its masked twin.

Masked dropout multiplies by zero and saves no compute. If one mask serves the whole batch
(structured in space, random in time: a fresh mask every step), the dropped units are the same
for every example, so the layer that produces them can compute only the kept units and the layer
that consumes them can read only the kept rows of its kernel: every matmul or convolution that
touches the dropped units shrinks to (1 - rate) of its width.

Shapes must be static under jit, so a mask keeps exactly K = round(units * (1 - rate)) units,
a uniformly random subset (`kept_units`). Each unit is then kept with probability exactly K/units
and kept units are scaled by units/K, so every expectation equals that of the undropped layer.

Kernels follow Flax: dense (in, out), convolution (*window, in, out), LSTM input kernel (E, 4H).
`gather_outputs` selects a producer's kept output units, `gather_inputs` a consumer's kept input
rows; the compact functions are built from them, the masked twins compute at full width.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from dropout_study import dropout
from dropout_study.models.recurrence import lstm_recurrence


def kept_count(units: int, rate) -> int:
    """K, the number of units a per-batch mask keeps: round(units * (1 - rate)), at least 1."""
    rate = dropout.check_rate(rate)
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"units={units!r} must be a positive int (the width being dropped).")
    return max(1, min(units, round(units * (1.0 - rate))))


def effective_rate(units: int, rate) -> float:
    """The drop rate a K-of-`units` mask realises: 1 - K/units (rate quantised to 1/units)."""
    return 1.0 - kept_count(units, rate) / units


def kept_units(key, units: int, rate) -> jax.Array:
    """Sorted indices (K,) int32 of the kept units: a uniform random K-subset of range(units).

    Sorted so that the gathers read memory in order.
    """
    k = kept_count(units, rate)
    order = jax.random.permutation(dropout.check_key(key), units)
    return jnp.sort(order[:k]).astype(jnp.int32)


def batch_mask(kept: jax.Array, units: int) -> jax.Array:
    """Boolean mask (units,) that is True at `kept`: the masked twin of a kept-index set."""
    return jnp.zeros((units,), bool).at[kept].set(True)


def _scale(kept: jax.Array, units: int) -> float:
    return units / kept.shape[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def take_units(x: jax.Array, kept: jax.Array, axis: int) -> jax.Array:
    """`jnp.take(x, kept, axis)` materialised, with a backward pass that gathers instead of
    scattering.

    On CPU, XLA fuses a gather into a following matmul and then runs the matmul as a slow loop;
    the barrier keeps the gathered copy a plain array. Autodiff of a gather is a scatter-add
    into zeros, which XLA's CPU backend runs serially; since `kept` holds distinct indices, the
    same gradient is the padded cotangent gathered back at each unit's position (dropped units
    read the zero pad).
    """
    return lax.optimization_barrier(jnp.take(x, kept, axis=axis))


def _take_units_fwd(x, kept, axis):
    return take_units(x, kept, axis), (kept, x.shape[axis])


def _take_units_bwd(axis, residuals, g):
    kept, units = residuals
    k = kept.shape[0]
    position = jnp.full((units,), k, jnp.int32).at[kept].set(jnp.arange(k, dtype=jnp.int32))
    pad = [(0, 0)] * g.ndim
    pad[axis] = (0, 1)  # index k: a zero slice for every dropped unit
    return jnp.take(jnp.pad(g, pad), position, axis=axis), None


take_units.defvjp(_take_units_fwd, _take_units_bwd)


def gather_outputs(kernel: jax.Array, bias: jax.Array, kept: jax.Array):
    """The kept output units of a layer: kernel (..., in, out) -> (..., in, K), bias -> (K,)."""
    return take_units(kernel, kept, kernel.ndim - 1), take_units(bias, kept, 0)


def gather_inputs(kernel: jax.Array, kept: jax.Array) -> jax.Array:
    """The rows of a layer's kernel that read kept inputs: (..., in, out) -> (..., K, out)."""
    return take_units(kernel, kept, kernel.ndim - 2)


def _masked_scale(mask: jax.Array, dtype) -> jax.Array:
    """mask (units,) -> float (units,): units/K where kept, 0 where dropped."""
    return jnp.where(mask, mask.shape[0] / jnp.sum(mask, dtype=jnp.float32), 0.0).astype(dtype)


# ---- dense: x (N, D) -> Dense(units) -> act -> dropout -> Dense(out) ----


def init_dense_pair(key, in_dim: int, units: int, out_dim: int, dtype=jnp.float32) -> dict:
    """Parameters of a dense -> dropout -> dense pair, LeCun-normal kernels and zero biases.

    The first kernel is stored units-major, w1t (units, in), so that keeping units gathers
    contiguous rows: XLA on CPU gathers columns of a (in, units) kernel through a transposed
    copy that costs more than the matmul it saves.
    """
    k1, k2 = jax.random.split(key)
    return {
        "w1t": jax.random.normal(k1, (units, in_dim), dtype) / math.sqrt(in_dim),
        "b1": jnp.zeros((units,), dtype),
        "w2": jax.random.normal(k2, (units, out_dim), dtype) / math.sqrt(units),
        "b2": jnp.zeros((out_dim,), dtype),
    }


def compact_dense_pair(params: dict, x: jax.Array, kept: jax.Array, act=jax.nn.relu):
    """Dense -> act -> dropout -> dense on the kept units only: x (N, D) -> (N, out).

    Both matmuls are K wide: (N, D) @ (K, D)^T and (N, K) @ (K, out).
    """
    w1t = take_units(params["w1t"], kept, 0)  # (K, D): kept rows
    b1 = take_units(params["b1"], kept, 0)
    h = act(x @ w1t.T + b1) * _scale(kept, params["w1t"].shape[0])  # (N, K)
    return h @ gather_inputs(params["w2"], kept) + params["b2"]


def masked_dense_pair(params: dict, x: jax.Array, mask: jax.Array, act=jax.nn.relu):
    """The masked twin of `compact_dense_pair`: full-width matmuls, dropped units zeroed."""
    h = act(x @ params["w1t"].T + params["b1"]) * _masked_scale(mask, x.dtype)  # (N, units)
    return h @ params["w2"] + params["b2"]


# ---- spatial dropout between convolutions: x (N, H, W, C) ----


def _conv(x: jax.Array, kernel: jax.Array, padding: str = "SAME") -> jax.Array:
    """Stride-1 convolution as `flax.linen.Conv`: x (N, *spatial, C), kernel (*window, C, F)."""
    spatial = {3: "W", 4: "HW", 5: "DHW"}[x.ndim]
    return lax.conv_general_dilated(
        x,
        kernel,
        (1,) * (x.ndim - 2),
        padding,
        dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"),
    )


def init_conv_pair(key, in_channels: int, channels: int, out_channels: int, window: int = 3):
    """Parameters of a conv -> spatial dropout -> conv pair, LeCun-normal kernels, zero biases."""
    k1, k2 = jax.random.split(key)
    fan1, fan2 = window * window * in_channels, window * window * channels
    return {
        "w1": jax.random.normal(k1, (window, window, in_channels, channels)) / math.sqrt(fan1),
        "b1": jnp.zeros((channels,)),
        "w2": jax.random.normal(k2, (window, window, channels, out_channels)) / math.sqrt(fan2),
        "b2": jnp.zeros((out_channels,)),
    }


def compact_conv_pair(params: dict, x: jax.Array, kept: jax.Array, act=jax.nn.relu):
    """Conv -> act -> spatial dropout (one channel mask per batch) -> conv, kept channels only.

    x (N, H, W, C_in) -> (N, H, W, C_out); the first conv writes K channels, the second reads K.
    """
    w1, b1 = gather_outputs(params["w1"], params["b1"], kept)
    h = act(_conv(x, w1) + b1) * _scale(kept, params["w1"].shape[-1])  # (N, H, W, K)
    return _conv(h, gather_inputs(params["w2"], kept)) + params["b2"]


def masked_conv_pair(params: dict, x: jax.Array, mask: jax.Array, act=jax.nn.relu):
    """The masked twin of `compact_conv_pair`: full-width convs, dropped channels zeroed."""
    h = act(_conv(x, params["w1"]) + params["b1"]) * _masked_scale(mask, x.dtype)
    return _conv(h, params["w2"]) + params["b2"]


# ---- text CNN: embedding -> conv1d -> max over time -> dropout -> dense ----


def init_text_cnn(key, vocab: int, embed_dim: int, filters: int, width: int, out_dim: int):
    """Parameters of an embedding -> conv1d (`width`) -> global max pool -> dense classifier."""
    ke, kc, ko = jax.random.split(key, 3)
    return {
        "embed": jax.random.uniform(ke, (vocab, embed_dim), minval=-0.05, maxval=0.05),
        "w1": jax.random.normal(kc, (width, embed_dim, filters)) / math.sqrt(width * embed_dim),
        "b1": jnp.zeros((filters,)),
        "w2": jax.random.normal(ko, (filters, out_dim)) / math.sqrt(filters),
        "b2": jnp.zeros((out_dim,)),
    }


def compact_text_cnn(params: dict, tokens: jax.Array, kept: jax.Array):
    """Text CNN with dropout on the pooled filters, kept filters only: tokens (N, T) -> (N, out).

    The convolution computes K filters, so dropping filters saves most of the model's compute.
    """
    w1, b1 = gather_outputs(params["w1"], params["b1"], kept)
    x = params["embed"][tokens]  # (N, T, E)
    h = jnp.max(jax.nn.relu(_conv(x, w1, "VALID") + b1), axis=1)  # (N, K)
    h = h * _scale(kept, params["w1"].shape[-1])
    return h @ gather_inputs(params["w2"], kept) + params["b2"]


def masked_text_cnn(params: dict, tokens: jax.Array, mask: jax.Array):
    """The masked twin of `compact_text_cnn`: every filter computed, dropped ones zeroed."""
    x = params["embed"][tokens]
    h = jnp.max(jax.nn.relu(_conv(x, params["w1"], "VALID") + params["b1"]), axis=1)  # (N, F)
    return (h * _masked_scale(mask, h.dtype)) @ params["w2"] + params["b2"]


# ---- LSTM: embedding -> input dropout -> LSTM -> output dropout -> dense ----


def init_lstm(key, vocab: int, embed_dim: int, hidden: int, out_dim: int) -> dict:
    """Parameters of an embedding -> LSTM -> dense classifier, Keras' gate order (i, f, g, o)."""
    ke, kw, ku, ko = jax.random.split(key, 4)
    return {
        "embed": jax.random.uniform(ke, (vocab, embed_dim), minval=-0.05, maxval=0.05),
        "w": jax.random.normal(kw, (embed_dim, 4 * hidden)) / math.sqrt(embed_dim),
        "u": jax.random.normal(ku, (hidden, 4 * hidden)) / math.sqrt(hidden),
        "b": jnp.zeros((4 * hidden,)),
        "wo": jax.random.normal(ko, (hidden, out_dim)) / math.sqrt(hidden),
        "bo": jnp.zeros((out_dim,)),
    }


def compact_lstm(params: dict, tokens: jax.Array, kept_in, kept_out):
    """LSTM classifier with input and output dropout on kept units only: tokens (N, T) -> (N, out).

    Input dropout drops embedding units for every time step and example: the lookup reads a
    (vocab, K_in) table and the input projection is (T*N, K_in) @ (K_in, 4H). Output dropout
    drops units of the last hidden state: the head is (N, K_out) @ (K_out, out). The recurrence
    is unchanged.
    `kept_in` / `kept_out` None: no dropout at that site.
    """
    embed_dim, hidden = params["w"].shape[0], params["u"].shape[0]
    if kept_in is None:
        xp = params["embed"][tokens.T] @ params["w"] + params["b"]  # (T, N, 4H)
    else:
        x = take_units(params["embed"], kept_in, 1)[tokens.T]  # (T, N, K_in)
        xp = x @ (gather_inputs(params["w"], kept_in) * _scale(kept_in, embed_dim)) + params["b"]
    h = lstm_recurrence(xp, params["u"], None)[-1]  # (N, H): the last step ('pre' padding)
    if kept_out is None:
        return h @ params["wo"] + params["bo"]
    h = take_units(h, kept_out, 1) * _scale(kept_out, hidden)  # (N, K_out)
    return h @ gather_inputs(params["wo"], kept_out) + params["bo"]


def masked_lstm(params: dict, tokens: jax.Array, mask_in, mask_out):
    """The masked twin of `compact_lstm`: full-width projections, dropped units zeroed."""
    x = params["embed"][tokens.T]  # (T, N, E)
    if mask_in is not None:
        x = x * _masked_scale(mask_in, x.dtype)
    h = lstm_recurrence(x @ params["w"] + params["b"], params["u"], None)[-1]  # (N, H)
    if mask_out is not None:
        h = h * _masked_scale(mask_out, h.dtype)
    return h @ params["wo"] + params["bo"]
