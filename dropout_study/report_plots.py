"""The figures of a study report: curves, metrics against each sweep axis, the block grid, the
cases, reliability diagrams and denoised examples. Each returns the names of the files it wrote.
"""

import contextlib
import math

import numpy as np

from dropout_study import figures, run_files, stats


def score_metric(table, trials):
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
            score = runs[0].score
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
        for metric in (score_metric(table, trials), "epoch_time"):
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
        for ax, metric in zip(axes, (score_metric(table, trials), "epoch_time"), strict=True):
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


def pooled_bins(evals, kind):
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
            conf, acc, _ = pooled_bins(evals, kind)
            ece = np.mean([e[kind]["ece"] for e in evals])
            ax.plot(conf, acc, marker="o", label=f"{label} (ECE {ece:.3f})")
        ax.set(xlabel="confidence", ylabel="accuracy", title=f"{trial} (n={len(evals)})")
        ax.legend(fontsize=7)
    return [figures.save(fig, out / "reliability.png")]


def plot_denoise_examples(records, out, count=4):
    """Noisy input, clean target and each trial's output (first seed with saved examples)."""
    shown = {}
    for r in records:
        path = r.directory / run_files.EXAMPLES
        if r.trial not in shown and path.exists():
            with path.open("rb") as f:
                shown[r.trial] = dict(np.load(f))
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
