"""config.device_resident: the training split uploaded once, each batch gathered on the device.

The batches must be the host pipeline's exactly, so a device-fed run trains bit for bit like a
host-fed one and resumes exactly (the 4-device case is in tests/test_parallel.py).
"""

import jax
import numpy as np
import pytest
from tiny_runs import latest_params, records, text_cnn_config

from dropout_study import checkpoint, data, parallel, run_files, train
from dropout_study.data import device_data, pipeline


def test_device_resident_batches_equal_the_host_pipeline():
    split = data.load(text_cnn_config().data).train
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
    split = data.load(text_cnn_config().data).train
    on_device = device_data.put(split, parallel.make_mesh())
    with pytest.raises(ValueError, match=r"start_step=11 must lie in \[0, 10\]"):
        next(device_data.batches(on_device, 64, seed=0, epoch=0, start_step=11))


class _Crash(Exception):
    pass


def test_device_resident_run_equals_host_run_and_resumes_exactly(tmp_path, monkeypatch):
    host = train.train_and_evaluate(text_cnn_config(), tmp_path / "host")
    assert host["device_resident"] is False
    real = device_data.batches

    def crash_in_epoch_2(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs), kwargs["start_step"]):
            if kwargs["epoch"] == 1 and i == 7:  # global step 18: 'latest' holds step 16
                raise _Crash
            yield batch

    monkeypatch.setattr(device_data, "batches", crash_in_epoch_2)
    with pytest.raises(_Crash):
        train.train_and_evaluate(text_cnn_config(device_resident=True), tmp_path / "device")
    checkpoints = checkpoint.Checkpoints(tmp_path / "device" / run_files.CHECKPOINT_DIR)
    assert checkpoints.steps(checkpoint.LATEST)[-1] == 16
    checkpoints.close()
    monkeypatch.setattr(device_data, "batches", real)
    device = train.train_and_evaluate(text_cnn_config(device_resident=True), tmp_path / "device")
    assert device["device_resident"] is True
    assert records(tmp_path / "device") == records(tmp_path / "host")
    assert device["test"] == host["test"]
    for got, want in zip(
        latest_params(tmp_path / "device"), latest_params(tmp_path / "host"), strict=True
    ):
        np.testing.assert_array_equal(got, want)
