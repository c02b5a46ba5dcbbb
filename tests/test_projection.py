"""The projected study time: the arithmetic on a known step time, and the command's output."""

import json
import pathlib
import subprocess
import sys

import pytest

from dropout_study import projection, sweeps

REPO = pathlib.Path(__file__).resolve().parents[1]
POST001 = REPO / "configs" / "studies" / "post001.py"


def test_full_post001_runs_cost_the_full_cifar10_minus_its_holdout():
    study = sweeps.load_config_file(POST001, "full")
    cost = projection.run_cost(sweeps.runs_of(study)[0].config())
    # 50,000 training images, 10% held out: 45,000 in 351 whole batches of 128.
    assert cost == projection.RunCost(
        epochs=250, steps_per_epoch=351, batch=128, validation=5000, test=10000
    )


def test_projection_of_full_post001_at_10_ms_a_step():
    study = sweeps.load_config_file(POST001, "full")
    runs, steps, seconds = projection.project(study, step_ms=10.0)
    assert runs == 17 * 3  # 11 configurations and 6 one-block rates, 3 seeds
    assert steps == 51 * 250 * 351
    # Per run: 250 x (351 x 10 ms + 5,000 / 3 x 10 ms / 128) + 2 x 10,000 / 3 x 10 ms / 128.
    assert seconds == pytest.approx(
        51 * (250 * (3.51 + 5000 / 3 * 0.01 / 128) + 20000 / 3 * 0.01 / 128)
    )


def test_projection_command_writes_the_measured_step_and_the_estimate_apart(tmp_path):
    steps = tmp_path / "steps.json"
    row = {"model": "cifar10_vgg", "batch": 128, "step_ms": 10.0, "gflops": 500.0, "fraction": 0.25}
    steps.write_text(
        json.dumps({"allocator": "system", "devices": "1 x NVIDIA H200", "rows": [row]})
    )
    out = tmp_path / "projection.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dropout_study.projection",
            f"--steps_json={steps}",
            f"--study={POST001}:full",
            f"--out={out}",
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    measured, _, projected = out.read_text().splitlines()
    assert measured.startswith("Measured on 1 x NVIDIA H200: cifar10_vgg train step at batch 128")
    assert "12,800 images/s" in measured and "25% of a float32" in measured
    assert projected.startswith("Projected (an estimate")
    assert "51 runs, 4,475,250 train steps, 12.90 h (774 min)" in projected
