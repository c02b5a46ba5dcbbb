"""Studies: a base config plus sweep axes plus seeds, expanded into trials and run one by one.

A study config (`configs/studies/postNNN.py`, `get_config(scale)`) holds:

    name: str          the study's folder under the workdir
    scale: str         'cpu' or 'full', recorded with the results
    notes: str         (optional) what the scale changes from the posts, quoted in the report
    seeds: tuple       every trial runs once per seed; trials share seeds, so differences pair
    sweeps: ConfigDict sweep name -> ConfigDict(
        base=<training config from configs/*.py>,
        cases=ConfigDict(case name -> partial nested override of base),   # may be empty
        axes=ConfigDict(label -> study.axis(path, values, repeat=0)),     # may be empty
        reference='',  # trial (without the sweep prefix) for paired differences; '' = first
        mc_samples=0,  # > 0: MC-dropout evaluation of the best checkpoint -> mc_eval.json
        examples=0)    # > 0: that many validation inputs, targets and outputs -> examples.npz

Each sweep expands into the product of its cases and axis values. Trial names are stable and
readable, `<sweep>[-<case>][-<label><value>...]`, and each (trial, seed) runs through
`train.train_and_evaluate` in `WORKDIR/<study>/<trial>/seed_<k>/`. A run whose `summary.json`
exists is skipped, a partial one resumes from its checkpoint (the training library resumes by
default), and a crash is written to `failed.json` there while the other runs go on. Evaluations
after training (MC dropout, saved examples) run from the best checkpoint and are skipped once
their output exists.
`--shard=i/n` runs every n-th run (seed-major order), so shards need no coordinator.
A trial whose config equals an earlier trial's (the same runs under two names) is not run
again: it reads the earlier trial's runs (`same_as` in study.json). The seeds are fixed before
the first run: a workdir started with other seeds refuses to run (no seeds added after
results exist).

    python -m dropout_study.study --config=configs/studies/post000.py:cpu --workdir=DIR
"""

import copy
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import logging as std_logging
import math
import os
import pathlib
import platform
import re
import sys
import time
import traceback

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from dropout_study import allocator, mc_dropout, parallel

MANIFEST = "study.json"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
FAILED = "failed.json"
MC_EVAL = "mc_eval.json"
EXAMPLES = "examples.npz"
EVAL_OUTPUTS = {"mc_samples": MC_EVAL, "examples": EXAMPLES}
SEED_FIELD = "seed"
SEED_DIR_PREFIX = "seed_"
DONE, SKIPPED, FAILED_STATUS = "done", "skipped", "failed"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


@dataclasses.dataclass(frozen=True)
class Trial:
    """One cell of a study: a training config without its seed."""

    name: str
    sweep: str
    case: str
    axes: dict
    config: ml_collections.ConfigDict
    evals: dict = dataclasses.field(default_factory=dict)  # EVAL_OUTPUTS field -> value > 0
    same_as: str = ""  # an earlier trial with the same config, whose runs this one shares

    def params(self):
        """What identifies the cell in tables: sweep, case and axis values."""
        return {"sweep": self.sweep, "case": self.case, **self.axes}


@dataclasses.dataclass(frozen=True)
class Run:
    """A trial trained with one seed."""

    trial: Trial
    seed: int

    def config(self):
        """The trial's training config with this run's seed."""
        config = copy.deepcopy(self.trial.config)
        config.update_from_flattened_dict({SEED_FIELD: self.seed})
        return config

    def directory(self, study_dir):
        """Where the run lives: `run_dir(study_dir, trial, seed)`."""
        return run_dir(study_dir, self.trial.name, self.seed)


def run_dir(study_dir, trial, seed):
    """`<study_dir>/<trial>/seed_<k>`: the one place a run's folder is named."""
    return pathlib.Path(study_dir) / trial / f"{SEED_DIR_PREFIX}{seed}"


def seeds_on_disk(trial_dir):
    """The seeds with a run folder under `trial_dir`."""
    found = pathlib.Path(trial_dir).glob(f"{SEED_DIR_PREFIX}*")
    return {int(p.name.removeprefix(SEED_DIR_PREFIX)) for p in found if p.is_dir()}


