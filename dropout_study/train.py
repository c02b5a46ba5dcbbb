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
    divergence,
    early_stopping,
    models,
    optim,
    parallel,
    run_config,
    run_files,
    run_summary,
    train_step,
    xla_options,
)
from dropout_study.data import device_data, pipeline

# Per-epoch record fields that measure the machine rather than the run (they differ on a rerun).
TIME_FIELDS = (
    "epoch_time_s",
    "train_time_s",
    "eval_time_s",
    "examples_per_s",
    "compile_s",
    "warmup",
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
    progress: early_stopping.Progress
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


def step_functions(config):
    """(train step, eval step): train_step's functions with `config`'s fields bound, unjitted."""
    augment_kwargs = dict(config.augment) if _augments(config) else None
    train = functools.partial(
        train_step.train_step,
        task=config.task,
        l1=config.regularization.l1,
        l2=config.regularization.l2,
        augment_kwargs=augment_kwargs,
        compute_dtype=config.compute_dtype,
    )
    evaluate = functools.partial(
        train_step.eval_step, task=config.task, compute_dtype=config.compute_dtype
    )
    return train, evaluate


def compile_eval(config, dataset, mesh, state, process):
    """The AOT-compiled eval step (state, sums, batch) -> sums of one (unstacked) train state."""
    _, evaluate = step_functions(config)
    batch = next(pipeline.padded_batches(dataset.validation, config.eval_batch_size, **process))
    return (
        xla_options.jit(evaluate, donate_argnums=(1,))
        .lower(
            state,
            parallel.replicate(train_step.zero_eval_sums(), mesh),
            parallel.global_batch(batch, mesh),
        )
        .compile()
    )


def _compile(config, dataset, mesh, carry, train_key, process):
    """AOT-compiled (train_fn, eval_fn) and the seconds spent compiling them."""
    train, _ = step_functions(config)
    start = time.perf_counter()
    # Any batch will do: compilation needs shapes, dtypes and shardings only.
    batch = next(pipeline.batches(dataset.train, config.batch_size, seed=0, epoch=0, **process))
    train_fn = (
        xla_options.jit(train, donate_argnums=(0, 1))
        .lower(carry["state"], carry["sums"], parallel.global_batch(batch, mesh), train_key)
        .compile()
    )
    eval_fn = compile_eval(config, dataset, mesh, carry["state"], process)
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


def epoch_bar(config, epoch, offset, steps_per_epoch, note=""):
    """The progress bar of one epoch's steps (process 0 only), starting at `offset`."""
    return tqdm.tqdm(
        total=steps_per_epoch,
        initial=offset,
        desc=f"epoch {epoch + 1}/{config.num_epochs}{note}",
        unit="step",
        leave=False,
        mininterval=1.0,
        disable=jax.process_index() != 0,
    )


def _train_epoch(loop, state, sums, progress):
    """Trains from step progress.step to the end of its epoch; returns (state, sums, step).

    Shows running means on the progress bar every `log_every_steps` and saves a 'latest'
    checkpoint every `checkpoint_every_steps` (mid-epoch; the epoch's end is saved with its
    metrics).
    """
    config, steps_per_epoch = loop.config, loop.steps_per_epoch
    step = progress.step
    epoch, offset = divmod(step, steps_per_epoch)
    bar = epoch_bar(config, epoch, offset, steps_per_epoch)
    for batch in loop.train_batches(epoch, offset):
        state, sums = loop.train_fn(state, sums, batch, loop.train_key)
        step += 1
        bar.update()
        if step % config.log_every_steps == 0:
            divergence.check_finite(sums, loop.checkpoints, steps_per_epoch)
            running = train_step.means(sums, config.task)
            score = train_step.score_name(config.task)
            bar.set_postfix({"loss": f"{running['loss']:.4f}", score: f"{running[score]:.4f}"})
        loop.report_progress(step)  # triggers on the steps above, once the device has caught up
        every = config.checkpoint_every_steps
        if every and step % every == 0 and step % steps_per_epoch:
            divergence.check_finite(sums, loop.checkpoints, steps_per_epoch)
            loop.checkpoints.save(
                checkpoint.LATEST,
                step,
                {"state": state, "sums": sums},
                dataclasses.replace(progress, step=step).to_json(),
            )
    bar.close()
    divergence.check_finite(sums, loop.checkpoints, steps_per_epoch)
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


def _prepare(config, model_config, workdir, dataset):
    """Data, mesh, model (`model_config`: resolved) and the initial (or restored) train state."""
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
        progress = early_stopping.Progress()
    else:
        carry, meta = restored
        progress = early_stopping.Progress.from_json(meta)
        logging.info("resuming from %s at step %d", checkpoints.directory, progress.step)
    return _Setup(dataset, mesh, steps_per_epoch, train_key, carry, progress, checkpoints)


def rewind(setup, workdir, step):
    """`setup` restored from its 'latest' checkpoint of an earlier `step` (still held: the two
    newest are), with metrics.jsonl cut back to match; ValueError when it is gone."""
    restored = setup.checkpoints.restore(checkpoint.LATEST, setup.carry, step=step)
    if restored is None:
        raise ValueError(
            f"{setup.checkpoints.directory} no longer holds step {step} "
            f"(it holds {setup.checkpoints.steps()}). Fix: delete the newer checkpoints there, or "
            "train this run alone (seeds_per_program=1)."
        )
    carry, meta = restored
    progress = early_stopping.Progress.from_json(meta)
    if jax.process_index() == 0:
        _write_json_lines(workdir / run_files.METRICS_FILE, progress.history, "w")
    return dataclasses.replace(setup, carry=carry, progress=progress)


def end_epoch(loop, state, sums, progress, step, times, metrics_dir):
    """After an epoch's training (`times`: its train and compile seconds): validates, records,
    checkpoints ('best' when it improved, and 'latest') and logs; returns (the new Progress, the
    next epoch's zero sums)."""
    config = loop.config
    train_metrics = train_step.means(sums, config.task)
    start = time.perf_counter()
    val_metrics = evaluate(loop, state, loop.dataset.validation)
    times = {**times, "eval": time.perf_counter() - start}
    divergence.check_diverged(
        config.task,
        loop.dataset.info.get("num_classes", 0),
        loop.checkpoints,
        train_metrics,
        val_metrics,
        progress.step // loop.steps_per_epoch,
    )
    record = _epoch_record(loop, progress, step, train_metrics, val_metrics, times)
    if config.test_every_epoch:  # the posts' protocol, for comparison only: never selects
        test_metrics = evaluate(loop, state, loop.dataset.test)
        record.update({f"test_{k}": v for k, v in test_metrics.items()})
    progress, improved, stop = early_stopping.update_best(
        dataclasses.replace(progress, step=step, history=(*progress.history, record)),
        record,
        monitor=config.monitor,
        min_delta=config.early_stopping.min_delta,
        patience=config.early_stopping.patience,
    )
    progress = dataclasses.replace(progress, done=stop or record["epoch"] >= config.num_epochs)
    zeros = parallel.replicate(train_step.zero_train_sums(), loop.mesh)  # the next epoch's sums
    carry = {"state": state, "sums": zeros}
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
    return progress, zeros


def _train_epochs(loop, carry, progress, compile_s, metrics_dir):
    """Runs epochs until the last one or early stopping; returns the final Progress."""
    state, sums = carry["state"], carry["sums"]
    while not progress.done:
        start = time.perf_counter()
        state, sums, step = _train_epoch(loop, state, sums, progress)
        times = {"train": time.perf_counter() - start, "compile": compile_s}
        progress, sums = end_epoch(loop, state, sums, progress, step, times, metrics_dir)
        compile_s = 0.0
    return progress


def open_run(config, model_config, workdir, dataset=None):
    """(setup, writer) of a run about to train: `_Setup` (data, loaded unless `dataset` is given,
    and the fresh or restored state) and its TensorBoard writer. Process 0 writes config.json and
    the metrics so far, once data and model are ready, so a failed start leaves no record."""
    dataset = data.load(config.data) if dataset is None else dataset
    setup = _prepare(config, model_config, workdir, dataset)
    writes = jax.process_index() == 0
    if writes:
        (workdir / run_files.CONFIG_FILE).write_text(run_config.config_json(config))
        _write_json_lines(workdir / run_files.METRICS_FILE, setup.progress.history, "w")
    # TensorBoard only: each epoch's metrics are logged once, by the epoch loop.
    writer = metric_writers.MultiWriter(
        [metric_writers.SummaryWriter(str(workdir))] if writes else []
    )
    return setup, writer


def make_loop(config, setup, writer, train_fn, eval_fn):
    """The `_Loop` of an opened run with its compiled steps."""
    process = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    return _Loop(
        config=config,
        dataset=setup.dataset,
        mesh=setup.mesh,
        steps_per_epoch=setup.steps_per_epoch,
        train_batches=_batch_source(config, setup.dataset.train, setup.mesh, process),
        train_fn=train_fn,
        eval_fn=eval_fn,
        train_key=setup.train_key,
        checkpoints=setup.checkpoints,
        writer=writer,
        report_progress=periodic_actions.ReportProgress(
            num_train_steps=setup.steps_per_epoch * config.num_epochs,
            writer=writer,
            every_steps=config.log_every_steps,
            every_secs=None,
        ),
        process=process,
    )


def write_summary(config, model_config, workdir, setup, progress, test, compile_s):
    """The run's summary dict, written to summary.json (and printed) by process 0."""
    summary = run_summary.summarize(
        config,
        model_config,
        json.loads(_dumps(setup.dataset.info)),
        progress,
        test,
        num_params=sum(int(np.size(p)) for p in jax.tree.leaves(setup.carry["state"].params)),
        compile_s=compile_s,
        workdir=workdir,
    )
    if jax.process_index() == 0:
        text = _dumps(summary, indent=1, sort_keys=True) + "\n"
        (workdir / run_files.SUMMARY_FILE).write_text(text)
        print(run_summary.format_summary(summary), flush=True)
    return summary


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
    setup, writer = open_run(config, model_config, workdir)
    try:
        # Compiled even for a finished run: every process scores the test split together.
        process = {"process_index": jax.process_index(), "process_count": jax.process_count()}
        train_fn, eval_fn, compile_s = _compile(
            config, setup.dataset, setup.mesh, setup.carry, setup.train_key, process
        )
        logging.info("compiled the train and eval steps in %.1f s", compile_s)
        loop = make_loop(config, setup, writer, train_fn, eval_fn)
        progress = setup.progress
        if not progress.done:
            metrics_dir = workdir if jax.process_index() == 0 else None
            progress = _train_epochs(loop, setup.carry, progress, compile_s, metrics_dir)
        test = score_test(loop, setup.carry, progress)
    finally:
        setup.checkpoints.close()
        writer.close()
    return write_summary(config, model_config, workdir, setup, progress, test, compile_s)
