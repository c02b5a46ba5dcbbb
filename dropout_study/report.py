"""The report of a study: tables, plots and REPORT.md with a verdict for every claim.

    python -m dropout_study.report --workdir=DIR --out=results/post000

DIR is the study's folder (WORKDIR/<study>, holding study.json) or the workdir given to the study
command. The report reads only small files (study.json, metrics.jsonl, summary.json, failed.json,
mc_eval.json, examples.npz) and copies them to OUT/raw, so that `--workdir=OUT/raw` regenerates
the same report from committed results.
"""

import csv
import inspect
import math
import pathlib
import shlex
import statistics

import numpy as np
from absl import app, flags

from dropout_study import claims as claims_lib
from dropout_study import report_plots, run_files, stats

RAW_FILES = (
    run_files.METRICS_FILE,
    run_files.SUMMARY_FILE,
    run_files.FAILED,
    run_files.MC_EVAL,
    run_files.EXAMPLES,
    run_files.CONFIG_FILE,
)
CONVERGE_TOLERANCE = {"accuracy": 0.01, "psnr": 0.1}  # within 1 pt / 0.1 dB of the run's best
TABLE_METRICS = (
    "test_accuracy",
    "test_psnr",
    "final_test_accuracy",
    "peak_test_accuracy",
    "best_val_accuracy",
    "best_val_psnr",
    "final_train_accuracy",
    "test_loss",
    "best_epoch",
    "converge_epoch",
    "epoch_time",
    "num_params",
    *(f"{kind}_{name}" for name in ("accuracy", "nll", "ece") for kind in ("det", "mc")),
)
DIFF_METRICS = ("test_accuracy", "test_psnr", "test_loss", "epoch_time")
STEPS = {"best_epoch": 1, "converge_epoch": 1, "epochs_run": 1, "num_epochs": 1}  # discrete
EXACT = ("num_params", "num_epochs", "train_examples")  # fixed by the config, equal per seed


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else math.nan


def run_metrics(record):
    """Per-run scalars from a finished run's epochs, summary and evaluations (empty if unfinished).

    Metrics: test_<score>, test_loss: the test split at the checkpoint the validation split
    selected; final_test_<score>: the test split after the last epoch; peak_test_accuracy: the
    best test accuracy over epochs, the posts' protocol (it selects on the test split: for
    comparison with their figures only); best_val_<score>: best validation accuracy (or PSNR)
    over epochs; best_epoch: its epoch; converge_epoch: first epoch within 1 pt (0.1 dB) of that
    best; final_train_<score>: last epoch, dropout on; min_val_loss and overfit_loss_rise (last
    val loss minus its minimum); epoch_time: median training seconds per epoch (validation
    excluded) over epochs without compilation or resume (`warmup`); num_params; mc_* / det_*:
    MC-dropout and deterministic accuracy, NLL, ECE on the test split. Runs that selected on
    the test split (validation='test') have test = validation scores.
    """
    rows = record.epochs
    if record.summary is None or not rows:
        return {}
    score = record.score
    val = np.array([r[f"val_{score}"] for r in rows], dtype=np.float64)
    loss = np.array([r["val_loss"] for r in rows], dtype=np.float64)
    best = int(np.argmax(val))
    converged = int(np.argmax(val >= val[best] - CONVERGE_TOLERANCE[score]))
    timed = [r for r in rows if not r.get("warmup", False)]
    metrics = {
        **_test_metrics(record.summary, rows[best], rows[-1], score),
        f"best_val_{score}": float(val[best]),
        "best_epoch": rows[best]["epoch"],
        "converge_epoch": rows[converged]["epoch"],
        f"final_train_{score}": rows[-1][f"train_{score}"],
        "min_val_loss": float(loss.min()),
        "overfit_loss_rise": float(loss[-1] - loss.min()),
        "epoch_time": _median(r.get("train_time_s") for r in timed),
        "examples_per_sec": _median(r.get("examples_per_s") for r in timed),
        "epochs_run": len(rows),
        "num_epochs": record.summary.get("num_epochs"),
        "train_examples": record.summary.get("data", {}).get("sizes", {}).get("train"),
        "num_params": record.summary.get("num_params"),
    }
    peak = [r[f"test_{score}"] for r in rows if f"test_{score}" in r]
    if score == "accuracy" and peak:
        metrics["peak_test_accuracy"] = float(max(peak))
    if record.mc_eval:
        for kind, prefix in (("mc", "mc"), ("deterministic", "det")):
            for name in ("accuracy", "nll", "ece"):
                metrics[f"{prefix}_{name}"] = record.mc_eval[kind][name]
    return metrics


