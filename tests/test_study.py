"""Study engine: sweep expansion, seeds, sharding, resume-skipping and failure recording."""

import json
import pathlib
import re
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dropout_study import mc_dropout, results_index, run_files, sweeps
from dropout_study import study as study_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


def _base():
    return ml_collections.ConfigDict(
        {
            "seed": 0,
            "num_epochs": 3,
            "model": {"name": "mlp", "rate": 0.0, "input_rate": 0.0, "batch_norm": False},
        }
    )


def _study(**sweep_b):
    config = ml_collections.ConfigDict()
    config.name = "toy"
    config.scale = "cpu"
    config.seeds = (0, 1, 2)
    config.sweeps = ml_collections.ConfigDict()
    config.sweeps.a = ml_collections.ConfigDict(
        {
            "base": _base(),
            "cases": {"plain": {}, "bn": {"model": {"batch_norm": True}}},
            "axes": {"keep": sweeps.axis(("model.rate", "model.input_rate"), (0.9, 0.5))},
            "mc_samples": 0,
        }
    )
    config.sweeps.b = ml_collections.ConfigDict(
        {"base": _base(), "axes": {"epochs": sweeps.axis("num_epochs", (1, 2))}, **sweep_b}
    )
    return config


class FakeTrain:
    """Stands in for train.train_and_evaluate: writes metrics and summary, records its calls."""

    def __init__(self, fail_on=()):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, config, workdir):
        self.calls.append((workdir, config.to_dict()))
        if any(name in workdir for name in self.fail_on):
            raise RuntimeError(f"boom in {workdir}")
        path = pathlib.Path(workdir)
        with open(path / "metrics.jsonl", "a") as f:
            for epoch in range(1, config.num_epochs + 1):
                f.write(json.dumps({"epoch": epoch, "val_accuracy": 0.5 + config.model.rate}))
                f.write("\n")
        (path / "summary.json").write_text(json.dumps({"best_val_accuracy": 0.5}))
        return {}


def test_expansion_names_params_and_configs():
    trials = sweeps.expand(_study())
    names = [t.name for t in trials]
    assert names == [
        "a-bn-keep0.9",
        "a-bn-keep0.5",
        "a-plain-keep0.9",
        "a-plain-keep0.5",
        "b-epochs1",
        "b-epochs2",
    ]
    by_name = {t.name: t for t in trials}
    t = by_name["a-bn-keep0.5"]
    assert t.config.model.batch_norm is True
    assert t.config.model.rate == 0.5 and t.config.model.input_rate == 0.5
    assert t.params() == {"sweep": "a", "case": "bn", "keep": 0.5}
    assert by_name["a-plain-keep0.9"].config.model.batch_norm is False
    assert by_name["b-epochs2"].config.num_epochs == 2
    assert by_name["b-epochs2"].params() == {"sweep": "b", "case": "", "epochs": 2}
    # Expansion is stable: the same study gives the same names and configs again.
    again = sweeps.expand(_study())
    assert [(t.name, t.config.to_dict()) for t in again] == [
        (t.name, t.config.to_dict()) for t in trials
    ]


def test_runs_set_the_seed_seed_major():
    runs = sweeps.runs_of(_study())
    assert len(runs) == 6 * 3
    assert [r.seed for r in runs[:6]] == [0] * 6 and runs[6].seed == 1
    assert runs[7].config().seed == 1 and runs[7].trial.config.seed == 0
    assert runs[7].directory("W/toy") == pathlib.Path("W/toy/a-bn-keep0.5/seed_1")


def test_format_value():
    assert sweeps.format_value(0.5) == "0.5"
    assert sweeps.format_value((0.2, 0, 0.5)) == "0.2_0_0.5"
    assert sweeps.format_value(True) == "true"
    assert sweeps.format_value("a/b c") == "a_b_c"


def test_unknown_override_field_names_the_trial():
    config = _study()
    config.sweeps.a.cases.bn = ml_collections.ConfigDict({"model": {"batchnorm": True}})
    with pytest.raises(ValueError, match=r"a-bn-keep0\.9.*batchnorm"):
        sweeps.expand(config)
    config = _study()
    config.sweeps.b.axes.epochs.path = "num_epoch"
    with pytest.raises(ValueError, match="num_epoch"):
        sweeps.expand(config)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("seeds", (0, 0, 1), "distinct"),
        ("seeds", (), "seeds"),
        ("name", "a b", "name"),
        ("seeds_per_program", 0, "seeds_per_program=0 must be an integer >= 1"),
    ],
)
def test_bad_study_fields(field, value, match):
    config = _study()
    config[field] = value
    with pytest.raises(ValueError, match=match):
        sweeps.expand(config)


