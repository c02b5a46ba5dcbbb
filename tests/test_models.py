"""Models: shapes, exact parameter counts, the train / dropout switches, and the fused LSTM."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import layers, models
from dropout_study.masks import effective_rate
from dropout_study.models import conv, recurrence, text, vgg

KEY = jax.random.key(0)
# The tests compile many small programs; XLA's optimisation level 0 halves their compile time.
FAST_COMPILE = {"xla_backend_optimization_level": 0}

# Small configs (and inputs) of every model, with dropout on at every site.
SMALL = {
    "text_cnn": ({"vocab_size": 50, "embed_dim": 8, "num_filters": 6, "kernel_sizes": (2, 3),
                  "output_rate": 0.5}, (3, 12)),
    "lstm": ({"vocab_size": 50, "embed_dim": 8, "hidden_dim": 6, "input_rate": 0.3,
              "recurrent_rate": 0.3, "output_rate": 0.3}, (3, 12)),
    "vgg": ({"filters": (4, 8, 8), "ndense": 16}, (3, 22, 22, 3)),  # maps 22, 10, 4, flatten 1x1
    "conv_family": ({"arch": "batchnorm_dropout", "filters": (4, 8), "num_classes": 5},
                    (3, 8, 8, 3)),
    "unet": ({"filters": (4, 8), "encoder_rates": (0.3, 0.3), "skip_rates": (0.2, 0.2),
              "batch_norm": True}, (3, 8, 8, 2)),
    "mlp": ({"hidden": (16, 16), "rates": (0.3, 0.3), "activation": "selu"}, (3, 4, 4, 3)),
}  # fmt: skip
OUTPUT_SHAPES = {
    "text_cnn": (3, 2), "lstm": (3, 2), "vgg": (3, 10), "conv_family": (3, 5),
    "unet": (3, 8, 8, 2), "mlp": (3, 10),
}  # fmt: skip


def fast_jit(fn, **kwargs):
    return jax.jit(fn, compiler_options=FAST_COMPILE, **kwargs)


@functools.cache
def small_model(name, **overrides):
    """(model, variables, x) of the small config of `name`; cached across tests."""
    fields, shape = SMALL[name]
    model = models.create_model({"name": name, **fields, **overrides})
    if len(shape) == 2:
        x = jax.random.randint(jax.random.key(1), shape, 1, 50)
    else:
        x = jax.random.uniform(jax.random.key(1), shape)
    variables = fast_jit(functools.partial(model.init, train=False))({"params": KEY}, x)
    return model, variables, x


@functools.cache
def _jitted_apply(model):
    return fast_jit(model.apply, static_argnames=("train", "dropout", "mutable"))


def apply(model, variables, x, key, **kwargs):
    """Model output with batch-norm statistics allowed to update (jit: eager is slow)."""
    out, _ = _jitted_apply(model)(
        variables, x, rngs={"dropout": key}, mutable=("batch_stats",), **kwargs
    )
    return out


def count(tree):
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def conv_params(k, c_in, c_out):
    """Parameters of a k x k (or width-k 1-D when k is a tuple of one) conv with bias."""
    return k * c_in * c_out + c_out


@pytest.mark.parametrize("name", list(models.MODELS))
def test_output_shapes_and_dropout_switch(name):
    model, variables, x = small_model(name)
    assert apply(model, variables, x, KEY, train=False).shape == OUTPUT_SHAPES[name]
    k1, k2 = jax.random.key(7), jax.random.key(8)
    # Dropout off (train=False, or train=True with dropout=False): the key does not matter.
    for kwargs in ({"train": False}, {"train": True, "dropout": False}):
        np.testing.assert_array_equal(
            apply(model, variables, x, k1, **kwargs), apply(model, variables, x, k2, **kwargs)
        )
    # Dropout on (train=True, or MC dropout train=False, dropout=True): different keys differ.
    for kwargs in ({"train": True}, {"train": False, "dropout": True}):
        a, b = apply(model, variables, x, k1, **kwargs), apply(model, variables, x, k2, **kwargs)
        assert float(jnp.max(jnp.abs(a - b))) > 1e-4
        np.testing.assert_array_equal(a, apply(model, variables, x, k1, **kwargs))


def _init_shapes(name, config, shape, dtype=jnp.float32):
    model = models.create_model({"name": name, **config})
    init = lambda: model.init({"params": KEY}, jnp.zeros(shape, dtype), train=False)
    return jax.eval_shape(init)


def test_vgg_parameter_counts_match_post_001():
    dense = lambda n_in, n_out: n_in * n_out + n_out
    convs = sum(
        conv_params(9, c_in, c_out)
        for c_in, c_out in [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    )
    bn = 2 * (64 + 64 + 128 + 128 + 256 + 256)
    for ndense, expected in ((512, 1_939_786), (1024, 3_256_650)):
        head = dense(2 * 2 * 256, ndense) + dense(ndense, ndense) + dense(ndense, 10)
        assert convs + bn + head == expected
        variables = _init_shapes("vgg", {"ndense": ndense}, (1, 32, 32, 3))
        assert count(variables["params"]) == expected
        assert count(variables["batch_stats"]) == bn  # running mean and variance
    # ~2M at defaults, ~3.2M with ndense=1024, as the post says.
    assert 1.9e6 < 1_939_786 < 2.0e6 and 3.2e6 < 3_256_650 < 3.3e6


def test_parameter_counts_of_the_other_models():
    embed = 20000 * 128
    text_cnn = _init_shapes("text_cnn", {}, (1, 200), jnp.int32)["params"]
    assert count(text_cnn) == embed + conv_params(3, 128, 128) + 128 * 2 + 2 == 2_609_538
    lstm = _init_shapes("lstm", {}, (1, 200), jnp.int32)["params"]
    assert count(lstm) == embed + (128 + 128) * 512 + 512 + 128 * 2 + 2 == 2_691_842
    gap = _init_shapes("conv_family", {"head": "gap"}, (1, 32, 32, 3))["params"]
    convs = sum(
        conv_params(9, c_in, c_out)
        for c_in, c_out in [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    )
    bn = 2 * (64 + 64 + 128 + 128 + 256 + 256)
    assert count(gap) == convs + bn + 256 * 100 + 100 == 1_172_900
    dense = _init_shapes("conv_family", {"head": "dense", "arch": "none"}, (1, 32, 32, 3))
    assert count(dense["params"]) == convs + (4 * 4 * 256 * 512 + 512) + (512 * 100 + 100)
    unet = _init_shapes("unet", {}, (1, 32, 32, 3))["params"]
    enc = [(3, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    dec = [(256, 128), (128, 128), (128, 64), (64, 64), (64, 32), (32, 32)]
    ups = sum(conv_params(4, c_in, c_out) for c_in, c_out in [(256, 128), (128, 64), (64, 32)])
    expected = sum(conv_params(9, a, b) for a, b in enc + dec) + ups + conv_params(1, 32, 3)
    assert count(unet) == expected == 1_925_667
    mlp = _init_shapes("mlp", {}, (1, 32, 32, 3))["params"]
    assert count(mlp) == (3072 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10) == 1_841_162


@pytest.mark.parametrize("name", ["vgg", "conv_family", "unet"])
def test_mc_dropout_uses_running_averages_and_leaves_them(name):
    model, variables, x = small_model(name)
    stats = jax.tree.map(lambda s: s + 0.5, variables["batch_stats"])  # not the init values
    variables = {**variables, "batch_stats": stats}
    run = _jitted_apply(model)
    out, updates = run(
        variables, x, train=False, dropout=True, rngs={"dropout": KEY}, mutable=("batch_stats",)
    )
    jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], stats)
    _, trained = run(variables, x, train=True, rngs={"dropout": KEY}, mutable=("batch_stats",))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), trained["batch_stats"], stats)
    assert all(jax.tree.leaves(changed))
    # With every rate 0, MC mode equals plain eval: batch-norm used the running averages.
    zero = {"vgg": {"block_rates": (0,) * 3, "dense_rates": (0, 0)}, "conv_family": {"rate": 0.0},
            "unet": {"encoder_rates": (0, 0), "skip_rates": (0, 0)}}[name]  # fmt: skip
    model0 = models.create_model({"name": name, **SMALL[name][0], **zero})
    run0 = _jitted_apply(model0)
    mc = run0(variables, x, train=False, dropout=True, rngs={"dropout": KEY})
    np.testing.assert_array_equal(mc, run0(variables, x, train=False))
    train_mode = apply(model0, variables, x, KEY, train=True)
    assert float(jnp.max(jnp.abs(train_mode - mc))) > 1e-4


@pytest.mark.parametrize("name", list(models.MODELS))
def test_rate_zero_is_deterministic(name):
    zero = {
        "text_cnn": {"output_rate": 0.0},
        "lstm": {"input_rate": 0.0, "recurrent_rate": 0.0, "output_rate": 0.0},
        "vgg": {"block_rates": (0, 0, 0), "dense_rates": (0, 0), "batch_norm": False},
        "conv_family": {"rate": 0.0, "arch": "dropout"},
        "unet": {"encoder_rates": (0, 0), "skip_rates": (0, 0), "batch_norm": False},
        "mlp": {"rates": (0, 0)},
    }[name]
    model, variables, x = small_model(name, **zero)
    np.testing.assert_array_equal(
        apply(model, variables, x, KEY, train=True), apply(model, variables, x, KEY, train=False)
    )


def _flax_params(lstm_params):
    """The fused LSTM's parameters in flax LSTMCell / OptimizedLSTMCell layout."""
    split = lambda a: jnp.split(a, 4, axis=-1)
    w, u, b = (lstm_params[k] for k in ("input_kernel", "recurrent_kernel", "bias"))
    cell = {}
    for gate, w_g, u_g, b_g in zip("ifgo", split(w), split(u), split(b), strict=True):
        cell["i" + gate] = {"kernel": w_g}
        cell["h" + gate] = {"kernel": u_g, "bias": b_g}
    return cell


