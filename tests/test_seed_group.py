"""seeds_per_program: several seeds of a trial trained in one vmapped program (seed_group).

Each seed must keep its one-seed run's files, masks and (to float rounding) metrics, and a group
killed between two seeds' checkpoints must resume to the uninterrupted group's results exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_runs import latest_params, records, text_cnn_config

from dropout_study import checkpoint, layers, masks, run_files, seed_group, train

SEEDS = (0, 1)
# Float32 rounding of the vmapped step against the one-seed step: losses agreed to 1e-7 here.
RTOL = 1e-5


@pytest.mark.parametrize("variant", layers.VARIANTS)
def test_seeds_per_program_masks_are_bit_identical_to_one_seed_runs(variant):
    x = jnp.ones((4, 8, 8, 6))
    keys = jax.random.split(jax.random.key(7), 3)
    layer = layers.Dropout(0.4, variant=variant, block_size=3, sampler=masks.DEFAULT_SAMPLER)

    def drop(key):
        return layer.apply({}, x, deterministic=False, rngs={"dropout": key})

    stacked = jax.jit(jax.vmap(drop))(keys)
    for i, key in enumerate(keys):
        np.testing.assert_array_equal(stacked[i], jax.jit(drop)(key))
    assert not np.array_equal(stacked[0], stacked[1])  # the seeds' masks differ


@pytest.fixture(scope="module")
def group_and_solo(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    configs = [text_cnn_config(seed=s) for s in SEEDS]
    group = seed_group.train_and_evaluate_seeds(configs, [root / f"group{s}" for s in SEEDS])
    solo = [train.train_and_evaluate(c, root / f"solo{c.seed}") for c in configs]
    return root, group, solo


def test_seeds_per_program_trains_each_seed_like_its_one_seed_run(group_and_solo):
    root, group, solo = group_and_solo
    for seed, got, want in zip(SEEDS, group, solo, strict=True):
        workdir = root / f"group{seed}"
        for name in (run_files.CONFIG_FILE, run_files.METRICS_FILE, run_files.SUMMARY_FILE):
            assert (workdir / name).is_file()
        assert list(workdir.glob("events.out.tfevents.*"))
        assert got["seed"] == seed and got["best_epoch"] == want["best_epoch"]
        got_records, want_records = records(workdir), records(root / f"solo{seed}")
        assert [r["step"] for r in got_records] == [10, 20]
        for a, b in zip(got_records, want_records, strict=True):
            assert a == pytest.approx(b, rel=RTOL)
        for which in ("selected", "final"):
            assert got["test"][which] == pytest.approx(want["test"][which], rel=RTOL)
    assert records(root / "group0") != records(root / "group1")  # two seeds, two runs


class _Crash(Exception):
    pass


def test_seeds_per_program_resumes_exactly_after_a_kill_between_two_seeds_saves(
    group_and_solo, tmp_path, monkeypatch
):
    root, group, _ = group_and_solo
    workdirs = [tmp_path / f"seed{s}" for s in SEEDS]
    configs = [text_cnn_config(seed=s) for s in SEEDS]
    real = seed_group._stacked_batches

    def crash_at_step_15(seeds, stack_batch, epoch, offset):
        for i, batch in enumerate(real(seeds, stack_batch, epoch, offset), offset):
            if epoch == 1 and i == 5:
                raise _Crash
            yield batch

    monkeypatch.setattr(seed_group, "_stacked_batches", crash_at_step_15)
    with pytest.raises(_Crash):
        seed_group.train_and_evaluate_seeds(configs, workdirs)
    # As if killed after seed 0 saved step 12 and before seed 1 did: seed 1 is back at step 10.
    ahead = checkpoint.Checkpoints(workdirs[1] / run_files.CHECKPOINT_DIR)
    assert ahead.steps() == [10, 12]
    ahead.close()
    for path in (workdirs[1] / run_files.CHECKPOINT_DIR / checkpoint.LATEST).glob("12"):
        for file in sorted(path.rglob("*"), reverse=True):
            file.unlink() if file.is_file() else file.rmdir()
        path.rmdir()
    monkeypatch.setattr(seed_group, "_stacked_batches", real)
    resumed = seed_group.train_and_evaluate_seeds(configs, workdirs)
    for seed, workdir, got, want in zip(SEEDS, workdirs, resumed, group, strict=True):
        assert records(workdir) == records(root / f"group{seed}")
        assert got["test"] == want["test"]
        for a, b in zip(latest_params(workdir), latest_params(root / f"group{seed}"), strict=True):
            np.testing.assert_array_equal(a, b)


def test_seeds_per_program_refuses_configs_that_differ_beyond_the_seed(tmp_path):
    configs = [text_cnn_config(seed=0), text_cnn_config(seed=1, **{"model.output_rate": 0.2})]
    with pytest.raises(ValueError, match=r"differ in their seed alone.*model\.output_rate"):
        seed_group.train_and_evaluate_seeds(configs, [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists()