def test_duplicate_trial_names_raise():
    config = _study()
    config.sweeps.b.axes.epochs.values = (1, 1)
    with pytest.raises(ValueError, match="not unique"):
        sweeps.expand(config)


@pytest.mark.parametrize("bad", ["3/3", "1", "-1/2", "a/b", "0/0"])
def test_parse_shard_rejects_bad_text(bad):
    with pytest.raises(ValueError, match="shard"):
        study_lib.parse_shard(bad)


def test_shards_partition_the_runs(tmp_path):
    config = _study()
    assert study_lib.parse_shard("1/4") == (1, 4)
    fakes = [FakeTrain() for _ in range(4)]
    for i, fake in enumerate(fakes):
        study_lib.run_study(config, tmp_path, i, 4, train_fn=fake)
    dirs = [call[0] for fake in fakes for call in fake.calls]
    assert len(dirs) == len(set(dirs)) == 18
    assert [len(f.calls) for f in fakes] == [5, 5, 4, 4]
    _, records = run_files.load_study(tmp_path / "toy")
    assert {r.status for r in records} == {"done"} and len(records) == 18


def test_finished_runs_are_skipped_and_partial_runs_resume(tmp_path):
    config = _study()
    first = FakeTrain()
    assert study_lib.run_study(config, tmp_path, train_fn=first) == {
        "done": 18,
        "skipped": 0,
        "failed": 0,
    }
    # A run interrupted after its first epoch: metrics but no summary.
    partial = tmp_path / "toy" / "b-epochs2" / "seed_1"
    (partial / "summary.json").unlink()
    second = FakeTrain()
    counts = study_lib.run_study(config, tmp_path, train_fn=second)
    assert counts == {"done": 1, "skipped": 17, "failed": 0}
    assert [c[0] for c in second.calls] == [str(partial)]
    assert second.calls[0][1]["seed"] == 1
    # The run kept its earlier metrics (train resumes; the study deletes nothing).
    assert len(run_files.read_metrics(partial / "metrics.jsonl")) == 2


def test_a_crash_is_recorded_and_the_others_go_on(tmp_path):
    config = _study()
    counts = study_lib.run_study(config, tmp_path, train_fn=FakeTrain(fail_on=("b-epochs1",)))
    assert counts == {"done": 15, "skipped": 0, "failed": 3}
    failed = json.loads((tmp_path / "toy" / "b-epochs1" / "seed_2" / "failed.json").read_text())
    assert failed["stage"] == "train"
    assert failed["error"].startswith("RuntimeError: boom in")
    assert "Traceback" in failed["traceback"] and "FakeTrain" not in failed["error"]
    _, records = run_files.load_study(tmp_path / "toy")
    assert sum(r.status == "failed" for r in records) == 3
    # A later run retries the failed runs and clears their record.
    counts = study_lib.run_study(config, tmp_path, train_fn=FakeTrain())
    assert counts == {"done": 3, "skipped": 15, "failed": 0}
    assert not list((tmp_path / "toy").glob("*/*/failed.json"))


class FakeGroup:
    """Stands in for seed_group.train_and_evaluate_seeds: FakeTrain per seed, or for `fail_seed`
    a FloatingPointError in its place, as a seed that went NaN inside the group."""

    def __init__(self, fail_seed=None):
        self.groups, self.fail_seed, self.train = [], fail_seed, FakeTrain()

    def __call__(self, configs, workdirs):
        pairs = list(zip(configs, workdirs, strict=True))
        self.groups.append([(pathlib.Path(w), c.seed) for c, w in pairs])
        results = []
        for config, workdir in zip(configs, workdirs, strict=True):
            if config.seed == self.fail_seed:
                results.append(FloatingPointError(f"NaN in {workdir}"))
            else:
                results.append(self.train(config, workdir))
        return results