def _flax_lstm(cell, cell_params, x_tne, mask=None):
    """Reference: flax's cell scanned over time-major x, h multiplied by `mask` at every step."""

    def step(carry, x_t):
        c, h = carry
        h_in = h if mask is None else h * mask
        return cell.apply({"params": cell_params}, (c, h_in), x_t)

    _, hs = jax.lax.scan(step, cell.initialize_carry(KEY, x_tne[0].shape), x_tne)
    return hs


def test_fused_lstm_equals_flax_cells_values_and_gradients():
    x = jax.random.normal(jax.random.key(2), (6, 4, 5))  # (T, N, E)
    mask = jax.random.bernoulli(jax.random.key(3), 0.7, (4, 6)) / 0.7
    lstm = text.LSTM(6)
    params = lstm.init(KEY, x)["params"]
    params = {**params, "bias": jax.random.normal(jax.random.key(4), (24,))}
    weights = jax.random.normal(jax.random.key(5), (6, 4, 6))
    ours = lambda p, m: lstm.apply({"params": p}, x, m)
    optimized = lambda p, m: _flax_lstm(nn.OptimizedLSTMCell(6), _flax_params(p), x, m)
    plain = lambda p, m: _flax_lstm(nn.LSTMCell(6), _flax_params(p), x, m)

    @fast_jit
    def values_and_grads(params, mask):
        grad = lambda f: jax.grad(lambda p: jnp.sum(weights * f(p, mask)))(params)
        values = [f(params, mask) for f in (ours, optimized, plain)]
        return values, grad(ours), grad(optimized)

    for m in (None, mask):
        (hs, hs_optimized, hs_plain), g_ours, g_ref = values_and_grads(params, m)
        np.testing.assert_allclose(hs, hs_optimized, atol=2e-6)
        np.testing.assert_allclose(hs, hs_plain, atol=2e-6)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-5), g_ours, g_ref)


