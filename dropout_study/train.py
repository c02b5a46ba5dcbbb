"""The jit training loop: train and eval steps, per-epoch metrics, checkpoints and exact resume.

`train_and_evaluate(config, workdir)` is the one entry point (the main command, studies and
notebooks call it). Each step's dropout and augmentation keys are the run's key folded with the
step, and the training batches are a function of (seed, epoch) alone, so a run resumed from a
checkpoint taken at any step repeats the uninterrupted run bit for bit.

Workdir layout: `config.json` (the run's config), `metrics.jsonl` (one JSON line per epoch),
TensorBoard event files, `checkpoints/{latest,best}/<step>/` and, at the end, `summary.json`.
"""

import dataclasses
import functools
import json
import math
import pathlib
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from absl import logging
from clu import metric_writers, periodic_actions
from flax.training import train_state

from dropout_study import allocator, checkpoint, config_check, data, models, optim, parallel
from dropout_study.data import augment, pipeline

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = config_check.SUMMARY_FILE
CHECKPOINT_DIR = "checkpoints"
PSNR_PEAK = 1.0  # denoising targets are images on the [0, 1] scale
DIVERGED = 100  # an epoch's mean loss over this many times the chance-level loss: diverged
DIVERGED_FIX = (
    "Fix: lower optimizer.learning_rate or set optimizer.grad_clip_norm, in a new --workdir."
)
# Per-epoch record fields that measure the machine rather than the run (they differ on a rerun).
TIME_FIELDS = (
    "epoch_time_s",
    "train_time_s",
    "eval_time_s",
    "examples_per_s",
    "compile_s",
    "warmup",
)


class TrainState(train_state.TrainState):
    """Flax's TrainState plus batch-norm statistics (an empty dict for models without them)."""

    batch_stats: Any = None


def score_name(task):
    """What a task reports next to its loss: 'accuracy', or 'psnr' (dB) for denoising."""
    return "psnr" if task == "denoise" else "accuracy"


def per_example(task, outputs, targets):
    """Per-example (loss, correct): cross-entropy and 0/1 correctness, or MSE and zeros."""
    outputs = outputs.astype(jnp.float32)
    if task == "denoise":  # outputs, targets: (N, H, W, C) images
        mse = jnp.mean(jnp.square(outputs - targets), axis=tuple(range(1, outputs.ndim)))
        return mse, jnp.zeros_like(mse)
    if outputs.shape[-1] == 1:  # one logit per example: binary classification
        logits = outputs[:, 0]
        loss = optax.sigmoid_binary_cross_entropy(logits, targets.astype(jnp.float32))
        return loss, ((logits > 0) == (targets == 1)).astype(jnp.float32)
    loss = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    return loss, (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)


def psnr(mse):
    """PSNR in dB of a mean squared error over a whole split, as data.denoise.psnr defines it."""
    return 10.0 * math.log10(PSNR_PEAK**2 / max(mse, 1e-10))


def zero_train_sums():
    """Running sums of one training epoch; `nonfinite_step`: first step with a NaN/Inf loss."""
    # One array per field: the train step donates them, and a buffer cannot be donated twice.
    sums = {name: jnp.zeros((), jnp.float32) for name in ("loss", "correct", "penalty", "count")}
    return {**sums, "nonfinite_step": jnp.full((), -1, jnp.int32)}


def zero_eval_sums():
    """Running sums of one evaluation pass."""
    return {name: jnp.zeros((), jnp.float32) for name in ("loss", "correct", "count")}


def _variables(state, params):
    return {"params": params, "batch_stats": state.batch_stats}


