"""The training loop: epochs of jit steps (train_step), per-epoch metrics, checkpoints, resume.

`train_and_evaluate(config, workdir)` is the one entry point (the main command, studies and
notebooks call it). Each step's dropout and augmentation keys are the run's key folded with the
step, and the training batches are a function of (seed, epoch) alone, so a run resumed from a
checkpoint taken at any step repeats the uninterrupted run bit for bit.

Workdir layout (file names in run_files): `config.json` (the run's config), `metrics.jsonl` (one
JSON line per epoch), TensorBoard event files, `checkpoints/{latest,best}/<step>/` and, at the
end, `summary.json`.
"""

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
import tqdm
from absl import logging
from clu import metric_writers, periodic_actions

from dropout_study import (
    checkpoint,
    data,
    models,
    optim,
    parallel,
    run_config,
    run_files,
    run_summary,
    train_step,
)
from dropout_study.data import device_data, pipeline

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


def monitor_mode(monitor):
    """'min' for losses, 'max' for accuracy and PSNR."""
    return "min" if monitor.endswith("loss") else "max"


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run stands; saved as JSON with every checkpoint, so a resumed run goes on exactly.

    `history` holds the per-epoch records; `best` is {"epoch", "step", "value"} of the best
    validation epoch so far; `bad_epochs` counts the epochs since it (early stopping).
    """

    step: int = 0
    history: tuple = ()
    best: dict | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    done: bool = False

    def to_json(self):
        """The checkpoint's `meta` item."""
        return {**dataclasses.asdict(self), "history": list(self.history)}

    @classmethod
    def from_json(cls, meta):
        return cls(**{**meta, "history": tuple(meta["history"])})


def update_best(progress, record, *, monitor, min_delta, patience):
    """Early-stopping bookkeeping after an epoch: (new Progress, improved, stop)."""
    value = record[monitor]
    best = progress.best
    sign = 1.0 if monitor_mode(monitor) == "max" else -1.0
    improved = best is None or sign * (value - best["value"]) > min_delta
    if improved:
        best = {"epoch": record["epoch"], "step": record["step"], "value": value}
    bad_epochs = 0 if improved else progress.bad_epochs + 1
    stop = patience > 0 and bad_epochs >= patience
    new = dataclasses.replace(progress, best=best, bad_epochs=bad_epochs, stopped_early=stop)
    return new, improved, stop


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


def restore_best(config, workdir):
    """(model, variables) of the best checkpoint of a finished or partial run in `workdir`."""
    directory = run_files.path(workdir) / run_files.CHECKPOINT_DIR
    checkpoints = checkpoint.Checkpoints(directory)
    restored = checkpoints.restore(checkpoint.BEST, None)
    checkpoints.close()
    if restored is None:
        raise FileNotFoundError(
            f"{directory / checkpoint.BEST} holds no checkpoint; "
            f"train first with `python -m dropout_study.main --config=... --workdir={workdir}`."
        )
    state = restored[0]["state"]
    variables = {"params": state["params"], "batch_stats": state.get("batch_stats") or {}}
    return models.create_model(config.model), variables


def _write_json_lines(path, records, mode):
    with path.open(mode) as f:
        for record in records:
            f.write(_dumps(record) + "\n")


@dataclasses.dataclass(frozen=True)
class _Setup:
    """A run ready to train: its data, mesh, key, train state (fresh or restored), checkpoints."""

    dataset: data.Dataset
    mesh: jax.sharding.Mesh
    steps_per_epoch: int
    train_key: jax.Array
    carry: dict  # {"state": TrainState, "sums": partial-epoch metric sums}, replicated
    progress: Progress
    checkpoints: checkpoint.Checkpoints


