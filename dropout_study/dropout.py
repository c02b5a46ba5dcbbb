"""Dropout variants as pure functions of an explicit PRNG key.

Conventions: `rate` is the drop probability (`keep_to_rate` converts the posts' keep
probability); `deterministic=True` is the inference-time behaviour; masks come from
`masks.keep_mask`, and scaling uses the sampler's effective rate so expectations stay exact.
Inputs must be floating point, since the scaling would truncate integers.

Rate edges: a concrete rate must be a real number in [0, 1), and one that is 1 in float32
(e.g. 1 - 1e-8) drops every unit, as Flax does for rate 1. A traced rate cannot raise: 1 drops
every unit too, and NaN or a rate outside [0, 1] makes the whole output NaN, so a divergence
check catches it instead of a silently different dropout.
"""

import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dropout_study import masks
from dropout_study.masks import DEFAULT_SAMPLER, SAMPLERS, effective_rate

__all__ = [
    "DEFAULT_SAMPLER",
    "SAMPLERS",
    "alpha_dropout",
    "check_key",
    "check_rate",
    "cutout",
    "dropblock",
    "dropblock_rate",
    "dropconnect",
    "effective_rate",
    "gaussian_dropout",
    "inverted_dropout",
    "keep_mask",
    "keep_to_rate",
    "mask_shape",
    "spatial_axes",
    "spatial_dropout",
    "spatial_dropout1d",
    "spatial_dropout2d",
    "spatial_dropout3d",
    "standard_dropout",
    "variational_masks",
]

# SELU constants (Klambauer et al. 2017): alpha and lambda.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Largest relative error |effective_rate - rate| / rate a quantised sampler adds without a warning.
RATE_TOLERANCE = 0.05


def _is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def check_rate(rate, name: str = "rate") -> float:
    """Returns `rate` as a float: TypeError unless a real number (not str, bool, None),
    ValueError outside [0, 1).

    Traced rates (e.g. a schedule inside jit) cannot be inspected and are returned unchanged.
    """
    if _is_traced(rate):
        return rate
    if np.ndim(rate) != 0 or np.asarray(rate).dtype.kind not in "iuf":
        raise TypeError(
            f"{name}={rate!r} has type {type(rate).__name__}; {name} must be a real number, "
            "a drop probability in [0, 1)."
        )
    value = float(rate)
    if not 0.0 <= value < 1.0:  # NaN fails both comparisons
        raise ValueError(
            f"{name}={rate!r} is outside the allowed range [0, 1); {name} is the drop "
            "probability (convert a keep probability with keep_to_rate(keep_prob))."
        )
    return value


def keep_to_rate(keep_prob) -> float:
    """Drop rate for the posts' keep probability: rate = 1 - keep_prob, keep_prob in (0, 1]."""
    try:
        value = float(keep_prob)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"keep_prob={keep_prob!r} is outside the allowed range (0, 1]; it is the probability "
            "of keeping a unit (1.0 = no dropout)."
        )
    return 1.0 - value


