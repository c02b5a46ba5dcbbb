"""Runs per core-hour of each study at its cpu scale: this checkout against an older revision.

    python -m dropout_study.runs_per_hour --before=faa855e --out=results/runs_per_hour

For each study both codes train its first run (first trial, seed 0) at the same time, each pinned
to one core as the studies' shards are (results/README.md), the older code with this checkout's
epoch count; rounds swap the cores. A run's seconds are the wall time of its
`python -m dropout_study.study --shard=0/N` process (start-up, compilation, training and the
study's evaluations), so runs per core-hour is 3600 / seconds. Each code runs under the allocator
that the README's two commands give it on a machine without tcmalloc: glibc malloc before (the
older code had no pip-installed allocator), mimalloc after. The older revision is exported with
`git archive`, so this needs a git checkout.
"""

import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import typing

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from absl import app, flags  # noqa: E402

from dropout_study import machine, measure, sweeps, timing_report  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
STUDIES = ("post000", "post001", "post002", "post003", "post004")
ONE_RUN = 10**6  # --shard=0/ONE_RUN keeps the first run of any study

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags; defined on start, not on import (bench shares some names)."""
    flags.DEFINE_string("before", None, "The older git revision to time against.")
    flags.DEFINE_list("studies", list(STUDIES), "Studies to time.")
    flags.DEFINE_integer("rounds", 1, "Rounds per study; each swaps the two cores.")
    flags.DEFINE_string("allocator_before", "system", "DROPOUT_STUDY_ALLOCATOR before.")
    flags.DEFINE_string("allocator_after", "mimalloc", "DROPOUT_STUDY_ALLOCATOR after.")
    flags.DEFINE_string("out", "", "Folder for README.md, runs.json and runs_per_hour.png.")
    flags.mark_flags_as_required(["before"])


def first_run(study):
    """(first sweep's name, first run's trial name, its num_epochs) of `study`'s cpu scale."""
    config = sweeps.load_config_file(REPO / "configs" / "studies" / f"{study}.py", "cpu")
    run = sweeps.runs_of(config)[0]
    return next(iter(config.sweeps)), run.trial.name, run.trial.config.num_epochs


def study_command(study, sweep, num_epochs, workdir):
    """The command that trains `study`'s first cpu-scale run for `num_epochs` epochs."""
    return [
        sys.executable,
        "-m",
        "dropout_study.study",
        f"--config=configs/studies/{study}.py:cpu",
        f"--config.sweeps.{sweep}.base.num_epochs={num_epochs}",
        f"--workdir={workdir}",
        f"--shard=0/{ONE_RUN}",
    ]


def export(revision, folder):
    """The files of git `revision` of this checkout, written to `folder`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision], capture_output=True, check=False
    )
    if archive.returncode:
        raise SystemExit(
            f"--before={revision}: git archive failed ({archive.stderr.decode().strip()}); "
            "name a revision of this git checkout."
        )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)


def epochs_run(workdir):
    """epochs_run of the one summary.json under `workdir` (the run must have finished)."""
    found = sorted(pathlib.Path(workdir).glob("**/summary.json"))
    if len(found) != 1:
        raise RuntimeError(f"expected one finished run under {workdir}, found {len(found)}.")
    return json.loads(found[0].read_text())["epochs_run"]


class Job(typing.NamedTuple):
    """One timed process: a code's checkout, its command and environment, its core, its folders."""

    cwd: pathlib.Path
    command: list[str]
    env: dict
    core: int
    workdir: pathlib.Path
    log: pathlib.Path


def time_pair(jobs):
    """Starts every Job in {name: Job} at once, each on its core; {name: seconds}."""
    started, procs = {}, {}
    with contextlib.ExitStack() as logs:
        for name, job in jobs.items():
            log = logs.enter_context(open(job.log, "w"))  # noqa: SIM115
            started[name] = time.perf_counter()
            procs[name] = subprocess.Popen(
                ["taskset", "-c", str(job.core), *job.command],
                cwd=job.cwd, env=job.env, stdout=log, stderr=log,
            )  # fmt: skip
        seconds = {}
        while procs:
            for name, proc in list(procs.items()):
                if proc.poll() is not None:
                    seconds[name] = time.perf_counter() - started[name]
                    if proc.returncode:
                        for other in procs.values():
                            other.kill()
                        tail = jobs[name].log.read_text().strip().splitlines()[-3:]
                        raise RuntimeError(f"{name} exited {proc.returncode}: " + " / ".join(tail))
                    del procs[name]
            time.sleep(0.2)
    return seconds


