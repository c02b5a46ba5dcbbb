"""The main command: SIGKILL mid-epoch and resume reproduces the uninterrupted run exactly."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from dropout_study import checkpoint, run_files, train

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 10  # 640 training reviews in batches of 64
TINY = [
    "--config=configs/imdb_cnn.py:quick",
    "--config.data.max_train=640",
    "--config.data.max_eval=300",
    "--config.data.num_words=5000",
    "--config.data.maxlen=100",
    "--config.model.vocab_size=5000",
    "--config.model.embed_dim=16",
    "--config.model.num_filters=16",
    "--config.model.output_rate=0.3",
    "--config.num_epochs=3",
    "--config.checkpoint_every_steps=3",
    "--config.log_every_steps=1",
]


def _main(workdir, *flags):
    return subprocess.Popen(
        [sys.executable, "-m", "dropout_study.main", f"--workdir={workdir}", *TINY, *flags],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


def _saved_steps(workdir):
    latest = workdir / run_files.CHECKPOINT_DIR / checkpoint.LATEST
    return sorted(int(p.name) for p in latest.glob("*") if p.name.isdigit())


def _records(workdir):
    lines = (workdir / run_files.METRICS_FILE).read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in train.TIME_FIELDS} for line in lines
    ]


def _final_checkpoint(workdir, which):
    ckpts = checkpoint.Checkpoints(workdir / run_files.CHECKPOINT_DIR)
    state, meta = ckpts.restore(which, None)
    ckpts.close()
    return state, meta


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = _main(reference_dir)
    victim = _main(killed_dir)
    deadline = time.monotonic() + 240
    while not _saved_steps(killed_dir):
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint was written in time"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_dir / run_files.SUMMARY_FILE).exists()
    resumed_from = _saved_steps(killed_dir)[-1]
    assert resumed_from % STEPS_PER_EPOCH, f"step {resumed_from} is not mid-epoch"

    _finish(_main(killed_dir))
    _finish(reference)
    assert _records(killed_dir) == _records(reference_dir)
    assert len(_records(reference_dir)) == 3
    for which in (checkpoint.LATEST, checkpoint.BEST):
        (state, meta), (expected, expected_meta) = (
            _final_checkpoint(killed_dir, which),
            _final_checkpoint(reference_dir, which),
        )
        assert meta["step"] == expected_meta["step"]
        assert jax.tree.structure(state) == jax.tree.structure(expected)
        jax.tree.map(np.testing.assert_array_equal, state, expected)
    recorded = json.loads((killed_dir / "config.json").read_text())
    assert recorded["model"]["output_rate"] == 0.3  # the override reached the run
    summary = json.loads((killed_dir / run_files.SUMMARY_FILE).read_text())
    assert summary["steps"] == 3 * STEPS_PER_EPOCH


def test_typo_in_an_override_fails_naming_it(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dropout_study.main",
            "--config=configs/imdb_cnn.py:quick",
            "--config.model.output_rte=0.3",
            f"--workdir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "output_rte" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing was written