@dataclasses.dataclass(frozen=True)
class _Loop:
    """What the epoch loop reads: config, data, mesh, compiled steps, checkpoints, writers."""

    config: ml_collections.ConfigDict
    dataset: data.Dataset
    mesh: jax.sharding.Mesh
    steps_per_epoch: int
    train_batches: Callable  # (epoch, start_step) -> the epoch's global batches (_batch_source)
    train_fn: Callable  # compiled (state, sums, batch, key) -> (state, sums)
    eval_fn: Callable  # compiled (state, sums, batch) -> sums
    train_key: jax.Array
    checkpoints: checkpoint.Checkpoints
    writer: metric_writers.MetricWriter
    report_progress: periodic_actions.ReportProgress
    process: dict  # {"process_index", "process_count"} for the input pipeline


def _compile(config, dataset, mesh, carry, train_key, process):
    """AOT-compiled (train_fn, eval_fn) and the seconds spent compiling them."""
    augment_kwargs = dict(config.augment) if _augments(config) else None
    train_jit = jax.jit(
        functools.partial(
            train_step.train_step,
            task=config.task,
            l1=config.regularization.l1,
            l2=config.regularization.l2,
            augment_kwargs=augment_kwargs,
            compute_dtype=config.compute_dtype,
        ),
        donate_argnums=(0, 1),
    )
    eval_jit = jax.jit(
        functools.partial(
            train_step.eval_step, task=config.task, compute_dtype=config.compute_dtype
        ),
        donate_argnums=(1,),
    )
    start = time.perf_counter()
    # Any batch will do: compilation needs shapes, dtypes and shardings only.
    batch = next(pipeline.batches(dataset.train, config.batch_size, seed=0, epoch=0, **process))
    train_fn = train_jit.lower(
        carry["state"], carry["sums"], parallel.global_batch(batch, mesh), train_key
    ).compile()
    batch = next(pipeline.padded_batches(dataset.validation, config.eval_batch_size, **process))
    eval_fn = eval_jit.lower(
        carry["state"],
        parallel.replicate(train_step.zero_eval_sums(), mesh),
        parallel.global_batch(batch, mesh),
    ).compile()
    return train_fn, eval_fn, time.perf_counter() - start


def _augments(config):
    return bool(config.augment.crop_pad or config.augment.flip or config.augment.cutout)


def evaluate(loop, state, split):
    """Mean loss and score of `state` over a whole split (validation or test)."""
    sums = parallel.replicate(train_step.zero_eval_sums(), loop.mesh)
    for batch in pipeline.padded_batches(split, loop.config.eval_batch_size, **loop.process):
        sums = loop.eval_fn(state, sums, parallel.global_batch(batch, loop.mesh))
    return train_step.means(sums, loop.config.task)


def score_test(loop, like, progress):
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
    scores["selected"]["epoch"] = progress.best["epoch"]
    return scores


def _batch_source(config, train_split, mesh, process):
    """(epoch, start_step) -> iterator of the epoch's global training batches from that step.

    Fed from the host (`pipeline.batches`, each process its slice), or with
    `config.device_resident` gathered from a copy of the split uploaded once (`device_data`):
    the same batches either way.
    """
    if config.device_resident:
        on_device = device_data.put(train_split, mesh)
        return lambda epoch, start: device_data.batches(
            on_device, config.batch_size, seed=config.seed, epoch=epoch, start_step=start
        )

    def from_host(epoch, start):
        for batch in pipeline.batches(
            train_split, config.batch_size, seed=config.seed, epoch=epoch, start_step=start,
            **process,
        ):  # fmt: skip
            yield parallel.global_batch(batch, mesh)

    return from_host


