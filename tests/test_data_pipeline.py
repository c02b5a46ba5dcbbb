"""Batching: fixed shapes, determinism per (seed, epoch), exact resume, per-host slices."""

import time

import numpy as np
import pytest

from dropout_study import data
from dropout_study.data import pipeline


@pytest.fixture(scope="module")
def train():
    config = data.default_config("cifar10")  # the shipped sample: 1,500 training images
    config.validation = "test"  # all 1,500 in the training split
    return data.load(config).train


def collect(split, batch_size, **kwargs):
    return [batch for batch in pipeline.batches(split, batch_size, **kwargs)]


def test_fixed_shapes_and_drop_remainder(train):
    assert pipeline.num_batches(train, 128) == 11
    batches = collect(train, 128, seed=0, epoch=0)
    assert len(batches) == 11
    assert all(b["x"].shape == (128, 32, 32, 3) and b["y"].shape == (128,) for b in batches)
    assert all(b["x"].dtype == np.float32 and b["y"].dtype == np.int32 for b in batches)


def test_same_batches_for_same_seed_and_epoch(train):
    first, second = collect(train, 100, seed=7, epoch=2), collect(train, 100, seed=7, epoch=2)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["y"], b["y"])


def test_order_is_fixed_across_numpy_runs():
    """The permutation is numpy's seeded Generator: pinned so a resume on another machine fits."""
    np.testing.assert_array_equal(pipeline.epoch_order(10, 0, 0), [4, 6, 2, 7, 3, 5, 9, 0, 8, 1])


def test_each_epoch_is_a_new_permutation_of_every_example():
    split = data.Split(np.arange(1000), np.arange(1000))
    epochs = [
        np.concatenate([b["x"] for b in collect(split, 100, seed=0, epoch=e)]) for e in (0, 1)
    ]
    for rows in epochs:
        np.testing.assert_array_equal(np.sort(rows), np.arange(1000))
    assert np.mean(epochs[0] == epochs[1]) < 0.01
    other_seed = np.concatenate([b["x"] for b in collect(split, 100, seed=1, epoch=0)])
    assert np.mean(other_seed == epochs[0]) < 0.01


def test_resume_at_any_step_sees_the_same_batches():
    split = data.Split(np.arange(1000) * 2, np.arange(1000))
    full = collect(split, 64, seed=3, epoch=5)
    for start in (0, 1, 7, 15):
        resumed = collect(split, 64, seed=3, epoch=5, start_step=start)
        assert len(resumed) == len(full) - start
        for a, b in zip(full[start:], resumed, strict=True):
            np.testing.assert_array_equal(a["x"], b["x"])


def test_host_slices_make_up_the_global_batch():
    split = data.Split(np.arange(1000), np.arange(1000))
    whole = collect(split, 96, seed=1, epoch=0)
    hosts = [
        collect(split, 96, seed=1, epoch=0, process_index=i, process_count=4) for i in range(4)
    ]
    for step, batch in enumerate(whole):
        parts = [hosts[i][step]["x"] for i in range(4)]
        assert all(p.shape == (24,) for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), batch["x"])


def test_unshuffled_batches_keep_row_order():
    split = data.Split(np.arange(50), np.arange(50))
    rows = np.concatenate([b["x"] for b in collect(split, 16, seed=0, epoch=3, shuffle=False)])
    np.testing.assert_array_equal(rows, np.arange(48))


@pytest.mark.parametrize("process_count", [1, 2])
def test_padded_batches_cover_every_example_once(process_count):
    split = data.Split(np.arange(10, 113), np.arange(103))
    seen = []
    for index in range(process_count):
        for batch in pipeline.padded_batches(
            split, 16, process_index=index, process_count=process_count
        ):
            assert batch["x"].shape == (16 // process_count,) == batch["mask"].shape
            seen.extend(batch["x"][batch["mask"]].tolist())
    assert sorted(seen) == list(range(10, 113))


def test_batches_are_fast(train):
    """Reading an epoch of CIFAR batches costs far less than training on them (a loose bound)."""
    start = time.perf_counter()
    examples = sum(len(b["y"]) for b in pipeline.batches(train, 128, seed=0, epoch=0))
    rate = examples / (time.perf_counter() - start)
    assert rate > 20_000, f"{rate:.0f} examples/s"
