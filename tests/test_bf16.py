"""Mixed precision (config.compute_dtype='bfloat16'): float32 state, bf16 compute, same masks."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import data, layers, models, optim, run_config, run_files, train, train_step


def _conv_config(compute_dtype):
    """Post 002's conv net (batch-norm, then dropout 0.3) on the shipped CIFAR-10 sample."""
    config = run_config.default_config("cifar10", "conv_family")
    config.model.update(filters=(8, 16), convs_per_stage=1, num_classes=10)
    config.model.update(arch="batchnorm_dropout", rate=0.3)
    config.update(num_epochs=3, batch_size=32, checkpoint_every_steps=0, log_every_steps=10)
    config.optimizer.learning_rate = 3e-3
    config.compute_dtype = compute_dtype
    return config


def test_bf16_run_trains_on_real_data_and_keeps_float32_state(tmp_path):
    config = _conv_config("bfloat16")
    summary = train.train_and_evaluate(config, tmp_path)
    records = [
        json.loads(line) for line in (tmp_path / run_files.METRICS_FILE).read_text().splitlines()
    ]
    assert records[-1]["train_loss"] < records[0]["train_loss"] - 0.1
    assert records[-1]["train_accuracy"] > 0.2  # 10 balanced classes: chance is 0.1
    assert summary["best_val_accuracy"] > 0.15  # 150 images: chance + 2 standard deviations
    assert summary["compute_dtype"] == "bfloat16"
    saved = json.loads((tmp_path / run_files.CONFIG_FILE).read_text())
    assert saved["compute_dtype"] == "bfloat16"
    _, variables = train.restore_best(config, tmp_path)
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {np.dtype("float32")}


def _dropout_calls(config, compute_dtype, batch, key):
    """(input dtype, dropped mask where the input is non-zero, input non-zero) per Dropout call
    of one training forward pass of `config`'s model in `compute_dtype`, with dropout key `key`."""
    model = models.create_model(config.model)
    variables = model.init({"params": jax.random.key(0)}, batch[:1], train=False)
    calls = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, layers.Dropout) and context.method_name == "__call__":
            x = np.asarray(args[0], np.float32)
            calls.append((args[0].dtype, (np.asarray(out, np.float32) == 0) & (x != 0), x != 0))
        return out

    with nn.intercept_methods(record):
        train_step.apply_in(
            compute_dtype, model.apply, variables, batch, train=True,
            rngs={"dropout": key}, mutable=["batch_stats"],
        )  # fmt: skip
    return calls


def test_bf16_masks_equal_the_float32_masks():
    config = _conv_config("bfloat16")
    batch = jnp.asarray(data.load(config.data).train.x[:16])
    key = jax.random.key(7)
    f32 = _dropout_calls(config, "float32", batch, key)
    bf16 = _dropout_calls(config, "bfloat16", batch, key)
    assert len(f32) == len(bf16) == 2  # one dropout after each stage
    for (dtype32, dropped32, nonzero32), (dtype16, dropped16, nonzero16) in zip(
        f32, bf16, strict=True
    ):
        assert dtype32 == jnp.float32 and dtype16 == jnp.bfloat16
        both = nonzero32 & nonzero16  # where both inputs are non-zero, a zero output is a drop
        assert both.mean() > 0.3 and 0.2 < dropped32[both].mean() < 0.4  # rate 0.3
        np.testing.assert_array_equal(dropped16[both], dropped32[both])
    other = _dropout_calls(config, "bfloat16", batch, jax.random.key(8))
    assert not np.array_equal(other[0][1], bf16[0][1])  # the check can tell masks apart


def test_bf16_gradients_are_float32_and_near_the_float32_gradients():
    config = _conv_config("float32")
    x = data.load(config.data).train
    batch = {"x": jnp.asarray(x.x[:32]), "y": jnp.asarray(x.y[:32])}
    model = models.create_model(config.model)
    tx = optim.create_optimizer(config.optimizer, 10, 1)
    state = train_step.create_train_state(model, tx, jax.random.key(0), batch["x"][:1])
    steps = {}
    for dtype in train_step.COMPUTE_DTYPES:
        step = jax.jit(
            lambda s, b, k, dtype=dtype: train_step.train_step(
                s,
                train_step.zero_train_sums(),
                b,
                k,
                task="classification",
                l1=0.0,
                l2=0.0,
                augment_kwargs=None,
                compute_dtype=dtype,
            )  # fmt: skip
        )
        steps[dtype] = step(state, batch, jax.random.key(1))
    (s32, sums32), (s16, sums16) = steps["float32"], steps["bfloat16"]
    leaves16 = jax.tree.leaves((s16.params, s16.opt_state, s16.batch_stats))
    assert {leaf.dtype for leaf in leaves16 if hasattr(leaf, "dtype")} <= {
        np.dtype("float32"),
        np.dtype("int32"),
    }
    assert float(sums16["loss"]) == pytest.approx(float(sums32["loss"]), rel=0.02)
    update = lambda s: np.concatenate(
        [
            np.ravel(a - b)
            for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(state.params), strict=True)
        ]
    )
    u32, u16 = update(s32), update(s16)
    assert not np.array_equal(u32, u16)  # bf16 really computed something else
    assert np.corrcoef(u32, u16)[0, 1] > 0.9


def test_a_saved_config_without_compute_dtype_ran_in_float32(tmp_path):
    config = _conv_config("float32")
    saved = json.loads(run_config.config_json(config))
    del saved["compute_dtype"]  # a run saved before the field existed
    (tmp_path / run_files.CONFIG_FILE).write_text(json.dumps(saved))
    run_config.check_workdir(config, tmp_path)  # the same run: accepted
    with pytest.raises(ValueError, match="compute_dtype: 'float32' -> 'bfloat16'"):
        run_config.check_workdir(_conv_config("bfloat16"), tmp_path)


def test_an_unknown_compute_dtype_is_refused_naming_the_choices():
    config = _conv_config("float16")
    with pytest.raises(ValueError, match="compute_dtype.*bfloat16"):
        run_config.validate(config)
