"""The training loop on the shipped sample: learning, outputs, NaN stop, keys, batch-norm."""

import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_runs import text_cnn_config

from dropout_study import (
    checkpoint,
    data,
    early_stopping,
    models,
    optim,
    run_config,
    run_files,
    train,
    train_step,
    xla_options,
)
from dropout_study.data import pipeline


def _imdb_config(**overrides):
    """A small text CNN on 1,280 reviews of the shipped IMDB sample (20 steps per epoch)."""
    larger = {
        "data.num_words": 5000,
        "data.maxlen": 100,
        "data.max_train": 1280,
        "data.max_eval": 500,
        "model.vocab_size": 5000,
        "model.embed_dim": 32,
        "model.num_filters": 32,
        "num_epochs": 3,
        "checkpoint_every_steps": 8,
    }
    return text_cnn_config(**{**larger, **overrides})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    config = _imdb_config(**{"regularization.l2": 1e-5})
    summary = train.train_and_evaluate(config, workdir)
    return config, workdir, summary


def test_loss_goes_down_and_accuracy_rises_on_real_data(finished_run):
    _, workdir, _ = finished_run
    records = [
        json.loads(line) for line in (workdir / run_files.METRICS_FILE).read_text().splitlines()
    ]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train_loss"] < records[0]["train_loss"] - 0.15
    assert records[-1]["val_accuracy"] > 0.65  # 500 balanced test reviews: chance is 0.5
    assert all(r["train_penalty"] > 0 for r in records)


def test_run_writes_summary_tensorboard_and_checkpoints(finished_run):
    config, workdir, summary = finished_run
    on_disk = json.loads((workdir / run_files.SUMMARY_FILE).read_text())
    assert on_disk["best_epoch"] == summary["best_epoch"]
    records = [
        json.loads(line) for line in (workdir / run_files.METRICS_FILE).read_text().splitlines()
    ]
    best = max(records, key=lambda r: r["val_accuracy"])
    assert summary["best_val_accuracy"] == best["val_accuracy"]
    assert summary["data"]["source"] == "sample" and summary["data"]["sizes"]["train"] == 1280
    assert summary["times"]["timed_epochs"] == 2  # the first epoch is not timed
    assert summary["times"]["compile_s"] > 0 and records[1]["compile_s"] == 0.0
    assert summary["times"]["xla_options"] == xla_options.active() != "XLA default"
    assert list(workdir.glob("events.out.tfevents.*"))
    ckpts = checkpoint.Checkpoints(workdir / run_files.CHECKPOINT_DIR)
    assert ckpts.steps(checkpoint.LATEST)[-1] == 60
    assert ckpts.steps(checkpoint.BEST) == [best["step"]]
    ckpts.close()
    assert json.loads((workdir / run_files.CONFIG_FILE).read_text())["seed"] == config.seed


def test_best_checkpoint_reproduces_the_best_validation_accuracy(finished_run):
    config, workdir, summary = finished_run
    model, variables = train.restore_best(config, workdir)
    dataset = data.load(config.data)
    logits = model.apply(variables, jnp.asarray(dataset.validation.x), train=False)
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == dataset.validation.y))
    assert accuracy == pytest.approx(summary["best_val_accuracy"], abs=1e-6)


def test_finished_run_is_not_trained_again(finished_run):
    config, workdir, summary = finished_run
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    again = train.train_and_evaluate(config, workdir)
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before
    assert again == json.loads(json.dumps(summary))


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    config = _imdb_config(
        **{"optimizer.name": "sgd", "optimizer.learning_rate": 1e12, "optimizer.momentum": 0.0}
    )
    config.update(log_every_steps=1, checkpoint_every_steps=1)
    with pytest.raises(FloatingPointError, match=r"NaN or Inf at step (\d+)") as error:
        train.train_and_evaluate(config, tmp_path)
    bad_step = int(re.search(r"step (\d+)", str(error.value)).group(1))
    ckpts = checkpoint.Checkpoints(tmp_path / run_files.CHECKPOINT_DIR)
    kept = ckpts.steps(checkpoint.LATEST)
    assert bad_step >= 2 and kept[-1] == bad_step - 1
    assert str(tmp_path / run_files.CHECKPOINT_DIR / "latest" / str(kept[-1])) in str(error.value)
    state, _ = ckpts.restore(checkpoint.LATEST, None)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state["state"]["params"]))
    ckpts.close()


def test_early_stopping_after_patience(tmp_path):
    # A learning rate of 1e-12 leaves the predictions unchanged, so accuracy never improves.
    config = _imdb_config(**{"optimizer.learning_rate": 1e-12, "early_stopping.patience": 1})
    summary = train.train_and_evaluate(config, tmp_path)
    assert summary["epochs_run"] == 2 and summary["stopped_early"]
    assert summary["best_epoch"] == 1


@pytest.mark.parametrize(
    "monitor, values, best_epoch, stop_after",
    [("val_accuracy", [0.5, 0.7, 0.69, 0.7], 2, 4), ("val_loss", [1.0, 0.8, 0.9, 0.85], 2, 4)],
)
def test_update_best(monitor, values, best_epoch, stop_after):
    progress = early_stopping.Progress()
    for epoch, value in enumerate(values, 1):
        progress, _, stop = early_stopping.update_best(
            progress, {"epoch": epoch, "step": epoch, monitor: value},
            monitor=monitor, min_delta=0.0, patience=2,
        )  # fmt: skip
        assert stop == (epoch >= stop_after) == progress.stopped_early
    assert progress.best["epoch"] == best_epoch


