"""runs_per_hour: the epoch override reaches each study's first run, and the table's ratios."""

import os
import sys

import pytest

from dropout_study import runs_per_hour, sweeps


@pytest.mark.parametrize("study", runs_per_hour.STUDIES)
def test_the_epoch_override_sets_the_first_runs_epochs(study):
    sweep, trial, num_epochs = runs_per_hour.first_run(study)
    command = runs_per_hour.study_command(study, sweep, 3, "WORKDIR")
    (override,) = [a for a in command if a.startswith("--config.sweeps.")]
    path, value = override.removeprefix("--config.").split("=")
    config = sweeps.load_config_file(
        runs_per_hour.REPO / "configs" / "studies" / f"{study}.py", "cpu"
    )
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[leaf] = int(value)
    run = sweeps.runs_of(config)[0]
    assert (run.trial.name, run.trial.config.num_epochs) == (trial, 3)
    assert num_epochs > 3 and f"--shard=0/{runs_per_hour.ONE_RUN}" in command


def test_a_row_gives_runs_per_core_hour_and_the_speedup_from_medians():
    samples = {"before": [200.0, 180.0, 190.0], "after": [100.0, 120.0, 110.0]}
    epochs = {"before": 20, "after": 20}
    row = runs_per_hour.study_row("post000", "cnn-keep0.1", 20, samples, epochs)
    assert (row["before_s"], row["after_s"]) == (190.0, 110.0)
    assert row["before_runs_per_hour"] == pytest.approx(3600 / 190)
    assert row["speedup"] == pytest.approx(190 / 110)
    line = runs_per_hour.table([row]).splitlines()[-1]
    assert [c.strip() for c in line.strip("|").split("|")] == [
        "post000", "cnn-keep0.1", "20", "190", "110", "18.9", "32.7", "1.73x"
    ]  # fmt: skip


def test_time_pair_times_both_jobs_and_names_the_one_that_failed(tmp_path):
    def job(name, code):
        command = [sys.executable, "-c", code]
        return runs_per_hour.Job(tmp_path, command, dict(os.environ), 0, tmp_path, tmp_path / name)

    slow = "import time; time.sleep(0.5)"
    seconds = runs_per_hour.time_pair({"before": job("b.log", slow), "after": job("a.log", "")})
    assert seconds["before"] >= 0.5 > seconds["after"] > 0
    failing = "import sys; print('no data here'); sys.exit(3)"
    jobs = {"before": job("b.log", slow), "after": job("a.log", failing)}
    with pytest.raises(RuntimeError, match="after exited 3: no data here"):
        runs_per_hour.time_pair(jobs)
