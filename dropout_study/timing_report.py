"""The timing run's outputs: markdown tables, plots, targets, answers to the posts' speed
claims, and the README of `python -m dropout_study.timing`.
"""

import json
import pathlib
import statistics

import numpy as np

from dropout_study import figures, masks
from dropout_study.claims import core

RESULTS_FILE = "results.json"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; floats with 4 significant digits."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table(rows: list[dict], columns) -> str:
    """Markdown table of dict rows; columns: (header, key or function of the row); a missing
    key is a blank cell."""
    return markdown_table(
        [header for header, _ in columns],
        [[get(r) if callable(get) else r.get(get, "") for _, get in columns] for r in rows],
    )


SAMPLING_COLUMNS = (
    ("sampler", "sampler"),
    ("rate", "rate"),
    ("effective rate", "effective_rate"),
    ("observed rate", "observed_rate"),
    ("mask G el/s", "mask_gelem_s"),
    ("dropout G el/s", "dropout_gelem_s"),
    ("copy ms", "copy_ms"),
    ("dropout ms", "dropout_ms"),
    ("dropout / copy", "dropout_over_copy"),
    ("mask / copy", "mask_over_copy"),
)


ATTRIBUTION_COLUMNS = (
    ("model", "model"),
    ("dropout", "variant"),
    ("rates", lambda r: json.dumps(r["rates"])),
    ("batch", "batch_size"),
    ("off ms", "off_ms"),
    ("sample ms", "sample_ms"),
    ("full ms", "full_ms"),
    ("sampling ms", "sampling_ms"),
    ("application ms", "application_ms"),
    ("overhead", lambda r: f"{100 * r['overhead']:.1f}%"),
)


COMPACT_COLUMNS = (
    ("layer", "layer"),
    ("rate", "rate"),
    ("effective rate", "effective_rate"),
    ("masked ms", "masked_ms"),
    ("compact ms", "compact_ms"),
    ("speed-up", "speedup"),
    ("compact, kept-slice grads ms", "compact_slices_ms"),
    ("speed-up, kept-slice grads", "speedup_slices"),
    ("ideal", "ideal_speedup"),
)


EPOCH_COLUMNS = (
    ("model", "model"),
    ("keep prob", "keep_prob"),
    ("steps/epoch", "steps_per_epoch"),
    ("default sampler s", "default_epoch_s"),
    ("fastest sampler s", "fastest_epoch_s"),
    ("masked twin s", "masked_twin_epoch_s"),
    ("compact twin s", "compact_twin_epoch_s"),
    ("default / highest keep", "default_vs_baseline"),
    ("masked twin / compact twin", "twin_speedup"),
)


def sampling_tables(results) -> str:
    s = results["sampling"]
    allocator_name = s["impl_rows"][0]["allocator"] if s["impl_rows"] else "-"
    out = [
        "# Mask sampling\n\nElements/s of a keep mask alone (bool) and of a full inverted dropout; "
        "ratios to a scaled copy x*s of the same tensor timed in the same repeat (median of the "
        "per-repeat ratios). Effective rate: "
        "the rate a sampler realises (integer thresholds quantise it); observed: in one mask.\n",
        f"\n## Samplers x PRNG implementations ({s['impl_elements']} float32 elements, "
        f"allocator {allocator_name})\n\n",
        table(s["impl_rows"], (("PRNG", "impl"), *SAMPLING_COLUMNS)),
        *(f"\nNot available in this JAX: {k} ({why}).\n" for k, why in s["missing_impls"].items()),
        "\n## Dropout time against the rate (default PRNG)\n\n",
        table(s["rate_rows"], SAMPLING_COLUMNS),
        "\n## Allocators x sizes x dtypes (one subprocess per allocator)\n\n",
        table(
            s["size_rows"],
            (
                ("allocator", "allocator"),
                ("elements", "elements"),
                ("dtype", "dtype"),
                *SAMPLING_COLUMNS,
            ),
        ),  # fmt: skip
        *(f"\nAllocator {k} not measured: {why}.\n" for k, why in s["missing_allocators"].items()),
    ]
    return "".join(out)


def attribution_table(rows) -> str:
    return (
        "# Dropout inside the study models' train steps\n\nMedian time of one real train step "
        "(forward, backward, optimiser update) with dropout off, with every mask sampled but "
        "not applied, and with full dropout, at the posts' rates. sampling = sample - off, "
        "application = full - sample, overhead = full / off - 1: medians over repeats of the "
        "per-repeat differences and ratios (steps timed in the same repeat); negative values are "
        "timing noise.\n\n" + table(rows, ATTRIBUTION_COLUMNS)
    )


