"""Keep-mask samplers: the ways a PRNG key becomes a boolean keep mask (True = kept).

Samplers (all pure functions of key, shape and rate; all give the same mask for any sharding
of the array across devices, with JAX's default `jax_threefry_partitionable=True`):
  bernoulli  `jax.random.bernoulli`: one 32-bit hash output per element, float compare.
  uniform    `jax.random.uniform(...) >= rate`: the same cost, spelled as in the posts.
  bitsB      `jax.random.bits` of B = 8/16/32 bits per element against an integer threshold.
  packedB    one 64-bit Threefry output split into 64/B fields of B = 8/16 bits, each field a
             mask: 8 or 4 masks per hash. packed8 is the default: on CPU a full dropout costs
             about 1.5x a copy of the tensor, against ~8x for bernoulli.
Integer-threshold samplers realise a drop rate quantised to 1/2**B (packed8: 1/256);
`effective_rate` reports it, and the dropout functions scale by the effective keep
probability, so expectations stay exact.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

SAMPLERS = ("bernoulli", "uniform", "bits8", "bits16", "bits32", "packed8", "packed16")
DEFAULT_SAMPLER = "packed8"

# Bits per mask of each integer-threshold sampler (None: float comparison, rate exact).
SAMPLER_BITS = {
    "bernoulli": None,
    "uniform": None,
    "bits8": 8,
    "bits16": 16,
    "bits32": 32,
    "packed8": 8,
    "packed16": 16,
}


def check_sampler(sampler: str) -> str:
    """Returns `sampler` if it names a known sampler, else raises ValueError."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not one of {SAMPLERS}; pick one of these names.")
    return sampler


def _drop_threshold(rate, bits: int):
    """Integer threshold t: an element is dropped iff its b-bit random integer is < t.

    t = round(rate * 2**bits), kept >= 1 for rate > 0 (a positive rate never rounds to no
    dropout) and <= 2**bits - 1 so that some values are always kept.
    """
    xp = jnp if isinstance(rate, jax.core.Tracer) else np
    levels = 2.0**bits
    top = levels - 1 if bits < 32 else levels - 2**8  # float32-exact upper bound for 32 bits
    t = xp.clip(
        xp.round(xp.asarray(rate, xp.float32 if xp is jnp else xp.float64) * levels), 1, top
    )
    return xp.where(xp.asarray(rate) > 0, t, 0)


def effective_rate(rate, sampler: str = DEFAULT_SAMPLER):
    """The drop probability `sampler` realises for a requested `rate` (exact for float methods)."""
    bits = SAMPLER_BITS[check_sampler(sampler)]
    if bits is None:
        return rate
    t = _drop_threshold(rate, bits)
    if isinstance(t, jax.core.Tracer):
        return t / 2.0**bits
    return float(t) / 2.0**bits


def _counters(shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Unique 2x32-bit counter per element of `shape` (ndim >= 1): (index along axis 0,
    row-major index within the rest), from per-axis iotas of the global shape.

    A pure function of the global index, so the values never depend on how the array is
    sharded across devices.
    """
    if math.prod(shape[1:]) >= 2**32:
        raise ValueError(f"mask of shape {shape} has >= 2**32 words per example; split it.")
    leading = lax.broadcasted_iota(jnp.uint32, shape, 0)
    if len(shape) == 1:
        return jnp.zeros(shape, jnp.uint32), leading
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(1, len(shape))):
        index = index + lax.broadcasted_iota(jnp.uint32, shape, axis) * np.uint32(stride)
        stride *= shape[axis]
    return leading, index


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k1, k2, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 (20 rounds), bit-identical to `jax.extend.random.threefry2x32_p`.

    Written out unrolled because JAX lowers the primitive on CPU as a rolled loop that writes
    the whole state to memory every four rounds; unrolled, XLA fuses the hash into one pass.
    """
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = ((x2 << np.uint32(r)) | (x2 >> np.uint32(32 - r))) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _hash_counters(k1, k2, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """The two 32-bit Threefry output words for every counter of `shape`."""
    return threefry2x32(k1, k2, *_counters(shape))


def _hash_counters_in_memory(k1, k2, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """`_hash_counters`, computed once into memory before the fields are unpacked.

    XLA CPU fuses cheap integer ops into their consumers, and the unpacking reads every hash
    output 64/B times, so fused, the hash would be recomputed for each mask element (measured:
    a full dropout at 3.4x a copy instead of 1.6x). A conditional is a fusion boundary XLA
    keeps; its predicate is always true.
    """
    always = (k1 | np.uint32(1)) != 0
    zeros = lambda k1, k2: (jnp.zeros(shape, jnp.uint32),) * 2
    return lax.cond(always, functools.partial(_hash_counters, shape=shape), zeros, k1, k2)


def _packed_fields(key: jax.Array, shape: tuple[int, ...], bits: int) -> jax.Array:
    """Random `bits`-bit integers (as uint32) of `shape`, 64/bits of them per Threefry hash.

    Hash counters index (..., last axis // (64/bits)), so leading (batch) axes keep their
    sharding and each value depends only on its global index: the same mask for any sharding.
    The hash key is drawn from `key`, so every PRNG implementation works.
    """
    shape = shape or (1,)
    per_word, per_hash = 32 // bits, 64 // bits
    words_shape = (*shape[:-1], -(-shape[-1] // per_hash))  # ceil
    k1, k2 = jax.random.bits(key, (2,), jnp.uint32)
    words = lax.platform_dependent(
        k1,
        k2,
        cpu=functools.partial(_hash_counters_in_memory, shape=words_shape),
        default=functools.partial(_hash_counters, shape=words_shape),
    )  # elsewhere the plain form: compute is cheap there, and a conditional may sync the host
    w1, w2 = (jnp.repeat(w, per_hash, axis=-1)[..., : shape[-1]] for w in words)
    j = lax.broadcasted_iota(jnp.uint32, shape, len(shape) - 1) % np.uint32(per_hash)
    word = jnp.where(j < per_word, w1, w2)
    return (word >> (j % np.uint32(per_word)) * np.uint32(bits)) & np.uint32(2**bits - 1)


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate, sampler: str = DEFAULT_SAMPLER):
    """Boolean keep mask of `shape`: each element kept with probability 1 - effective_rate."""
    shape = tuple(shape)
    bits = SAMPLER_BITS[check_sampler(sampler)]
    if sampler == "bernoulli":
        return jax.random.bernoulli(key, 1.0 - rate, shape)
    if sampler == "uniform":
        return jax.random.uniform(key, shape) >= rate
    if sampler.startswith("packed"):
        fields = _packed_fields(key, shape, bits)
        return (fields >= _drop_threshold(rate, bits).astype(jnp.uint32)).reshape(shape)
    dtype = jnp.dtype(f"uint{bits}")
    return jax.random.bits(key, shape, dtype) >= _drop_threshold(rate, bits).astype(dtype)
