"""Linen modules: eval behaviour, rng use, statistics and errors of Dropout and DropConnectDense."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import dropout, layers

X = jax.random.normal(jax.random.key(0), (8, 12, 12, 32))
RNGS = {"dropout": jax.random.key(1)}


def _apply(module, x, deterministic, rngs=RNGS):
    return _jitted(module, deterministic)(rngs, x)


@functools.cache  # one compile per module configuration
def _jitted(module, deterministic):
    def apply(rngs, x):
        if rngs is None:
            return module.apply({}, x, deterministic=deterministic)
        return module.apply({}, x, deterministic=deterministic, rngs=rngs)

    return jax.jit(apply)


def test_variants_tuple():
    assert layers.VARIANTS == ("inverted", "standard", "spatial", "gaussian", "alpha", "dropblock")


@pytest.mark.parametrize("variant", layers.VARIANTS)
def test_eval_needs_no_rng_and_is_identity_except_standard(variant):
    module = layers.Dropout(0.25, variant=variant, block_size=3)
    out = _apply(module, X, True, rngs=None)
    expected = X * 0.75 if variant == "standard" else X
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(_apply(layers.Dropout(0.0, variant=variant), X, False, None), X)


@pytest.mark.parametrize("variant", layers.VARIANTS)
def test_train_draws_from_the_dropout_rng(variant):
    module = layers.Dropout(0.25, variant=variant, block_size=3)
    a = _apply(module, X, False)
    np.testing.assert_array_equal(a, _apply(module, X, False))
    assert not np.array_equal(a, _apply(module, X, False, {"dropout": jax.random.key(2)}))
    assert not np.allclose(a, X)
    with pytest.raises(Exception, match="dropout"):  # flax: no 'dropout' rng given
        module.apply({}, X, deterministic=False)


def test_layer_statistics_match_the_functions():
    ones = jnp.ones((64, 8, 8, 128))
    keep = 1.0 - dropout.effective_rate(0.4)
    inverted = np.asarray(_apply(layers.Dropout(0.4), ones, False))
    assert abs(np.mean(inverted != 0) - keep) < 5 * np.sqrt(0.24 / inverted.size)
    np.testing.assert_allclose(inverted[inverted != 0], 1 / keep, rtol=1e-6)
    spatial = np.asarray(_apply(layers.Dropout(0.4, variant="spatial"), ones, False))
    np.testing.assert_array_equal(spatial, np.broadcast_to(spatial[:, :1, :1], spatial.shape))
    assert abs(np.mean(spatial[:, 0, 0] != 0) - keep) < 5 * np.sqrt(0.24 / (64 * 128))
    rows = np.asarray(_apply(layers.Dropout(0.4, broadcast_dims=(1, 2)), ones, False))
    np.testing.assert_array_equal(
        rows, np.broadcast_to(rows[:, :1, :1], rows.shape)
    )  # broadcast_dims honoured
    block = np.asarray(_apply(layers.Dropout(0.2, variant="dropblock", block_size=3), ones, False))
    assert 0.15 < np.mean(block == 0) < 0.21


def test_dropblock_schedule_through_the_layer():
    module = layers.Dropout(0.2, variant="dropblock", block_size=3)
    step_fn = jax.jit(
        lambda x, step: module.apply(
            {}, x, deterministic=False, rate=dropout.dropblock_rate(step, 10, 0.2), rngs=RNGS
        )
    )
    ones = jnp.ones((64, 32, 32, 8))
    np.testing.assert_array_equal(step_fn(ones, 0), ones)  # rate 0 at the first step
    assert 0.85 * 0.1 < float(jnp.mean(step_fn(ones, 5) == 0)) < 1.02 * 0.1  # halfway
    assert 0.85 * 0.2 < float(jnp.mean(step_fn(ones, 10) == 0)) < 1.02 * 0.2


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match=r"variant='mc'.*inverted"):
        _apply(layers.Dropout(0.1, variant="mc"), X, True, None)
    with pytest.raises(ValueError, match=r"rate=1.0.*\[0, 1\)"):
        _apply(layers.Dropout(1.0), X, True, None)
    with pytest.raises(ValueError, match=r"rank 2"):
        _apply(layers.Dropout(0.1, variant="spatial"), X[:, 0, 0], False)
    with pytest.raises(ValueError, match=r"block_size=13 is outside \[1, 12\]"):
        _apply(layers.Dropout(0.1, variant="dropblock", block_size=13), X, False)
    for variant in layers.VARIANTS:  # checked in eval too, before any training
        with pytest.raises(ValueError, match=r"sampler='x'"):
            _apply(layers.Dropout(0.1, variant=variant, sampler="x"), X, True, None)


def test_bf16_and_sampler_pass_through():
    out = _apply(layers.Dropout(0.5, sampler="packed8"), jnp.ones(X.shape, jnp.bfloat16), False)
    assert out.dtype == jnp.bfloat16
    assert set(np.unique(np.asarray(out, np.float32))) == {0.0, 2.0}


def test_dropconnect_dense():
    module = layers.DropConnectDense(16, rate=0.5)
    x = jax.random.normal(jax.random.key(3), (4, 64))
    params = jax.jit(lambda k: module.init(k, x, deterministic=True))(jax.random.key(4))
    kernel, bias = params["params"]["kernel"], params["params"]["bias"]
    evaluated = jax.jit(lambda p: module.apply(p, x, deterministic=True))(params)
    np.testing.assert_allclose(evaluated, x @ kernel + bias, rtol=1e-5, atol=1e-5)
    train = jax.jit(lambda p: module.apply(p, x, deterministic=False, rngs=RNGS))
    grad = jax.jit(jax.grad(lambda p: jnp.sum(train(p) ** 2)))(params)["params"]["kernel"]
    dropped = np.asarray(grad) == 0
    assert 0.35 < dropped.mean() < 0.65  # one weight mask for the whole batch
    # The train output equals x @ (kernel * mask / keep) + bias for the mask the gradient shows.
    masked = jnp.where(dropped, 0.0, kernel * 2.0)
    np.testing.assert_allclose(train(params), x @ masked + bias, rtol=1e-4, atol=1e-4)


def test_mc_dropout_independent_of_batch_norm_mode():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, *, train: bool, dropout_on: bool):
            x = nn.BatchNorm(use_running_average=not train)(nn.Dense(32)(x))
            return nn.Dense(3)(layers.Dropout(0.5)(nn.relu(x), deterministic=not dropout_on))

    x = jax.random.normal(jax.random.key(5), (16, 8))
    variables = jax.jit(lambda k: Net().init(k, x, train=False, dropout_on=False))(
        jax.random.key(6)
    )
    mc_pass = jax.jit(
        lambda k: Net().apply(variables, x, train=False, dropout_on=True, rngs={"dropout": k})
    )  # running averages used (no 'batch_stats' mutation allowed), masks still drawn
    assert not np.allclose(mc_pass(jax.random.key(7)), mc_pass(jax.random.key(8)))
    evaluated = Net().apply(variables, x, train=False, dropout_on=False)
    mc_mean = jnp.mean(jax.jit(jax.vmap(mc_pass))(jax.random.split(jax.random.key(9), 2000)), 0)
    assert float(jnp.mean(jnp.abs(mc_mean - evaluated))) < 0.05 * float(jnp.std(evaluated))