def compact_table(rows) -> str:
    return (
        "# Compact dropout against its masked twin\n\nForward + backward of a layer pair with "
        "one dropout mask per batch. 'compact' differentiates w.r.t. the full parameters "
        "(gradients scattered back into full-size arrays); 'kept-slice grads' w.r.t. the "
        "gathered kept slices only. Speed-up: median over repeats of masked / compact timed "
        "in the same repeat; ideal = units / kept units.\n\n" + table(rows, COMPACT_COLUMNS)
    )


def epochs_table(rows) -> str:
    return (
        "# Epoch time against keep probability\n\nProjected epoch time: median train-step time "
        "x steps per epoch of the full training set (input pipeline excluded). 'twin' columns: "
        "compact.py's functional twin of the model (same shapes, Adam, one mask per batch), "
        "masked and compact. Ratios: median over repeats of the per-repeat ratio of steps timed "
        "in the same repeat.\n\n" + table(rows, EPOCH_COLUMNS)
    )


def _plot_sampling(results, path):
    rows = results["sampling"]["rate_rows"]
    fig, ax = figures.figure(figsize=(6, 4))
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == sampler]
        ax.plot([r["rate"] for r in mine], [r["dropout_ms"] for r in mine], "o-", label=sampler)
    copy = statistics.median(r["copy_ms"] for r in rows)
    ax.axhline(copy, color="k", ls="--", label="copy")
    ax.set(
        xlabel="drop rate",
        ylabel="ms per dropout",
        yscale="log",
        title=f"Inverted dropout of {results['sampling']['impl_elements']} float32",
    )
    ax.legend(fontsize=7)
    figures.save(fig, path)


def _plot_attribution(rows, path):
    fig, ax = figures.figure(figsize=(6, 4))
    names = [r["model"] for r in rows]
    parts = np.array(
        [[r["off_ms"], max(r["sampling_ms"], 0.0), max(r["application_ms"], 0.0)] for r in rows]
    )
    shares = parts / parts.sum(axis=1, keepdims=True)  # (models, 3)
    bottom = np.zeros(len(rows))
    for share, label in zip(
        shares.T, ("rest of the step", "mask sampling", "mask application"), strict=True
    ):
        ax.bar(names, share, bottom=bottom, label=label)
        bottom = bottom + share
    low = max(0.0, float(shares[:, 0].min()) - 0.05)
    ax.set(ylabel="share of the train step", ylim=(low, 1.0), title="Train step split")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=7)
    figures.save(fig, path)


def _plot_compact(rows, path):
    fig, ax = figures.figure(figsize=(6, 4))
    for layer in dict.fromkeys(r["layer"] for r in rows):
        mine = [r for r in rows if r["layer"] == layer]
        ax.plot([r["rate"] for r in mine], [r["speedup"] for r in mine], "o-", label=layer)
        if "speedup_slices" in mine[0]:
            ax.plot(
                [r["rate"] for r in mine],
                [r["speedup_slices"] for r in mine],
                "s--",
                label=f"{layer} (kept-slice grads)",
            )
    rates = sorted({r["rate"] for r in rows})
    ax.plot(rates, [1 / (1 - r) for r in rates], "k:", label="ideal 1/(1-rate)")
    ax.set(
        xlabel="drop rate",
        ylabel="masked / compact time",
        yscale="log",
        title="Compact dropout speed-up (fwd+bwd)",
    )
    ax.legend(fontsize=7)
    figures.save(fig, path)


