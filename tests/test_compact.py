"""Compact dropout against its masked twin: same forward for the same mask, same gradients
(zero on the dropped units), and the same expectation as the undropped layer."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import compact

jax.config.update("jax_default_matmul_precision", "highest")

UNITS = 24


@jax.jit
def _dense_case(key):  # jitted: one compile instead of one per eager op
    kp, kx = jax.random.split(key)
    return compact.init_dense_pair(kp, 10, UNITS, 6), jax.random.normal(kx, (5, 10))


@jax.jit
def _conv_case(key):
    kp, kx = jax.random.split(key)
    return compact.init_conv_pair(kp, 3, UNITS, 4), jax.random.normal(kx, (2, 6, 5, 3))


PAIRS = {
    "dense": (_dense_case, compact.compact_dense_pair, compact.masked_dense_pair),
    "conv": (_conv_case, compact.compact_conv_pair, compact.masked_conv_pair),
}


@jax.jit
def _lstm_case(key):
    kp, kt = jax.random.split(key)
    params = compact.init_lstm(kp, vocab=50, embed_dim=UNITS, hidden=16, out_dim=3)
    return params, jax.random.randint(kt, (4, 7), 0, 50)


def _assert_twins_agree(compact_fn, masked_fn, params, x, key, sites, rate):
    """Draws kept units per site, then checks forward equal for the same masks and all gradients
    (w.r.t. params, and x unless tokens) equal. Returns (parameter grads, site masks).

    One jit for everything (compiles dominate these tests); sin makes the output cotangent
    differ per unit, so no gradient is equal by accident.
    """
    wrt_x = not jnp.issubdtype(x.dtype, jnp.integer)

    @jax.jit
    def run(params, x, key):
        keys = jax.random.split(key, len(sites))
        kept = [compact.kept_units(k, units, rate) for k, units in zip(keys, sites, strict=True)]
        masks = [compact.batch_mask(k, units) for k, units in zip(kept, sites, strict=True)]
        results = []
        for fn, site_args in ((compact_fn, kept), (masked_fn, masks)):
            loss = lambda p, x, fn=fn, a=site_args: jnp.sum(jnp.sin(fn(p, x, *a)))
            results.append(
                (fn(params, x, *site_args), jax.grad(loss, (0, 1) if wrt_x else 0)(params, x))
            )
        return results, masks

    ((out_c, grads_c), (out_m, grads_m)), masks = jax.tree.map(np.asarray, run(params, x, key))
    np.testing.assert_allclose(out_c, out_m, rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grads_c,
                 grads_m)  # fmt: skip
    return (grads_c[0] if wrt_x else grads_c), masks


@pytest.mark.parametrize("units, rate, k", [(10, 0.5, 5), (10, 0.0, 10), (3, 0.9, 1), (7, 0.3, 5)])
def test_kept_count_and_effective_rate(units, rate, k):
    assert compact.kept_count(units, rate) == k
    assert compact.effective_rate(units, rate) == pytest.approx(1 - k / units)


@pytest.mark.parametrize("units, rate", [(0, 0.5), (8, 1.0), (8, -0.1), (8, float("nan"))])
def test_bad_units_or_rate_raise(units, rate):
    with pytest.raises(ValueError, match="units|rate"):
        compact.kept_count(units, rate)


def test_kept_units_sorted_distinct_and_uniform():
    keys = jax.random.split(jax.random.key(0), 4000)
    kept = np.asarray(jax.jit(jax.vmap(lambda k: compact.kept_units(k, UNITS, 0.75)))(keys))
    assert kept.shape == (4000, 6) and kept.dtype == np.int32
    assert (np.diff(kept, axis=1) > 0).all() and kept.min() >= 0 and kept.max() < UNITS
    freq = np.bincount(kept.ravel(), minlength=UNITS) / len(keys)  # P(unit kept) = 6/24
    assert np.abs(freq - 0.25).max() < 5 * np.sqrt(0.25 * 0.75 / len(keys))
    mask = np.asarray(jax.jit(compact.batch_mask, static_argnums=1)(kept[0], UNITS))
    assert mask.sum() == 6 and mask[kept[0]].all()


@pytest.mark.parametrize("name, rate", [("dense", 0.25), ("conv", 0.8)])
def test_pair_forward_and_gradients_equal_masked_twin(name, rate):
    case, compact_fn, masked_fn = PAIRS[name]
    params, x = case(jax.random.key(1))
    compact_fn, masked_fn = (  # tanh: no dead units, so every kept unit gets a gradient
        functools.partial(fn, act=jnp.tanh) for fn in (compact_fn, masked_fn)
    )
    grads, (mask,) = _assert_twins_agree(
        compact_fn, masked_fn, params, x, jax.random.key(2), [UNITS], rate
    )
    dropped = ~mask
    assert dropped.sum() == UNITS - compact.kept_count(UNITS, rate)
    w1 = grads["w1t"].T if name == "dense" else grads["w1"]  # (..., in, units)
    b1, w2 = grads["b1"], grads["w2"]
    assert not w1[..., dropped].any() and not b1[dropped].any() and not w2[..., dropped, :].any()
    assert (np.abs(w2[..., ~dropped, :]).sum(axis=-1) > 0).all()


def test_text_cnn_forward_and_gradients_equal_masked_twin():
    params = jax.jit(compact.init_text_cnn, static_argnums=range(1, 6))(
        jax.random.key(10), 50, 8, UNITS, 3, 2
    )
    tokens = np.random.default_rng(0).integers(0, 50, (6, 9))
    grads, (mask,) = _assert_twins_agree(
        compact.compact_text_cnn, compact.masked_text_cnn, params, tokens, jax.random.key(12),
        [UNITS], 0.5,
    )  # fmt: skip
    assert not grads["w1"][..., ~mask].any() and not grads["w2"][~mask].any()
    assert np.abs(grads["w2"][mask]).sum(axis=1).min() > 0


def test_lstm_forward_and_gradients_equal_masked_twin():
    params, tokens = _lstm_case(jax.random.key(5))
    grads, (mask_in, mask_out) = _assert_twins_agree(
        compact.compact_lstm, compact.masked_lstm, params, tokens, jax.random.key(6),
        [UNITS, 16], 0.5,
    )  # fmt: skip
    assert not grads["w"][~mask_in].any() and not grads["embed"][:, ~mask_in].any()
    assert not grads["wo"][~mask_out].any()
    assert np.abs(grads["w"][mask_in]).sum(axis=1).min() > 0


def _assert_mean_is(draw, exact, num_keys):
    """The mean of `draw(key)` over `num_keys` keys is within 5 standard errors of `exact`."""
    outs = jax.jit(jax.vmap(draw))(jax.random.split(jax.random.key(4), num_keys))
    mean, se = outs.mean(0), outs.std(0) / np.sqrt(num_keys)
    assert float(jnp.max(jnp.abs(mean - exact) / (se + 1e-6))) < 5.0
    assert float(jnp.max(se)) > 0  # the draws really differ


@pytest.mark.parametrize("name", PAIRS)
def test_pair_expectation_equals_undropped_layer(name):
    case, compact_fn, masked_fn = PAIRS[name]
    params, x = case(jax.random.key(3))
    exact = jax.jit(masked_fn)(params, x, jnp.ones((UNITS,), bool))
    _assert_mean_is(lambda k: compact_fn(params, x, compact.kept_units(k, UNITS, 0.5)), exact, 3000)


def test_lstm_output_dropout_expectation_equals_undropped():
    params, tokens = _lstm_case(jax.random.key(8))
    exact = jax.jit(compact.compact_lstm)(params, tokens, None, None)
    _assert_mean_is(
        lambda k: compact.compact_lstm(params, tokens, None, compact.kept_units(k, 16, 0.5)),
        exact,
        2000,
    )
    np.testing.assert_allclose(  # None: no dropout at a site, the same as keeping every unit
        exact,
        jax.jit(compact.masked_lstm)(params, tokens, jnp.ones(UNITS, bool), jnp.ones(16, bool)),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