def _test_metrics(summary, best_row, last_row, score):
    """Test scores at the selected checkpoint and the last epoch (validation='test': the same
    split, read off the validation records; those runs also give the posts' peak)."""
    test = summary.get("test")
    if test:
        selected, final = test["selected"], test["final"]
        return {
            f"test_{score}": selected[score],
            "test_loss": selected["loss"],
            f"final_test_{score}": final[score],
        }
    out = {
        f"test_{score}": best_row[f"val_{score}"],
        "test_loss": best_row["val_loss"],
        f"final_test_{score}": last_row[f"val_{score}"],
    }
    if score == "accuracy":
        out["peak_test_accuracy"] = best_row["val_accuracy"]
    return out


def run_facts(record):
    """What a run trained on, for the claims' validity conditions: dataset and protocol."""
    if record.summary is None:
        return {}
    data_info = record.summary.get("data", {})
    name = data_info.get("base") or data_info.get("name", "")
    return {"dataset": name, "validation": data_info.get("validation", "")}


def build_table(records):
    """A stats.Table of every finished run's scalars."""
    rows = (
        {
            "trial": r.trial,
            "seed": r.seed,
            "params": r.params,
            "metrics": run_metrics(r),
            "facts": run_facts(r),
        }
        for r in records
    )
    return stats.Table(rows, steps=STEPS, exact=EXACT)


# Tables ------------------------------------------------------------------------------------------


def cell_rows(table, trials):
    """Long-format rows: trial, its params, metric, n, mean, low, high."""
    rows = []
    for trial in trials:
        for metric in TABLE_METRICS:
            try:
                est = table.cell(trial, metric)
            except stats.MissingData:
                continue
            rows.append(
                {
                    "trial": trial,
                    **_flat_params(table.params(trial)),
                    "metric": metric,
                    "n": est.n,
                    "mean": est.mean,
                    "low": est.low,
                    "high": est.high,
                }
            )
    return rows


def difference_rows(table, references):
    """Paired differences (trial - its sweep's reference) for the headline metrics."""
    rows = []
    for sweep, reference in references.items():
        for trial in table.trials(sweep=sweep):
            if trial == reference:
                continue
            for metric in DIFF_METRICS:
                try:
                    est = table.difference(trial, reference, metric)
                except stats.MissingData:
                    continue
                shared = set(table.values(trial, metric)) & set(table.values(reference, metric))
                rows.append(
                    {
                        "trial": trial,
                        "reference": reference,
                        "metric": metric,
                        "paired": len(shared) >= 2,
                        "n": est.n,
                        "mean": est.mean,
                        "low": est.low,
                        "high": est.high,
                        "ci_vs_0": _sign(est),
                    }
                )
    return rows


def _sign(est):
    """Where the interval lies relative to 0: 'above 0', 'below 0' or 'includes 0'."""
    if est.low > 0:
        return "above 0"
    if est.high < 0:
        return "below 0"
    return "includes 0"


def _flat_params(params):
    return {k: "_".join(map(str, v)) if isinstance(v, list) else v for k, v in params.items()}