def measure_studies(studies, rounds, before_dir, allocators, scratch):
    """One row per study: epochs, median seconds per run before and after, runs per core-hour."""
    rows = []
    for study in studies:
        sweep, trial, num_epochs = first_run(study)
        samples = {"before": [], "after": []}
        epochs = {}
        for r in range(rounds):
            jobs = {}
            for i, (name, cwd) in enumerate((("before", before_dir), ("after", REPO))):
                workdir = scratch / f"{study}_{name}_{r}"
                env = {**os.environ, "DROPOUT_STUDY_ALLOCATOR": allocators[name]}
                env["PYTHONPATH"] = str(cwd)
                command = study_command(study, sweep, num_epochs, workdir)
                log = scratch / f"{study}_{name}_{r}.log"
                jobs[name] = Job(cwd, command, env, (i + r) % 2, workdir, log)
            print(f"{study} round {r + 1}/{rounds}: {trial}, {num_epochs} epochs", flush=True)
            for name, seconds in time_pair(jobs).items():
                samples[name].append(seconds)
                epochs[name] = epochs_run(jobs[name].workdir)
                shutil.rmtree(jobs[name].workdir)
        row = study_row(study, trial, num_epochs, samples, epochs)
        rows.append(row)
        print(f"  before {row['before_s']:.0f} s, after {row['after_s']:.0f} s", flush=True)
    return rows


def study_row(study, trial, num_epochs, samples, epochs):
    """A table row from {'before', 'after': [seconds per run]} and {'before', 'after': epochs}."""
    row = {"study": study, "trial": trial, "num_epochs": num_epochs, "epochs_run": epochs}
    for name, values in samples.items():
        row[f"{name}_s"] = measure.median(values)
        row[f"{name}_runs_per_hour"] = 3600 / row[f"{name}_s"]
        row[f"{name}_samples"] = values
    row["speedup"] = row["before_s"] / row["after_s"]
    return row


def table(rows):
    """Markdown: per study, seconds per run and runs per core-hour before and after."""
    return timing_report.markdown_table(
        ["study", "first run", "epochs", "before (s)", "after (s)", "runs / core-hour before",
         "runs / core-hour after", "after / before"],
        [
            [r["study"], r["trial"], str(r["num_epochs"]), f"{r['before_s']:.0f}",
             f"{r['after_s']:.0f}", f"{r['before_runs_per_hour']:.1f}",
             f"{r['after_runs_per_hour']:.1f}", f"{r['speedup']:.2f}x"]
            for r in rows
        ],
    )  # fmt: skip


def plot(rows, path):
    """Bars of runs per core-hour before and after, per study."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(rows))
    for offset, name in ((-0.2, "before"), (0.2, "after")):
        values = [r[f"{name}_runs_per_hour"] for r in rows]
        ax.bar([x + offset for x in xs], values, width=0.4, label=name)
    ax.set_xticks(list(xs), [r["study"] for r in rows])
    ax.set_ylabel("runs per core-hour")
    ax.set_title("First run of each study at its cpu scale, one core each, same time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv):
    del argv
    allocators = {"before": FLAGS.allocator_before, "after": FLAGS.allocator_after}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = pathlib.Path(tmp)
        before_dir = scratch / "before"
        before_dir.mkdir()
        # Both codes find the data at <checkout>/../shared/data, their default.
        (scratch / "shared").symlink_to(REPO.parent / "shared")
        export(FLAGS.before, before_dir)
        rows = measure_studies(FLAGS.studies, FLAGS.rounds, before_dir, allocators, scratch)
    command = "python -m dropout_study.runs_per_hour " + " ".join(sys.argv[1:])
    text = (
        f"# Runs per core-hour, before ({FLAGS.before}) and after\n\n"
        f"Made by `{command}`. Each study's first cpu-scale run, trained by both codes at "
        "the same time, one core each (the cores swap each round); seconds are whole "
        "`dropout_study.study` processes, medians over rounds. Allocators: "
        f"{allocators['before']} before, {allocators['after']} after.\n\n"
        f"{table(rows)}\n\n![runs per core-hour](runs_per_hour.png)\n\n"
        f"Machine: {machine.summary_line()}\n"
    )
    print(text)
    if FLAGS.out:
        out = pathlib.Path(FLAGS.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(text)
        (out / "runs.json").write_text(json.dumps(rows, indent=1) + "\n")
        plot(rows, out / "runs_per_hour.png")


if __name__ == "__main__":
    define_flags()
    app.run(main)
