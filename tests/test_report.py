"""Report: per-run scalars, tables, plots and claim verdicts from synthetic metric files."""

import csv
import json
import math
import pathlib

import ml_collections
import numpy as np
import pytest

from dropout_study import claims, report, report_plots, run_files, stats, study, sweeps

KEEPS = (0.1, 0.3, 0.5, 0.7, 0.9)
EPOCHS = 16  # claim 000.6 needs at least 16 epochs


def _record(epochs, summary=None, mc_eval=None):
    return run_files.RunRecord("t", 0, {}, "done", epochs, summary or {}, mc_eval, None)


def test_run_metrics_of_a_known_curve():
    acc = [0.60, 0.80, 0.845, 0.85, 0.84, 0.83]
    loss = [0.9, 0.5, 0.40, 0.38, 0.45, 0.50]
    times = [30.0, 10.0, 12.0, 11.0, 50.0, 11.5]
    epochs = [
        {
            "epoch": e + 1,
            "val_accuracy": acc[e],
            "val_loss": loss[e],
            "train_accuracy": 0.5 + 0.08 * e,
            "train_time_s": times[e],
            "examples_per_s": 100.0,
            "warmup": e in (0, 4),  # compile epoch and a resumed epoch
        }
        for e in range(6)
    ]
    m = report.run_metrics(_record(epochs, {"num_params": 1234}))
    assert m["best_val_accuracy"] == 0.85 and m["best_epoch"] == 4
    assert m["converge_epoch"] == 3  # first epoch within 1 pt of the best
    # No test scores in the summary: a run that selected on the test split (validation='test').
    assert m["test_accuracy"] == m["peak_test_accuracy"] == 0.85 and m["test_loss"] == 0.38
    assert m["final_test_accuracy"] == 0.83 and m["final_train_accuracy"] == pytest.approx(0.9)
    assert m["min_val_loss"] == 0.38 and m["overfit_loss_rise"] == pytest.approx(0.12)
    assert m["epoch_time"] == 11.25  # median of the non-warmup epochs 10, 12, 11, 11.5
    assert m["num_params"] == 1234
    assert (
        report.run_metrics(run_files.RunRecord("t", 0, {}, "partial", epochs, None, None, None))
        == {}
    )


def test_run_metrics_take_test_scores_at_the_selected_checkpoint():
    epochs = [
        {"epoch": e, "val_accuracy": v, "val_loss": 1.0, "train_accuracy": 0.5, "test_accuracy": t}
        for e, v, t in ((1, 0.5, 0.55), (2, 0.6, 0.52), (3, 0.55, 0.58))
    ]
    test = {
        "selected": {"epoch": 2, "accuracy": 0.52, "loss": 0.9},
        "final": {"epoch": 3, "accuracy": 0.58, "loss": 0.8},
    }
    m = report.run_metrics(_record(epochs, {"test": test, "data": {"validation": "holdout"}}))
    assert (m["test_accuracy"], m["test_loss"], m["final_test_accuracy"]) == (0.52, 0.9, 0.58)
    assert m["peak_test_accuracy"] == 0.58  # the posts' protocol: best test over epochs
    assert m["best_val_accuracy"] == 0.6