def write_csv(path, rows):
    """Rows (dicts) as CSV with the union of their keys as columns, in first-seen order."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(metric, est):
    if "accuracy" in metric:
        return est.format(".2f", 100.0)
    return est.format(".0f" if metric == "num_params" else ".4g")


def cells_markdown(table, trials):
    """One row per trial: n seeds and mean [95% CI] of each metric present."""
    metrics = [m for m in TABLE_METRICS if m in table.metrics()]
    lines = [
        "| trial | n | " + " | ".join(metrics) + " |",
        "|---" * (len(metrics) + 2) + "|",
    ]
    for trial in trials:
        cells, n = [], 0
        for metric in metrics:
            try:
                est = table.cell(trial, metric)
            except stats.MissingData:
                cells.append("-")
                continue
            n = max(n, est.n)
            cells.append(_fmt(metric, est))
        lines.append(f"| {trial} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def differences_markdown(rows):
    lines = [
        "| trial | reference | metric | paired | mean [95% CI] | CI vs 0 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        est = stats.Estimate(r["mean"], r["low"], r["high"], r["n"])
        lines.append(
            f"| {r['trial']} | {r['reference']} | {r['metric']} | {r['paired']} | "
            f"{_fmt(r['metric'], est)} | {r['ci_vs_0']} |"
        )
    return "\n".join(lines)


# Plots -------------------------------------------------------------------------------------------


# REPORT.md ---------------------------------------------------------------------------------------


def claims_markdown(outcomes):
    """The claims table: verdict, conditions, and per part the estimate, region and MDE."""
    lines = [
        "| id | claim | post | ours: mean [95% CI] | region (part verdict; Holm p against) "
        "| MDE (80%) | conditions | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        c = o.claim
        if o.missing:
            ours, region, mde = o.missing, "-", "-"
        else:
            ours = "<br>".join(f"{p.label}: {p.shown()}" for p in o.parts)
            region = "<br>".join(
                f"{p.region()} ({p.verdict}; {q:.2g})"
                for p, q in zip(o.parts, o.adjusted, strict=True)
            )
            mde = "<br>".join(p.mde() for p in o.parts)
        conditions = "<br>".join(
            f"{'failed' if why else 'held'}: {cond.text}" + (f" ({why})" if why else "")
            for cond, why in o.conditions
        )
        lines.append(
            f"| {c.id} | {c.text} | {c.post_number} | {ours} | {region} | {mde} | "
            f"{conditions or 'none'} | **{o.verdict}** |"
        )
    return "\n".join(lines)


def _status_line(records):
    counts = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def _data_lines(records):
    found = {(r.summary or {}).get("data", {}).get("summary") for r in records}
    return sorted(x for x in found if x)


def _overridden(command):
    """What the study command changed from its config file's scale, for the 'Scale:' line."""
    flags = [f for f in shlex.split(command) if f.startswith("--config.")]
    if not flags:
        return ""
    return f" The runs differ from this: the command overrode {', '.join(f'`{f}`' for f in flags)}."


def report_markdown(manifest, records, table, outcomes, diff_rows, plots, regenerate):
    """The whole REPORT.md text."""
    env = manifest.get("environment", {})
    lines = [
        f"# Study {manifest['name']} ({manifest.get('scale', '')} scale)",
        "",
        f"Runs: {len(records)} ({_status_line(records)}); seeds {manifest['seeds']}.",
        "",
        f"Made with: `{manifest.get('command') or 'python -m dropout_study.study ...'}`",
        "",
        f"Report regenerated with: `{regenerate}`",
        "",
    ]
    if manifest.get("notes"):
        lines += [f"Scale: {manifest['notes']}" + _overridden(manifest.get("command") or ""), ""]
    lines += [f"Data: {d}" for d in _data_lines(records)]
    if env:
        packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
        lines += [
            "",
            f"Machine: {env.get('cpu')} ({env.get('cpu_count')} CPUs), {env.get('devices')}, "
            f"{env.get('system')}, allocator {env.get('allocator')}; Python "
            f"{env.get('python')}; {packages}.",
        ]
    lines += ["", "## Verdict rule", "", stats.VERDICT_RULE, ""]
    if outcomes:
        lines += ["## Claims", "", claims_markdown(outcomes), ""]
    lines += [
        "## Cells (mean [95% CI] over seeds; accuracies in %)",
        "",
        "All values: `cells.csv`; per-run values: `runs.csv`. "
        + " ".join(inspect.cleandoc(run_metrics.__doc__).splitlines()[2:]),
        "",
        cells_markdown(table, table.trials()),
        "",
        "## Paired differences against each sweep's reference (`differences.csv`)",
        "",
        differences_markdown(diff_rows),
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{name}]({name})" for name in plots]
    failed = [r for r in records if r.failure]
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- {run_files.run_name(r.trial, r.seed)} ({r.failure['stage']}): {r.failure['error']}"
            for r in failed
        ]
    return "\n".join(lines) + "\n"