def test_text_cnn_equals_stock_flax_layers_values_and_gradients():
    """The unchecked embedding lookup and relu after the max pool compute what nn.Embed, nn.Conv
    and max-over-time of relu compute, gradients included (the scatter into the table too)."""
    model, variables, tokens = small_model("text_cnn")
    # Half the filters get a bias of -10, so their maxima are negative and relu clips them.
    negative = {"bias": jnp.where(jnp.arange(6) % 2 == 0, -10.0, 0.0)}
    params = {
        k: {**v, **negative} if k.startswith("Conv") else v for k, v in variables["params"].items()
    }
    weights = jax.random.normal(jax.random.key(6), OUTPUT_SHAPES["text_cnn"])

    def stock(p):
        x = nn.Embed(50, 8).apply({"params": p["Embed_0"]}, tokens)
        pooled = [
            jnp.max(
                nn.relu(nn.Conv(6, (w,), padding="VALID").apply({"params": p[f"Conv_{i}"]}, x)), 1
            )
            for i, w in enumerate((2, 3))
        ]
        return nn.Dense(2).apply({"params": p["Dense_0"]}, jnp.concatenate(pooled, -1))

    ours = lambda p: model.apply({"params": p}, tokens, train=False)

    @fast_jit
    def values_and_grads(p):
        grad = lambda f: jax.grad(lambda q: jnp.sum(weights * f(q)))(p)
        return ours(p), stock(p), grad(ours), grad(stock)

    out, out_stock, g_ours, g_stock = values_and_grads(params)
    np.testing.assert_allclose(out, out_stock, atol=1e-6)
    assert np.abs(g_stock["Embed_0"]["embedding"]).sum() > 0  # the table does get a gradient
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g_ours, g_stock)
    with pytest.raises(ValueError, match="integer token ids"):
        model.apply({"params": params}, tokens.astype(jnp.float32), train=False)


