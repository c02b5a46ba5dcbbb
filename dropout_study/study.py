"""Runs a study: every (trial, seed) of a study config (`dropout_study.sweeps`), one by one.

Each run goes through `train.train_and_evaluate` in `WORKDIR/<study>/<trial>/seed_<k>/`
(`dropout_study.run_files`), or, with the study's `seeds_per_program` > 1, together with the other
seeds of its group through `seed_group.train_and_evaluate_seeds`. A run whose `summary.json`
exists is skipped, a partial one resumes from its checkpoint (the training library resumes by
default), and a crash is written to `failed.json` there while the other runs go on. Evaluations
after training (MC dropout, saved examples) run from the best checkpoint and are skipped once
their output exists.
`--shard=i/n` runs every n-th group of runs (seed-major order; a group is one run unless
`seeds_per_program` > 1), so shards need no coordinator.
A trial that shares an earlier trial's runs (`same_as` in study.json) is not run again. The
seeds are fixed before the first run: a workdir started with other seeds refuses to run (no
seeds added after results exist).

    python -m dropout_study.study --config=configs/studies/post000.py:cpu --workdir=DIR
"""

import datetime
import json
import logging as std_logging
import math
import os
import platform
import re
import sys
import time
import traceback

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from dropout_study import (
    allocator,
    machine,
    mc_dropout,
    parallel,
    run_config,
    run_files,
    sweeps,
    xla_options,
)
from dropout_study.run_files import DONE, FAILED_STATUS, SKIPPED