def copy_raw(study_dir, records, raw_dir):
    """Copies the small per-run files and study.json to the local raw_dir (same layout).

    `study_dir` may be a bucket (gs://): the files are read through run_files.path.
    """
    study_dir = run_files.path(study_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / run_files.MANIFEST).write_bytes((study_dir / run_files.MANIFEST).read_bytes())
    for r in records:
        target = raw_dir / r.directory.relative_to(study_dir)  # shared runs: once, as the owner's
        for name in RAW_FILES:
            if (r.directory / name).exists():
                target.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes((r.directory / name).read_bytes())


def find_study_dir(workdir, name=""):
    """The folder holding study.json: `workdir` itself, workdir/<name>, or its only study."""
    workdir = run_files.path(workdir)
    if (workdir / run_files.MANIFEST).exists() and not name:
        return workdir
    if name:
        if not (workdir / name / run_files.MANIFEST).exists():
            raise FileNotFoundError(f"{workdir / name / run_files.MANIFEST} does not exist.")
        return workdir / name
    found = sorted(p.parent for p in workdir.glob(f"*/{run_files.MANIFEST}"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"--workdir={workdir} holds {len(found)} studies ({[p.name for p in found]}); "
            "point --workdir at one study's folder or pass --study=NAME."
        )
    return found[0]


def write_report(study_dir, out):
    """Writes REPORT.md, CSV tables and PNG plots of the study in `study_dir` to `out`."""
    study_dir, out = run_files.path(study_dir), pathlib.Path(out)
    manifest, records = run_files.load_study(study_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw"
    if raw.resolve() != study_dir.resolve():
        copy_raw(study_dir, records, raw)
    table = build_table(records)
    trials = table.trials()
    write_csv(
        out / "runs.csv",
        [{"trial": r.trial, "seed": r.seed, "status": r.status, **run_metrics(r)} for r in records],
    )
    write_csv(out / "cells.csv", cell_rows(table, trials))
    references = manifest.get("references", {})
    diff_rows = difference_rows(table, references)
    write_csv(out / "differences.csv", diff_rows)
    by_sweep = {}
    for t in trials:
        by_sweep.setdefault(table.params(t)["sweep"], []).append(t)
    plots = report_plots.plot_curves(records, by_sweep, out)
    plots += report_plots.plot_against_axes(table, out)
    plots += report_plots.plot_block_grid(table, out)
    plots += report_plots.plot_cases(table, out)
    plots += report_plots.plot_reliability(records, out)
    plots += report_plots.plot_denoise_examples(records, out)
    outcomes = [claims_lib.evaluate(c, table) for c in claims_lib.for_study(manifest["name"])]
    regenerate = f"python -m dropout_study.report --workdir={raw} --out={out}"
    text = report_markdown(manifest, records, table, outcomes, diff_rows, plots, regenerate)
    (out / "REPORT.md").write_text(text)
    return outcomes


def define_flags():
    flags.DEFINE_string("workdir", None, "A study's folder (with study.json) or its parent.")
    flags.DEFINE_string("study", "", "Study name when --workdir holds several studies.")
    flags.DEFINE_string("out", None, "Output folder, e.g. results/post000.")
    flags.mark_flags_as_required(["workdir", "out"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    f = flags.FLAGS
    outcomes = write_report(find_study_dir(f.workdir, f.study), f.out)
    for o in outcomes:
        print(f"{o.claim.id} {o.verdict}: {o.claim.text}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