def check_key(key, name: str = "key") -> jax.Array:
    """Returns `key` as a typed PRNG key; accepts `jax.random.key` and raw `PRNGKey` arrays."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape == ():
            return key
    elif dtype == jnp.uint32:
        try:
            return jax.random.wrap_key_data(key)
        except (TypeError, ValueError):
            pass
    raise ValueError(
        f"{name} must be a single PRNG key, from jax.random.key(seed) or jax.random.PRNGKey(seed); "
        f"got {type(key).__name__} with dtype={dtype} and shape={getattr(key, 'shape', None)}."
    )


def _relative_quantisation(rate: float, sampler: str) -> float:
    return abs(effective_rate(rate, sampler) - rate) / rate


def _warn_if_coarse(rate, sampler: str) -> None:
    """Warns when `sampler` realises a concrete `rate` more than RATE_TOLERANCE off, e.g. packed8
    turns 0.001 into 1/256; traced rates cannot be inspected."""
    if _is_traced(rate) or rate == 0.0:
        return
    error = _relative_quantisation(rate, sampler)
    if error > RATE_TOLERANCE:
        finer = tuple(s for s in SAMPLERS if _relative_quantisation(rate, s) <= RATE_TOLERANCE)
        warnings.warn(
            f"rate={rate} becomes {effective_rate(rate, sampler):.4g} with sampler={sampler!r} "
            f"({error:.0%} off, over RATE_TOLERANCE={RATE_TOLERANCE:.0%}); pick sampler="
            f"'bernoulli' (exact) or another of {finer} for this rate.",
            stacklevel=3,
        )


def keep_mask(key, shape: Sequence[int], rate, *, sampler: str = DEFAULT_SAMPLER) -> jax.Array:
    """Boolean mask of `shape`, True = kept, each element kept with prob. 1 - effective rate."""
    rate = check_rate(rate)
    _warn_if_coarse(rate, sampler)
    return masks.keep_mask(check_key(key), tuple(shape), rate, sampler)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def mask_shape(shape: Sequence[int], broadcast_dims: Sequence[int]) -> tuple[int, ...]:
    """`shape` with every axis in `broadcast_dims` set to 1 (one draw shared along it)."""
    ndim = len(shape)
    if not isinstance(broadcast_dims, (tuple, list, np.ndarray)) or not all(
        map(_is_int, broadcast_dims)
    ):
        raise TypeError(
            f"broadcast_dims={broadcast_dims!r} must be a sequence of int axes in [-{ndim}, "
            f"{ndim}) for an input of shape {tuple(shape)}."
        )
    for d in broadcast_dims:
        if not -ndim <= d < ndim:
            raise ValueError(
                f"broadcast_dims={tuple(broadcast_dims)} names axis {d}, outside [-{ndim}, "
                f"{ndim}) for an input of shape {tuple(shape)}."
            )
    dims = {d % ndim for d in broadcast_dims}
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def _check_rate_and_sampler(rate, sampler: str):
    """Validates both arguments, also in eval, so a bad config fails before any training."""
    masks.check_sampler(sampler)
    return check_rate(rate)


def _check_floating(x: jax.Array, name: str) -> None:
    """Raises TypeError unless x is floating point: scaling would truncate integers (as torch)."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} needs a floating-point x; got x.dtype={x.dtype}. Cast it first, e.g. "
            "x.astype(jnp.float32)."
        )


def _is_identity(rate, deterministic: bool) -> bool:
    return deterministic or (not _is_traced(rate) and rate == 0.0)


def _drops_all(rate) -> bool:
    """Whether a concrete `rate` is 1 in float32 (e.g. 1 - 1e-8): every unit is dropped."""
    return not _is_traced(rate) and np.float32(rate) == 1.0


def _keep_prob(rate, sampler: str) -> jax.Array:
    """1 - the sampler's effective rate in float32; 1 for a traced rate >= 1, whose output
    `_traced_edges` zeroes, so that 1/keep and its gradient stay finite."""
    keep = 1.0 - jnp.asarray(effective_rate(rate, sampler), jnp.float32)
    return jnp.where(rate >= 1.0, 1.0, keep) if _is_traced(rate) else keep


def _traced_edges(y: jax.Array, rate, top: float = 1.0) -> jax.Array:
    """For a traced rate, which cannot raise: zeros at rate >= 1 (as Flax at 1), and all NaN
    for NaN or a rate outside [0, top], so a divergence check sees it."""
    if not _is_traced(rate):
        return y
    rate = jnp.asarray(rate, jnp.float32)
    y = jnp.where(rate >= 1.0, 0, y)
    return jnp.where((rate >= 0.0) & (rate <= top), y, jnp.nan)