def test_recurrence_mask_gradient_matches_autodiff():
    xp = jax.random.normal(jax.random.key(2), (7, 3, 20))
    u = jax.random.normal(jax.random.key(3), (5, 20)) * 0.5
    mask = jax.random.uniform(jax.random.key(4), (3, 5)) * 2
    w = jax.random.normal(jax.random.key(5), (7, 3, 5))
    fused = lambda *a: jnp.sum(w * recurrence.lstm_recurrence(*a))
    plain = lambda *a: jnp.sum(w * recurrence._run(*a, keep_residuals=False))
    grads = [fast_jit(jax.grad(f, (0, 1, 2)))(xp, u, mask) for f in (fused, plain)]
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _capture_lstm_inputs(model, variables, tokens, **kwargs):
    """(x (T, N, E), recurrent mask, hs) that the classifier passed to / got from its LSTM."""

    @fast_jit
    def run(variables, tokens):
        seen = {}

        def interceptor(next_fun, args, kw, context):
            out = next_fun(*args, **kw)
            if isinstance(context.module, text.LSTM) and context.method_name == "__call__":
                seen.update(x=args[0], mask=args[1] if len(args) > 1 else None, hs=out)
            return out

        with nn.intercept_methods(interceptor):
            model.apply(variables, tokens, rngs={"dropout": jax.random.key(9)}, **kwargs)
        return seen  # returned from the traced function, so no tracer leaks

    return run(variables, tokens)


def test_variational_masks_are_constant_over_time():
    model, variables, tokens = small_model("lstm", input_rate=0.4, recurrent_rate=0.4)
    seen = _capture_lstm_inputs(model, variables, tokens, train=True)
    embedded = variables["params"]["Embed_0"]["embedding"][tokens.T]  # (T, N, E)
    ratio = seen["x"] / embedded
    np.testing.assert_allclose(ratio, jnp.broadcast_to(ratio[0], ratio.shape), rtol=1e-5)
    dropped = np.asarray(ratio[0] == 0)
    assert 0.1 < dropped.mean() < 0.8  # some but not all inputs dropped, one draw per sequence
    keep = 1 - effective_rate(0.4, model.sampler)  # the rate the sampler realises
    np.testing.assert_allclose(ratio[0][~dropped], 1 / keep, rtol=1e-5)  # kept: scaled by 1/keep
    mask = seen["mask"]
    assert mask.shape == (3, 6) and 0.1 < float(jnp.mean(mask == 0)) < 0.8
    # The recurrent mask multiplies h_{t-1} at every step: equals a hand loop with flax's cell.
    cell_params = _flax_params(variables["params"]["LSTM_0"])
    reference = _flax_lstm(nn.OptimizedLSTMCell(6), cell_params, seen["x"], mask)
    np.testing.assert_allclose(seen["hs"], reference, atol=2e-6)


