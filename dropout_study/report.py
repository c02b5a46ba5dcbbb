"""The report of a study: tables, plots and REPORT.md with a verdict for every claim.

    python -m dropout_study.report --workdir=DIR --out=results/post000

DIR is the study's folder (WORKDIR/<study>, holding study.json) or the workdir given to the study
command. The report reads only small files (study.json, metrics.jsonl, summary.json, failed.json,
mc_eval.json, examples.npz) and copies them to OUT/raw, so that `--workdir=OUT/raw` regenerates
the same report from committed results.
"""

import contextlib
import csv
import inspect
import math
import pathlib
import shlex
import shutil
import statistics

import numpy as np
from absl import app, flags

from dropout_study import claims as claims_lib
from dropout_study import figures, stats, study

RAW_FILES = (
    study.METRICS,
    study.SUMMARY,
    study.FAILED,
    study.MC_EVAL,
    study.EXAMPLES,
    "config.json",
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
    score = "psnr" if "val_psnr" in rows[0] else "accuracy"
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


def _score_metric(table, trials):
    """'test_accuracy', or 'test_psnr' for denoising trials, or None without values."""
    for metric in ("test_accuracy", "test_psnr"):
        for t in trials:
            with contextlib.suppress(stats.MissingData):
                table.values(t, metric)
                return metric
    return None


def plot_curves(records, trials_by_sweep, out):
    """Validation score per epoch, mean over finished seeds: a line per trial, a file per sweep."""
    names = []
    for sweep, trials in trials_by_sweep.items():
        fig, ax = figures.figure(figsize=(7, 4.5))
        score = "accuracy"
        for trial in trials:
            runs = [r for r in records if r.trial == trial and r.summary is not None and r.epochs]
            if not runs:
                continue
            score = "psnr" if "val_psnr" in runs[0].epochs[0] else "accuracy"
            length = min(len(r.epochs) for r in runs)
            curve = np.mean([[e[f"val_{score}"] for e in r.epochs[:length]] for r in runs], 0)
            ax.plot(np.arange(1, length + 1), curve, label=f"{trial} (n={len(runs)})")
        ax.set(xlabel="epoch", ylabel=f"validation {score}", title=f"{sweep}: mean over seeds")
        ax.legend(fontsize=6, ncol=2)
        names.append(figures.save(fig, out / f"curves_{sweep}.png"))
    return names


def _numeric_axes(table):
    """{axis label: [trials]} for axes whose values are plain numbers."""
    found = {}
    for trial in table.trials():
        for label, value in table.params(trial).items():
            if label not in ("sweep", "case") and isinstance(value, (int, float)):
                found.setdefault(label, []).append(trial)
    return found


def plot_against_axes(table, out):
    """Score and epoch time against each numeric axis, one line per sweep (and case)."""
    names = []
    for label, trials in _numeric_axes(table).items():
        for metric in (_score_metric(table, trials), "epoch_time"):
            if metric is None:
                continue
            fig, ax = figures.figure(figsize=(6, 4))
            groups = {}
            for t in trials:
                p = table.params(t)
                groups.setdefault("-".join(filter(None, (p["sweep"], p["case"]))), []).append(t)
            for group, members in groups.items():
                xs, means, errs = [], [], []
                for t in sorted(members, key=lambda t: table.params(t)[label]):
                    try:
                        est = table.cell(t, metric)
                    except stats.MissingData:
                        continue
                    half = (est.high - est.low) / 2 if math.isfinite(est.high) else 0.0
                    xs.append(table.params(t)[label])
                    means.append(est.mean)
                    errs.append(half)
                if xs:
                    ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=group)
            ax.set(xlabel=label, ylabel=metric, title=f"{metric} against {label} (95% CI)")
            ax.legend(fontsize=8)
            names.append(figures.save(fig, out / f"{metric}_vs_{label}.png"))
    return names


