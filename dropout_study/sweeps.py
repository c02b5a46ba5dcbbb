"""Study configs: a base config plus sweep axes plus seeds, expanded into trials and runs.

A study config (`configs/studies/postNNN.py`, `get_config(scale)`) holds:

    name: str          the study's folder under the workdir
    scale: str         'cpu' or 'full', recorded with the results
    notes: str         (optional) what the scale changes from the posts, quoted in the report
    seeds: tuple       every trial runs once per seed; trials share seeds, so differences pair
    seeds_per_program: (optional, default 1) seeds of a trial trained together in one vmapped
                       program (dropout_study.seed_group): pays on accelerators, barely on a CPU
    sweeps: ConfigDict sweep name -> ConfigDict(
        base=<training config from configs/*.py>,
        cases=ConfigDict(case name -> partial nested override of base),   # may be empty
        axes=ConfigDict(label -> sweeps.axis(path, values, repeat=0)),    # may be empty
        reference='',  # trial (without the sweep prefix) for paired differences; '' = first
        mc_samples=0,  # > 0: MC-dropout evaluation of the best checkpoint -> mc_eval.json
        examples=0)    # > 0: that many validation inputs, targets and outputs -> examples.npz

Each sweep expands into the product of its cases and axis values. Trial names are stable and
readable, `<sweep>[-<case>][-<label><value>...]`. A trial whose config equals an earlier
trial's (the same runs under two names) gets `same_as` set: it shares the earlier trial's runs.
`dropout_study.study` runs the result.
"""

import copy
import dataclasses
import importlib.util
import pathlib
import re

import ml_collections

from dropout_study import run_files

SEED_FIELD = "seed"
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

    @property
    def name(self):
        """`<trial>/seed_<k>`, as in logs and under the study's folder."""
        return run_files.run_name(self.trial.name, self.seed)

    def directory(self, study_dir):
        """Where the run lives: `run_files.run_dir`."""
        return run_files.run_dir(study_dir, self.trial.name, self.seed)


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
            raise ValueError(f"study config lacks the field {field!r}; see dropout_study.sweeps.")
    if not study.name or _SAFE_NAME.search(study.name):
        raise ValueError(f"study name {study.name!r} must be non-empty, letters/digits/._+- only.")
    seeds = tuple(study.seeds)
    if (
        not seeds
        or len(set(seeds)) != len(seeds)
        or any(not isinstance(s, int) or s < 0 for s in seeds)
    ):
        raise ValueError(f"seeds={seeds!r} must be distinct non-negative integers, e.g. (0, 1, 2).")
    size = study.get("seeds_per_program", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(
            f"seeds_per_program={size!r} must be an integer >= 1 (1 trains every run alone)."
        )
    if not study.sweeps:
        raise ValueError(f"study {study.name!r} has no sweeps; add at least one under `sweeps`.")
    for name, sweep in study.sweeps.items():
        if "base" not in sweep:
            raise ValueError(f"sweep {name!r} lacks `base` (a training config from configs/).")
        for label, ax in sweep.get("axes", {}).items():
            if "path" not in ax or not ax.get("values"):
                raise ValueError(
                    f"axis {label!r} of sweep {name!r} needs `path` and non-empty `values`; "
                    "build it with sweeps.axis(path, values)."
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
            evals = {f: int(sweep[f]) for f in run_files.EVAL_OUTPUTS if sweep.get(f, 0)}
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


def groups_of(study):
    """The runs in groups, each trained in one program: `seeds_per_program` seeds of one trial
    (default 1: every run alone), seed-major, so a partial study already has every cell once.

    Trials that share an earlier trial's runs (`same_as`) add none.
    """
    size = study.get("seeds_per_program", 1)
    trials = [t for t in expand(study) if not t.same_as]
    seeds = list(study.seeds)
    chunks = [seeds[i : i + size] for i in range(0, len(seeds), size)]
    return [[Run(t, seed) for seed in chunk] for chunk in chunks for t in trials]


def runs_of(study):
    """Every (trial, seed) run, in the order of `groups_of`."""
    return [run for group in groups_of(study) for run in group]


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
