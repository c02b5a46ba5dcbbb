"""Numbers and invariances of every dropout variant in dropout_study.dropout."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from dropout_study import dropout

Z = 5.0  # bounds at 5 standard errors
KEY = jax.random.key(0)


def _binomial_ok(fraction, p, n):
    return abs(fraction - p) <= Z * np.sqrt(p * (1 - p) / n)


def _corr(a, b):
    return np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1]


# Every variant as f(key, x, deterministic) on an (N, H, W, C) input, for the shared checks.
VARIANTS = {
    "inverted": lambda k, x, d: dropout.inverted_dropout(k, x, 0.3, deterministic=d),
    "inverted_bcast": lambda k, x, d: dropout.inverted_dropout(
        k, x, 0.3, deterministic=d, broadcast_dims=(1,)
    ),
    "standard": lambda k, x, d: dropout.standard_dropout(k, x, 0.3, deterministic=d),
    "spatial": lambda k, x, d: dropout.spatial_dropout2d(k, x, 0.3, deterministic=d),
    "gaussian": lambda k, x, d: dropout.gaussian_dropout(k, x, 0.3, deterministic=d),
    "alpha": lambda k, x, d: dropout.alpha_dropout(k, x, 0.3, deterministic=d),
    "dropconnect": lambda k, x, d: dropout.dropconnect(k, x, 0.3, deterministic=d),
    "dropblock": lambda k, x, d: dropout.dropblock(k, x, 0.2, 3, deterministic=d),
    "cutout": lambda k, x, d: dropout.cutout(k, x, 4, deterministic=d),
}
X = jax.random.normal(jax.random.key(42), (4, 12, 12, 16))


# --- rates, keys and argument checks -------------------------------------------------------


def test_keep_to_rate_and_check_rate():
    assert dropout.keep_to_rate(0.8) == pytest.approx(0.2)
    assert dropout.keep_to_rate(1.0) == 0.0
    assert dropout.check_rate(0.5) == 0.5
    assert dropout.check_rate(np.float32(0.25)) == 0.25


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_rate_raises_naming_value_and_range(rate):
    with pytest.raises(ValueError, match=r"rate=.*\[0, 1\)"):
        dropout.check_rate(rate)
    with pytest.raises(ValueError, match=r"rate="):
        dropout.inverted_dropout(KEY, X, rate)
    with pytest.raises(ValueError, match=r"input_rate="):
        dropout.variational_masks(KEY, 2, 3, 4, rate, 0.1)


@pytest.mark.parametrize("rate", ["0.5", b"0.5", "0.5x", None, True, np.bool_(False), [0.5]])
def test_non_numeric_rate_raises_type_error(rate):
    with pytest.raises(TypeError, match=r"rate=.* must be a real number, .*\[0, 1\)"):
        dropout.check_rate(rate)
    with pytest.raises(TypeError, match=r"input_rate="):
        dropout.variational_masks(KEY, 2, 3, 4, rate, 0.1)


@pytest.mark.parametrize("keep", [0.0, -0.5, 1.2, float("nan")])
def test_bad_keep_prob_raises(keep):
    with pytest.raises(ValueError, match=r"keep_prob=.*\(0, 1\]"):
        dropout.keep_to_rate(keep)


@pytest.mark.parametrize(
    "key",
    [0, 1.5, np.zeros(2, np.float32), np.zeros(3, np.uint32), jax.random.split(KEY, 2), "key"],
    ids=["int", "float", "float_array", "wrong_shape", "batch_of_keys", "str"],
)
def test_non_key_raises(key):
    with pytest.raises(ValueError, match=r"key must be a single PRNG key.*jax.random.key"):
        dropout.inverted_dropout(key, X, 0.5)


def test_typed_and_raw_keys_give_the_same_mask():
    fn = jax.jit(lambda k: dropout.inverted_dropout(k, X, 0.5))
    typed, raw = fn(jax.random.key(3)), fn(jax.random.PRNGKey(3))
    np.testing.assert_array_equal(typed, raw)


def test_block_size_and_rank_errors():
    with pytest.raises(ValueError, match=r"block_size=13 is outside \[1, 12\]"):
        dropout.dropblock(KEY, X, 0.1, 13)
    with pytest.raises(ValueError, match=r"block_size=0 is outside"):
        dropout.dropblock(KEY, X, 0.1, 0)
    for fn, good_rank in [
        (dropout.spatial_dropout1d, 3),
        (dropout.spatial_dropout2d, 4),
        (dropout.spatial_dropout3d, 5),
        (dropout.dropblock, 4),
    ]:
        for rank in (2, 3, 4, 5):
            if rank == good_rank:
                continue
            args = (3,) if fn is dropout.dropblock else ()
            with pytest.raises(ValueError, match=rf"rank {good_rank} .*got x.shape"):
                fn(KEY, jnp.ones((8,) * rank), 0.1, *args)
    with pytest.raises(ValueError, match=r"rank >= 3"):
        dropout.spatial_dropout(KEY, jnp.ones((8, 8)), 0.1)
    with pytest.raises(ValueError, match=r"size=13 is outside \[0, 12\]"):
        dropout.cutout(KEY, X, 13)
    with pytest.raises(ValueError, match=r"broadcast_dims=\(4,\)"):
        dropout.inverted_dropout(KEY, X, 0.1, broadcast_dims=(4,))
    with pytest.raises(ValueError, match=r"sampler='nope'"):
        dropout.inverted_dropout(KEY, X, 0.1, sampler="nope")


@pytest.mark.parametrize("dims", [(1.5,), (True,), ("1",), 1], ids=str)
@pytest.mark.parametrize("fn", [dropout.inverted_dropout, dropout.standard_dropout])
@pytest.mark.parametrize("deterministic", [False, True])
def test_non_int_broadcast_dims_raise(dims, fn, deterministic):
    with pytest.raises(TypeError, match=r"broadcast_dims=.* must be a sequence of int axes"):
        fn(KEY, X, 0.1, broadcast_dims=dims, deterministic=deterministic)
    with pytest.raises(ValueError, match=r"broadcast_dims=\(-5,\) names axis -5"):
        fn(KEY, X, 0.1, broadcast_dims=(-5,), deterministic=deterministic)


@pytest.mark.parametrize("name", [v for v in VARIANTS if v != "cutout"])  # cutout only zeroes
def test_integer_input_raises_instead_of_truncating(name):
    x = jnp.full(X.shape, 3, jnp.int32)
    for key, deterministic in [(KEY, False), (None, True)]:
        with pytest.raises(TypeError, match=r"needs a floating-point x; got x.dtype=int32"):
            VARIANTS[name](key, x, deterministic)


def test_coarse_rate_quantisation_warns_naming_the_fix():
    match = r"rate=0.001 becomes 0.003906 with sampler='packed8' \(291% off.*'bernoulli'"
    with pytest.warns(UserWarning, match=match):
        dropout.inverted_dropout(KEY, X, 0.001)
    with pytest.warns(UserWarning, match=r"rate=0.01 becomes 0.01172 .*'packed16'"):
        dropout.keep_mask(KEY, (8,), 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dropout.inverted_dropout(KEY, X, 0.5)  # exact in 1/256
        dropout.inverted_dropout(KEY, X, 0.3)  # 0.4% off
        dropout.inverted_dropout(KEY, X, 0.001, sampler="bernoulli")
        dropout.inverted_dropout(KEY, X, 0.001, sampler="packed16")
        jax.jit(lambda r: dropout.inverted_dropout(KEY, X, r))(0.001)  # traced: unknown


# --- rates at and beyond 1 -----------------------------------------------------------------

# Variants as f(x, rate) with a rate that may be traced; gaussian is separate (needs rate < 1).
AT_RATE = {
    "inverted": lambda x, r: dropout.inverted_dropout(KEY, x, r),
    "inverted_bernoulli": lambda x, r: dropout.inverted_dropout(KEY, x, r, sampler="bernoulli"),
    "inverted_uniform": lambda x, r: dropout.inverted_dropout(KEY, x, r, sampler="uniform"),
    "standard": lambda x, r: dropout.standard_dropout(KEY, x, r, sampler="bernoulli"),
    "standard_eval": lambda x, r: dropout.standard_dropout(None, x, r, deterministic=True),
    "spatial": lambda x, r: dropout.spatial_dropout2d(KEY, x, r),
    "alpha": lambda x, r: dropout.alpha_dropout(KEY, x, r),
    "alpha_bernoulli": lambda x, r: dropout.alpha_dropout(KEY, x, r, sampler="bernoulli"),
    "dropblock": lambda x, r: dropout.dropblock(KEY, x, r, 3),
}


@pytest.mark.parametrize("name", AT_RATE)
def test_traced_rate_one_drops_every_unit_with_finite_grads(name):
    fn = jax.jit(AT_RATE[name])
    np.testing.assert_array_equal(fn(X, 1.0), 0.0)  # Flax: rate 1 -> zeros
    grad = jax.jit(jax.grad(lambda x, r: jnp.sum(AT_RATE[name](x, r))))(X, 1.0)
    np.testing.assert_array_equal(grad, 0.0)
    np.testing.assert_allclose(fn(X, 0.3), AT_RATE[name](X, 0.3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rate", [1.5, -0.1, float("nan")])
@pytest.mark.parametrize("name", [*AT_RATE, "gaussian"])
def test_traced_rate_outside_0_1_gives_all_nan(name, rate):
    fn = AT_RATE.get(name, lambda x, r: dropout.gaussian_dropout(KEY, x, r))
    assert np.all(np.isnan(jax.jit(fn)(X, rate)))


@pytest.mark.parametrize("rate", [1 - 1e-8, 0.99999994])  # 1.0 in float32; just below it
@pytest.mark.parametrize("name", [n for n in AT_RATE if n != "standard_eval"])
def test_rate_next_to_one_gives_finite_outputs_and_grads(name, rate):
    y = np.asarray(AT_RATE[name](X, rate))
    grad = np.asarray(jax.grad(lambda x: jnp.sum(AT_RATE[name](x, rate)))(X))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
    if np.float32(rate) == 1.0:  # every unit dropped
        np.testing.assert_array_equal(y, 0.0)


def test_gaussian_rate_one_in_float32_raises_and_traced_rate_one_gives_nan():
    with pytest.raises(ValueError, match=r"rate=0.99999999 is 1.0 in float32.*rate <= 0.99999994"):
        dropout.gaussian_dropout(KEY, X, 1 - 1e-8)
    with pytest.raises(ValueError, match=r"rate=0.99999999 is 1.0 in float32"):
        dropout.gaussian_dropout(None, X, 1 - 1e-8, deterministic=True)  # a bad config, in eval
    assert np.all(np.isfinite(dropout.gaussian_dropout(KEY, X, 0.99999994)))
    traced = jax.jit(lambda r: dropout.gaussian_dropout(KEY, X, r))
    assert np.all(np.isnan(traced(1.0)))
    np.testing.assert_allclose(
        traced(0.3), dropout.gaussian_dropout(KEY, X, 0.3), rtol=1e-5, atol=1e-6
    )


# --- statistics of each variant ------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_inverted_kept_fraction_and_mean(rate):
    x = jnp.ones((1024, 1024))
    y = np.asarray(jax.jit(dropout.inverted_dropout)(KEY, x, rate))
    keep = 1.0 - dropout.effective_rate(rate)  # the default sampler's rate quantisation
    assert abs(keep - (1.0 - rate)) <= 1 / 512
    kept = y != 0
    assert _binomial_ok(kept.mean(), keep, y.size)
    np.testing.assert_allclose(y[kept], 1.0 / keep, rtol=1e-6)  # kept units scaled by 1/keep
    assert abs(y.mean() - 1.0) <= Z * np.sqrt((1 - keep) / keep / y.size)  # mean preserved


def test_standard_train_and_eval_expectations_match():
    x = jax.random.uniform(jax.random.key(1), (1024, 1024), minval=0.5, maxval=1.5)
    train = np.asarray(jax.jit(dropout.standard_dropout)(KEY, x, 0.4))
    evaluated = np.asarray(dropout.standard_dropout(None, x, 0.4, deterministic=True))
    kept = train != 0
    np.testing.assert_array_equal(train[kept], np.asarray(x)[kept])  # no scaling in training
    keep = 1.0 - dropout.effective_rate(0.4)
    np.testing.assert_allclose(evaluated, np.asarray(x) * keep, rtol=1e-6)  # eval: x * keep
    se = np.std(train) / np.sqrt(train.size)
    assert abs(train.mean() - evaluated.mean()) <= Z * se


@pytest.mark.parametrize(
    "fn,shape",
    [
        (dropout.spatial_dropout1d, (256, 9, 256)),
        (dropout.spatial_dropout2d, (256, 5, 4, 256)),
        (dropout.spatial_dropout3d, (256, 3, 2, 2, 256)),
    ],
)
def test_spatial_masks_constant_over_space_independent_across_channels_examples(fn, shape):
    y = np.asarray(jax.jit(fn)(KEY, jnp.ones(shape), 0.5))
    flat = y.reshape(shape[0], -1, shape[-1])  # (N, positions, C)
    np.testing.assert_array_equal(flat, np.broadcast_to(flat[:, :1], flat.shape))
    kept = flat[:, 0] != 0  # (N, C): one draw per example and channel
    assert _binomial_ok(kept.mean(), 0.5, kept.size)
    bound = Z / np.sqrt(kept.size)
    assert abs(_corr(kept[:, :-1], kept[:, 1:])) < bound  # neighbouring channels
    assert abs(_corr(kept[:-1], kept[1:])) < bound  # neighbouring examples
    assert abs(_corr(kept[:, :128], kept[:, 128:])) < bound  # distant channels


def test_gaussian_dropout_mean_and_variance():
    rate = 0.3
    noise = np.asarray(jax.jit(dropout.gaussian_dropout)(KEY, jnp.ones((1024, 1024)), rate))
    var = rate / (1 - rate)
    assert abs(noise.mean() - 1.0) <= Z * np.sqrt(var / noise.size)
    assert abs(noise.var() - var) <= Z * var * np.sqrt(2 / noise.size)


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_mean_zero_variance_one(rate):
    x = jax.random.normal(jax.random.key(1), (1024, 1024))
    y = np.asarray(jax.jit(dropout.alpha_dropout)(KEY, x, rate))
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1.0) < 0.01
    keep = 1.0 - dropout.effective_rate(rate)
    alpha_p = -dropout.SELU_SCALE * dropout.SELU_ALPHA
    a = (keep + alpha_p**2 * keep * (1 - keep)) ** -0.5
    dropped = np.isclose(y, a * alpha_p + a * -alpha_p * (1 - keep), atol=1e-6)
    assert _binomial_ok(dropped.mean(), rate, y.size)  # dropped units sit at a*alpha' + b


def test_variational_masks_one_per_sequence_reused_every_step():
    batch, steps, d_in, d_h = 256, 5, 256, 256
    in_mask, rec_mask = jax.jit(dropout.variational_masks, static_argnums=(1, 2, 3))(
        KEY, batch, d_in, d_h, 0.25, 0.5
    )
    assert in_mask.shape == (batch, d_in) and rec_mask.shape == (batch, d_h)
    np.testing.assert_allclose(np.unique(in_mask), [0.0, 1 / 0.75])
    np.testing.assert_allclose(np.unique(rec_mask), [0.0, 2.0])
    assert _binomial_ok(np.mean(in_mask != 0), 0.75, in_mask.size)
    assert _binomial_ok(np.mean(rec_mask != 0), 0.5, rec_mask.size)
    assert abs(_corr(in_mask != 0, rec_mask != 0)) < Z / np.sqrt(in_mask.size)
    w_in = jax.random.normal(jax.random.key(1), (d_in, d_h)) / d_in
    w_h = jax.random.normal(jax.random.key(2), (d_h, d_h)) / d_h

    def last_state(xs):  # a tanh RNN over xs (batch, steps, d_in) with the two masks
        def step(h, x_t):
            h = jnp.tanh((x_t * in_mask) @ w_in + (h * rec_mask) @ w_h)
            return h, h

        h, _ = jax.lax.scan(step, jnp.ones((batch, d_h)), xs.swapaxes(0, 1))
        return h.sum()

    xs = jax.random.normal(jax.random.key(3), (batch, steps, d_in))
    grads = np.asarray(jax.jit(jax.grad(last_state))(xs))  # (batch, steps, d_in)
    dropped_inputs = np.asarray(in_mask) == 0
    for t in range(steps):  # the same input units are dropped at every time step
        np.testing.assert_array_equal(grads[:, t] == 0, dropped_inputs)
    ones_in, ones_rec = dropout.variational_masks(KEY, 4, 3, 5, 0.5, 0.5, deterministic=True)
    assert np.all(ones_in == 1) and np.all(ones_rec == 1)


def test_dropconnect_masks_weights():
    kernel = jax.random.normal(jax.random.key(1), (512, 512))
    dropped = np.asarray(jax.jit(dropout.dropconnect)(KEY, kernel, 0.5))
    kept = dropped != 0
    assert _binomial_ok(kept.mean(), 0.5, kept.size)
    np.testing.assert_allclose(dropped[kept], 2.0 * np.asarray(kernel)[kept], rtol=1e-6)


@pytest.mark.parametrize("rate,block_size", [(0.1, 5), (0.2, 3)])
def test_dropblock_drops_about_rate_in_contiguous_blocks(rate, block_size):
    shape = (64, 32, 32, 8)
    y = np.asarray(
        jax.jit(dropout.dropblock, static_argnums=3)(KEY, jnp.ones(shape), rate, block_size)
    )
    dropped = y == 0
    opened = ndimage.binary_opening(dropped, structure=np.ones((1, block_size, block_size, 1)))
    np.testing.assert_array_equal(opened, dropped)  # a union of full block_size^2 squares
    # Block overlaps make the realised fraction a little lower than rate (paper's gamma).
    assert 0.85 * rate < dropped.mean() < 1.02 * rate
    assert y.sum() == pytest.approx(y.size, rel=1e-5)  # rescaled by count / count_ones
    per_map = dropped.mean(axis=(1, 2))  # (N, C): maps are dropped independently
    assert abs(_corr(per_map[:, :-1], per_map[:, 1:])) < Z / np.sqrt(per_map.size)


def test_dropblock_rate_schedule_and_traced_rate():
    schedule = [float(dropout.dropblock_rate(s, 100, 0.2)) for s in (0, 50, 100, 150)]
    np.testing.assert_allclose(schedule, [0.0, 0.1, 0.2, 0.2], rtol=1e-6)
    step_fn = jax.jit(
        lambda k, x, step: dropout.dropblock(k, x, dropout.dropblock_rate(step, 10, 0.2), 3)
    )
    x = jnp.ones((64, 32, 32, 8))
    np.testing.assert_array_equal(step_fn(KEY, x, 0), x)  # rate 0 at the first step
    late = np.asarray(step_fn(KEY, x, 10))
    assert 0.85 * 0.2 < np.mean(late == 0) < 1.02 * 0.2
    with pytest.raises(ValueError, match=r"total_steps=0"):
        dropout.dropblock_rate(0, 0, 0.2)
    with pytest.raises(ValueError, match=r"final_rate=1.0"):
        dropout.dropblock_rate(0, 10, 1.0)


@pytest.mark.parametrize("size", [4, 5])
def test_cutout_squares_have_the_set_size(size):
    images = jnp.ones((256, 16, 16, 3))
    out = np.asarray(jax.jit(dropout.cutout, static_argnums=2)(KEY, images, size))
    full = 0
    for image in out:
        zero = image == 0
        assert np.all(zero == zero[..., :1])  # all channels of a pixel together
        rows, cols = np.nonzero(zero[..., 0])
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert zero[..., 0].sum() == h * w  # one filled rectangle
        inside = rows.min() > 0 and cols.min() > 0 and rows.max() < 15 and cols.max() < 15
        assert h <= size and w <= size and (not inside or h == w == size)
        full += h == w == size
    assert full > 0.4 * len(out)  # most centres are far enough from the border


# --- shared invariances --------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
def test_same_key_same_output_different_keys_differ(name):
    fn = jax.jit(VARIANTS[name], static_argnums=2)
    a, b = fn(KEY, X, False), fn(KEY, X, False)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fn(jax.random.key(1), X, False))


@pytest.mark.parametrize("name", VARIANTS)
def test_deterministic_is_identity_and_standard_scales(name):
    out = VARIANTS[name](None, X, True)
    expected = X * (1 - dropout.effective_rate(0.3)) if name == "standard" else X
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "fn",
    [
        dropout.inverted_dropout,
        dropout.standard_dropout,
        dropout.spatial_dropout,
        dropout.gaussian_dropout,
        dropout.alpha_dropout,
        dropout.dropconnect,
        functools.partial(dropout.dropblock, block_size=3),
    ],
    ids=lambda f: getattr(f, "__name__", "dropblock"),
)
def test_rate_zero_is_identity(fn):
    assert fn(KEY, X, 0.0) is X


@pytest.mark.parametrize("name", VARIANTS)
def test_bf16_stays_bf16(name):
    x = X.astype(jnp.bfloat16)
    assert jax.jit(VARIANTS[name], static_argnums=2)(KEY, x, False).dtype == jnp.bfloat16
    assert VARIANTS[name](None, x, True).dtype == jnp.bfloat16
    y = jax.jit(dropout.inverted_dropout)(KEY, jnp.ones((64, 64), jnp.bfloat16), 0.5)
    assert set(np.unique(np.asarray(y, np.float32))) == {0.0, 2.0}


@pytest.mark.parametrize(
    "name,slope",
    [("inverted", None), ("inverted_bcast", None), ("standard", 1.0), ("spatial", None),
     ("dropconnect", None), ("dropblock", None), ("cutout", 1.0), ("alpha", None)],
)  # fmt: skip
def test_grad_is_zero_exactly_where_dropped(name, slope):
    fn = VARIANTS[name]
    y = np.asarray(jax.jit(fn, static_argnums=2)(KEY, X, False))
    grad = np.asarray(jax.jit(jax.grad(lambda x: jnp.sum(fn(KEY, x, False))))(X))
    if name == "alpha":  # dropped units are set to a constant: y = a * x (kept) or a*alpha'+b
        keep = 1.0 - dropout.effective_rate(0.3)
        alpha_p = -dropout.SELU_SCALE * dropout.SELU_ALPHA
        a = (keep + alpha_p**2 * keep * (1 - keep)) ** -0.5
        dropped = np.isclose(y, a * alpha_p * keep, atol=1e-5)
        np.testing.assert_allclose(grad[~dropped], a, rtol=1e-6)
    else:
        dropped = y == 0
        kept_slope = np.asarray(y)[~dropped] / np.asarray(X)[~dropped]
        np.testing.assert_allclose(grad[~dropped], kept_slope, rtol=1e-5)
        if slope is not None:
            np.testing.assert_allclose(grad[~dropped], slope)
    assert 0.05 < dropped.mean() < 0.5
    np.testing.assert_array_equal(grad[dropped], 0.0)


def test_jit_matches_eager():
    eager = dropout.inverted_dropout(KEY, X, 0.3)
    np.testing.assert_array_equal(jax.jit(dropout.inverted_dropout)(KEY, X, 0.3), eager)


def test_vmap_over_keys_matches_a_loop():
    keys = jax.random.split(KEY, 4)
    one = jax.jit(lambda k, x: dropout.inverted_dropout(k, x, 0.5))
    batched = jax.jit(jax.vmap(one))(keys, X)
    for k, x, y in zip(keys, X, batched, strict=True):
        np.testing.assert_array_equal(y, one(k, x))
    raw_keys = jax.random.split(jax.random.PRNGKey(0), 4)  # raw uint32 keys (4, 2)
    spatial = jax.jit(jax.vmap(lambda k, x: dropout.spatial_dropout1d(k, x, 0.5)))(raw_keys, X)
    kept = np.asarray(spatial != 0).reshape(4, 12, -1, 16)  # per example (N=12, T=12, C=16)
    np.testing.assert_array_equal(kept, np.broadcast_to(kept[:, :, :1], kept.shape))
    assert not np.array_equal(kept[0], kept[1])


@pytest.mark.parametrize("sampler", dropout.SAMPLERS)
def test_every_sampler_keeps_the_expectation(sampler):
    x = jnp.ones((512, 512))
    y = np.asarray(jax.jit(dropout.inverted_dropout, static_argnames="sampler")(
        KEY, x, 0.3, sampler=sampler))  # fmt: skip
    keep = 1.0 - dropout.effective_rate(0.3, sampler)
    assert abs(y.mean() - 1.0) <= Z * np.sqrt((1 - keep) / keep / y.size)