def load_config_file(path, arg=None):
    """`get_config(arg)` of a config file, as `--config=path:arg` would load it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist; check the path.")
    spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config() if arg is None else module.get_config(arg)


def axis(path, values, repeat=0):
    """A sweep axis: each of `values` set at `path` (a dotted field or a tuple of them).

    `repeat` > 0 sets a tuple field to `repeat` copies of the value (e.g. one rate per layer)
    while trial names and params keep the plain value.
    """
    return ml_collections.ConfigDict({"path": path, "values": tuple(values), "repeat": repeat})


def format_value(value):
    """A short, file-name-safe text for an axis value (0.5 -> '0.5', (0.2, 0) -> '0.2_0')."""
    if isinstance(value, (tuple, list)):
        return "_".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return _SAFE_NAME.sub("_", text)


def check_study(study):
    """Rejects a malformed study config before any run starts."""
    for field in ("name", "seeds", "sweeps"):
        if field not in study:
            raise ValueError(f"study config lacks the field {field!r}; see dropout_study.study.")
    if not study.name or _SAFE_NAME.search(study.name):
        raise ValueError(f"study name {study.name!r} must be non-empty, letters/digits/._+- only.")
    seeds = tuple(study.seeds)
    if (
        not seeds
        or len(set(seeds)) != len(seeds)
        or any(not isinstance(s, int) or s < 0 for s in seeds)
    ):
        raise ValueError(f"seeds={seeds!r} must be distinct non-negative integers, e.g. (0, 1, 2).")
    if not study.sweeps:
        raise ValueError(f"study {study.name!r} has no sweeps; add at least one under `sweeps`.")
    for name, sweep in study.sweeps.items():
        if "base" not in sweep:
            raise ValueError(f"sweep {name!r} lacks `base` (a training config from configs/).")
        for label, ax in sweep.get("axes", {}).items():
            if "path" not in ax or not ax.get("values"):
                raise ValueError(
                    f"axis {label!r} of sweep {name!r} needs `path` and non-empty `values`; "
                    "build it with study.axis(path, values)."
                )


def _apply(config, overrides, where):
    """A locked copy of `config` with nested `overrides` (dict) applied; unknown fields raise."""
    config = copy.deepcopy(config)
    config.lock()
    try:
        config.update(overrides)
    except (KeyError, AttributeError, TypeError) as e:
        shown = overrides.to_dict() if hasattr(overrides, "to_dict") else overrides
        raise ValueError(f"{where}: cannot apply {shown}: {e}") from e
    return config


def _set_paths(config, paths, value, where):
    """`config` with `value` set at every dotted path in `paths`; unknown fields raise."""
    paths = (paths,) if isinstance(paths, str) else tuple(paths)
    try:
        config.update_from_flattened_dict(dict.fromkeys(paths, value))
    except (KeyError, AttributeError, TypeError) as e:
        raise ValueError(f"{where}: cannot set {paths} = {value!r}: {e}") from e


def _sweep_trials(name, sweep):
    """The trials of one sweep: product of its cases and axis values."""
    cases = dict(sweep.get("cases", {}).items()) or {"": {}}
    axes = list(sweep.get("axes", {}).items())
    combos = [{}]
    for label, ax in axes:
        combos = [{**c, label: v} for c in combos for v in ax["values"]]
    trials = []
    for case, overrides in cases.items():
        for combo in combos:
            parts = [name, case] + [f"{label}{format_value(v)}" for label, v in combo.items()]
            trial_name = "-".join(p for p in parts if p)
            config = _apply(sweep.base, overrides, f"trial {trial_name!r}")
            for label, value in combo.items():
                repeat = sweep.axes[label].get("repeat", 0)
                setting = (value,) * repeat if repeat else value
                _set_paths(config, sweep.axes[label].path, setting, f"trial {trial_name!r}")
            axes_values = {label: _plain(v) for label, v in combo.items()}
            evals = {f: int(sweep[f]) for f in EVAL_OUTPUTS if sweep.get(f, 0)}
            trials.append(Trial(trial_name, name, case, axes_values, config, evals))
    return trials


def _plain(value):
    """JSON-friendly copy of an axis value (tuples become lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def expand(study):
    """Every trial of the study, in a stable order (sweeps, then cases, then axis values).

    A trial with the same config as an earlier one gets `same_as` set to it, and the earlier
    trial also runs the later one's evaluations.
    """
    check_study(study)
    trials = [t for name, sweep in study.sweeps.items() for t in _sweep_trials(name, sweep)]
    names = [t.name for t in trials]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"trial names {duplicates} are not unique; rename cases or axis labels.")
    owners = {}  # config JSON -> index of the first trial with it
    for i, t in enumerate(trials):
        j = owners.setdefault(t.config.to_json(sort_keys=True), i)
        if j != i:
            owner = trials[j]
            trials[j] = dataclasses.replace(owner, evals={**t.evals, **owner.evals})
            trials[i] = dataclasses.replace(t, same_as=owner.name)
    return trials


