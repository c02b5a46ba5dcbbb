"""Train-step throughput of the posts' models and input-pipeline throughput of their data.

    python -m dropout_study.bench                       # the posts' batch sizes, real data
    python -m dropout_study.bench --models=imdb_cnn --repeats=3 --source=sample

For each model's real train step (dropout on, Adam update included) at the posts' batch sizes
(VGG-like b128 on 32x32x3; IMDB LSTM and text CNN b64, length 200, vocabulary 20000, 128
units/filters) it prints the median step time, the achieved GFLOP/s (2 FLOPs per multiply-add of
the matmuls and convolutions, a train step counted as 3x the forward pass) and that as a fraction
of a dense float32 2048x2048 matmul's GFLOP/s, timed interleaved with the step in the same process
(the fraction is the median of per-repeat ratios, so load drifting between repeats cancels).
For each dataset it prints how many examples/s `pipeline.batches` delivers next to the train-step
examples/s of the fastest model on that data: data should never stall training.

With `--seeds_per_program=N` a table compares one vmapped step of N seeds (as a study with that
setting trains them) with N one-seed steps. With `--allocators=tcmalloc,mimalloc,system` the model
steps are timed again in one subprocess per allocator and round (interleaved), and a table gives
each allocator's median step time and its ratio to glibc's. With `--torch_python=PYTHON` (an
interpreter with torch: `pip install -e '.[bench]'`, or a separate environment) the steps are timed
against their PyTorch twins (dropout_study/torch_peers.py): one process per framework and round,
interleaved, under this process's allocator, and the table gives the median of the per-round ratios.
With `--plain_flax` each step is timed interleaved with its plain Flax twin (flax_peers.py: stock
layers, optax, XLA's default options), as a Flax user would write the model.
With `--xla_default` each step is also compiled with XLA's own CPU choice (matmuls on YNNPACK) and
timed interleaved with the project's (`xla_options`: matmuls on Eigen): what the choice buys.
`--readme_dir=DIR` writes the tables, command and machine to DIR/README.md, so the committed figures
come from one command.

The models and their configs are those of configs/timing.py; the steps are timing.StepBench's.
"""

import functools
import json
import math
import pathlib
import shlex
import subprocess
import sys
import tempfile

import jax.numpy as jnp
import numpy as np
from absl import app, flags