def test_seeds_per_program_trains_the_seeds_of_a_trial_together(tmp_path):
    config = _study()
    config.seeds_per_program = 2  # seeds (0, 1, 2): groups (0, 1) and (2,) of each trial
    alone, group = FakeTrain(), FakeGroup()
    counts = study_lib.run_study(config, tmp_path, train_fn=alone, group_fn=group)
    assert counts == {"done": 18, "skipped": 0, "failed": 0}
    assert len(group.groups) == 6  # one per trial
    for members in group.groups:
        assert [seed for _, seed in members] == [0, 1]
        assert len({path.parent for path, _ in members}) == 1  # one trial's folder
        assert [path.name for path, _ in members] == ["seed_0", "seed_1"]
    assert sorted(c[1]["seed"] for c in alone.calls) == [2] * 6  # a group of one trains alone
    _, records = run_files.load_study(tmp_path / "toy")
    assert {r.status for r in records} == {"done"} and len(records) == 18
    shards = [study_lib.shard(sweeps.groups_of(config), i, 4) for i in range(4)]
    assert sorted(r.name for s in shards for g in s for r in g) == sorted(
        r.name for r in sweeps.runs_of(config)
    )  # shards split the groups and cover every run once


def test_seeds_per_program_records_a_failed_seed_and_does_not_retrain_it_alone(tmp_path):
    config = _study()
    config.seeds_per_program = 3
    alone, group = FakeTrain(), FakeGroup(fail_seed=1)
    counts = study_lib.run_study(config, tmp_path, train_fn=alone, group_fn=group)
    assert counts == {"done": 12, "skipped": 0, "failed": 6}
    assert alone.calls == []
    failed = json.loads((tmp_path / "toy" / "b-epochs1" / "seed_1" / "failed.json").read_text())
    assert failed["stage"] == "train" and failed["error"].startswith("FloatingPointError: NaN")
    # The next start trains the failed seed again; alone, as it is its group's last unfinished run.
    counts = study_lib.run_study(config, tmp_path, train_fn=alone, group_fn=FakeGroup())
    assert counts == {"done": 6, "skipped": 12, "failed": 0}
    assert sorted(c[1]["seed"] for c in alone.calls) == [1] * 6


def test_training_that_writes_no_summary_counts_as_failed(tmp_path):
    config = _study()
    counts = study_lib.run_study(config, tmp_path, train_fn=lambda c, w: None)
    assert counts["failed"] == 18
    failed = json.loads((tmp_path / "toy" / "a-bn-keep0.5" / "seed_0" / "failed.json").read_text())
    assert "without writing" in failed["error"]


def test_mc_evaluation_runs_once_for_sweeps_that_ask(tmp_path):
    config = _study(mc_samples=7)
    calls = []

    def mc_fn(config, workdir, num_samples):
        calls.append((workdir, num_samples))
        return {"num_samples": num_samples, "seed": config.seed}

    study_lib.run_study(config, tmp_path, train_fn=FakeTrain(), eval_fns={"mc_samples": mc_fn})
    assert len(calls) == 6 and {n for _, n in calls} == {7}
    assert all("/b-epochs" in w for w, _ in calls)
    result = json.loads((tmp_path / "toy" / "b-epochs1" / "seed_2" / "mc_eval.json").read_text())
    assert result == {"num_samples": 7, "seed": 2}
    study_lib.run_study(config, tmp_path, train_fn=FakeTrain(), eval_fns={"mc_samples": mc_fn})
    assert len(calls) == 6


def test_failed_mc_evaluation_is_retried_without_retraining(tmp_path):
    config = _study(mc_samples=3)

    def broken(*args):
        raise ValueError("no checkpoint")

    counts = study_lib.run_study(
        config, tmp_path, train_fn=FakeTrain(), eval_fns={"mc_samples": broken}
    )
    assert counts["failed"] == 6
    failed = json.loads((tmp_path / "toy" / "b-epochs2" / "seed_0" / "failed.json").read_text())
    assert failed["stage"] == "mc_samples"
    train = FakeTrain()
    fixed = {"mc_samples": lambda *a: {"ok": 1}}
    counts = study_lib.run_study(config, tmp_path, train_fn=train, eval_fns=fixed)
    assert counts == {"done": 6, "skipped": 12, "failed": 0} and not train.calls