def train_step(state, sums, batch, key, *, task, l1, l2, augment_kwargs):
    """One optimiser step on `batch` ({"x", "y"}); returns the new state and epoch sums.

    Dropout and augmentation keys come from `fold_in(key, step)`, so they depend on the step only.
    The loss minimised is the mean per-example loss plus the L1/L2 penalty on kernels.
    """
    step_key = jax.random.fold_in(key, state.step)
    dropout_key, augment_key = jax.random.split(step_key)
    x = batch["x"]
    if augment_kwargs:
        x = augment.augment(augment_key, x, **augment_kwargs)

    def loss_fn(params):
        outputs, updates = state.apply_fn(
            _variables(state, params),
            x,
            train=True,
            rngs={"dropout": dropout_key},
            mutable=["batch_stats"],
        )
        loss, correct = per_example(task, outputs, batch["y"])
        penalty = optim.penalty(params, l1, l2)
        return jnp.mean(loss) + penalty, (loss, correct, penalty, updates)

    grads, (loss, correct, penalty, updates) = jax.grad(loss_fn, has_aux=True)(state.params)
    new_state = state.apply_gradients(
        grads=grads, batch_stats=updates.get("batch_stats", state.batch_stats)
    )
    finite = jnp.isfinite(jnp.mean(loss) + penalty)
    first_bad = jnp.where(
        (sums["nonfinite_step"] < 0) & ~finite, new_state.step, sums["nonfinite_step"]
    )
    return new_state, {
        "loss": sums["loss"] + jnp.sum(loss),
        "correct": sums["correct"] + jnp.sum(correct),
        "penalty": sums["penalty"] + penalty,
        "count": sums["count"] + loss.shape[0],
        "nonfinite_step": first_bad.astype(jnp.int32),
    }


def eval_step(state, sums, batch, *, task):
    """Adds the masked losses and correct counts of `batch` ({"x", "y", "mask"}) to `sums`."""
    outputs = state.apply_fn(_variables(state, state.params), batch["x"], train=False)
    loss, correct = per_example(task, outputs, batch["y"])
    weights = batch["mask"].astype(jnp.float32)
    return {
        "loss": sums["loss"] + jnp.sum(loss * weights),
        "correct": sums["correct"] + jnp.sum(correct * weights),
        "count": sums["count"] + jnp.sum(weights),
    }


def create_train_state(model, tx, key, sample_x):
    """Initialises parameters (and batch-norm statistics) from `key` on one example's shape."""
    init = jax.jit(functools.partial(model.init, train=False))
    variables = init({"params": key, "dropout": key}, sample_x)
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=tx,
        batch_stats=variables.get("batch_stats", {}),
    )


def monitor_mode(monitor):
    """'min' for losses, 'max' for accuracy and PSNR."""
    return "min" if monitor.endswith("loss") else "max"


def update_best(meta, record, *, monitor, min_delta, patience):
    """Early-stopping bookkeeping after an epoch: (new meta, improved, stop)."""
    value = record[monitor]
    best = meta["best"]
    sign = 1.0 if monitor_mode(monitor) == "max" else -1.0
    improved = best is None or sign * (value - best["value"]) > min_delta
    if improved:
        best = {"epoch": record["epoch"], "step": record["step"], "value": value}
    bad_epochs = 0 if improved else meta["bad_epochs"] + 1
    stop = patience > 0 and bad_epochs >= patience
    return {**meta, "best": best, "bad_epochs": bad_epochs, "stopped_early": stop}, improved, stop


def _means(sums, task):
    sums = jax.device_get(sums)
    count = float(sums["count"])
    loss = float(sums["loss"]) / count
    score = psnr(loss) if task == "denoise" else float(sums["correct"]) / count
    out = {"loss": loss, score_name(task): score}
    if "penalty" in sums:
        out["penalty"] = float(sums["penalty"])
    return out


def _check_finite(sums, checkpoints, steps_per_epoch):
    """Raises FloatingPointError naming the first step whose loss was NaN or Inf."""
    bad = int(jax.device_get(sums["nonfinite_step"]))
    if bad < 0:
        return
    epoch, batch = divmod(bad - 1, steps_per_epoch)
    raise FloatingPointError(
        f"the training loss became NaN or Inf at step {bad} (epoch {epoch + 1}, batch "
        f"{batch + 1} of {steps_per_epoch}); training stopped and {_last_good(checkpoints)}. "
        f"{DIVERGED_FIX}"
    )


def chance_loss(task, num_classes):
    """The loss of a predictor that knows nothing: log(K) nats, or an MSE of 1 on [0, 1] images."""
    return 1.0 if task == "denoise" else math.log(max(num_classes, 2))


def _last_good(checkpoints):
    """Words for the newest 'latest' checkpoint, which a stopped run keeps."""
    kept = checkpoints.steps(checkpoint.LATEST)
    if not kept:
        return "no checkpoint had been written yet"
    path = checkpoints.directory / checkpoint.LATEST / str(kept[-1])
    return f"the last good checkpoint, {path}, is kept"