def _plot_epochs(rows, path):
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = figures.figure(1, len(models), figsize=(4 * len(models), 3.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in rows if r["model"] == model]
        same = all(r["fastest_epoch_s"] == r["default_epoch_s"] for r in mine)
        for method in ("default", "fastest", "masked_twin", "compact_twin"):
            pts = [
                (r["keep_prob"], r[f"{method}_epoch_s"]) for r in mine if f"{method}_epoch_s" in r
            ]
            if pts and not (method == "fastest" and same):  # fastest = default: one line
                ax.plot(*zip(*pts, strict=True), "o-", label=method.replace("_", " "))
        ax.set(xlabel="keep probability", ylabel="s per epoch", title=model, ylim=(0, None))
        ax.legend(fontsize=7)
    figures.save(fig, path)


def targets(results) -> list[list]:
    """[target, measured, met] for each goal of the run's config (`targets`) that it measured."""
    goals = results["config"]["targets"]
    out = []
    default_rows = [
        r
        for r in results["sampling"]["impl_rows"]
        if r["impl"] == "threefry2x32" and r["sampler"] == masks.DEFAULT_SAMPLER
    ]
    for r in default_rows:
        out.append(
            [
                f"default sampler ({r['sampler']}) full dropout <= "
                f"{goals['dropout_over_copy_max']:g}x a copy",
                f"{r['dropout_over_copy']:.2f}x ({r['elements']} float32)",
                r["dropout_over_copy"] <= goals["dropout_over_copy_max"],
            ]
        )
        out.append(
            [
                f"default sampler ({r['sampler']}) masks >= "
                f"{goals['mask_gelem_s_min']:g} G elements/s",
                f"{r['mask_gelem_s']:.3f} G/s",
                r["mask_gelem_s"] >= goals["mask_gelem_s_min"],
            ]
        )
    for r in results["attribution"]:
        ratios = np.array(r["samples_ms"]["full"]) / np.array(r["samples_ms"]["off"]) - 1.0
        q1, q3 = np.percentile(ratios, [25, 75])  # the spread of the paired ratios: the noise
        out.append(
            [
                f"dropout overhead of the {r['model']} train step <= "
                f"{100 * goals['step_overhead_max']:g}%",
                f"{100 * r['overhead']:.1f}% (quartiles {100 * q1:.1f}%, {100 * q3:.1f}%)",
                r["overhead"] <= goals["step_overhead_max"],
            ]
        )
    speedup_goals = dict(map(tuple, goals["compact_dense_speedup_min"]))
    for r in results["compact"]:
        goal = speedup_goals.get(r["rate"])
        if r["layer"] == "dense" and goal is not None:
            best = max(r["speedup"], r.get("speedup_slices", 0.0))
            out.append(
                [
                    f"compact dense fwd+bwd >= {goal}x masked at rate {r['rate']}",
                    f"{r['speedup']:.2f}x (full-size grads), "
                    f"{r.get('speedup_slices', float('nan')):.2f}x (kept-slice grads)",
                    best >= goal,
                ]
            )
    return out


def _judged(label, slow, fast, low) -> str:
    """'ratio mean [95% CI]x, region: verdict (MDE)' of per-repeat times `slow` / `fast`; the
    methods of one measurement share repeats, so the ratios pair by repeat."""
    part = core.ratio_part(label, dict(enumerate(slow)), dict(enumerate(fast)), low=low)
    return (
        f"{part.label} {part.shown()} over {part.estimate.n} paired repeats, claimed "
        f"{part.region()}: **{part.verdict}** (MDE {part.mde()})"
    )


def claims(results) -> list[str]:
    """The posts' speed claims, each a paired per-repeat time ratio judged by
    dropout_study.stats against the region in the run's config (`speed_claims`)."""
    regions = results["config"]["speed_claims"]
    slower = 1.0 + regions["min_change"]
    out = []
    default = [r for r in results["sampling"]["rate_rows"] if r["sampler"] == masks.DEFAULT_SAMPLER]
    if len(default) >= 2:
        lo, hi = default[0], default[-1]
        slow, fast = hi["samples_ms"]["dropout"], lo["samples_ms"]["dropout"]
        judged = _judged(f"Time at rate {hi['rate']} / {lo['rate']}:", slow, fast, slower)
        out.append(
            f"**Post 003: time grows with the rate.** A full dropout of "
            f"{results['sampling']['impl_elements']} float32 with the default sampler takes "
            f"{lo['dropout_ms']:.2f} ms at rate {lo['rate']} and {hi['dropout_ms']:.2f} ms at "
            f"rate {hi['rate']} (medians). {judged}."
        )
    epochs = results["epochs"]
    for model in dict.fromkeys(r["model"] for r in epochs):
        mine = sorted((r for r in epochs if r["model"] == model), key=lambda r: -r["keep_prob"])
        on = [r for r in mine if r["keep_prob"] < 1.0]  # dropout on: compare these if 2+
        a, b = (on[0], on[-1]) if len(on) >= 2 else (mine[0], mine[-1])
        steps = ", ".join(
            f"{r['keep_prob']}: {r['default_epoch_s']:.1f} s ({r['default_vs_baseline']:.3f})"
            for r in mine
        )
        slow, fast = b["samples_ms"]["default"], a["samples_ms"]["default"]
        judged = _judged(f"Time at keep {b['keep_prob']} / {a['keep_prob']}:", slow, fast, slower)
        text = (
            f"**Post 000: a smaller keep probability makes training slower ({model}).** "
            f"Projected epoch time with the default sampler at keep {steps} (in brackets: "
            f"relative to keep {mine[0]['keep_prob']}, paired per repeat). {judged}"
        )
        if "twin_speedup" in b:
            text += (
                f". Dropout that skips the dropped units (one mask per batch) makes compact.py's "
                f"twin of the model {b['twin_speedup']:.2f}x as fast as the masked twin at keep "
                f"{b['keep_prob']}"
            )
        out.append(text + ".")
    for r in results["attribution"]:
        if not r["model"].startswith("denoise"):
            continue
        slow, fast = r["samples_ms"]["full"], r["samples_ms"]["off"]
        judged = _judged("Step time with / without dropout:", slow, fast, regions["doubling"])
        out.append(
            f"**Post 004: element dropout more than doubles the epoch time ({r['model']}, "
            f"{r['variant']} dropout).** Full dropout adds {100 * r['overhead']:.1f}% to the "
            f"train step (sampling {r['sampling_ms']:.1f} ms, application "
            f"{r['application_ms']:.1f} ms of {r['full_ms']:.0f} ms, medians). {judged}."
        )
    return out


def judge(results, cfg) -> dict:
    """`results` with the targets and speed claims of config `cfg` (re)applied to its samples."""
    results = dict(results, config=dict(results["config"]))
    results["config"]["targets"] = cfg.targets.to_dict()
    results["config"]["speed_claims"] = cfg.speed_claims.to_dict()
    results["targets"] = targets(results)
    results["claims"] = claims(results)
    return results


def _loads(loads) -> str:
    return ", ".join(f"{v:.1f}" for v in loads)


def summary(results) -> str:
    m = results["machine"]
    run = f"Run: {results['started']}, {results['wall_s']:.0f} s wall."
    if "judged_with" in results:
        run += f"  \nTargets and claims re-judged from its samples with: `{results['judged_with']}`"
    lines = [
        "# Timing: mask sampling against the compute dropout could save\n",
        f"Command: `{results['command']}`  ",
        run + "\n",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}; "
        f"backend {m['backend']}; allocator {m['allocator']}; default PRNG "
        f"{m['default_prng_impl']} (partitionable={m['threefry_partitionable']}); load average "
        f"(1, 5, 15 min) at start {_loads(results['load_start'])}, at end "
        f"{_loads(m['load_average'])}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".\n",
        f"Repeats: {results['config']['repeats']} (medians); the fastest sampler here: "
        f"{results['fastest_sampler']}.\n",
        "## Targets\n",
        markdown_table(
            ["target", "measured", "met"],
            [[t, v, "yes" if ok else "**no**"] for t, v, ok in results["targets"]],
        ),
        "\n## The posts' speed claims\n",
        *(f"- {c}" for c in results["claims"]),
        "\n## Files\n",
        "sampling.md, attribution.md, compact.md, epochs.md (tables); sampling_vs_rate.png, "
        "attribution.png, compact_speedup.png, epochs.png (plots); results.json (all samples).\n",
    ]
    return "\n".join(lines)


def write_outputs(results, out_dir: pathlib.Path) -> None:
    """Tables, plots, summary and results.json into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sampling.md").write_text(sampling_tables(results))
    (out_dir / "attribution.md").write_text(attribution_table(results["attribution"]))
    (out_dir / "compact.md").write_text(compact_table(results["compact"]))
    (out_dir / "epochs.md").write_text(epochs_table(results["epochs"]))
    _plot_sampling(results, out_dir / "sampling_vs_rate.png")
    if results["attribution"]:
        _plot_attribution(results["attribution"], out_dir / "attribution.png")
    _plot_compact(results["compact"], out_dir / "compact_speedup.png")
    if results["epochs"]:
        _plot_epochs(results["epochs"], out_dir / "epochs.png")
    (out_dir / RESULTS_FILE).write_text(json.dumps(results, indent=1, default=float))
    (out_dir / "README.md").write_text(summary(results))