def test_standard_input_dropout_draws_a_mask_per_step():
    model, variables, tokens = small_model("lstm", input_mode="standard", input_rate=0.5)
    seen = _capture_lstm_inputs(model, variables, tokens, train=True)
    dropped = np.asarray(seen["x"] == 0)  # (T, N, E)
    assert 0.3 < dropped.mean() < 0.7
    assert np.any(dropped.any(axis=0) & ~dropped.all(axis=0))  # varies over time


def test_lstm_reads_the_last_real_token_for_pre_and_post_padding():
    model, variables, _ = small_model("lstm")
    seq = jnp.array([[5, 9, 3, 7]])
    post = jnp.concatenate([seq, jnp.zeros((1, 3), jnp.int32)], axis=1)
    pre = jnp.concatenate([jnp.zeros((1, 3), jnp.int32), seq], axis=1)
    np.testing.assert_array_equal(text.last_token_index(post), [3])
    np.testing.assert_array_equal(text.last_token_index(pre), [6])
    logits = lambda t: apply(model, variables, t, KEY, train=False)
    np.testing.assert_allclose(logits(post), logits(seq), atol=1e-6)
    assert float(jnp.max(jnp.abs(logits(pre) - logits(seq)))) > 1e-6  # runs over the padding


def test_keep_probabilities_are_resolved_and_recorded():
    config = models.default_config("lstm")
    config.output_keep_prob = 0.8
    config.recurrent_rate = 0.25
    resolved = models.resolve_config(config)
    assert (resolved.output_rate, resolved.output_keep_prob) == (pytest.approx(0.2), 0.8)
    assert (resolved.recurrent_rate, resolved.recurrent_keep_prob) == (0.25, 0.75)
    assert (resolved.input_rate, resolved.input_keep_prob) == (0.0, 1.0)
    model = models.create_model(config)
    assert model.output_rate == pytest.approx(0.2) and model.recurrent_rate == 0.25
    cnn = models.create_model({"name": "text_cnn", "output_keep_prob": 0.5})
    assert cnn.output_rate == 0.5
    with pytest.raises(ValueError, match=r"model\.output_keep_prob.*\(0, 1\]"):
        models.create_model({"name": "text_cnn", "output_keep_prob": 0.0})


def _dropout_layers(model, x, **kwargs):
    """(variant, rate, block_size) of every Dropout layer the model calls, traced abstractly."""
    seen = []

    def interceptor(next_fun, args, kw, context):
        if isinstance(context.module, layers.Dropout):
            m = context.module
            seen.append((m.variant, m.rate, m.block_size))
        return next_fun(*args, **kw)

    with nn.intercept_methods(interceptor):
        jax.eval_shape(functools.partial(model.init, **kwargs), {"params": KEY, "dropout": KEY}, x)
    return seen


@pytest.mark.parametrize("variant", layers.VARIANTS)
def test_vgg_block_dropout_variants_by_name(variant):
    model = models.create_model({"name": "vgg", "block_variant": variant, "block_size": 3})
    seen = _dropout_layers(model, jnp.zeros((2, 32, 32, 3)), train=True)
    assert seen[:3] == [(variant, 0.2, 3), (variant, 0.3, 3), (variant, 0.4, 2)]  # 2x2 maps
    assert [(v, r) for v, r, _ in seen[3:]] == [("inverted", 0.5), ("inverted", 0.5)]


def _dropout_outputs(model, variables, x, dropout):
    """Outputs of the model's Dropout layers with rate > 0, in call order (train=False)."""
    is_dropout = lambda module, method: isinstance(module, layers.Dropout) and module.rate > 0

    @fast_jit
    def run(variables, x):
        _, state = model.apply(
            variables, x, train=False, dropout=dropout, rngs={"dropout": KEY},
            capture_intermediates=is_dropout,
        )  # fmt: skip
        return [v["__call__"][0] for v in state["intermediates"].values() if "__call__" in v]

    return run(variables, x)