def test_manifest_refuses_a_changed_config(tmp_path):
    study_lib.run_study(_study(), tmp_path, train_fn=FakeTrain())
    manifest = json.loads((tmp_path / "toy" / "study.json").read_text())
    assert [t["name"] for t in manifest["trials"]][:2] == ["a-bn-keep0.9", "a-bn-keep0.5"]
    assert manifest["seeds"] == [0, 1, 2]
    changed = _study()
    changed.sweeps.b.base.model.rate = 0.3
    with pytest.raises(ValueError, match=r"b-epochs1.*different config.*\['model'\]"):
        study_lib.run_study(changed, tmp_path, train_fn=FakeTrain())
    more_seeds = _study()
    more_seeds.seeds = (0, 1, 2, 3)
    with pytest.raises(ValueError, match=r"started with seeds \[0, 1, 2\].*fixed before"):
        study_lib.run_study(more_seeds, tmp_path, train_fn=FakeTrain())
    manifest = json.loads((tmp_path / "toy" / "study.json").read_text())
    assert manifest["seeds"] == [0, 1, 2]


def test_a_config_under_two_trial_names_runs_once_and_is_shared(tmp_path):
    config = _study()
    config.sweeps.c = ml_collections.ConfigDict(
        {
            "base": config.sweeps.b.base,
            "cases": {"same": {"num_epochs": 1}, "other": {"num_epochs": 3}},
        }
    )
    trials = {t.name: t for t in sweeps.expand(config)}
    assert trials["c-same"].same_as == "b-epochs1" and not trials["c-other"].same_as
    fake = FakeTrain()
    study_lib.run_study(config, tmp_path, train_fn=fake)
    trained = {pathlib.Path(w).parent.name for w, _ in fake.calls}
    assert "c-same" not in trained and {"b-epochs1", "c-other"} <= trained
    _, records = run_files.load_study(tmp_path / "toy")
    shared = {r.seed: r for r in records if r.trial == "c-same"}
    owner = {r.seed: r for r in records if r.trial == "b-epochs1"}
    assert sorted(shared) == [0, 1, 2] and all(r.status == "done" for r in shared.values())
    assert all(shared[k].summary == owner[k].summary for k in shared)


def test_read_metrics_dedupes_resumed_epochs_and_tolerates_a_cut_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"epoch": 1, "v": 1}, {"epoch": 2, "v": 2}, {"epoch": 2, "v": 3}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"epoch": 3, "v"')
    assert run_files.read_metrics(path) == [{"epoch": 1, "v": 1}, {"epoch": 2, "v": 3}]
    path.write_text('{"epoch": 1\n{"epoch": 2}\n')
    with pytest.raises(ValueError, match="line 1"):
        run_files.read_metrics(path)


def test_load_study_needs_a_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="study.json"):
        run_files.load_study(tmp_path)