from dropout_study import (
    allocator,
    flax_peers,
    machine,
    measure,
    sweeps,
    timing,
    timing_report,
    xla_options,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
MATMUL_N = 2048
# Model -> the dataset it trains on (for the pipeline comparison).
DATASET_OF = {
    "imdb_cnn": "imdb",
    "imdb_rnn": "imdb",
    "cifar10_vgg": "cifar10",
    "cifar100_conv": "cifar100",
    "denoise_unet": "denoise",
}
TARGETS = {"imdb_rnn": 0.50, "imdb_cnn": 0.60, "cifar10_vgg": 0.50}
COUNTED = ("lstm", "text_cnn", "vgg")  # models whose FLOPs `forward_flops` counts

_MODELS = flags.DEFINE_list("models", list(TARGETS), f"Models to time, from {list(DATASET_OF)}.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed samples per function; medians are shown.")
_SOURCE = flags.DEFINE_enum(
    "source", "local", ["local", "sample"], "Data source for the pipeline throughput."
)
_PIPELINE_BATCHES = flags.DEFINE_integer("pipeline_batches", 200, "Batches per pipeline sample.")
_ALLOCATORS = flags.DEFINE_list(
    "allocators", [], "Also time the steps under each of these allocators (subprocesses)."
)
_ROUNDS = flags.DEFINE_integer("rounds", 2, "Interleaved rounds of the allocator comparison.")
_TORCH = flags.DEFINE_string(
    "torch_python", "", "Also time the models' PyTorch twins in this interpreter (it has torch)."
)
_SEEDS = flags.DEFINE_integer(
    "seeds_per_program", 0, "Also time one vmapped step of this many seeds against one seed's."
)
_XLA_DEFAULT = flags.DEFINE_bool(
    "xla_default", False, "Also time each step compiled with XLA's default CPU matmul library."
)
_PLAIN = flags.DEFINE_bool("plain_flax", False, "Also time each step's plain Flax twin.")
_OUT = flags.DEFINE_string("readme_dir", None, "Folder to write README.md with the tables into.")
TORCH_PEERS = pathlib.Path(__file__).with_name("torch_peers.py")
_STEPS_JSON = flags.DEFINE_string(
    "steps_json", None, "Worker mode: time the model steps only and write their rows here."
)


def _conv_macs(size_in, padding, kernel, c_in, c_out):
    """(multiply-adds per example, output size) of a stride-1 square convolution."""
    size_out = size_in if padding == "SAME" else size_in - kernel + 1
    return size_out * size_out * kernel * kernel * c_in * c_out, size_out


def forward_flops(model_config, input_shape):
    """FLOPs of one forward pass of the matmuls and convolutions (2 per multiply-add)."""
    c, batch = model_config, input_shape[0]
    if c.name == "lstm":
        length, units = input_shape[1], c.hidden_dim
        macs = length * 4 * units * (c.embed_dim + units) + units * c.num_classes
    elif c.name == "text_cnn":
        length = input_shape[1]
        macs = sum((length - k + 1) * k * c.embed_dim * c.num_filters for k in c.kernel_sizes)
        macs += len(c.kernel_sizes) * c.num_filters * c.num_classes
    elif c.name == "vgg":
        size, c_in, macs = input_shape[1], input_shape[3], 0
        for filters in c.filters:
            for padding in ("SAME", "VALID"):
                m, size = _conv_macs(size, padding, 3, c_in, filters)
                macs, c_in = macs + m, filters
            size //= 2
        width = size * size * c_in
        for _ in range(2):
            macs, width = macs + width * c.ndense, c.ndense
        macs += width * c.num_classes
    else:
        raise ValueError(f"no FLOP count for model {c.name!r}; counted: {COUNTED}.")
    return 2 * batch * macs


def pipeline_rate(data_config, batch_size, num_batches):
    """Examples/s of `pipeline.batches` over the training split (after loading)."""
    from dropout_study import data
    from dropout_study.data import pipeline

    split = data.load(data_config).train
    n = min(num_batches, pipeline.num_batches(split, batch_size))

    def epoch():
        for i, _ in enumerate(pipeline.batches(split, batch_size, seed=0, epoch=0)):
            if i + 1 == n:
                break

    samples = measure.measure({"pipeline": epoch}, repeats=3, min_sample_s=0.0)["pipeline"]
    return n * batch_size / measure.median(samples)


def step_rows(model_names, repeats):
    """Rows of the model table; each keeps its StepBench under 'bench'."""
    models_cfg = sweeps.load_config_file(REPO / "configs" / "timing.py").models
    matmul = jnp.ones((MATMUL_N, MATMUL_N), jnp.float32)
    # The reference is the CPU's fastest big matmul, YNNPACK's (XLA's default), which beat
    # Eigen's at 2048^2 on this machine; the steps' small matmuls are faster on Eigen.
    matmul_fn = measure.compiled(lambda a: a @ a, matmul, ynn_fusion_types=xla_options.DEFAULT)
    model_rows = []
    for name in model_names:
        if name not in DATASET_OF:
            raise ValueError(f"--models: unknown model {name!r}; use some of {list(DATASET_OF)}.")
        bench = timing.StepBench(models_cfg[name], seed=0)
        step = bench.step(bench.config.model, "full")
        samples = measure.measure({"matmul": matmul_fn, "step": step}, repeats, min_sample_s=0.2)
        counted = bench.config.model.name in COUNTED
        flops = 3 * forward_flops(bench.config.model, bench.batch["x"].shape) if counted else 0
        step_gflops = [flops / t / 1e9 if counted else math.nan for t in samples["step"]]
        mm_gflops = [2 * MATMUL_N**3 / t / 1e9 for t in samples["matmul"]]
        batch_size = bench.config.batch_size
        model_rows.append(
            {
                "model": name,
                "batch": batch_size,
                "step_ms": 1e3 * measure.median(samples["step"]),
                "gflops": measure.median(step_gflops),
                "matmul_gflops": measure.median(mm_gflops),
                "fraction": measure.median(
                    [s / m for s, m in zip(step_gflops, mm_gflops, strict=True)]
                ),
                "target": TARGETS.get(name, math.nan),
                "bench": bench,
            }
        )
    return model_rows


def run(model_names, repeats, source, pipeline_batches):
    """Rows of the model table and of the pipeline table."""
    model_rows = step_rows(model_names, repeats)
    step_rates = {r["model"]: r["batch"] / (r["step_ms"] / 1e3) for r in model_rows}
    pipeline_rows = []
    for dataset in dict.fromkeys(DATASET_OF[name] for name in model_names):
        fastest = max((n for n in step_rates if DATASET_OF[n] == dataset), key=step_rates.get)
        bench = next(r["bench"] for r in model_rows if r["model"] == fastest)
        data_config = bench.config.data.copy_and_resolve_references()
        data_config.source = source
        rate = pipeline_rate(data_config, bench.config.batch_size, pipeline_batches)
        pipeline_rows.append(
            {
                "dataset": dataset,
                "source": source,
                "pipeline_ex_s": rate,
                "model": fastest,
                "train_ex_s": step_rates[fastest],
                "ratio": rate / step_rates[fastest],
            }
        )
    return model_rows, pipeline_rows


def _format(value, spec, prefix=""):
    """`value` formatted, or "n/a" for NaN (models whose FLOPs are not counted)."""
    return "n/a" if math.isnan(value) else prefix + format(value, spec)


def format_tables(model_rows, pipeline_rows):
    """Two markdown tables."""
    models_table = timing_report.markdown_table(
        ["model", "batch", "median step (ms)", "GFLOP/s", "matmul GFLOP/s", "fraction", "target"],
        [
            [r["model"], r["batch"], f"{r['step_ms']:.1f}", _format(r["gflops"], ".1f"),
             f"{r['matmul_gflops']:.1f}", _format(r["fraction"], ".0%"),
             _format(r["target"], ".0%", ">= ")]
            for r in model_rows
        ],
    )  # fmt: skip
    pipeline_table = timing_report.markdown_table(
        ["dataset", "source", "pipeline ex/s", "fastest model", "train ex/s", "pipeline / train"],
        [
            [r["dataset"], r["source"], f"{r['pipeline_ex_s']:,.0f}", r["model"],
             f"{r['train_ex_s']:,.0f}", f"{r['ratio']:,.0f}x"]
            for r in pipeline_rows
        ],
    )  # fmt: skip
    return models_table + "\n\n" + pipeline_table


def seed_table(rows, seeds):
    """Markdown: the seed-group speed-up per model, from `paired_rows` against the group's step
    (speed-up = seeds x the median per-repeat ratio one seed / group)."""
    table = timing_report.markdown_table(
        ["model", "1 seed (ms)", f"{seeds} seeds in one step (ms)", "speed-up"],
        [
            [
                r["model"],
                f"{r['project_ms']:.1f}",
                f"{r['base_ms']:.1f}",
                f"{seeds * r['ratio']:.2f}x",
            ]
            for r in rows
        ],
    )
    return (
        f"{seeds} seeds trained in one vmapped step (`seeds_per_program`) against one seed's "
        f"step, interleaved; speed-up = {seeds} x one seed's time / the group's (median of "
        f"per-repeat ratios; above 1 the group pays):\n\n{table}"
    )


def paired_rows(model_rows, repeats, baseline):
    """Per model: the project's step against `baseline(bench)` (a thunk of another step),
    interleaved in this process; the ratio is the median of per-repeat project / baseline."""
    rows = []
    for row in model_rows:
        bench = row["bench"]
        fns = {"base": baseline(bench), "project": bench.step(bench.config.model, "full")}
        samples = measure.measure(fns, repeats, min_sample_s=0.2)
        rows.append(
            {
                "model": row["model"],
                "base_ms": 1e3 * measure.median(samples["base"]),
                "project_ms": 1e3 * measure.median(samples["project"]),
                "ratio": measure.paired(samples, "project", "base"),
            }
        )
    return rows


def plain_flax(bench):
    """The step of `bench`'s plain Flax twin (flax_peers.py)."""
    return flax_peers.step(bench.config.model, bench.config.optimizer, bench.batch, bench.key)


def xla_default(bench):
    """`bench`'s step compiled with XLA's default options."""
    return bench.step(bench.config.model, "full", xla_options.DEFAULT)


def paired_table(rows, base, what):
    """Markdown: each step against the baseline named `base`, introduced by `what`."""
    table = timing_report.markdown_table(
        ["model", f"{base} (ms)", "this project (ms)", f"this project / {base}"],
        [
            [r["model"], f"{r['base_ms']:.1f}", f"{r['project_ms']:.1f}", f"{r['ratio']:.2f}"]
            for r in rows
        ],
    )
    return (
        f"{what}, interleaved in this process; the ratio is the median of per-repeat ratios "
        f"(below 1: this project is faster):\n\n{table}"
    )


def allocator_rows(model_names, repeats, allocators, rounds):
    """(rows: model, allocator, step_ms (median over rounds), vs_system, {allocator: why missing}).

    Each (round, allocator) is one fresh `--steps_json` subprocess, interleaved across allocators.
    """
    times, missing = {}, {}
    argv = [f"--models={','.join(model_names)}", f"--repeats={repeats}"]
    for _ in range(rounds):
        for name in allocators:
            try:
                worker = measure.run_worker("dropout_study.bench", argv, "steps_json", name)
            except ValueError as err:
                missing[name] = str(err)
                continue
            for row in worker["rows"]:
                times.setdefault((row["model"], name), []).append(row["step_ms"])
    rows = []
    for model in model_names:
        system = times.get((model, allocator.SYSTEM))
        for name in allocators:
            if (model, name) in times:
                step_ms = measure.median(times[(model, name)])
                ratio = measure.median(system) / step_ms if system else math.nan
                rows.append(
                    {"model": model, "allocator": name, "step_ms": step_ms, "speedup": ratio}
                )
    return rows, missing


def allocator_table(rows, missing):
    """Markdown: median step per model and allocator, and its speed-up over glibc malloc."""
    table = timing_report.markdown_table(
        ["model", "allocator", "median step (ms)", "speed-up over system malloc"],
        [[r["model"], r["allocator"], f"{r['step_ms']:.1f}", _format(r["speedup"], ".2f", "")
          + ("x" if not math.isnan(r["speedup"]) else "")] for r in rows],
    )  # fmt: skip
    notes = "".join(f"\n\n{name}: not timed, {why}" for name, why in missing.items())
    return table + notes


def peer_rows(model_names, repeats, rounds, python, script=TORCH_PEERS):
    """(rows: model, batch, ours_ms, torch_ms, ratio; the torch version).

    Each round runs one `--steps_json` worker for this project and one `script` worker for
    PyTorch on the same real batches, under this process's allocator; ms are medians over rounds
    and `ratio` is the median of the per-round ratios ours / PyTorch's.
    """
    models_cfg = sweeps.load_config_file(REPO / "configs" / "timing.py").models
    batches, sizes = {}, {}
    for name in model_names:
        bench = timing.StepBench(models_cfg[name], seed=0)
        batches.update({f"{name}_{k}": np.asarray(v) for k, v in bench.batch.items()})
        sizes[name] = bench.config.batch_size
    ours, theirs = {}, {}
    argv = [f"--models={','.join(model_names)}", f"--repeats={repeats}"]
    env_name = allocator.active()
    env = measure.allocator_env(env_name)
    with tempfile.TemporaryDirectory() as tmp:
        batch_file, out = pathlib.Path(tmp) / "batches.npz", pathlib.Path(tmp) / "torch.json"
        np.savez(batch_file, **batches)
        for _ in range(rounds):
            worker = measure.run_worker("dropout_study.bench", argv, "steps_json", env_name)
            for row in worker["rows"]:
                ours.setdefault(row["model"], []).append(row["step_ms"])
            command = [python, str(script), str(batch_file), str(out), str(repeats), *model_names]
            subprocess.run(command, env=env, check=True)
            peer = json.loads(out.read_text())
            for name, result in peer["models"].items():
                theirs.setdefault(name, []).append(measure.median(result["step_ms"]))
    rows = [
        {
            "model": name,
            "batch": sizes[name],
            "ours_ms": measure.median(ours[name]),
            "torch_ms": measure.median(theirs[name]),
            "ratio": measure.median([a / b for a, b in zip(ours[name], theirs[name], strict=True)]),
        }
        for name in model_names
    ]
    return rows, peer["torch"]


def peer_table(rows, version, rounds):
    """Markdown: this project's step against PyTorch's twin, per model."""
    table = timing_report.markdown_table(
        ["model", "batch", "this project (ms)", f"PyTorch {version} (ms)", "ours / PyTorch"],
        [[r["model"], r["batch"], f"{r['ours_ms']:.1f}", f"{r['torch_ms']:.1f}",
          f"{r['ratio']:.2f}"] for r in rows],
    )  # fmt: skip
    return (
        f"The steps against their PyTorch twins (dropout_study/torch_peers.py), {rounds} "
        "interleaved rounds of one process per framework; ms are medians over rounds, the ratio "
        f"is the median of per-round ratios (below 1: this project is faster):\n\n{table}"
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    allocator.preload()
    if _STEPS_JSON.value:
        rows = [
            {k: v for k, v in r.items() if k != "bench"}
            for r in step_rows(_MODELS.value, _REPEATS.value)
        ]
        kinds = machine.device_kinds()
        payload = {
            "allocator": allocator.active(),
            "xla_options": xla_options.active(),
            "devices": f"{len(kinds)} x {kinds[0]}",
            "rows": rows,
        }
        pathlib.Path(_STEPS_JSON.value).write_text(json.dumps(payload))
        return
    model_rows, pipeline_rows = run(
        _MODELS.value, _REPEATS.value, _SOURCE.value, _PIPELINE_BATCHES.value
    )
    text = (
        f"Allocator of this process: {allocator.active()}; compile options: "
        f"{xla_options.active()}\n\n"
    ) + format_tables(model_rows, pipeline_rows)
    if _SEEDS.value > 1:
        group = functools.partial(timing.StepBench.seeds_step, seeds=_SEEDS.value)
        rows = paired_rows(model_rows, _REPEATS.value, group)
        text += "\n\n" + seed_table(rows, _SEEDS.value)
    if _PLAIN.value:
        rows = paired_rows(model_rows, _REPEATS.value, plain_flax)
        text += "\n\n" + paired_table(
            rows, "plain Flax", "The steps against their plain Flax twins (flax_peers.py)"
        )
    if _XLA_DEFAULT.value:
        rows = paired_rows(model_rows, _REPEATS.value, xla_default)
        text += "\n\n" + paired_table(
            rows,
            "XLA default",
            "The steps compiled with XLA's default CPU options (matmuls on YNNPACK) and with "
            f"this project's ({xla_options.active()})",
        )
    if _ALLOCATORS.value:
        rows, missing = allocator_rows(
            _MODELS.value, _REPEATS.value, _ALLOCATORS.value, _ROUNDS.value
        )
        text += (
            f"\n\nThe steps again, one process per allocator, {_ROUNDS.value} interleaved rounds "
            "(medians over rounds):\n\n" + allocator_table(rows, missing)
        )
    if _TORCH.value:
        rows, version = peer_rows(_MODELS.value, _REPEATS.value, _ROUNDS.value, _TORCH.value)
        text += "\n\n" + peer_table(rows, version, _ROUNDS.value)
    print(text)
    if _OUT.value:
        command = "python -m dropout_study.bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        out = pathlib.Path(_OUT.value)
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(
            "# Train-step and input-pipeline throughput\n\n"
            f"Regenerate (repository root, nothing else running):\n\n    {command}\n\n"
            f"Machine: {machine.summary_line()}.\n\n{text}\n"
        )


if __name__ == "__main__":
    app.run(main)