def inverted_dropout(
    key,
    x: jax.Array,
    rate,
    *,
    deterministic: bool = False,
    broadcast_dims: Sequence[int] = (),
    sampler: str = DEFAULT_SAMPLER,
) -> jax.Array:
    """Zeroes units with prob. `rate`, scales kept ones by 1/keep in training; identity in eval."""
    rate = _check_rate_and_sampler(rate, sampler)
    _check_floating(x, "inverted_dropout")
    shape = mask_shape(x.shape, broadcast_dims)
    if _is_identity(rate, deterministic):
        return x
    if _drops_all(rate):
        return jnp.zeros_like(x)
    mask = keep_mask(key, shape, rate, sampler=sampler)
    scale = 1.0 / _keep_prob(rate, sampler)
    return _traced_edges(jnp.where(mask, x * scale, 0), rate).astype(x.dtype)


def standard_dropout(
    key,
    x: jax.Array,
    rate,
    *,
    deterministic: bool = False,
    broadcast_dims: Sequence[int] = (),
    sampler: str = DEFAULT_SAMPLER,
) -> jax.Array:
    """Srivastava et al. 2014: zeroes units without rescaling; eval multiplies by keep prob."""
    rate = _check_rate_and_sampler(rate, sampler)
    _check_floating(x, "standard_dropout")
    shape = mask_shape(x.shape, broadcast_dims)
    if not _is_traced(rate) and rate == 0.0:
        return x
    if _drops_all(rate):
        return jnp.zeros_like(x)
    if deterministic:
        return _traced_edges(x * _keep_prob(rate, sampler), rate).astype(x.dtype)
    mask = keep_mask(key, shape, rate, sampler=sampler)
    return _traced_edges(jnp.where(mask, x, 0), rate).astype(x.dtype)


def _check_rank(x: jax.Array, rank: int, name: str, layout: str) -> None:
    """Raises ValueError unless x has exactly `rank` axes."""
    if x.ndim != rank:
        raise ValueError(
            f"{name} needs x of rank {rank} {layout}; got x.shape={tuple(x.shape)} (rank "
            f"{x.ndim}). Use the variant for this rank, or inverted_dropout for element-wise."
        )


def spatial_axes(ndim: int) -> tuple[int, ...]:
    """The axes a spatial mask is shared along: all but the batch and channel axes."""
    return tuple(range(1, ndim - 1))


def spatial_dropout(
    key, x: jax.Array, rate, *, deterministic: bool = False, sampler: str = DEFAULT_SAMPLER
) -> jax.Array:
    """Keras SpatialDropout: x (N, *spatial, C), one draw per example and channel (N, 1.., C)."""
    if x.ndim < 3:
        raise ValueError(
            f"spatial_dropout needs x of rank >= 3 (N, *spatial, C); got x.shape={tuple(x.shape)}"
            f" (rank {x.ndim}). Use inverted_dropout for element-wise dropout."
        )
    return inverted_dropout(
        key,
        x,
        rate,
        deterministic=deterministic,
        broadcast_dims=spatial_axes(x.ndim),
        sampler=sampler,
    )


def spatial_dropout1d(key, x, rate, *, deterministic=False, sampler=DEFAULT_SAMPLER):
    """SpatialDropout1D: x (N, T, C); a channel is dropped for every time step together."""
    _check_rank(x, 3, "spatial_dropout1d", "(N, T, C)")
    return spatial_dropout(key, x, rate, deterministic=deterministic, sampler=sampler)


def spatial_dropout2d(key, x, rate, *, deterministic=False, sampler=DEFAULT_SAMPLER):
    """SpatialDropout2D: x (N, H, W, C); a channel is dropped over the whole feature map."""
    _check_rank(x, 4, "spatial_dropout2d", "(N, H, W, C)")
    return spatial_dropout(key, x, rate, deterministic=deterministic, sampler=sampler)


def spatial_dropout3d(key, x, rate, *, deterministic=False, sampler=DEFAULT_SAMPLER):
    """SpatialDropout3D: x (N, D, H, W, C); a channel is dropped over the whole volume."""
    _check_rank(x, 5, "spatial_dropout3d", "(N, D, H, W, C)")
    return spatial_dropout(key, x, rate, deterministic=deterministic, sampler=sampler)