def _train_epoch(loop, state, sums, progress):
    """Trains from step progress.step to the end of its epoch; returns (state, sums, step).

    Shows running means on the progress bar every `log_every_steps` and saves a 'latest'
    checkpoint every `checkpoint_every_steps` (mid-epoch; the epoch's end is saved with its
    metrics).
    """
    config, steps_per_epoch = loop.config, loop.steps_per_epoch
    step = progress.step
    epoch, offset = divmod(step, steps_per_epoch)
    bar = tqdm.tqdm(
        total=steps_per_epoch,
        initial=offset,
        desc=f"epoch {epoch + 1}/{config.num_epochs}",
        unit="step",
        leave=False,
        mininterval=1.0,
        disable=jax.process_index() != 0,
    )
    for batch in loop.train_batches(epoch, offset):
        state, sums = loop.train_fn(state, sums, batch, loop.train_key)
        step += 1
        bar.update()
        if step % config.log_every_steps == 0:
            _check_finite(sums, loop.checkpoints, steps_per_epoch)
            running = train_step.means(sums, config.task)
            score = train_step.score_name(config.task)
            bar.set_postfix({"loss": f"{running['loss']:.4f}", score: f"{running[score]:.4f}"})
        loop.report_progress(step)  # triggers on the steps above, once the device has caught up
        every = config.checkpoint_every_steps
        if every and step % every == 0 and step % steps_per_epoch:
            _check_finite(sums, loop.checkpoints, steps_per_epoch)
            loop.checkpoints.save(
                checkpoint.LATEST,
                step,
                {"state": state, "sums": sums},
                dataclasses.replace(progress, step=step).to_json(),
            )
    bar.close()
    _check_finite(sums, loop.checkpoints, steps_per_epoch)
    return state, sums, step


def _epoch_record(loop, progress, step, train_metrics, val_metrics, times):
    """The per-epoch metrics line: train/val loss and score, wall times, examples/s."""
    score = train_step.score_name(loop.config.task)
    epoch, offset = divmod(progress.step, loop.steps_per_epoch)
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


def _prepare(config, model_config, workdir):
    """Data, mesh, model (`model_config`: resolved) and the initial (or restored) train state."""
    dataset = data.load(config.data)
    run_config.check_against_data(config, dataset.info)
    mesh = parallel.make_mesh()
    parallel.check_batch_size(config.batch_size, mesh)
    parallel.check_batch_size(config.eval_batch_size, mesh)
    steps_per_epoch = pipeline.num_batches(dataset.train, config.batch_size)
    model = models.build(model_config)
    tx = optim.create_optimizer(config.optimizer, steps_per_epoch, config.num_epochs)
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    state = train_step.create_train_state(model, tx, init_key, dataset.train.x[:1])
    carry = parallel.replicate({"state": state, "sums": train_step.zero_train_sums()}, mesh)
    checkpoints = checkpoint.Checkpoints(workdir / run_files.CHECKPOINT_DIR)
    restored = checkpoints.restore(checkpoint.LATEST, carry)
    if restored is None:
        progress = Progress()
    else:
        carry, meta = restored
        progress = Progress.from_json(meta)
        logging.info("resuming from %s at step %d", checkpoints.directory, progress.step)
    return _Setup(dataset, mesh, steps_per_epoch, train_key, carry, progress, checkpoints)