def _check_diverged(loop, train_metrics, val_metrics, epoch):
    """FloatingPointError when an epoch's mean train or validation loss is not finite or over
    DIVERGED times the chance-level loss: per-step losses can stay finite while a run diverges
    (or their epoch sums overflow). The epoch is then not recorded."""
    limit = DIVERGED * chance_loss(loop.config.task, loop.dataset.info.get("num_classes", 0))
    bad = {
        f"{split} loss": m["loss"]
        for split, m in (("train", train_metrics), ("validation", val_metrics))
        if not m["loss"] <= limit  # NaN fails too
    }
    if bad:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in bad.items())
        raise FloatingPointError(
            f"training diverged in epoch {epoch + 1} ({shown}; more than {DIVERGED}x the "
            f"chance-level loss {limit / DIVERGED:.3g}); the epoch is not recorded and "
            f"{_last_good(loop.checkpoints)}. {DIVERGED_FIX}"
        )


def _json_default(value):
    if isinstance(value, (np.generic, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return str(value)


def _dumps(obj, **kwargs):
    return json.dumps(obj, default=_json_default, **kwargs)


def _fresh_meta():
    return {
        "step": 0,
        "history": [],
        "best": None,
        "bad_epochs": 0,
        "stopped_early": False,
        "done": False,
    }


def summarize(config, info, meta, test, *, num_params, compile_s, workdir):
    """The run's short summary: best epoch and value, test scores, data source and sizes, times.

    `test`: score_test's {"selected": ..., "final": ...} (None on processes that write nothing).
    """
    history = meta["history"]
    timed = [r for r in history if not r["warmup"]]
    best = meta["best"] or {}
    best_record = next((r for r in history if r["epoch"] == best.get("epoch")), None)
    return {
        "task": config.task,
        "model": config.model.name,
        "model_config": models.resolve_config(config.model).to_dict(),  # rates and keep probs
        "seed": config.seed,
        "data": info,
        "num_params": num_params,
        "epochs_run": len(history),
        "num_epochs": config.num_epochs,
        "stopped_early": meta["stopped_early"],
        "steps": meta["step"],
        "monitor": config.monitor,
        "best_epoch": best.get("epoch"),
        f"best_{config.monitor}": best.get("value"),
        "best": best_record,
        "final": history[-1] if history else None,
        "test": test,
        "times": {
            "compile_s": compile_s,
            "train_s": sum(r["train_time_s"] for r in history),
            "median_epoch_s": statistics.median(r["epoch_time_s"] for r in timed)
            if timed
            else None,
            "median_examples_per_s": (
                statistics.median(r["examples_per_s"] for r in timed) if timed else None
            ),
            "timed_epochs": len(timed),
            "allocator": allocator.active(),  # glibc malloc slows memory-bound steps severalfold
        },
        "devices": {
            "platform": jax.default_backend(),
            "count": jax.device_count(),
            "processes": jax.process_count(),
        },
        "workdir": str(workdir),
    }


def format_summary(summary):
    """A few human-readable lines of a summary."""
    data_info = summary["data"]
    times = summary["times"]
    monitor = summary["monitor"]
    best = summary[f"best_{monitor}"]
    speed = (
        f"median epoch {times['median_epoch_s']:.1f} s, {times['median_examples_per_s']:.0f} ex/s"
        if times["median_epoch_s"] is not None
        else "no epoch after the first to time"
    )
    return "\n".join(
        [
            f"{summary['model']} on {data_info.get('name')} (source {data_info.get('source')}, "
            f"sizes {data_info.get('sizes')}), seed {summary['seed']}, "
            f"{summary['num_params']:,} parameters",
            f"best {monitor} {best:.4f} at epoch {summary['best_epoch']} of "
            f"{summary['epochs_run']}" + (" (stopped early)" if summary["stopped_early"] else ""),
            _test_line(summary),
            f"compile {times['compile_s']:.1f} s, training {times['train_s']:.1f} s, {speed}",
            f"results in {summary['workdir']}",
        ]
    )


def _test_line(summary):
    selected = summary["test"]["selected"]
    score = score_name(summary["task"])
    return (
        f"test {score} {selected[score]:.4f} at the selected epoch {selected['epoch']} "
        f"(test split: {summary['data'].get('validation')!r} protocol)"
    )


def restore_best(config, workdir):
    """(model, variables) of the best checkpoint of a finished or partial run in `workdir`."""
    checkpoints = checkpoint.Checkpoints(pathlib.Path(workdir) / CHECKPOINT_DIR)
    restored = checkpoints.restore(checkpoint.BEST, None)
    checkpoints.close()
    if restored is None:
        raise FileNotFoundError(
            f"{pathlib.Path(workdir) / CHECKPOINT_DIR / checkpoint.BEST} holds no checkpoint; "
            f"train first with `python -m dropout_study.main --config=... --workdir={workdir}`."
        )
    state = restored[0]["state"]
    variables = {"params": state["params"], "batch_stats": state.get("batch_stats") or {}}
    return models.create_model(config.model), variables


def _write_json_lines(path, records, mode):
    with open(path, mode) as f:
        for record in records:
            f.write(_dumps(record) + "\n")


@dataclasses.dataclass(frozen=True)
class _Loop:
    """What the epoch loop reads: config, data, mesh, compiled steps, checkpoints, writers."""

    config: Any
    dataset: Any
    mesh: Any
    steps_per_epoch: int
    train_fn: Any
    eval_fn: Any
    train_key: Any
    checkpoints: checkpoint.Checkpoints
    writer: Any
    progress: Any
    process: dict


def _compile(config, dataset, mesh, carry, train_key, process):
    """AOT-compiled (train_fn, eval_fn) and the seconds spent compiling them."""
    augment_kwargs = dict(config.augment) if _augments(config) else None
    train_jit = jax.jit(
        functools.partial(
            train_step,
            task=config.task,
            l1=config.regularization.l1,
            l2=config.regularization.l2,
            augment_kwargs=augment_kwargs,
        ),
        donate_argnums=(0, 1),
    )
    eval_jit = jax.jit(functools.partial(eval_step, task=config.task), donate_argnums=(1,))
    start = time.perf_counter()
    # Any batch will do: compilation needs shapes, dtypes and shardings only.
    batch = next(pipeline.batches(dataset.train, config.batch_size, seed=0, epoch=0, **process))
    train_fn = train_jit.lower(
        carry["state"], carry["sums"], parallel.global_batch(batch, mesh), train_key
    ).compile()
    batch = next(pipeline.padded_batches(dataset.validation, config.eval_batch_size, **process))
    eval_fn = eval_jit.lower(
        carry["state"],
        parallel.replicate(zero_eval_sums(), mesh),
        parallel.global_batch(batch, mesh),
    ).compile()
    return train_fn, eval_fn, time.perf_counter() - start


def _augments(config):
    return bool(config.augment.crop_pad or config.augment.flip or config.augment.cutout)


def evaluate(loop, state, split):
    """Mean loss and score of `state` over a whole split (validation or test)."""
    sums = parallel.replicate(zero_eval_sums(), loop.mesh)
    for batch in pipeline.padded_batches(split, loop.config.eval_batch_size, **loop.process):
        sums = loop.eval_fn(state, sums, parallel.global_batch(batch, loop.mesh))
    return _means(sums, loop.config.task)


def score_test(loop, like, meta):
    """Test loss and score at the selected ('best') checkpoint and at the last epoch.

    This is the only place the test split is scored for results: selection (best epoch, early
    stopping, the checkpoint later evaluations restore) reads the validation split alone.
    """
    scores = {}
    for name, which in (("selected", checkpoint.BEST), ("final", checkpoint.LATEST)):
        carry, saved = loop.checkpoints.restore(which, like)
        scores[name] = {
            "epoch": saved["history"][-1]["epoch"] if saved["history"] else 0,
            **evaluate(loop, carry["state"], loop.dataset.test),
        }
    scores["selected"]["epoch"] = meta["best"]["epoch"]
    return scores


def _train_epoch(loop, state, sums, meta):
    """Trains from step meta['step'] to the end of its epoch; returns (state, sums, step).

    Shows running means on the progress bar every `log_every_steps` and saves a 'latest'
    checkpoint every `checkpoint_every_steps` (mid-epoch; the epoch's end is saved with its
    metrics).
    """
    config, steps_per_epoch = loop.config, loop.steps_per_epoch
    step = meta["step"]
    epoch, offset = divmod(step, steps_per_epoch)
    batches = pipeline.batches(
        loop.dataset.train,
        config.batch_size,
        seed=config.seed,
        epoch=epoch,
        start_step=offset,
        **loop.process,
    )
    bar = tqdm.tqdm(
        total=steps_per_epoch,
        initial=offset,
        desc=f"epoch {epoch + 1}/{config.num_epochs}",
        unit="step",
        leave=False,
        mininterval=1.0,
        disable=jax.process_index() != 0,
    )
    for batch in batches:
        state, sums = loop.train_fn(
            state, sums, parallel.global_batch(batch, loop.mesh), loop.train_key
        )
        step += 1
        bar.update()
        if step % config.log_every_steps == 0:
            _check_finite(sums, loop.checkpoints, steps_per_epoch)
            running = _means(sums, config.task)
            score = score_name(config.task)
            bar.set_postfix({"loss": f"{running['loss']:.4f}", score: f"{running[score]:.4f}"})
        loop.progress(step)  # triggers on the steps above, once the device has caught up
        every = config.checkpoint_every_steps
        if every and step % every == 0 and step % steps_per_epoch:
            _check_finite(sums, loop.checkpoints, steps_per_epoch)
            loop.checkpoints.save(
                checkpoint.LATEST, step, {"state": state, "sums": sums}, {**meta, "step": step}
            )
    bar.close()
    _check_finite(sums, loop.checkpoints, steps_per_epoch)
    return state, sums, step


def _epoch_record(loop, meta, step, train_metrics, val_metrics, times):
    """The per-epoch metrics line: train/val loss and score, wall times, examples/s."""
    score = score_name(loop.config.task)
    epoch, offset = divmod(meta["step"], loop.steps_per_epoch)
    steps_run = loop.steps_per_epoch - offset
    return {
        "epoch": epoch + 1,
        "step": step,
        "train_loss": train_metrics["loss"],
        f"train_{score}": train_metrics[score],
        "train_penalty": train_metrics["penalty"] / loop.steps_per_epoch,
        "val_loss": val_metrics["loss"],
        f"val_{score}": val_metrics[score],
        "epoch_time_s": times["train"] + times["eval"],
        "train_time_s": times["train"],
        "eval_time_s": times["eval"],
        "examples_per_s": steps_run * loop.config.batch_size / times["train"],
        "compile_s": times["compile"],
        "warmup": times["compile"] > 0 or offset > 0,
    }


def _prepare(config, workdir):
    """Data, mesh, model and the initial (or restored) train state of a run."""
    dataset = data.load(config.data)
    config_check.check_against_data(config, dataset.info)
    mesh = parallel.make_mesh()
    parallel.check_batch_size(config.batch_size, mesh)
    parallel.check_batch_size(config.eval_batch_size, mesh)
    steps_per_epoch = pipeline.num_batches(dataset.train, config.batch_size)
    model = models.create_model(config.model)
    tx = optim.create_optimizer(config.optimizer, steps_per_epoch, config.num_epochs)
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    state = create_train_state(model, tx, init_key, dataset.train.x[:1])
    carry = parallel.replicate({"state": state, "sums": zero_train_sums()}, mesh)
    checkpoints = checkpoint.Checkpoints(workdir / CHECKPOINT_DIR)
    restored = checkpoints.restore(checkpoint.LATEST, carry)
    if restored is None:
        meta = _fresh_meta()
    else:
        carry, meta = restored
        logging.info("resuming from %s at step %d", checkpoints.directory, meta["step"])
    return dataset, mesh, steps_per_epoch, train_key, carry, meta, checkpoints


def train_and_evaluate(config, workdir):
    """Trains `config` in `workdir` (resuming what is there); returns the run's summary dict.

    Validates the config and the workdir before any compute, then trains epoch by epoch,
    writing metrics.jsonl, TensorBoard summaries, checkpoints and finally summary.json.
    """
    config_check.validate(config)
    workdir = pathlib.Path(workdir)
    finished = config_check.finished_summary(config, workdir)
    if finished is not None:  # a finished run is left exactly as it is
        logging.info("%s is finished; nothing to do", workdir)
        return finished
    writes = jax.process_index() == 0
    dataset, mesh, steps_per_epoch, train_key, carry, meta, checkpoints = _prepare(config, workdir)
    num_params = sum(int(np.size(p)) for p in jax.tree.leaves(carry["state"].params))
    if writes:  # recorded once data and model are ready, so a failed start leaves no record
        (workdir / config_check.CONFIG_FILE).write_text(config_check.config_json(config))
        _write_json_lines(workdir / METRICS_FILE, meta["history"], "w")
    # TensorBoard only: each epoch's metrics are logged once, by the epoch loop.
    writer = metric_writers.MultiWriter(
        [metric_writers.SummaryWriter(str(workdir))] if writes else []
    )
    process = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    try:
        # Compiled even for a finished run: every process scores the test split together.
        train_fn, eval_fn, compile_s = _compile(config, dataset, mesh, carry, train_key, process)
        logging.info("compiled the train and eval steps in %.1f s", compile_s)
        progress = periodic_actions.ReportProgress(
            num_train_steps=steps_per_epoch * config.num_epochs,
            writer=writer,
            every_steps=config.log_every_steps,
            every_secs=None,
        )
        loop = _Loop(
            config,
            dataset,
            mesh,
            steps_per_epoch,
            train_fn,
            eval_fn,
            train_key,
            checkpoints,
            writer,
            progress,
            process,
        )
        if not meta["done"]:
            meta = _train_epochs(loop, carry, meta, compile_s, workdir if writes else None)
        test = score_test(loop, carry, meta)
    finally:
        checkpoints.close()
        writer.close()
    info = json.loads(_dumps(dataset.info))
    summary = summarize(
        config, info, meta, test, num_params=num_params, compile_s=compile_s, workdir=workdir
    )
    if writes:
        (workdir / SUMMARY_FILE).write_text(_dumps(summary, indent=1, sort_keys=True) + "\n")
        print(format_summary(summary), flush=True)
    return summary


def _train_epochs(loop, carry, meta, compile_s, metrics_dir):
    """Runs epochs until the last one or early stopping; returns the final meta."""
    config = loop.config
    state, sums = carry["state"], carry["sums"]
    while not meta["done"]:
        start = time.perf_counter()
        state, sums, step = _train_epoch(loop, state, sums, meta)
        train_metrics = _means(sums, config.task)
        times = {"train": time.perf_counter() - start, "compile": compile_s}
        start = time.perf_counter()
        val_metrics = evaluate(loop, state, loop.dataset.validation)
        times["eval"] = time.perf_counter() - start
        _check_diverged(loop, train_metrics, val_metrics, meta["step"] // loop.steps_per_epoch)
        record = _epoch_record(loop, meta, step, train_metrics, val_metrics, times)
        if config.test_every_epoch:  # the posts' protocol, for comparison only: never selects
            test_metrics = evaluate(loop, state, loop.dataset.test)
            record.update({f"test_{k}": v for k, v in test_metrics.items()})
        compile_s = 0.0
        meta, improved, stop = update_best(
            {**meta, "step": step, "history": [*meta["history"], record]},
            record,
            monitor=config.monitor,
            min_delta=config.early_stopping.min_delta,
            patience=config.early_stopping.patience,
        )
        meta["done"] = stop or record["epoch"] >= config.num_epochs
        sums = parallel.replicate(zero_train_sums(), loop.mesh)
        carry = {"state": state, "sums": sums}
        if improved:
            loop.checkpoints.save(checkpoint.BEST, step, carry, meta)
        loop.checkpoints.save(checkpoint.LATEST, step, carry, meta)
        if metrics_dir is not None:
            _write_json_lines(metrics_dir / METRICS_FILE, [record], "a")
        loop.writer.write_scalars(step, {k: v for k, v in record.items() if k != "warmup"})
        loop.writer.flush()
        logging.info("epoch %d: %s", record["epoch"], _dumps(record))
        if stop:
            logging.info(
                "early stopping: %s did not improve for %d epochs",
                config.monitor,
                config.early_stopping.patience,
            )
    return meta