def test_run_metrics_reads_mc_evaluation():
    epochs = [{"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0, "train_accuracy": 0.5}]
    mc = {
        "mc": {"accuracy": 0.7, "nll": 0.8, "ece": 0.02},
        "deterministic": {"accuracy": 0.69, "nll": 0.9, "ece": 0.05},
    }
    m = report.run_metrics(_record(epochs, {}, mc))
    assert (m["mc_nll"], m["det_nll"], m["det_ece"]) == (0.8, 0.9, 0.05)
    assert math.isnan(m["epoch_time"])


def _world(lstm_time, validation="holdout"):
    """Synthetic post-000 results with known truth: `lstm_time` seconds/epoch vs 10 for the CNN."""

    def train_fn(config, workdir):
        arch, keep, seed = config.model.arch, config.model.keep, config.seed
        noise = np.random.default_rng([seed, int(keep * 10), arch == "lstm"]).normal(0, 3e-4)
        shift = 0.004 * seed  # seed effect shared by every cell: pairing removes it
        if arch == "lstm":
            top = 0.865 + 0.01 * (1 - keep)  # rises as keep falls, ~1 pt above the CNN
            seconds = lstm_time * (1 + 0.1 * (1 - keep))
        else:
            top = 0.86
            seconds = 10.0
        rows = []
        jitter = np.random.default_rng([seed, int(keep * 10), arch == "lstm", 1]).normal(0, 2e-3)
        for e in range(1, EPOCHS + 1):
            peak = 1 - ((e - 8 - seed % 2) / 8) ** 2  # best at epoch 8 or 9, worse after
            rows.append(
                {
                    "epoch": e,
                    "val_accuracy": top + shift + noise - 0.05 * (1 - peak),
                    "val_loss": 0.3 + 0.1 * (1 - peak),
                    "train_accuracy": 0.9,
                    "train_time_s": seconds * (1 + jitter + 0.002 * ((e * 7 + seed) % 3)),
                    "examples_per_s": 1000.0,
                    "warmup": e == 1,
                }
            )
        path = pathlib.Path(workdir)
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        best = max(rows, key=lambda r: r["val_accuracy"])
        scores = {"accuracy": best["val_accuracy"] + 0.001, "loss": best["val_loss"]}
        summary = {
            "num_params": 100,
            "num_epochs": EPOCHS,
            "data": {"name": "imdb", "validation": validation, "sizes": {"train": 22500}},
            "test": {"selected": scores, "final": scores},
        }
        (path / "summary.json").write_text(json.dumps(summary))

    return train_fn


def _post000(seeds=(0, 1, 2)):
    config = ml_collections.ConfigDict({"name": "post000", "scale": "cpu", "seeds": seeds})
    config.sweeps = ml_collections.ConfigDict()
    for arch in ("cnn", "lstm"):
        base = ml_collections.ConfigDict({"seed": 0, "model": {"arch": arch, "keep": 1.0}})
        config.sweeps[arch] = ml_collections.ConfigDict(
            {"base": base, "axes": {"keep": sweeps.axis("model.keep", KEEPS)}}
        )
    return config


def _verdicts(outcomes):
    return {o.claim.id: o.verdict for o in outcomes}


@pytest.fixture(scope="module")
def supported_world(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    study.run_study(_post000(), work, train_fn=_world(lstm_time=16.8))
    out = tmp_path_factory.mktemp("out")
    return work / "post000", out, report.write_report(work / "post000", out)


def test_claims_with_known_answers_are_supported(supported_world):
    _, _, outcomes = supported_world
    assert _verdicts(outcomes) == {
        "000.1": stats.SUPPORTED,  # LSTM +1.4 pt, inside (0, 2) pt
        "000.2": stats.SUPPORTED,
        "000.3": stats.SUPPORTED,  # ratio ~1.77 inside (1.34, 2.1)
        "000.4": stats.SUPPORTED,  # smaller keep: LSTM slower, CNN unchanged
        "000.5": stats.SUPPORTED,  # LSTM time varies with keep, the CNN's does not
        "000.6": stats.SUPPORTED,  # best at epoch 8, val loss rises after
    }
    speed = next(o for o in outcomes if o.claim.id == "000.3").parts[0].estimate
    assert speed.mean == pytest.approx(16.8 * 1.05 / 10, rel=0.01)


def test_a_false_claim_is_contradicted(tmp_path):
    study.run_study(_post000(), tmp_path, train_fn=_world(lstm_time=10.0))
    table = report.build_table(run_files.load_study(tmp_path / "post000")[1])
    outcome = claims.evaluate(next(c for c in claims.CLAIMS if c.id == "000.3"), table)
    assert outcome.verdict == stats.CONTRADICTED  # ratio ~1.05, far below 1.68/1.25


def test_missing_cells_make_a_claim_inconclusive_with_the_reason():
    table = stats.Table([])
    outcome = claims.evaluate(claims.for_study("post001")[0], table)
    assert outcome.verdict == stats.INCONCLUSIVE and "not measured" in outcome.missing


def test_report_files_tables_and_plots(supported_world):
    study_dir, out, _ = supported_world
    text = (out / "REPORT.md").read_text()
    assert "## Verdict rule" in text and stats.VERDICT_RULE in text
    assert text.count("| **supported** |") == 6
    assert "| 000.3 |" in text and "1.68x" in text
    for name in (
        "curves_cnn.png",
        "curves_lstm.png",
        "test_accuracy_vs_keep.png",
        "epoch_time_vs_keep.png",
    ):
        assert (out / name).stat().st_size > 5000 and f"]({name})" in text
    with open(out / "cells.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == "epoch_time"]
    cnn = next(r for r in rows if r["trial"] == "cnn-keep0.5")
    assert float(cnn["mean"]) == pytest.approx(10.0, rel=0.005) and cnn["n"] == "3"
    assert cnn["sweep"] == "cnn" and float(cnn["keep"]) == 0.5
    with open(out / "differences.csv") as f:
        diffs = list(csv.DictReader(f))
    lstm = next(r for r in diffs if r["trial"] == "lstm-keep0.9" and r["metric"] == "test_accuracy")
    assert lstm["reference"] == "lstm-keep0.1" and lstm["paired"] == "True"
    assert float(lstm["mean"]) == pytest.approx(-0.008, abs=1e-3)
    assert lstm["ci_vs_0"] == "below 0"


def test_report_regenerates_from_its_raw_copy(supported_world, tmp_path):
    _, out, _ = supported_world
    assert (out / "raw" / "study.json").exists()
    assert (out / "raw" / "lstm-keep0.3" / "seed_2" / "metrics.jsonl").exists()
    again = tmp_path / "again"
    report.write_report(report.find_study_dir(out / "raw"), again)
    assert (again / "cells.csv").read_text() == (out / "cells.csv").read_text()
    assert _verdicts(report.write_report(out / "raw", again)) == _verdicts(supported_world[2])


def test_failed_runs_are_listed(tmp_path):
    def flaky(config, workdir):
        if config.model.keep == 0.5 and config.seed == 1:
            raise MemoryError("out of memory")
        _world(16.8)(config, workdir)

    study.run_study(_post000(), tmp_path, train_fn=flaky)
    out = tmp_path / "out"
    report.write_report(tmp_path / "post000", out)
    text = (out / "REPORT.md").read_text()
    assert "## Failed runs" in text and "cnn-keep0.5/seed_1 (train): MemoryError" in text
    assert "28 done, 2 failed" in text


def test_reliability_and_block_grid_plots(tmp_path):
    config = ml_collections.ConfigDict({"name": "grid", "seeds": (0, 1, 2)})
    base = ml_collections.ConfigDict({"seed": 0, "model": {"rates": (0.0, 0.0)}})
    one_hot = ((0.2, 0.0), (0.5, 0.0), (0.0, 0.2), (0.0, 0.5))
    config.sweeps = ml_collections.ConfigDict(
        {"blocks": {"base": base, "axes": {"rates": sweeps.axis("model.rates", one_hot)}}}
    )
    bins = {"count": [0, 5, 5], "confidence": [None, 0.5, 0.9], "accuracy": [None, 0.4, 0.8]}
    mc = {
        k: {"accuracy": 0.6, "nll": 0.7, "ece": 0.1, "bins": bins} for k in ("mc", "deterministic")
    }

    def train_fn(config, workdir):
        acc = 0.7 + sum(config.model.rates) / 10
        epochs = [{"epoch": 1, "val_accuracy": acc, "val_loss": 1.0, "train_accuracy": acc}]
        (pathlib.Path(workdir) / "metrics.jsonl").write_text(json.dumps(epochs[0]) + "\n")
        (pathlib.Path(workdir) / "summary.json").write_text("{}")

    def examples(config, workdir, count):
        images = np.random.default_rng(0).integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
        return {"noisy": images, "clean": images, "denoised": images}

    config.sweeps.blocks.mc_samples = 2
    config.sweeps.blocks.examples = 3
    evals = {"mc_samples": lambda *a: mc, "examples": examples}
    study.run_study(config, tmp_path, train_fn=train_fn, eval_fns=evals)
    out = tmp_path / "out"
    report.write_report(tmp_path / "grid", out)
    for name in ("block_grid_blocks.png", "reliability.png", "denoise_examples.png"):
        assert (out / name).stat().st_size > 5000
    assert (out / "raw" / "blocks-rates0_0.5" / "seed_2" / "examples.npz").exists()
    conf, acc, count = report_plots.pooled_bins([mc] * 3, "mc")
    assert count.tolist() == [0, 15, 15] and acc[1:].tolist() == pytest.approx([0.4, 0.8])


def test_find_study_dir(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "study.json").write_text("{}")
    assert report.find_study_dir(tmp_path) == tmp_path / "a"
    assert report.find_study_dir(tmp_path / "a") == tmp_path / "a"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "study.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="2 studies"):
        report.find_study_dir(tmp_path)
    assert report.find_study_dir(tmp_path, "b") == tmp_path / "b"


CLAIM_METRICS = (
    "best_val_accuracy",
    "test_accuracy",
    "final_test_accuracy",
    "final_train_accuracy",
    "best_val_psnr",
    "test_psnr",
    "test_loss",
    "best_epoch",
    "converge_epoch",
    "overfit_loss_rise",
    "epoch_time",
    "num_params",
    "epochs_run",
    "num_epochs",
    "train_examples",
    *(f"{p}_{m}" for p in ("mc", "det") for m in ("accuracy", "nll", "ece")),
)


@pytest.mark.parametrize("name", [f"post00{i}" for i in range(5)])
def test_every_claim_finds_its_trials_in_the_cpu_study(name):
    """Claims select trials by sweep, case and axis values: those must exist in the study."""
    path = pathlib.Path(__file__).resolve().parents[1] / "configs" / "studies" / f"{name}.py"
    config = sweeps.load_config_file(path, "cpu")
    rng = np.random.default_rng(0)
    rows = [
        {
            "trial": t.name,
            "seed": seed,
            "params": json.loads(json.dumps(t.params())),  # as read back from study.json
            "metrics": {m: float(rng.uniform(0.5, 2.0)) for m in CLAIM_METRICS},
        }
        for t in sweeps.expand(config)
        for seed in config.seeds
    ]
    outcomes = [claims.evaluate(c, stats.Table(rows)) for c in claims.for_study(name)]
    assert outcomes and all(o.parts and not o.missing for o in outcomes), [
        (o.claim.id, o.missing) for o in outcomes if o.missing
    ]


@pytest.mark.parametrize(
    "command, expected",
    [
        (
            "python -m dropout_study.study --config=configs/studies/post000.py:cpu",
            "Scale: 3 seeds.\n",
        ),
        (
            "python -m dropout_study.study --config=configs/studies/post000.py:cpu "
            "--config.seeds='(0, 1)' --workdir=w",
            "Scale: 3 seeds. The runs differ from this: the command overrode "
            "`--config.seeds=(0, 1)`.\n",
        ),
    ],
)
def test_the_scale_line_says_when_the_command_changed_the_scale(command, expected):
    manifest = {"name": "post000", "seeds": [0, 1], "notes": "3 seeds.", "command": command}
    text = report.report_markdown(manifest, [], stats.Table([]), [], [], [], "regenerate")
    assert expected in text
