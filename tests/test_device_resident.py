"""config.device_resident: the training split uploaded once, each batch gathered on the device.

The batches must be the host pipeline's exactly, so a device-fed run trains bit for bit like a
host-fed one and resumes exactly (the 4-device case is in tests/test_parallel.py).
"""

import json

import jax
import numpy as np
import pytest

from dropout_study import checkpoint, data, parallel, run_config, run_files, train
from dropout_study.data import device_data, pipeline


def _config(**overrides):
    """A small text CNN on 640 reviews of the shipped IMDB sample (10 steps per epoch)."""
    config = run_config.default_config("imdb", "text_cnn")
    config.data.update(source="sample", num_words=3000, maxlen=64, max_train=640, max_eval=256)
    config.model.update(vocab_size=3000, embed_dim=16, num_filters=16, output_rate=0.5)
    config.update(num_epochs=2, batch_size=64, log_every_steps=5, checkpoint_every_steps=4)
    config.optimizer.learning_rate = 1e-2
    config.update_from_flattened_dict(overrides)
    return config


def test_device_resident_batches_equal_the_host_pipeline():
    split = data.load(_config().data).train
    on_device = device_data.put(split, parallel.make_mesh())
    for epoch, start in ((0, 0), (1, 0), (1, 7)):
        host = list(pipeline.batches(split, 64, seed=3, epoch=epoch, start_step=start))
        device = list(device_data.batches(on_device, 64, seed=3, epoch=epoch, start_step=start))
        assert len(device) == len(host) == 10 - start
        for got, want in zip(device, host, strict=True):
            assert isinstance(got["x"], jax.Array)
            np.testing.assert_array_equal(np.asarray(got["x"]), want["x"])
            np.testing.assert_array_equal(np.asarray(got["y"]), want["y"])
    first = next(device_data.batches(on_device, 64, seed=3, epoch=0))["y"]
    other_epoch = next(device_data.batches(on_device, 64, seed=3, epoch=1))["y"]
    assert not np.array_equal(np.asarray(first), np.asarray(other_epoch))  # reshuffled


def test_device_resident_start_step_out_of_range_names_the_range():
    split = data.load(_config().data).train
    on_device = device_data.put(split, parallel.make_mesh())
    with pytest.raises(ValueError, match=r"start_step=11 must lie in \[0, 10\]"):
        next(device_data.batches(on_device, 64, seed=0, epoch=0, start_step=11))


class _Crash(Exception):
    pass


def _records(workdir):
    lines = (workdir / run_files.METRICS_FILE).read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in train.TIME_FIELDS} for line in lines
    ]


def _latest_params(workdir):
    checkpoints = checkpoint.Checkpoints(workdir / run_files.CHECKPOINT_DIR)
    try:
        state = checkpoints.restore(checkpoint.LATEST, None)[0]["state"]
    finally:
        checkpoints.close()
    return jax.tree.leaves(state["params"])


def test_device_resident_run_equals_host_run_and_resumes_exactly(tmp_path, monkeypatch):
    host = train.train_and_evaluate(_config(), tmp_path / "host")
    assert host["device_resident"] is False
    real = device_data.batches

    def crash_in_epoch_2(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs), kwargs["start_step"]):
            if kwargs["epoch"] == 1 and i == 7:  # global step 18: 'latest' holds step 16
                raise _Crash
            yield batch

    monkeypatch.setattr(device_data, "batches", crash_in_epoch_2)
    with pytest.raises(_Crash):
        train.train_and_evaluate(_config(device_resident=True), tmp_path / "device")
    checkpoints = checkpoint.Checkpoints(tmp_path / "device" / run_files.CHECKPOINT_DIR)
    assert checkpoints.steps(checkpoint.LATEST)[-1] == 16
    checkpoints.close()
    monkeypatch.setattr(device_data, "batches", real)
    device = train.train_and_evaluate(_config(device_resident=True), tmp_path / "device")
    assert device["device_resident"] is True
    assert _records(tmp_path / "device") == _records(tmp_path / "host")
    assert device["test"] == host["test"]
    for got, want in zip(
        _latest_params(tmp_path / "device"), _latest_params(tmp_path / "host"), strict=True
    ):
        np.testing.assert_array_equal(got, want)