def runs_of(study):
    """Every (trial, seed) run, seed-major, so a partial study already has every cell once.

    Trials that share an earlier trial's runs (`same_as`) add none.
    """
    trials = [t for t in expand(study) if not t.same_as]
    return [Run(t, seed) for seed in study.seeds for t in trials]


def parse_shard(text):
    """'i/n' -> (i, n) with 0 <= i < n."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"--shard={text!r} must be 'i/n' with 0 <= i < n, e.g. '0/4'.")
    return int(match[1]), int(match[2])


def shard(runs, index, count):
    """Every `count`-th run starting at `index`: shards partition the runs without overlap."""
    return list(runs)[index::count]


def write_json(path, obj):
    """Writes JSON atomically (temporary file, then rename), so readers never see half a file."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _config_dict(config):
    return json.loads(config.to_json())


def references(study, trials):
    """{sweep: trial} that each sweep's paired differences are taken against.

    A sweep's optional `reference` names a case (or case and axis suffix, as in trial names);
    by default the sweep's first trial is the reference.
    """
    found = {}
    for name, sweep in study.sweeps.items():
        own = [t.name for t in trials if t.sweep == name]
        wanted = sweep.get("reference", "")
        if not wanted:
            found[name] = own[0]
        elif f"{name}-{wanted}" in own:
            found[name] = f"{name}-{wanted}"
        else:
            raise ValueError(
                f"sweep {name!r}: reference={wanted!r} is not one of its trials {own} "
                "(give the trial name without the sweep prefix)."
            )
    return found


def environment():
    """Package versions and the machine, recorded with the results."""
    packages = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "ml-collections")
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    models = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.exists() else []
    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "packages": {p: importlib.metadata.version(p) for p in packages},
        "system": f"{platform.system()} {platform.machine()}",
        "cpu": models[0].strip() if models else platform.processor(),
        "cpu_count": os.cpu_count(),
        "devices": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})",
        "allocator": allocator.active(),
    }