def plot_block_grid(table, out):
    """Heatmap of the score with dropout in one block only: block x rate (one-hot rate tuples)."""
    names = []
    score = "best_val_accuracy"
    for sweep in {table.params(t)["sweep"] for t in table.trials()}:
        cells = {}
        for t in table.trials(sweep=sweep):
            for value in table.params(t).values():
                if isinstance(value, list) and sum(v != 0 for v in value) == 1:
                    block = next(i for i, v in enumerate(value) if v != 0)
                    with contextlib.suppress(stats.MissingData):
                        cells[block, value[block]] = table.cell(t, score).mean
        if not cells:
            continue
        blocks = sorted({b for b, _ in cells})
        rates = sorted({r for _, r in cells})
        grid = np.full((len(blocks), len(rates)), np.nan)
        for (b, r), v in cells.items():
            grid[blocks.index(b), rates.index(r)] = v * 100
        fig, ax = figures.figure(figsize=(1.6 * len(rates) + 2, 1.2 * len(blocks) + 1.5))
        image = ax.imshow(grid, cmap="YlGn", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", bbox={"fc": "w", "lw": 0})
        ax.set_xticks(range(len(rates)), [f"{r:g}" for r in rates])
        ax.set_yticks(range(len(blocks)), [f"block {b + 1}" for b in blocks])
        ax.set(xlabel="dropout rate in that block only", title=f"{sweep}: {score} (%)")
        fig.colorbar(image, ax=ax)
        names.append(figures.save(fig, out / f"block_grid_{sweep}.png"))
    return names


def plot_cases(table, out):
    """Bars with 95% CIs of the score and the epoch time per case, for sweeps made of cases."""
    names = []
    sweeps = dict.fromkeys(table.params(t)["sweep"] for t in table.trials())
    for sweep in sweeps:
        trials = table.trials(sweep=sweep)
        if len(trials) < 2 or any(len(table.params(t)) > 2 for t in trials):
            continue  # only sweeps of cases alone (no axis)
        fig, axes = figures.figure(1, 2, figsize=(11, 0.35 * len(trials) + 2))
        for ax, metric in zip(axes, (_score_metric(table, trials), "epoch_time"), strict=True):
            shown = []
            for t in trials:
                try:
                    shown.append((table.params(t)["case"], table.cell(t, metric)))
                except stats.MissingData:
                    continue
            if not shown:
                continue
            ys = np.arange(len(shown))
            means = [e.mean for _, e in shown]
            errs = [(e.high - e.low) / 2 if math.isfinite(e.high) else 0.0 for _, e in shown]
            ax.barh(ys, means, xerr=errs, capsize=3, color="tab:blue", alpha=0.7)
            ax.set_yticks(ys, [c for c, _ in shown], fontsize=8)
            ax.invert_yaxis()
            lo = min(m - e for m, e in zip(means, errs, strict=True))
            hi = max(m + e for m, e in zip(means, errs, strict=True))
            pad = 0.1 * (hi - lo) or 0.01
            ax.set_xlim(lo - pad, hi + pad)
            ax.set(xlabel=metric, title=f"{sweep}: {metric} (95% CI)")
        names.append(figures.save(fig, out / f"cases_{sweep}.png"))
    return names


def _pooled_bins(evals, kind):
    """Reliability bins summed over seeds: (confidence, accuracy, count) per bin."""
    count = np.zeros(len(evals[0][kind]["bins"]["count"]))
    conf = np.zeros_like(count)
    acc = np.zeros_like(count)
    for e in evals:
        b = e[kind]["bins"]
        n = np.asarray(b["count"], dtype=np.float64)
        count += n
        conf += n * np.nan_to_num(np.asarray(b["confidence"], dtype=np.float64))
        acc += n * np.nan_to_num(np.asarray(b["accuracy"], dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return conf / count, acc / count, count


def plot_reliability(records, out):
    """Reliability diagram, deterministic vs MC dropout, for every trial with an MC evaluation."""
    trials = list(dict.fromkeys(r.trial for r in records if r.mc_eval))
    if not trials:
        return []
    fig, axes = figures.figure(1, len(trials), figsize=(3.6 * len(trials), 3.8), squeeze=False)
    for ax, trial in zip(axes[0], trials, strict=True):
        evals = [r.mc_eval for r in records if r.trial == trial and r.mc_eval]
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        for kind, label in (("deterministic", "deterministic"), ("mc", "MC dropout")):
            conf, acc, _ = _pooled_bins(evals, kind)
            ece = np.mean([e[kind]["ece"] for e in evals])
            ax.plot(conf, acc, marker="o", label=f"{label} (ECE {ece:.3f})")
        ax.set(xlabel="confidence", ylabel="accuracy", title=f"{trial} (n={len(evals)})")
        ax.legend(fontsize=7)
    return [figures.save(fig, out / "reliability.png")]


def plot_denoise_examples(records, out, count=4):
    """Noisy input, clean target and each trial's output (first seed with saved examples)."""
    shown = {}
    for r in records:
        path = r.directory / study.EXAMPLES
        if r.trial not in shown and path.exists():
            shown[r.trial] = np.load(path)
    if not shown:
        return []
    first = next(iter(shown.values()))
    columns = [("noisy", first["noisy"]), ("clean", first["clean"])]
    columns += [(t, d["denoised"]) for t, d in shown.items()]
    rows = min(count, len(first["clean"]))
    fig, axes = figures.figure(rows, len(columns), figsize=(1.6 * len(columns), 1.7 * rows))
    axes = np.atleast_2d(axes)
    for j, (title, images) in enumerate(columns):
        for i in range(rows):
            axes[i, j].imshow(images[i])  # uint8 (N, H, W, C)
            axes[i, j].axis("off")
        axes[0, j].set_title(title, fontsize=6)
    return [figures.save(fig, out / "denoise_examples.png")]


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
            f"- {r.trial}/seed_{r.seed} ({r.failure['stage']}): {r.failure['error']}"
            for r in failed
        ]
    return "\n".join(lines) + "\n"


def copy_raw(study_dir, records, raw_dir):
    """Copies the small per-run files and study.json to raw_dir (same layout)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(study_dir / study.MANIFEST, raw_dir / study.MANIFEST)
    for r in records:
        target = raw_dir / r.directory.relative_to(study_dir)  # shared runs: once, as the owner's
        for name in RAW_FILES:
            if (r.directory / name).exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(r.directory / name, target / name)


def find_study_dir(workdir, name=""):
    """The folder holding study.json: `workdir` itself, workdir/<name>, or its only study."""
    workdir = pathlib.Path(workdir)
    if (workdir / study.MANIFEST).exists() and not name:
        return workdir
    if name:
        if not (workdir / name / study.MANIFEST).exists():
            raise FileNotFoundError(f"{workdir / name / study.MANIFEST} does not exist.")
        return workdir / name
    found = sorted(p.parent for p in workdir.glob(f"*/{study.MANIFEST}"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"--workdir={workdir} holds {len(found)} studies ({[p.name for p in found]}); "
            "point --workdir at one study's folder or pass --study=NAME."
        )
    return found[0]


def write_report(study_dir, out):
    """Writes REPORT.md, CSV tables and PNG plots of the study in `study_dir` to `out`."""
    study_dir, out = pathlib.Path(study_dir), pathlib.Path(out)
    manifest, records = study.load_study(study_dir)
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
    plots = plot_curves(records, by_sweep, out)
    plots += plot_against_axes(table, out)
    plots += plot_block_grid(table, out)
    plots += plot_cases(table, out)
    plots += plot_reliability(records, out)
    plots += plot_denoise_examples(records, out)
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