# The largest float32 rate below 1: gaussian noise needs rate < 1 (so does Keras GaussianDropout).
FLOAT32_BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def gaussian_dropout(key, x: jax.Array, rate, *, deterministic: bool = False) -> jax.Array:
    """Multiplies by noise ~ N(1, rate / (1 - rate)), the variance of inverted dropout.

    The variance is infinite at rate 1, so rate must be < 1 in float32 (a traced one: NaN output).
    """
    rate = check_rate(rate)
    _check_floating(x, "gaussian_dropout")
    if _drops_all(rate):
        raise ValueError(
            f"rate={rate!r} is 1.0 in float32, where the noise std sqrt(rate / (1 - rate)) is "
            f"infinite; gaussian_dropout needs rate <= {FLOAT32_BELOW_ONE!r}."
        )
    if _is_identity(rate, deterministic):
        return x
    std = jnp.sqrt(rate / (1.0 - jnp.asarray(rate, jnp.float32)))
    noise = 1.0 + std * jax.random.normal(check_key(key), x.shape, jnp.float32)
    return _traced_edges(x * noise, rate, top=FLOAT32_BELOW_ONE).astype(x.dtype)


def alpha_dropout(
    key, x: jax.Array, rate, *, deterministic: bool = False, sampler: str = DEFAULT_SAMPLER
) -> jax.Array:
    """Klambauer et al. 2017: dropped units -> -lambda*alpha, then a*x + b keeps mean 0, var 1.

    Every unit dropped (rate 1) gives zeros, the limit of a*alpha' + b as keep -> 0 (and torch's).
    """
    rate = _check_rate_and_sampler(rate, sampler)
    _check_floating(x, "alpha_dropout")
    if _is_identity(rate, deterministic):
        return x
    if _drops_all(rate):
        return jnp.zeros_like(x)
    keep = _keep_prob(rate, sampler)
    alpha_p = -SELU_SCALE * SELU_ALPHA
    a = (keep + alpha_p**2 * keep * (1.0 - keep)) ** -0.5
    b = -a * alpha_p * (1.0 - keep)
    mask = keep_mask(key, x.shape, rate, sampler=sampler)
    return _traced_edges(a * jnp.where(mask, x, alpha_p) + b, rate).astype(x.dtype)


def variational_masks(
    key,
    batch: int,
    input_dim: int,
    hidden_dim: int,
    input_rate,
    recurrent_rate,
    dtype=jnp.float32,
    *,
    deterministic: bool = False,
    sampler: str = DEFAULT_SAMPLER,
) -> tuple[jax.Array, jax.Array]:
    """Gal & Ghahramani 2016: one input mask and one recurrent mask per sequence.

    Returns (input_mask (batch, input_dim), recurrent_mask (batch, hidden_dim)), already scaled
    by 1/keep; multiply x_t and h_{t-1} by them at every time step.
    """
    input_rate = check_rate(input_rate, "input_rate")
    recurrent_rate = check_rate(recurrent_rate, "recurrent_rate")
    input_key, recurrent_key = jax.random.split(check_key(key))

    def scaled_mask(k, dim, rate):
        ones = jnp.ones((batch, dim), dtype)
        return inverted_dropout(k, ones, rate, deterministic=deterministic, sampler=sampler)

    return (
        scaled_mask(input_key, input_dim, input_rate),
        scaled_mask(recurrent_key, hidden_dim, recurrent_rate),
    )


def dropconnect(
    key, kernel: jax.Array, rate, *, deterministic: bool = False, sampler: str = DEFAULT_SAMPLER
) -> jax.Array:
    """Wan et al. 2013: drops weights (one mask per batch), kept ones scaled by 1/keep."""
    return inverted_dropout(key, kernel, rate, deterministic=deterministic, sampler=sampler)


