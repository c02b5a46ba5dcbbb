"""Checkpoints: exact round trip, how many are kept, interrupted saves, corrupt-file errors."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import checkpoint


def _state(value):
    return {
        "params": {"kernel": jnp.full((3, 2), value, jnp.float32)},
        "step": jnp.array(int(value), jnp.int32),
        "bits": jax.random.normal(jax.random.key(int(value)), (5,)),
    }


def test_round_trip_is_exact_and_keeps_two_latest(tmp_path):
    ckpts = checkpoint.Checkpoints(tmp_path)
    for step in (1, 2, 3):
        ckpts.save(checkpoint.LATEST, step, _state(step), {"step": step, "history": [{"a": 0.1}]})
    assert ckpts.steps(checkpoint.LATEST) == [2, 3]
    state, meta = ckpts.restore(checkpoint.LATEST, _state(0))
    jax.tree.map(np.testing.assert_array_equal, state, _state(3))
    assert meta == {"step": 3, "history": [{"a": 0.1}]}
    ckpts.close()


def test_best_keeps_one_and_restores_without_a_template(tmp_path):
    ckpts = checkpoint.Checkpoints(tmp_path)
    ckpts.save(checkpoint.BEST, 4, _state(4), {"step": 4})
    ckpts.save(checkpoint.BEST, 9, _state(9), {"step": 9})
    assert ckpts.steps(checkpoint.BEST) == [9]
    state, meta = ckpts.restore(checkpoint.BEST, None)
    np.testing.assert_array_equal(state["params"]["kernel"], np.full((3, 2), 9.0))
    assert meta["step"] == 9
    ckpts.close()


def test_saving_an_existing_step_keeps_the_first(tmp_path):
    ckpts = checkpoint.Checkpoints(tmp_path)
    ckpts.save(checkpoint.LATEST, 5, _state(5), {"step": 5})
    ckpts.save(checkpoint.LATEST, 5, _state(7), {"step": 5})
    state, _ = ckpts.restore(checkpoint.LATEST, _state(0))
    np.testing.assert_array_equal(state["params"]["kernel"], np.full((3, 2), 5.0))
    ckpts.close()


def test_empty_directory_restores_nothing(tmp_path):
    ckpts = checkpoint.Checkpoints(tmp_path)
    assert ckpts.restore(checkpoint.LATEST, _state(0)) is None
    ckpts.close()


def test_interrupted_save_is_ignored(tmp_path):
    ckpts = checkpoint.Checkpoints(tmp_path)
    ckpts.save(checkpoint.LATEST, 3, _state(3), {"step": 3})
    ckpts.close()
    # What a process killed while writing step 6 leaves: a temporary directory, never renamed.
    leftover = tmp_path / checkpoint.LATEST / "6.orbax-checkpoint-tmp"
    (leftover / "state").mkdir(parents=True)
    ckpts = checkpoint.Checkpoints(tmp_path)
    assert ckpts.steps(checkpoint.LATEST) == [3]
    _, meta = ckpts.restore(checkpoint.LATEST, _state(0))
    assert meta["step"] == 3
    ckpts.save(checkpoint.LATEST, 6, _state(6), {"step": 6})  # the resumed run saves step 6 again
    assert ckpts.steps(checkpoint.LATEST) == [3, 6]
    ckpts.close()
    assert not leftover.exists()


def _corrupt(step_dir):
    for path in pathlib.Path(step_dir, "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(b"\0garbage")


def test_corrupt_checkpoint_names_directory_and_fix(tmp_path):
    ckpts = checkpoint.Checkpoints(tmp_path)
    ckpts.save(checkpoint.LATEST, 2, _state(2), {"step": 2})
    ckpts.save(checkpoint.LATEST, 4, _state(4), {"step": 4})
    _corrupt(tmp_path / checkpoint.LATEST / "4")
    bad = tmp_path / checkpoint.LATEST / "4"
    with pytest.raises(checkpoint.CheckpointError, match="corrupt") as error:
        ckpts.restore(checkpoint.LATEST, _state(0))
    assert f"delete {bad} to resume from step 2" in str(error.value)
    assert "--workdir" in str(error.value)
    ckpts.close()


def test_missing_meta_is_reported_as_corrupt(tmp_path):
    ckpts = checkpoint.Checkpoints(tmp_path)
    ckpts.save(checkpoint.LATEST, 1, _state(1), {"step": 1})
    for path in (tmp_path / checkpoint.LATEST / "1" / "meta").iterdir():
        path.unlink()
    with pytest.raises(checkpoint.CheckpointError, match="start the run afresh"):
        ckpts.restore(checkpoint.LATEST, _state(0))
    ckpts.close()