def manifest(study, trials, command=""):
    """What the report needs to read a study back: trials, parameters, configs, environment."""
    return {
        "name": study.name,
        "scale": study.get("scale", ""),
        "notes": study.get("notes", ""),
        "seeds": list(study.seeds),
        "command": command,
        "environment": environment(),
        "references": references(study, trials),
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
    path = pathlib.Path(study_dir) / MANIFEST
    if path.exists():
        old = json.loads(path.read_text())
        old_configs = {t["name"]: t["config"] for t in old["trials"]}
        for t in new["trials"]:
            before = old_configs.get(t["name"], t["config"])
            if before != t["config"]:
                sections = sorted(
                    k for k in before | t["config"] if before.get(k) != t["config"].get(k)
                )
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
    write_json(path, new)


def record_failure(run_dir, stage, error):
    """Writes the error and its traceback to `failed.json` in the run's directory."""
    write_json(
        pathlib.Path(run_dir) / FAILED,
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
        write_json(path, result)
        return
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **result)
    os.replace(tmp, path)


def run_one(run, run_dir, train_fn, eval_fns, primary=True):
    """Trains (or skips) one run, then its evaluations after training; returns its status.

    `eval_fns`: EVAL_OUTPUTS field -> fn(config, workdir, value) -> result to save. Only the
    `primary` process (JAX process 0, as in training) writes files.
    """
    run_dir = pathlib.Path(run_dir)
    status = SKIPPED
    stage = "train"
    try:
        if not (run_dir / SUMMARY).exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            train_fn(run.config(), str(run_dir))
            if primary and not (run_dir / SUMMARY).exists():
                raise RuntimeError(f"training returned without writing {run_dir / SUMMARY}.")
            status = DONE
        for field, value in run.trial.evals.items():
            output = run_dir / EVAL_OUTPUTS[field]
            if not output.exists():
                stage = field
                result = eval_fns[field](run.config(), str(run_dir), value)
                if primary:
                    _save(output, result)
                status = DONE
    except Exception as e:  # one crashing run must not stop the study
        logging.exception("%s/seed_%d failed in %s", run.trial.name, run.seed, stage)
        if primary:
            record_failure(run_dir, stage, e)
        return FAILED_STATUS
    if primary:
        (run_dir / FAILED).unlink(missing_ok=True)
    return status


def run_study(
    study, workdir, shard_index=0, shard_count=1, train_fn=None, eval_fns=None, command=""
):
    """Runs this shard's runs of `study` under `workdir`; returns {status: count}.

    `train_fn(config, workdir)` defaults to `train.train_and_evaluate` and `eval_fns` to
    {"mc_samples": evaluate_mc, "examples": denoise_examples}; tests pass stand-ins.
    `command` is recorded in the manifest, so results say how they were made. A study spread
    over several JAX processes (unsharded) needs a workdir that every process sees.
    """
    runs = shard(runs_of(study), shard_index, shard_count)
    study_dir = pathlib.Path(workdir) / study.name
    primary = jax.process_index() == 0
    if primary:
        write_manifest(study_dir, manifest(study, expand(study), command))
    if train_fn is None:
        from dropout_study import train  # imported on use: it loads TensorFlow (slow)

        train_fn = train.train_and_evaluate
    eval_fns = eval_fns or {"mc_samples": evaluate_mc, "examples": denoise_examples}
    counts = {DONE: 0, SKIPPED: 0, FAILED_STATUS: 0}
    started, trained_seconds = time.monotonic(), 0.0
    for k, run in enumerate(runs, 1):
        run_dir = run.directory(study_dir)
        logging.info("[%d/%d] %s/seed_%d", k, len(runs), run.trial.name, run.seed)
        t0 = time.monotonic()
        status = run_one(run, run_dir, train_fn, eval_fns, primary)
        counts[status] += 1
        if status == DONE:
            trained_seconds += time.monotonic() - t0
        logging.info(
            "[%d/%d] %s/seed_%d %s in %.0f s (%s; elapsed %.0f s, ETA %s)",
            k,
            len(runs),
            run.trial.name,
            run.seed,
            status,
            time.monotonic() - t0,
            ", ".join(f"{n} {s}" for s, n in counts.items()),
            time.monotonic() - started,
            _eta(trained_seconds, counts[DONE], len(runs) - k),
        )
    return counts


def _eta(seconds, done, remaining):
    """Remaining time at the mean duration of the runs trained so far."""
    if not done:
        return "unknown"
    return f"{math.ceil(seconds / done * remaining / 60)} min"


MC_KEY_SALT = 0x6D63  # folds the run's seed into the MC-dropout key, apart from training keys
ECE_BINS = 15


def _class_logits(logits):
    """(N, K) logits; a binary model's single logit l becomes (0, l), whose softmax is sigmoid."""
    if logits.shape[-1] == 1:
        return jnp.concatenate([jnp.zeros_like(logits), logits], axis=-1)
    return logits


def _calibration(probs, labels):
    """Accuracy, NLL, ECE and reliability bins of predicted probabilities (N, K)."""
    picked = np.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    bins = mc_dropout.reliability_bins(probs, labels, ECE_BINS)
    return {
        "accuracy": float(np.mean(np.argmax(probs, axis=-1) == labels)),
        "nll": float(-np.mean(np.log(np.maximum(picked, 1e-12)))),
        "ece": float(mc_dropout.expected_calibration_error(probs, labels, ECE_BINS)),
        "bins": {
            k: [None if math.isnan(v) else float(v) for v in np.asarray(b)] for k, b in bins.items()
        },
    }


def evaluate_mc(config, workdir, num_samples):
    """MC dropout (`num_samples` passes, batch-norm in inference mode) against deterministic
    inference, on the test split with the run's best (validation-selected) checkpoint."""
    from dropout_study import data, train  # imported on use: they load TensorFlow (slow)
    from dropout_study.data import pipeline

    model, variables = train.restore_best(config, workdir)
    dataset = data.load(config.data)

    def apply(key, x, dropout):
        rngs = {"dropout": key} if dropout else {}
        out = model.apply(variables, x, train=False, dropout=dropout, rngs=rngs)
        return _class_logits(out.astype("float32"))

    @jax.jit
    def predict(key, x):  # x: (B, ...) -> (det probs (B, K), MC mean probs, entropy, MI)
        det = jax.nn.softmax(apply(key, x, False))
        mc = mc_dropout.mc_predict(lambda k, xb: apply(k, xb, True), key, x, num_samples)
        return det, mc["mean_probs"], mc["predictive_entropy"], mc["mutual_information"]

    key = jax.random.fold_in(jax.random.key(config.seed), MC_KEY_SALT)
    outs, labels = [], []
    for i, batch in enumerate(pipeline.padded_batches(dataset.test, config.eval_batch_size)):
        result = jax.device_get(predict(jax.random.fold_in(key, i), batch["x"]))
        outs.append([np.asarray(r)[batch["mask"]] for r in result])
        labels.append(np.asarray(batch["y"])[batch["mask"]])
    det, mc, entropy, mutual = (np.concatenate(parts) for parts in zip(*outs, strict=True))
    labels = np.concatenate(labels).astype(np.int32)
    return {
        "num_samples": num_samples,
        "num_examples": int(labels.size),
        "deterministic": _calibration(det, labels),
        "mc": {
            **_calibration(mc, labels),
            "predictive_entropy": float(entropy.mean()),
            "mutual_information": float(mutual.mean()),
        },
    }


def _to_uint8(images):
    """[0, 1] float images as uint8 (a quarter of the bytes in committed results)."""
    return np.round(np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def denoise_examples(config, workdir, count):
    """The first `count` test pairs and the best checkpoint's outputs, as uint8 images."""
    from dropout_study import data, train

    model, variables = train.restore_best(config, workdir)
    test = data.load(config.data).test
    noisy, clean = test.x[:count], test.y[:count]
    denoised = model.apply(variables, noisy, train=False)
    return {
        k: _to_uint8(v) for k, v in (("noisy", noisy), ("clean", clean), ("denoised", denoised))
    }


def read_metrics(path):
    """The per-epoch rows of `metrics.jsonl`, one per epoch (a resumed run's repeat wins).

    A last line cut off by a crash is ignored; a damaged line elsewhere raises ValueError.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = {}
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break
            raise ValueError(
                f"{path} line {i + 1} is not JSON ({e}); delete the run to redo."
            ) from e
        rows[row["epoch"]] = row
    return [rows[e] for e in sorted(rows)]


def _read_json(path):
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else None


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What one run left on disk: its per-epoch metrics, summary, evaluations or failure."""

    trial: str
    seed: int
    params: dict
    status: str  # 'done', 'failed', 'partial' (metrics but no summary) or 'pending'
    epochs: list
    summary: dict | None
    mc_eval: dict | None
    failure: dict | None
    directory: pathlib.Path | None = None  # the run's folder (a shared trial's: its owner's)


def run_status(run_dir):
    """'done', 'failed', 'partial' or 'pending' for a run directory."""
    run_dir = pathlib.Path(run_dir)
    if (run_dir / FAILED).exists():
        return FAILED_STATUS
    if (run_dir / SUMMARY).exists():
        return DONE
    return "partial" if (run_dir / METRICS).exists() else "pending"


def load_study(study_dir):
    """(manifest, [RunRecord]) for every trial of the manifest and every seed found or planned."""
    study_dir = pathlib.Path(study_dir)
    found = _read_json(study_dir / MANIFEST)
    if found is None:
        raise FileNotFoundError(
            f"{study_dir / MANIFEST} does not exist; point --workdir at a study's folder "
            "(WORKDIR/<study>) written by `python -m dropout_study.study`."
        )
    records = []
    for trial in found["trials"]:
        owner = trial.get("same_as") or trial["name"]  # shared runs live in the owner's folder
        for seed in sorted(seeds_on_disk(study_dir / owner) | set(found["seeds"])):
            directory = run_dir(study_dir, owner, seed)
            records.append(
                RunRecord(
                    trial=trial["name"],
                    seed=seed,
                    params=trial["params"],
                    status=run_status(directory),
                    epochs=read_metrics(directory / METRICS),
                    summary=_read_json(directory / SUMMARY),
                    mc_eval=_read_json(directory / MC_EVAL),
                    failure=_read_json(directory / FAILED),
                    directory=directory,
                )
            )
    return found, records


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
        study_dir = pathlib.Path(f.workdir) / study.name
        for run in shard(runs_of(study), index, count):
            print(f"{run.trial.name}/seed_{run.seed}: {run_status(run.directory(study_dir))}")
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