@pytest.fixture(scope="module")
def conv_setup():
    """A tiny batch-norm + dropout conv net, its state, a real CIFAR-10 sample batch, a jit step."""
    config = run_config.default_config("cifar10", "conv_family")
    config.model.update(filters=(4, 8), convs_per_stage=1, num_classes=10, arch="batchnorm_dropout")
    config.model.rate = 0.5
    dataset = data.load(config.data)
    model = models.create_model(config.model)
    tx = optim.create_optimizer(config.optimizer, 10, 1)
    state = train_step.create_train_state(model, tx, jax.random.key(0), dataset.train.x[:1])
    batch = next(pipeline.batches(dataset.train, 16, seed=0, epoch=0))
    augment_kwargs = {"crop_pad": 4, "flip": True, "cutout": 0}
    step = jax.jit(
        functools.partial(
            train_step.train_step,
            task="classification",
            l1=0.0,
            l2=0.0,
            augment_kwargs=augment_kwargs,
            compute_dtype="float32",
        )
    )
    return model, state, batch, step


def test_dropout_and_augmentation_keys_change_with_the_step_only(conv_setup):
    _, state, batch, step = conv_setup
    key = jax.random.key(1)
    sums = train_step.zero_train_sums()
    first, _ = step(state, sums, batch, key)
    again, _ = step(state, sums, batch, key)
    later, _ = step(state.replace(step=state.step + 1), sums, batch, key)
    jax.tree.map(np.testing.assert_array_equal, first.params, again.params)
    change = lambda s: s.params["Dense_0"]["kernel"] - state.params["Dense_0"]["kernel"]
    assert not np.allclose(change(first), change(later))


def test_batch_norm_statistics_move_in_training_only(conv_setup):
    model, state, batch, step = conv_setup
    new_state, sums = step(state, train_step.zero_train_sums(), batch, jax.random.key(0))
    moved = jax.tree.map(
        lambda a, b: bool(np.any(a != b)), state.batch_stats, new_state.batch_stats
    )
    assert all(jax.tree.leaves(moved))
    assert int(new_state.step) == 1 and float(sums["count"]) == 16
    # Evaluation (train=False) uses the running statistics, drops no units and changes nothing.
    variables = {"params": new_state.params, "batch_stats": new_state.batch_stats}
    out1, updates = model.apply(variables, batch["x"], train=False, mutable=["batch_stats"])
    out2 = model.apply(variables, batch["x"], train=False)
    np.testing.assert_array_equal(out1, out2)
    jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], new_state.batch_stats)


def test_per_example_losses():
    logits = jnp.array([[2.0, 0.0], [0.0, 3.0]])
    loss, correct = train_step.per_example("classification", logits, jnp.array([0, 0]))
    np.testing.assert_allclose(loss, [np.log1p(np.exp(-2.0)), np.log1p(np.exp(3.0))], rtol=1e-6)
    np.testing.assert_array_equal(correct, [1.0, 0.0])
    _, correct = train_step.per_example(
        "classification", jnp.array([[0.5], [-1.0]]), jnp.array([1, 1])
    )
    np.testing.assert_array_equal(correct, [1.0, 0.0])
    images = jnp.zeros((2, 4, 4, 3))
    mse, _ = train_step.per_example("denoise", images + 0.1, images)
    np.testing.assert_allclose(mse, [0.01, 0.01], rtol=1e-5)
    assert train_step.psnr(0.01) == pytest.approx(data.denoise.psnr(np.full(3, 0.1), np.zeros(3)))


def test_test_split_is_scored_at_the_validation_selected_checkpoint(finished_run):
    config, workdir, summary = finished_run
    sizes = summary["data"]["sizes"]
    assert summary["data"]["validation"] == "holdout" and sizes["test"] == 1000
    assert summary["test"]["selected"]["epoch"] == summary["best_epoch"]
    assert summary["test"]["final"]["epoch"] == summary["epochs_run"]
    model, variables = train.restore_best(config, workdir)
    test = data.load(config.data).test
    logits = model.apply(variables, jnp.asarray(test.x), train=False)
    accuracy = float(jnp.mean(train_step.per_example(config.task, logits, test.y)[1]))
    assert summary["test"]["selected"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_test_every_epoch_records_the_posts_protocol_without_changing_selection(tmp_path):
    config = _imdb_config(num_epochs=2, test_every_epoch=True)
    summary = train.train_and_evaluate(config, tmp_path)
    lines = (tmp_path / run_files.METRICS_FILE).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(0.0 < r["test_accuracy"] < 1.0 for r in records)
    assert summary["best_epoch"] == max(records, key=lambda r: r["val_accuracy"])["epoch"]


@pytest.mark.parametrize("learning_rate", [7e10, 1e6])
def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path, learning_rate):
    """Per-step losses stay finite (about 1e35 and 1e20 here): the epoch means give it away."""
    config = _imdb_config(num_epochs=2, **{"optimizer.learning_rate": learning_rate})
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 1 \(train loss \d") as err:
        train.train_and_evaluate(config, tmp_path)
    kept = checkpoint.Checkpoints(tmp_path / run_files.CHECKPOINT_DIR)
    assert str(tmp_path / "checkpoints" / "latest" / str(kept.steps()[-1])) in str(err.value)
    kept.close()
    assert not (tmp_path / run_files.SUMMARY_FILE).exists()
    assert (tmp_path / run_files.METRICS_FILE).read_text() == ""


def test_a_run_shows_a_progress_bar_and_logs_each_epoch_once(tmp_path, capsys, caplog):
    caplog.set_level("INFO")
    train.train_and_evaluate(_imdb_config(num_epochs=2), tmp_path)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "step/s" in err  # tqdm's bar on stderr
    lines = [r.getMessage() for r in caplog.records if "train_loss" in r.getMessage()]
    assert len(lines) == 2, lines  # one line per epoch (clu's logging writer printed another)