def _train_epochs(loop, carry, progress, compile_s, metrics_dir):
    """Runs epochs until the last one or early stopping; returns the final Progress."""
    config = loop.config
    state, sums = carry["state"], carry["sums"]
    while not progress.done:
        start = time.perf_counter()
        state, sums, step = _train_epoch(loop, state, sums, progress)
        train_metrics = train_step.means(sums, config.task)
        times = {"train": time.perf_counter() - start, "compile": compile_s}
        start = time.perf_counter()
        val_metrics = evaluate(loop, state, loop.dataset.validation)
        times["eval"] = time.perf_counter() - start
        _check_diverged(loop, train_metrics, val_metrics, progress.step // loop.steps_per_epoch)
        record = _epoch_record(loop, progress, step, train_metrics, val_metrics, times)
        if config.test_every_epoch:  # the posts' protocol, for comparison only: never selects
            test_metrics = evaluate(loop, state, loop.dataset.test)
            record.update({f"test_{k}": v for k, v in test_metrics.items()})
        compile_s = 0.0
        progress, improved, stop = update_best(
            dataclasses.replace(progress, step=step, history=(*progress.history, record)),
            record,
            monitor=config.monitor,
            min_delta=config.early_stopping.min_delta,
            patience=config.early_stopping.patience,
        )
        progress = dataclasses.replace(progress, done=stop or record["epoch"] >= config.num_epochs)
        sums = parallel.replicate(train_step.zero_train_sums(), loop.mesh)
        carry = {"state": state, "sums": sums}
        meta = progress.to_json()
        if improved:
            loop.checkpoints.save(checkpoint.BEST, step, carry, meta)
        loop.checkpoints.save(checkpoint.LATEST, step, carry, meta)
        if metrics_dir is not None:
            _write_json_lines(metrics_dir / run_files.METRICS_FILE, [record], "a")
        loop.writer.write_scalars(step, {k: v for k, v in record.items() if k != "warmup"})
        loop.writer.flush()
        logging.info("epoch %d: %s", record["epoch"], _dumps(record))
        if stop:
            logging.info(
                "early stopping: %s did not improve for %d epochs",
                config.monitor,
                config.early_stopping.patience,
            )
    return progress


def train_and_evaluate(config, workdir):
    """Trains `config` in `workdir` (resuming what is there); returns the run's summary dict.

    Validates the config and the workdir before any compute, then trains epoch by epoch,
    writing metrics.jsonl, TensorBoard summaries, checkpoints and finally summary.json.
    """
    model_config = run_config.validate(config)
    workdir = run_files.path(workdir)
    finished = run_config.finished_summary(config, workdir)
    if finished is not None:  # a finished run is left exactly as it is
        logging.info("%s is finished; nothing to do", workdir)
        return finished
    writes = jax.process_index() == 0
    setup = _prepare(config, model_config, workdir)
    carry, checkpoints = setup.carry, setup.checkpoints
    num_params = sum(int(np.size(p)) for p in jax.tree.leaves(carry["state"].params))
    if writes:  # recorded once data and model are ready, so a failed start leaves no record
        (workdir / run_files.CONFIG_FILE).write_text(run_config.config_json(config))
        _write_json_lines(workdir / run_files.METRICS_FILE, setup.progress.history, "w")
    # TensorBoard only: each epoch's metrics are logged once, by the epoch loop.
    writer = metric_writers.MultiWriter(
        [metric_writers.SummaryWriter(str(workdir))] if writes else []
    )
    process = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    try:
        # Compiled even for a finished run: every process scores the test split together.
        train_fn, eval_fn, compile_s = _compile(
            config, setup.dataset, setup.mesh, carry, setup.train_key, process
        )
        logging.info("compiled the train and eval steps in %.1f s", compile_s)
        loop = _Loop(
            config=config,
            dataset=setup.dataset,
            mesh=setup.mesh,
            steps_per_epoch=setup.steps_per_epoch,
            train_batches=_batch_source(config, setup.dataset.train, setup.mesh, process),
            train_fn=train_fn,
            eval_fn=eval_fn,
            train_key=setup.train_key,
            checkpoints=checkpoints,
            writer=writer,
            report_progress=periodic_actions.ReportProgress(
                num_train_steps=setup.steps_per_epoch * config.num_epochs,
                writer=writer,
                every_steps=config.log_every_steps,
                every_secs=None,
            ),
            process=process,
        )
        progress = setup.progress
        if not progress.done:
            progress = _train_epochs(loop, carry, progress, compile_s, workdir if writes else None)
        test = score_test(loop, carry, progress)
    finally:
        checkpoints.close()
        writer.close()
    info = json.loads(_dumps(setup.dataset.info))
    summary = run_summary.summarize(
        config,
        model_config,
        info,
        progress,
        test,
        num_params=num_params,
        compile_s=compile_s,
        workdir=workdir,
    )
    if writes:
        text = _dumps(summary, indent=1, sort_keys=True) + "\n"
        (workdir / run_files.SUMMARY_FILE).write_text(text)
        print(run_summary.format_summary(summary), flush=True)
    return summary