def check_block_size(block_size: int, height: int, width: int) -> int:
    """Returns `block_size` if 1 <= block_size <= min(height, width), else raises ValueError."""
    limit = min(height, width)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise ValueError(f"block_size={block_size!r} must be an int in [1, {limit}].")
    if not 1 <= block_size <= limit:
        raise ValueError(
            f"block_size={block_size} is outside [1, {limit}] for a {height}x{width} feature map; "
            "use a block no larger than the feature map."
        )
    return int(block_size)


# Block seeds have a small probability gamma ~ rate / block_size^2: 16-bit resolution keeps it.
BLOCK_SEED_SAMPLER = "packed16"


def dropblock(key, x: jax.Array, rate, block_size: int, *, deterministic: bool = False):
    """Ghiasi et al. 2018: drops block_size x block_size squares of x (N, H, W, C).

    Block corners are Bernoulli(gamma), gamma = rate / bs^2 * HW / ((H-bs+1)(W-bs+1)), over the
    positions where a block fits, per example and channel; kept units are rescaled by
    count(M) / count_ones(M). Overlapping blocks make the dropped fraction a little below rate.
    """
    _check_rank(x, 4, "dropblock", "(N, H, W, C)")
    rate = check_rate(rate)
    _check_floating(x, "dropblock")
    _, height, width, _ = x.shape
    bs = check_block_size(block_size, height, width)
    if _is_identity(rate, deterministic):
        return x
    if _drops_all(rate):
        return jnp.zeros_like(x)
    valid_h, valid_w = height - bs + 1, width - bs + 1
    # gamma <= rate < 1, since bs * (H - bs + 1) >= H for 1 <= bs <= H (and likewise for W).
    gamma = rate / bs**2 * (height * width) / (valid_h * valid_w)
    seed_shape = (x.shape[0], valid_h, valid_w, x.shape[3])
    seeds = ~masks.keep_mask(check_key(key), seed_shape, gamma, BLOCK_SEED_SAMPLER)
    pad = ((0, 0), (bs - 1, bs - 1), (bs - 1, bs - 1), (0, 0))
    dropped = lax.reduce_window(
        jnp.pad(seeds, pad), False, lax.bitwise_or, (1, bs, bs, 1), (1, 1, 1, 1), "VALID"
    )  # (N, H, W, C): True inside a block
    kept = jnp.sum(~dropped, dtype=jnp.float32)
    scale = dropped.size / jnp.maximum(kept, 1.0)
    return _traced_edges(jnp.where(dropped, 0, x * scale), rate).astype(x.dtype)


def dropblock_rate(step, total_steps: int, final_rate) -> jax.Array:
    """Linear DropBlock schedule: the drop rate grows from 0 to `final_rate` over total_steps."""
    final_rate = check_rate(final_rate, "final_rate")
    if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)):
        raise ValueError(f"total_steps={total_steps!r} must be a positive int.")
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps} must be >= 1.")
    progress = jnp.clip(jnp.asarray(step, jnp.float32) / total_steps, 0.0, 1.0)
    return final_rate * progress


def cutout(key, images: jax.Array, size: int, *, deterministic: bool = False) -> jax.Array:
    """DeVries & Taylor 2017: zeroes one size x size square per image of images (N, H, W, C).

    The square's centre is uniform over the image; squares near the border are clipped.
    """
    _check_rank(images, 4, "cutout", "(N, H, W, C)")
    n, height, width, _ = images.shape
    limit = min(height, width)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 0 <= size <= limit:
        raise ValueError(
            f"size={size!r} is outside [0, {limit}] for {height}x{width} images; "
            "the cutout square must fit the image (0 disables it)."
        )
    if deterministic or size == 0:
        return images
    key_y, key_x = jax.random.split(check_key(key))
    top = jax.random.randint(key_y, (n, 1, 1, 1), 0, height) - size // 2
    left = jax.random.randint(key_x, (n, 1, 1, 1), 0, width) - size // 2
    rows = lax.broadcasted_iota(jnp.int32, (1, height, 1, 1), 1)
    cols = lax.broadcasted_iota(jnp.int32, (1, 1, width, 1), 2)
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return jnp.where(inside, jnp.zeros((), images.dtype), images)