def test_cli_lists_the_runs_of_a_shard(tmp_path):
    study_file = tmp_path / "toy_study.py"
    study_file.write_text(
        "import ml_collections\n"
        "from dropout_study import sweeps\n\n"
        "def get_config(scale='cpu'):\n"
        "    base = ml_collections.ConfigDict({'seed': 0, 'model': {'rate': 0.0}})\n"
        "    sweep = {'base': base, 'axes': {'r': sweeps.axis('model.rate', (0.1,))}}\n"
        "    return ml_collections.ConfigDict(\n"
        "        {'name': 'toy', 'scale': scale, 'seeds': (0, 1, 2), 'sweeps': {'s': sweep}})\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dropout_study.study",
            f"--config={study_file}:cpu",
            f"--workdir={tmp_path}",
            "--shard=1/2",
            "--list",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert result.stdout.splitlines() == ["s-r0.1/seed_1: pending"]


class _Tiny(nn.Module):
    """Dense -> dropout 0.5 -> dense, with the project's train/dropout switches."""

    classes: int = 3

    @nn.compact
    def __call__(self, x, *, train, dropout=None):
        active = train if dropout is None else dropout
        h = nn.relu(nn.Dense(16)(x))
        h = nn.Dropout(0.5, deterministic=not active)(h)
        return nn.Dense(self.classes)(h)


def _patch_run(monkeypatch, classes, x, y):
    """train.restore_best and data.load returning a tiny model and a validation split."""
    from dropout_study import data, train
    from dropout_study.data import splits

    model = _Tiny(classes)
    variables = model.init(jax.random.key(0), x[:1], train=False)
    monkeypatch.setattr(train, "restore_best", lambda config, workdir: (model, variables))
    split = splits.Split(x, y)
    monkeypatch.setattr(data, "load", lambda config: splits.Dataset(split, split, split, {}))
    return model, variables


def test_evaluate_mc_on_a_tiny_model(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    model, variables = _patch_run(monkeypatch, 3, x, y)
    config = ml_collections.ConfigDict(
        {"seed": 1, "eval_batch_size": 16, "data": {}, "compute_dtype": "float32"}
    )
    result = mc_dropout.evaluate_mc(config, "unused", num_samples=8)
    det_probs = jax.nn.softmax(model.apply(variables, x, train=False))
    assert result["num_examples"] == 40  # 3 batches of 16, the padding excluded
    assert result["deterministic"]["accuracy"] == pytest.approx(
        float(np.mean(np.argmax(det_probs, -1) == y))
    )
    nll = -np.mean(np.log(np.asarray(det_probs)[np.arange(40), y]))
    assert result["deterministic"]["nll"] == pytest.approx(float(nll), rel=1e-5)
    assert sum(result["mc"]["bins"]["count"]) == 40
    assert result["mc"]["nll"] != pytest.approx(result["deterministic"]["nll"])
    assert 0.0 <= result["mc"]["ece"] <= 1.0 and result["mc"]["mutual_information"] > 0.0
    assert mc_dropout.evaluate_mc(config, "unused", num_samples=8) == result  # keyed by the seed


def test_single_logit_becomes_two_class_logits():
    logits = jnp.array([[0.0], [2.0]])
    probs = jax.nn.softmax(mc_dropout._class_logits(logits))
    assert np.asarray(probs[:, 1]) == pytest.approx(np.asarray(jax.nn.sigmoid(logits[:, 0])))


def test_denoise_examples_returns_inputs_targets_and_outputs(monkeypatch):
    x = np.random.default_rng(0).uniform(size=(10, 5)).astype(np.float32)
    model, variables = _patch_run(monkeypatch, 5, x, x[::-1])
    saved = study_lib.denoise_examples(
        ml_collections.ConfigDict({"data": {}, "compute_dtype": "float32"}), "unused", 4
    )
    assert saved["noisy"].shape == saved["denoised"].shape == (4, 5)
    assert saved["clean"].dtype == np.uint8
    assert np.abs(saved["clean"] / 255.0 - x[::-1][:4]).max() <= 0.5 / 255 + 1e-6
    expected = np.clip(model.apply(variables, x[:4], train=False), 0.0, 1.0)
    assert np.abs(saved["denoised"] / 255.0 - expected).max() <= 0.5 / 255 + 1e-6


def test_axis_repeat_sets_a_per_layer_tuple_from_one_value():
    config = _study()
    config.sweeps.b.base = ml_collections.ConfigDict({"seed": 0, "model": {"rates": (0.0, 0.0)}})
    config.sweeps.b.axes = {"rate": sweeps.axis("model.rates", (0.3, 0.5), repeat=2)}
    trial = sweeps.expand(config)[-1]
    assert trial.name == "b-rate0.5" and trial.params()["rate"] == 0.5
    assert tuple(trial.config.model.rates) == (0.5, 0.5)


STUDY_FILES = sorted((REPO / "configs" / "studies").glob("post*.py"))


def test_there_is_a_study_per_post():
    assert [p.stem for p in STUDY_FILES] == [f"post00{i}" for i in range(5)]


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_study_configs_expand_into_valid_training_configs(path):
    from dropout_study import models, run_config

    for scale in ("cpu", "full"):
        config = sweeps.load_config_file(path, scale)
        assert config.name == path.stem and config.scale == scale
        assert len(config.seeds) >= 3
        trials = sweeps.expand(config)
        sweeps.references(config, trials)
        for trial in trials:
            run_config.validate(trial.config)
            models.create_model(trial.config.model)
            if scale == "cpu":
                assert trial.config.data.source == "local", trial.name
    with pytest.raises(ValueError, match="scale"):
        sweeps.load_config_file(path, "tiny")
    text = path.read_text()  # the docstring states the cpu reductions, measured time and command
    results = path.parents[2] / "results"
    if results_index.is_current(results, path.stem, path.parent):
        measured = rf"cpu \(2 CPU cores: \d+ minutes as two shards .*; results/{path.stem}\)"
    else:  # the committed runs are of an earlier scale: the docstring must not time this one
        measured = rf"cpu \(2 CPU cores: not yet run at this scale; results/{path.stem} holds"
    assert re.search(measured, text, re.DOTALL)
    assert f"--config=configs/studies/{path.stem}.py:cpu" in text