def parse_shard(text):
    """'i/n' -> (i, n) with 0 <= i < n."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"--shard={text!r} must be 'i/n' with 0 <= i < n, e.g. '0/4'.")
    return int(match[1]), int(match[2])


def shard(runs, index, count):
    """Every `count`-th run starting at `index`: shards partition the runs without overlap."""
    return list(runs)[index::count]


def _config_dict(config):
    return json.loads(config.to_json())


def environment():
    """Package versions and the machine, recorded with the results."""
    packages = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "ml-collections")
    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "packages": machine.versions(packages),
        "system": f"{platform.system()} {platform.machine()}",
        "cpu": machine.cpu_model(),
        "cpu_count": os.cpu_count(),
        "devices": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})",
        "allocator": allocator.active(),
        "xla_options": xla_options.active(),
    }


def manifest(study, trials, command=""):
    """What the report needs to read a study back: trials, parameters, configs, environment."""
    return {
        "name": study.name,
        "scale": study.get("scale", ""),
        "notes": study.get("notes", ""),
        "seeds": list(study.seeds),
        "seeds_per_program": study.get("seeds_per_program", 1),
        "command": command,
        "environment": environment(),
        "references": sweeps.references(study, trials),
        "trials": [
            {
                "name": t.name,
                "params": t.params(),
                "evals": t.evals,
                "config": _config_dict(t.config),
                "same_as": t.same_as,
            }
            for t in trials
        ],
    }


def write_manifest(study_dir, new):
    """Writes `study.json`; refuses when a trial of the same name has a different config."""
    path = run_files.path(study_dir) / run_files.MANIFEST
    old = run_files.read_json(path)
    if old is not None:
        old_configs = {t["name"]: t["config"] for t in old["trials"]}
        for t in new["trials"]:
            before = old_configs.get(t["name"], t["config"])
            changes = run_config.config_changes(before, t["config"])
            if changes:
                sections = sorted({k.split(".")[0] for k in changes})
                raise ValueError(
                    f"{path} records trial {t['name']!r} with a different config (fields under "
                    f"{sections} differ); results of two configs would mix. Use a new --workdir "
                    "(or restore the old config)."
                )
        if sorted(old["seeds"]) != sorted(new["seeds"]):
            raise ValueError(
                f"{path} was started with seeds {sorted(old['seeds'])}; this config has "
                f"{sorted(new['seeds'])}. Seeds are fixed before the runs (adding seeds after "
                "seeing results biases the verdicts): run the planned seeds, or use a new "
                "--workdir for a new plan."
            )
    run_files.write_json(path, new)


def record_failure(run_dir, stage, error):
    """Writes the error and its traceback to `failed.json` in the run's directory."""
    run_files.write_json(
        run_files.path(run_dir) / run_files.FAILED,
        {
            "stage": stage,
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _save(path, result):
    """Writes an evaluation's result: JSON for `.json`, numpy arrays for `.npz` (atomically)."""
    if path.suffix == ".json":
        run_files.write_json(path, result)
        return
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    with tmp.open("wb") as f:
        np.savez_compressed(f, **result)
    tmp.replace(path)


def run_one(run, run_dir, train_fn, eval_fns, primary=True):
    """Trains (or skips) one run, then its evaluations after training; returns its status.

    `eval_fns`: run_files.EVAL_OUTPUTS field -> fn(config, workdir, value) -> result to save.
    Only the `primary` process (JAX process 0, as in training) writes files.
    """
    run_dir = run_files.path(run_dir)
    summary = run_dir / run_files.SUMMARY_FILE
    status = SKIPPED
    stage = "train"
    try:
        if not summary.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            train_fn(run.config(), str(run_dir))
            if primary and not summary.exists():
                raise RuntimeError(f"training returned without writing {summary}.")
            status = DONE
        for field, value in run.trial.evals.items():
            output = run_dir / run_files.EVAL_OUTPUTS[field]
            if not output.exists():
                stage = field
                result = eval_fns[field](run.config(), str(run_dir), value)
                if primary:
                    _save(output, result)
                status = DONE
    except Exception as e:  # one crashing run must not stop the study
        logging.exception("%s failed in %s", run.name, stage)
        if primary:
            record_failure(run_dir, stage, e)
        return FAILED_STATUS
    if primary:
        (run_dir / run_files.FAILED).unlink(missing_ok=True)
    return status


def train_group(group, study_dir, group_fn, primary=True):
    """Trains a group's unfinished runs in one program (`group_fn`, seed_group's by default);
    returns {run name: DONE or FAILED_STATUS}, empty when fewer than two runs are left to train
    (a lone run trains by itself in `run_one`). A failed run's error goes to its failed.json."""
    dirs = {run.name: run_files.path(run.directory(study_dir)) for run in group}
    pending = [run for run in group if not (dirs[run.name] / run_files.SUMMARY_FILE).exists()]
    if len(pending) < 2:
        return {}
    for run in pending:
        dirs[run.name].mkdir(parents=True, exist_ok=True)
    try:
        results = group_fn([run.config() for run in pending], [str(dirs[r.name]) for r in pending])
    except Exception as e:  # the group could not start: each of its runs fails with that error
        logging.exception("the group of %s failed", [run.name for run in pending])
        results = [e] * len(pending)
    statuses = {}
    for run, result in zip(pending, results, strict=True):
        failed = isinstance(result, Exception)
        if failed and primary:
            record_failure(dirs[run.name], "train", result)
        statuses[run.name] = FAILED_STATUS if failed else DONE
    return statuses


def run_study(
    study,
    workdir,
    shard_index=0,
    shard_count=1,
    train_fn=None,
    eval_fns=None,
    command="",
    group_fn=None,
):
    """Runs this shard's runs of `study` under `workdir`; returns {status: count}.

    `train_fn(config, workdir)` defaults to `train.train_and_evaluate`, `group_fn(configs,
    workdirs)` (for `seeds_per_program` > 1) to `seed_group.train_and_evaluate_seeds` and
    `eval_fns` to {"mc_samples": mc_dropout.evaluate_mc, "examples": denoise_examples}; tests
    pass stand-ins. Shards split the groups of `sweeps.groups_of`. `command` is recorded in the
    manifest, so results say how they were made. A study spread over several JAX processes
    (unsharded) needs a workdir that every process sees.
    """
    groups = shard(sweeps.groups_of(study), shard_index, shard_count)
    run_files.check_reachable(workdir)
    study_dir = run_files.path(workdir) / study.name
    primary = jax.process_index() == 0
    if primary:
        write_manifest(study_dir, manifest(study, sweeps.expand(study), command))
    if train_fn is None or group_fn is None:
        # imported on use: they load TensorFlow (slow)
        from dropout_study import seed_group, train

        train_fn = train_fn or train.train_and_evaluate
        group_fn = group_fn or seed_group.train_and_evaluate_seeds
    eval_fns = eval_fns or {"mc_samples": mc_dropout.evaluate_mc, "examples": denoise_examples}
    counts = {DONE: 0, SKIPPED: 0, FAILED_STATUS: 0}
    started, trained_seconds = time.monotonic(), 0.0
    total, k = sum(len(group) for group in groups), 0
    for group in groups:
        t0 = time.monotonic()
        grouped = train_group(group, study_dir, group_fn, primary) if len(group) > 1 else {}
        if grouped:
            logging.info("%d seeds in one program: %.0f s", len(grouped), time.monotonic() - t0)
        if DONE in grouped.values():
            trained_seconds += time.monotonic() - t0
        for run in group:
            k += 1
            logging.info("[%d/%d] %s", k, total, run.name)
            t1 = time.monotonic()
            status = grouped.get(run.name)
            if status != FAILED_STATUS:  # a failed group member is not retrained alone
                alone = run_one(run, run.directory(study_dir), train_fn, eval_fns, primary)
                status = FAILED_STATUS if alone == FAILED_STATUS else status or alone
            counts[status] += 1
            if status == DONE:
                trained_seconds += time.monotonic() - t1
            logging.info(
                "[%d/%d] %s %s in %.0f s (%s; elapsed %.0f s, ETA %s)",
                k,
                total,
                run.name,
                status,
                time.monotonic() - t1,
                ", ".join(f"{n} {s}" for s, n in counts.items()),
                time.monotonic() - started,
                _eta(trained_seconds, counts[DONE], total - k),
            )
    return counts


def _eta(seconds, done, remaining):
    """Remaining time at the mean duration of the runs trained so far."""
    if not done:
        return "unknown"
    return f"{math.ceil(seconds / done * remaining / 60)} min"


def _to_uint8(images):
    """[0, 1] float images as uint8 (a quarter of the bytes in committed results)."""
    return np.round(np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def denoise_examples(config, workdir, count):
    """The first `count` test pairs and the best checkpoint's outputs, as uint8 images."""
    from dropout_study import data, train, train_step

    model, variables = train.restore_best(config, workdir)
    test = data.load(config.data).test
    noisy, clean = test.x[:count], test.y[:count]
    denoised = train_step.apply_in(config.compute_dtype, model.apply, variables, noisy, train=False)
    return {
        k: _to_uint8(v) for k, v in (("noisy", noisy), ("clean", clean), ("denoised", denoised))
    }


def define_flags():
    """The command's flags; defined on start, not on import, as config files import this module."""
    config_flags.DEFINE_config_file(
        "config", None, "Study config, e.g. configs/studies/post000.py:cpu (scales: cpu, full)."
    )
    flags.DEFINE_string(
        "workdir", None, "Root of the results: runs go to WORKDIR/<study>/<trial>/seed_<k>/."
    )
    flags.DEFINE_string(
        "shard", "0/1", "'i/n' runs every n-th run starting at the i-th (0-based), e.g. 3/8."
    )
    flags.DEFINE_bool("list", False, "Print this shard's runs and their state; run nothing.")
    flags.mark_flags_as_required(["config", "workdir"])


def _quiet_checkpoint_logs(record):
    """Drops orbax's INFO lines (several per checkpoint), which would bury the progress lines."""
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    allocator.preload()
    logging.get_absl_handler().addFilter(_quiet_checkpoint_logs)
    f = flags.FLAGS
    study, (index, count) = f.config, parse_shard(f.shard)
    if f.list:
        study_dir = run_files.path(f.workdir) / study.name
        for run in (r for group in shard(sweeps.groups_of(study), index, count) for r in group):
            print(f"{run.name}: {run_files.run_status(run.directory(study_dir))}")
        return 0
    if count == 1:  # a shard is an independent job; only an unsharded study spans processes
        parallel.initialize()
    command = " ".join(["python -m dropout_study.study", *sys.argv[1:]])
    counts = run_study(study, f.workdir, index, count, command=command)
    logging.info("study %s shard %d/%d: %s", study.name, index, count, counts)
    return 1 if counts[FAILED_STATUS] else 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
