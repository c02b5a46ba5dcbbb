"""Statistics and invariances of every keep-mask sampler."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry2x32_p
from scipy import stats

from dropout_study import masks

N, C = 1024, 1024  # 2**20 draws per mask
Z = 5.0  # bounds at 5 standard errors: a correct sampler fails with prob. < 1e-6


_keep_mask = jax.jit(masks.keep_mask, static_argnums=(1, 3))  # one compile per shape & sampler


def _mask(sampler, rate, key=None, shape=(N, C)):
    key = jax.random.key(0) if key is None else key
    return np.asarray(_keep_mask(key, shape, rate, sampler))


def _corr(a, b):
    """Pearson correlation of two boolean arrays, flattened."""
    return np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1]


@pytest.mark.parametrize("sampler", masks.SAMPLERS)
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_kept_fraction_within_binomial_bound(sampler, rate):
    keep = 1.0 - masks.effective_rate(rate, sampler)
    mask = _mask(sampler, rate)
    assert mask.shape == (N, C) and mask.dtype == np.bool_
    assert abs(mask.mean() - keep) <= Z * np.sqrt(keep * (1 - keep) / mask.size)


@pytest.mark.parametrize("sampler", masks.SAMPLERS)
def test_independent_across_elements_examples_and_keys(sampler):
    mask = _mask(sampler, 0.5)
    bound = Z / np.sqrt(mask.size)
    # neighbours in the last axis, incl. fields of one random word and of adjacent words
    for lag in range(1, 17):
        assert abs(_corr(mask[:, :-lag], mask[:, lag:])) < bound, lag
    assert abs(_corr(mask[:-1], mask[1:])) < bound  # neighbouring examples (rows)
    key = jax.random.key(0)
    for other in (jax.random.key(1), jax.random.fold_in(key, 1), jax.random.split(key)[0]):
        assert abs(_corr(mask, _mask(sampler, 0.5, other))) < bound


@pytest.mark.parametrize("sampler", ["packed8", "packed16", "bits8"])
def test_fields_of_one_word_jointly_uniform(sampler):
    # All 2**8 patterns of 8 consecutive masks (one 64-bit hash for packed8) equally likely.
    groups = _mask(sampler, 0.5).reshape(-1, 8) @ (1 << np.arange(8))
    counts = np.bincount(groups, minlength=256)
    chi2 = ((counts - groups.size / 256) ** 2 / (groups.size / 256)).sum()
    assert stats.chi2.sf(chi2, df=255) > 1e-6


@pytest.mark.parametrize("sampler", masks.SAMPLERS)
def test_same_key_same_mask_and_keys_of_every_kind(sampler):
    shape = (N, C)
    typed = _mask(sampler, 0.3, jax.random.key(7), shape)
    raw = _mask(sampler, 0.3, jax.random.wrap_key_data(jax.random.PRNGKey(7)), shape)
    np.testing.assert_array_equal(typed, _mask(sampler, 0.3, jax.random.key(7), shape))
    np.testing.assert_array_equal(typed, raw)
    assert not np.array_equal(typed, _mask(sampler, 0.3, jax.random.key(8), shape))
    rbg = _mask(sampler, 0.3, jax.random.key(7, impl="rbg"), shape)
    assert abs(rbg.mean() - 0.7) < 0.01


@pytest.mark.parametrize("sampler", masks.SAMPLERS)
def test_static_and_traced_rate_agree(sampler):
    key = jax.random.key(3)
    static = jax.jit(lambda k: masks.keep_mask(k, (N, C), 0.3, sampler))(key)
    np.testing.assert_array_equal(static, _mask(sampler, 0.3, key))  # rate traced in _mask
    traced_rate = jax.jit(masks.effective_rate, static_argnums=1)(0.3, sampler)
    assert np.isclose(float(traced_rate), masks.effective_rate(0.3, sampler))


@pytest.mark.parametrize("shape", [(), (3, 7), (4, 1, 1, 13)], ids=lambda s: str(len(s)))
def test_packed_shapes_not_multiple_of_word(shape):
    for sampler in ("packed8", "packed16"):
        mask = _mask(sampler, 0.5, shape=shape)
        assert mask.shape == shape and mask.dtype == jnp.bool_
    big = _mask("packed8", 0.5, shape=(4096, 3))  # 3 of 8 fields used per hash
    assert abs(big.mean() - 0.5) < Z * 0.5 / np.sqrt(big.size)
    assert abs(_corr(big[:, 0], big[:, 1])) < Z / np.sqrt(4096)


def test_effective_rate_quantisation():
    assert masks.effective_rate(0.2, "bits8") == 51 / 256
    assert masks.effective_rate(0.2, "packed8") == 51 / 256
    assert abs(masks.effective_rate(0.2, "packed16") - 0.2) <= 2**-17
    assert masks.effective_rate(0.2, "bernoulli") == 0.2
    assert masks.effective_rate(0.0, "packed8") == 0.0
    assert masks.effective_rate(1e-6, "packed8") == 1 / 256  # a positive rate never becomes 0
    assert masks.effective_rate(0.9999, "packed8") == 255 / 256  # some units always kept
    assert masks.effective_rate(0.5, "bits32") == 0.5


def test_rate_zero_keeps_everything():
    for sampler in masks.SAMPLERS:
        assert bool(np.all(_mask(sampler, 0.0)))


def test_unknown_sampler_raises():
    with pytest.raises(ValueError, match=r"sampler='fast'.*packed16"):
        masks.keep_mask(jax.random.key(0), (4,), 0.5, "fast")


def test_threefry_bit_identical_to_jax_primitive():
    k1, k2, x1, x2 = (jax.random.bits(jax.random.key(i), (1000,), jnp.uint32) for i in range(4))
    ours = masks.threefry2x32(k1, k2, x1, x2)
    theirs = threefry2x32_p.bind(k1, k2, x1, x2)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sampler", ["packed8", "packed16"])
def test_packed_fields_are_the_threefry_output_bytes(sampler):
    # Element j of the last axis is field j % (64/B) of hash j // (64/B): the low word's fields
    # first, least significant first. Rebuilt here from JAX's own Threefry primitive.
    bits = masks.SAMPLER_BITS[sampler]
    per_hash, shape, rate = 64 // bits, (3, 5, 2 * 64 // bits + 3), 0.3
    key = jax.random.key(11)
    k1, k2 = jax.random.bits(key, (2,), jnp.uint32)
    words = -(-shape[-1] // per_hash)
    lo = np.broadcast_to(np.arange(words * 5, dtype=np.uint32).reshape(5, words), (3, 5, words))
    hi = np.broadcast_to(np.arange(3, dtype=np.uint32)[:, None, None], (3, 5, words))
    w1, w2 = (np.asarray(w) for w in threefry2x32_p.bind(k1, k2, jnp.asarray(hi), jnp.asarray(lo)))
    both = np.concatenate([w1[..., None], w2[..., None]], -1).astype(np.uint64)  # (3, 5, W, 2)
    shifts = np.arange(0, 32, bits, dtype=np.uint64)
    fields = (both[..., None] >> shifts) & (2**bits - 1)  # (3, 5, W, 2, 32/B)
    fields = fields.reshape(3, 5, -1)[..., : shape[-1]]
    threshold = masks.effective_rate(rate, sampler) * 2**bits
    np.testing.assert_array_equal(_mask(sampler, rate, key, shape), fields >= threshold)


_SHARDING_SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from dropout_study import masks
    mesh = jax.make_mesh((4,), ("d",))
    shape = (16, 6, 8, 40)
    for sampler in ("packed16", "packed8"):
        ref = np.asarray(jax.jit(masks.keep_mask, static_argnums=(1, 2, 3))(
            jax.random.key(5), shape, 0.5, sampler))
        for spec in (P("d"), P(None, None, None, "d")):
            f = jax.jit(lambda k: masks.keep_mask(k, shape, 0.5, sampler),
                        out_shardings=NamedSharding(mesh, spec))
            out = f(jax.random.key(5))
            assert len(out.sharding.device_set) == 4
            assert np.array_equal(ref, np.asarray(out)), (sampler, spec)
    print("ok")
    """
)


def test_same_mask_for_every_sharding_across_devices():
    # The packed samplers' own counters; the jax.random ones rely on jax_threefry_partitionable.
    # Needs 4 devices before JAX starts, hence a fresh process.
    result = subprocess.run(
        [sys.executable, "-c", _SHARDING_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
