"""The benchmark's FLOP counts, checked against counts written out by hand for the posts' nets."""

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import allocator, bench, measure, models
from dropout_study.models.text import LSTMClassifier, TextCNN
from dropout_study.models.vgg import VGG


def _config(name, **fields):
    config = models.default_config(name)
    config.update(fields)
    return config


def test_vgg_flops_follow_the_post_001_layer_shapes():
    # (output size, in channels, out channels) of the six 3x3 convs: SAME, VALID, pool, ...
    convs = [(32, 3, 64), (30, 64, 64), (15, 64, 128), (13, 128, 128), (6, 128, 256), (4, 256, 256)]
    macs = sum(size * size * 9 * c_in * c_out for size, c_in, c_out in convs)
    macs += 2 * 2 * 256 * 512 + 512 * 512 + 512 * 10
    config = _config("vgg", filters=(64, 128, 256), ndense=512)
    assert bench.forward_flops(config, (128, 32, 32, 3)) == 2 * 128 * macs


def test_lstm_flops_count_input_and_recurrent_projections_every_step():
    config = _config("lstm", embed_dim=128, hidden_dim=128)
    per_step = 4 * 128 * 128 + 4 * 128 * 128  # x @ W and h @ U for the four gates
    assert bench.forward_flops(config, (64, 200)) == 2 * 64 * (200 * per_step + 128 * 2)


def test_text_cnn_flops_use_valid_positions_of_each_width():
    config = _config("text_cnn", embed_dim=128, num_filters=128, kernel_sizes=(3, 5))
    macs = 198 * 3 * 128 * 128 + 196 * 5 * 128 * 128 + 2 * 128 * 2
    assert bench.forward_flops(config, (64, 200)) == 2 * 64 * macs


def test_unknown_model_is_refused_by_name():
    with pytest.raises(ValueError, match="'mlp'"):
        bench.forward_flops(_config("mlp"), (8, 784))


def test_allocator_comparison_takes_medians_over_rounds_and_ratios_to_glibc(monkeypatch):
    step_ms = {"system": iter([300.0, 100.0, 200.0]), "tcmalloc": iter([50.0, 150.0, 100.0])}

    def worker(argv, env, check, cwd):
        name = env[allocator.ENV]
        out = next(a for a in argv if a.startswith("--steps_json=")).split("=", 1)[1]
        rows = [{"model": "imdb_rnn", "step_ms": next(step_ms[name])}]
        pathlib.Path(out).write_text(json.dumps({"allocator": name, "rows": rows}))

    monkeypatch.setattr(measure.subprocess, "run", worker)
    monkeypatch.setitem(allocator.PATHS, "tcmalloc", lambda: "/lib/libtcmalloc.so")
    monkeypatch.setitem(allocator.PATHS, "mimalloc", lambda: None)
    rows, missing = bench.allocator_rows(
        ["imdb_rnn"], 3, ["system", "tcmalloc", "mimalloc"], rounds=3
    )
    by_name = {r["allocator"]: r for r in rows}
    assert by_name["system"]["step_ms"] == 200.0 and by_name["tcmalloc"]["step_ms"] == 100.0
    assert by_name["tcmalloc"]["speedup"] == 2.0 and by_name["system"]["speedup"] == 1.0
    assert "pip install cmeel-mimalloc" in missing["mimalloc"]
    table = bench.allocator_table(rows, missing)
    assert "| imdb_rnn | tcmalloc | 100.0 | 2.00x |" in table and "mimalloc: not timed" in table


def test_pytorch_comparison_interleaves_rounds_on_the_real_batches(monkeypatch, tmp_path):
    ours = iter([30.0, 20.0, 40.0])  # this project's step, per round
    theirs = iter([[15.0, 99.0, 15.0], [40.0], [20.0]])  # PyTorch's repeats, per round
    order = []

    def fake_run(argv, env, check, cwd=None):
        if argv[0] == "torch-python":  # the twin worker: BATCHES OUT REPEATS MODEL...
            batches = dict(np.load(argv[2]))
            assert batches["imdb_cnn_x"].shape == (64, 200) and batches["imdb_cnn_y"].shape == (64,)
            assert argv[4:] == ["3", "imdb_cnn"]
            result = {"params": 2_565_250, "step_ms": next(theirs)}
            pathlib.Path(argv[3]).write_text(
                json.dumps({"torch": "9.9", "models": {"imdb_cnn": result}})
            )
            order.append("torch")
            return
        out = next(a for a in argv if a.startswith("--steps_json=")).split("=", 1)[1]
        rows = [{"model": "imdb_cnn", "step_ms": next(ours)}]
        pathlib.Path(out).write_text(json.dumps({"allocator": env[allocator.ENV], "rows": rows}))
        order.append("ours")

    monkeypatch.setattr(measure.subprocess, "run", fake_run)
    (row,), version = bench.peer_rows(["imdb_cnn"], 3, 3, "torch-python", script="peers.py")
    assert order == ["ours", "torch"] * 3 and version == "9.9"
    assert row["batch"] == 64 and row["ours_ms"] == 30.0 and row["torch_ms"] == 20.0
    # Per round 30/15, 20/40, 40/20: the median ratio is 2, not the ratio of the medians (1.5).
    assert row["ratio"] == 2.0
    table = bench.peer_table([row], version, 3)
    assert "| imdb_cnn | 64 | 30.0 | 20.0 | 2.00 |" in table


def test_pytorch_twins_have_the_models_parameter_counts():
    torch_peers = pytest.importorskip("dropout_study.torch_peers")  # needs the [bench] extra

    def count(module, x):
        variables = module.init(jax.random.key(0), x, train=False)
        return sum(v.size for v in jax.tree.leaves(variables["params"]))

    tokens = jnp.ones((2, 200), jnp.int32)
    assert sum(p.numel() for p in torch_peers.VGG().parameters()) == count(
        VGG(), jnp.zeros((2, 32, 32, 3))
    )
    assert sum(p.numel() for p in torch_peers.TextCNN().parameters()) == count(TextCNN(), tokens)
    lstm_extra_bias = 4 * 128  # torch's LSTM keeps b_ih and b_hh
    assert (
        sum(p.numel() for p in torch_peers.LSTMClassifier().parameters())
        == count(LSTMClassifier(), tokens) + lstm_extra_bias
    )


def test_paired_rows_time_the_project_step_against_a_baseline_step():
    class FakeBench:
        config = type("Config", (), {"model": "model"})

        def step(self, model, mode):
            assert (model, mode) == ("model", "full")
            return lambda: time.sleep(0.01)

    rows = bench.paired_rows(
        [{"model": "m", "bench": FakeBench()}], 3, lambda b: lambda: time.sleep(0.02)
    )
    (row,) = rows
    assert row["base_ms"] > row["project_ms"] >= 10
    assert 0.3 < row["ratio"] < 0.8
    table = bench.paired_table(rows, "plain Flax", "Against plain Flax")
    assert "| m | " in table and "this project / plain Flax" in table