def test_spatial_dropout_in_unet_drops_whole_feature_maps():
    model, variables, x = small_model("unet", dropout_variant="spatial", skip_rates=(0, 0))
    outs = _dropout_outputs(model, variables, x, dropout=True)
    assert len(outs) == 2  # one encoder dropout per level
    for out in outs:
        dropped = jnp.all(out == 0, axis=(1, 2))  # (N, C): whole feature maps
        assert 0.05 < float(jnp.mean(dropped)) < 0.7
    # The first level sees the same input with dropout off: kept maps are scaled by 1/keep.
    before = _dropout_outputs(model, variables, x, dropout=False)[0]
    dropped = jnp.all(outs[0] == 0, axis=(1, 2))[:, None, None]
    expected = jnp.where(dropped, 0.0, before / (1 - effective_rate(0.3, model.sampler)))
    np.testing.assert_allclose(outs[0], expected, rtol=1e-4, atol=1e-6)


def test_mlp_selu_uses_alpha_dropout_and_lecun_init():
    x = jnp.zeros((2, 32, 32, 3))
    selu = models.create_model({"name": "mlp", "activation": "selu"})
    relu = models.create_model({"name": "mlp", "activation": "relu"})
    assert [v for v, _, _ in _dropout_layers(selu, x, train=True)] == ["alpha", "alpha"]
    assert [v for v, _, _ in _dropout_layers(relu, x, train=True)] == ["inverted", "inverted"]
    # First kernel (3072, 512): LeCun-normal std 1/sqrt(3072); Glorot-uniform sqrt(2/3584).
    for model, std in ((selu, 3072**-0.5), (relu, (2 / (3072 + 512)) ** 0.5)):
        params = fast_jit(functools.partial(model.init, train=False))({"params": KEY}, x)
        assert float(jnp.std(params["params"]["Dense_0"]["kernel"])) == pytest.approx(std, rel=0.02)
    # Alpha dropout sets dropped SELU units to -lambda*alpha, then a*x + b: no exact zeros.
    model, variables, x = small_model("mlp")
    outs = _dropout_outputs(model, variables, x, dropout=True)
    offs = _dropout_outputs(model, variables, x, dropout=False)
    assert len(outs) == 2 and not any(bool(jnp.any(out == 0)) for out in outs)
    assert float(jnp.max(jnp.abs(outs[0] - offs[0]))) > 0.5


def test_conv_family_archs_differ_only_between_convolutions():
    shapes = {}
    for arch in ("none", "dropout", "spatial_dropout", "batchnorm", "batchnorm_dropout"):
        v = _init_shapes("conv_family", {"arch": arch, "filters": (4, 8)}, (1, 16, 16, 3))
        shapes[arch] = jax.tree.map(lambda a: a.shape, v["params"])
    conv_only = {k: v for k, v in shapes["batchnorm"].items() if not k.startswith("BatchNorm")}
    for arch in ("none", "dropout", "spatial_dropout"):
        assert shapes[arch] == conv_only
    assert shapes["batchnorm_dropout"] == shapes["batchnorm"]


def test_max_pool_matches_flax_for_odd_sizes():
    x = jax.random.normal(KEY, (2, 13, 15, 3))
    np.testing.assert_array_equal(vgg.max_pool_2x2(x), nn.max_pool(x, (2, 2), (2, 2)))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "resnet"}, r"model\.name='resnet' is not one of \('text_cnn', 'lstm'"),
        ({"name": "vgg", "ndens": 3}, r"model\.ndens is not a field.*'ndense'"),
        ({"name": "vgg", "block_variant": "drop"}, r"block_variant='drop'.*'inverted'.*'dropbl"),
        ({"name": "vgg", "dense_variant": "spatial"}, r"dense_variant='spatial'.*'alpha'"),
        ({"name": "vgg", "block_rates": (0.1, 0.2)}, r"block_rates=\(0\.1, 0\.2\) has 2 entries"),
        ({"name": "vgg", "dense_rates": (0.5, 1.0)}, r"dense_rates=1\.0 is outside .*\[0, 1\)"),
        ({"name": "conv_family", "arch": "bn"}, r"arch='bn'.*'batchnorm_dropout'"),
        ({"name": "conv_family", "head": "flat"}, r"head='flat'.*\('dense', 'gap'\)"),
        ({"name": "lstm", "input_mode": "gal"}, r"input_mode='gal'.*\('variational', 'standard'\)"),
        ({"name": "lstm", "sampler": "coin"}, r"sampler='coin'.*'bernoulli'"),
        ({"name": "mlp", "activation": "gelu"}, r"activation='gelu'.*\('relu', 'selu'\)"),
        ({"name": "unet", "output_activation": "tanh"}, r"output_activation='tanh'.*'sigmoid'"),
        ({"name": "text_cnn", "kernel_sizes": ()}, r"kernel_sizes=\(\) must list"),
    ],
)  # fmt: skip
def test_bad_configs_raise_value_errors_naming_the_field(config, message):
    with pytest.raises(ValueError, match=message):
        models.create_model(config)


