"""Several seeds of one trial trained together: stacked train states, one vmapped compiled step.

`train_and_evaluate_seeds(configs, workdirs)` does what `train.train_and_evaluate` does for each
config, for configs that differ in their seed alone (a study's `seeds_per_program`). Each seed
keeps its own workdir and files (config.json, metrics.jsonl, TensorBoard, checkpoints,
summary.json), and its batches and keys are its one-seed run's, so its dropout masks are
bit-identical and its metrics equal up to float rounding (a vmapped matmul may sum in another
order). Validation, checkpoints, early stopping and test scoring are per seed (`train.end_epoch`,
`train.score_test`); a seed that has stopped rides along in the stack unrecorded until all have.
A seed that fails (NaN loss, divergence) is returned as its exception while the others go on.
On resume every seed restores its 'latest' checkpoint; seeds left at different steps (a process
killed between two seeds' saves) go back to the earliest of them (`train.rewind`). Its checkpoints
are those of a one-seed run, so a run can be finished either way.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

from dropout_study import (
    checkpoint,
    divergence,
    parallel,
    run_config,
    run_files,
    train,
    train_step,
    xla_options,
)


@dataclasses.dataclass
class _Seed:
    """One seed's run inside the group; `progress` and `failure` change as it trains."""

    config: object
    model_config: object
    workdir: object
    setup: object  # train._Setup
    writer: object
    loop: object = None  # train._Loop, without a train_fn of its own
    compile_s: float = 0.0  # the group's compile time, recorded in each summary
    failure: Exception | None = None

    @property
    def progress(self):
        return self.setup.progress

    @property
    def active(self):
        return self.failure is None and not self.progress.done


def _check_group(configs):
    """The configs must differ in `seed` alone (one program trains them all)."""
    first = configs[0].to_dict()
    for config in configs[1:]:
        changes = run_config.config_changes(first, {**config.to_dict(), "seed": first["seed"]})
        if changes:
            raise ValueError(
                f"seeds trained in one program must differ in their seed alone; these differ "
                f"in {sorted(changes)}. Fix: group runs of one trial only."
            )


def stack_trees(trees):
    """A list of pytrees of one structure -> one pytree with a leading seed axis."""
    return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def share_structure(trees):
    """`trees` rebuilt with the first one's tree structure: the seeds' models and optimizers are
    equal but distinct objects, which a stacked step and a shared eval step would tell apart."""
    structure = jax.tree.structure(trees[0])
    return [jax.tree.unflatten(structure, jax.tree.leaves(tree)) for tree in trees]


def _stack(mesh, spec):
    """Jitted `stack_trees`, its result placed as `spec`."""
    return jax.jit(stack_trees, out_shardings=NamedSharding(mesh, spec))


def _share_structure(seeds):
    """Gives every seed's carry the first seed's tree structure (`share_structure`)."""
    carries = share_structure([s.setup.carry for s in seeds])
    for s, carry in zip(seeds, carries, strict=True):
        s.setup = dataclasses.replace(s.setup, carry=carry)