def test_unet_rejects_sizes_it_cannot_pool():
    model, variables, _ = small_model("unet")
    with pytest.raises(ValueError, match=r"divisible by 4; got shape \(1, 18, 16, 2\)"):
        model.apply(variables, jnp.zeros((1, 18, 16, 2)), train=False)


@pytest.mark.parametrize(
    ("kernel_size", "padding", "shape"),
    [((3, 3), "SAME", (2, 7, 6, 3)), ((3, 3), "VALID", (2, 7, 6, 3)),
     ((4, 2), "SAME", (1, 6, 5, 2)), ((3,), "VALID", (2, 9, 4)), ((2,), "SAME", (2, 9, 4)),
     ((1, 1), "VALID", (2, 4, 4, 5)), ((3, 3), "SAME", (11, 5, 4, 3)), ((3,), "VALID", (11, 9, 4))],
)  # fmt: skip
def test_im2col_and_xla_convs_equal_flax_conv(kernel_size, padding, shape):
    x = jax.random.normal(KEY, shape)
    reference = nn.Conv(5, kernel_size, padding=padding)
    variables = reference.init(jax.random.key(1), x)
    expected = reference.apply(variables, x)
    weights = jax.random.normal(jax.random.key(2), expected.shape)
    modules = [reference] + [conv.Conv(5, kernel_size, padding, impl) for impl in ("xla", "im2col")]

    @fast_jit
    def values_and_grads(variables, x):
        loss = lambda m: lambda v, x: jnp.sum(weights * m.apply(v, x))
        return [(m.apply(variables, x), jax.grad(loss(m), (0, 1))(variables, x)) for m in modules]

    (_, expected_grads), *ours = values_and_grads(variables, x)
    for value, grads in ours:
        np.testing.assert_allclose(value, expected, atol=2e-6)
        close = lambda a, b: np.testing.assert_allclose(a, b, atol=2e-5)
        jax.tree.map(close, grads, expected_grads)


@pytest.mark.parametrize("shape", [(10, 9, 4), (10, 6, 5, 3), (10, 5, 4, 4, 2)])
def test_kernel_grad_equals_xla_conv_kernel_gradient_in_any_chunks(shape):
    x = jax.random.normal(KEY, shape)
    kernel = jax.random.normal(jax.random.key(1), (3,) * (len(shape) - 2) + (shape[-1], 6))
    dy = jax.random.normal(jax.random.key(2), conv.xla_conv(x, kernel).shape)
    (expected,) = jax.vjp(lambda k: conv.xla_conv(x, k), kernel)[1](dy)
    for chunk in (1, 3, 10):  # one image per block, a ragged last block, one block
        got = fast_jit(conv.kernel_grad, static_argnums=2)(x, dy, chunk)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_conv_impl_auto_is_xla_convolution_and_im2col_only_on_request():
    assert not conv.uses_im2col("auto") and not conv.uses_im2col("xla")
    assert conv.uses_im2col("im2col")
    with pytest.raises(ValueError, match=r"conv_impl='fft' is not one of \('auto', 'xla'"):
        models.create_model({"name": "vgg", "conv_impl": "fft"})