def _unstack(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _align(seeds):
    """Rewinds seeds that are ahead of the earliest unfinished one, so all train in step."""
    steps = {s.progress.step for s in seeds if s.active}
    if len(steps) > 1:
        target = min(steps)
        for s in seeds:
            if s.active and s.progress.step > target:
                logging.info("%s: back to step %d to train with its group", s.workdir, target)
                s.setup = train.rewind(s.setup, s.workdir, target)


def _stacked_batches(seeds, stack_batch, epoch, offset):
    """Each step's batches of every seed (its own order), stacked along a leading seed axis."""
    for batches in zip(*(s.loop.train_batches(epoch, offset) for s in seeds), strict=True):
        yield stack_batch(list(batches))


def _save_latest(seeds, state, sums, step):
    """A mid-epoch 'latest' checkpoint of every training seed."""
    for i, s in enumerate(seeds):
        if s.active:
            carry = {"state": _unstack(state, i), "sums": _unstack(sums, i)}
            meta = dataclasses.replace(s.progress, step=step).to_json()
            s.setup.checkpoints.save(checkpoint.LATEST, step, carry, meta)


def _check_finite(seeds, sums):
    """Marks a seed whose loss became NaN or Inf as failed."""
    for i, s in enumerate(seeds):
        if s.active:
            try:
                divergence.check_finite(
                    _unstack(sums, i), s.setup.checkpoints, s.loop.steps_per_epoch
                )
            except FloatingPointError as error:
                s.failure = error


def _train_epoch(seeds, step_fn, stack_batch, keys, state, sums, compile_s):
    """One epoch of every seed in the stack, then each training seed's `train.end_epoch`; returns
    the stacked state."""
    first = next(s for s in seeds if s.active)
    config, steps_per_epoch = first.config, first.loop.steps_per_epoch
    step = first.progress.step
    epoch, offset = divmod(step, steps_per_epoch)
    start = time.perf_counter()
    bar = train.epoch_bar(config, epoch, offset, steps_per_epoch, f" ({len(seeds)} seeds)")
    for batch in _stacked_batches(seeds, stack_batch, epoch, offset):
        state, sums = step_fn(state, sums, batch, keys)
        step += 1
        bar.update()
        if step % config.log_every_steps == 0:
            _check_finite(seeds, sums)
        every = config.checkpoint_every_steps
        if every and step % every == 0 and step % steps_per_epoch:
            _save_latest(seeds, state, sums, step)
    bar.close()
    _check_finite(seeds, sums)
    times = {"train": time.perf_counter() - start, "compile": compile_s}
    for i, s in enumerate(seeds):
        if s.active:
            metrics_dir = s.workdir if jax.process_index() == 0 else None
            try:
                progress, _ = train.end_epoch(
                    s.loop, _unstack(state, i), _unstack(sums, i), s.progress, step, times,
                    metrics_dir,
                )  # fmt: skip
                s.setup = dataclasses.replace(s.setup, progress=progress)
            except FloatingPointError as error:
                s.failure = error
    return state


def _open(configs, workdirs):
    """A _Seed per unfinished run (finished ones are left as they are), sharing one dataset."""
    seeds, finished, dataset = [], {}, None
    for i, (config, workdir) in enumerate(zip(configs, workdirs, strict=True)):
        model_config = run_config.validate(config)
        workdir = run_files.path(workdir)
        summary = run_config.finished_summary(config, workdir)
        if summary is not None:
            finished[i] = summary
            continue
        setup, writer = train.open_run(config, model_config, workdir, dataset)
        dataset = setup.dataset
        seeds.append((i, _Seed(config, model_config, workdir, setup, writer)))
    return seeds, finished


def train_and_evaluate_seeds(configs, workdirs):
    """Trains the seeds of `configs` (equal but for `seed`) in one program; returns, per config,
    its summary dict or the exception that stopped it."""
    _check_group(configs)
    indexed, results = _open(configs, workdirs)
    seeds = [s for _, s in indexed]
    try:
        if seeds:
            _train_group(seeds)
        for i, s in indexed:
            if s.failure is not None:
                results[i] = s.failure
                continue
            test = train.score_test(s.loop, s.setup.carry, s.progress)
            results[i] = train.write_summary(
                s.config, s.model_config, s.workdir, s.setup, s.progress, test, s.compile_s
            )
    finally:
        for s in seeds:
            s.setup.checkpoints.close()
            s.writer.close()
    return [results[i] for i in range(len(configs))]


def _train_group(seeds):
    """Compiles the stacked step and trains until every seed has stopped or failed."""
    _align(seeds)
    _share_structure(seeds)
    first = seeds[0]
    mesh, config = first.setup.mesh, first.config
    start = time.perf_counter()
    process = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    eval_fn = train.compile_eval(
        config, first.setup.dataset, mesh, first.setup.carry["state"], process
    )
    for s in seeds:
        s.loop = train.make_loop(s.config, s.setup, s.writer, None, eval_fn)
    stack_state = _stack(mesh, PartitionSpec())
    stack_batch = _stack(mesh, PartitionSpec(None, parallel.DATA_AXIS))
    state = stack_state([s.setup.carry["state"] for s in seeds])
    sums = stack_state([s.setup.carry["sums"] for s in seeds])
    keys = stack_state([s.setup.train_key for s in seeds])
    example = next(_stacked_batches(seeds, stack_batch, 0, 0))
    step, _ = train.step_functions(config)
    step_fn = (
        xla_options.jit(jax.vmap(step), donate_argnums=(0, 1))
        .lower(state, sums, example, keys)
        .compile()
    )
    compile_s = time.perf_counter() - start
    for s in seeds:
        s.compile_s = compile_s
    logging.info(
        "compiled the %d-seed train step and the eval step in %.1f s", len(seeds), compile_s
    )
    while any(s.active for s in seeds):
        state = _train_epoch(seeds, step_fn, stack_batch, keys, state, sums, compile_s)
        sums = stack_state([train_step.zero_train_sums()] * len(seeds))
        compile_s = 0.0
