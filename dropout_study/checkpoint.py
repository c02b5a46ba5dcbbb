"""Orbax checkpoints of one run: 'latest' to resume from, 'best' by the monitored validation metric.

Each checkpoint holds two items: `state`, a pytree of arrays (train state, partial-epoch metric
sums), and `meta`, a JSON dict (epoch, position in the epoch, metric history, best epoch). Orbax
writes a step to a temporary directory and renames it when complete, so a process killed while
saving leaves the previous checkpoint intact.
"""

import jax
import orbax.checkpoint as ocp

from dropout_study import run_files

LATEST = "latest"
BEST = "best"


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be read."""


def _manager(directory, max_to_keep):
    # Synchronous saves: the train step donates its input buffers, which an asynchronous write
    # could still be reading.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=True,
        enable_async_checkpointing=False,
        cleanup_tmp_directories=True,  # what a killed save left behind
    )
    return ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))


class Checkpoints:
    """The 'latest' (two kept, for resume) and 'best' (one kept) checkpoints under `directory`."""

    def __init__(self, directory):
        directory = run_files.path(directory)
        self.directory = directory if run_files.is_remote(directory) else directory.absolute()
        self._managers = {
            LATEST: _manager(self.directory / LATEST, 2),
            BEST: _manager(self.directory / BEST, 1),
        }

    def steps(self, which=LATEST):
        """The steps held by the 'latest' or 'best' checkpoints, oldest first."""
        return sorted(self._managers[which].all_steps())

    def save(self, which, step, state, meta):
        """Saves `state` (pytree of arrays) and `meta` (JSON dict) at `step`; skips a saved step.

        A resumed run repeats the steps after its checkpoint exactly, so a step already on disk
        (written before an interruption) holds the same values and is left as it is.
        """
        manager = self._managers[which]
        if step in manager.all_steps():
            return
        manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )

    def restore(self, which, like, step=None):
        """(state, meta) of the newest 'latest' or 'best' checkpoint (or the one of `step`), or None
        when there is none (or `step` is not held).

        `like` is a pytree with the structure, shapes, dtypes and shardings of the state to restore
        (None: restore the saved tree as nested dicts of arrays, e.g. to read parameters only; saved
        on other devices, e.g. by a multi-host job, they land on this process's first device).
        Raises CheckpointError naming the directory and the fix when the checkpoint is unreadable.
        """
        manager = self._managers[which]
        steps = sorted(manager.all_steps())
        if not steps or (step is not None and step not in steps):
            return None
        steps = steps if step is None else steps[: steps.index(step) + 1]
        abstract = None if like is None else jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            restored = manager.restore(
                steps[-1],
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract, fallback_sharding=_first_device()),
                    meta=ocp.args.JsonRestore(),
                ),
            )
        except Exception as err:  # orbax and tensorstore raise many types for damaged files
            raise CheckpointError(_corrupt_message(self.directory / which, steps, err)) from err
        if restored["meta"] is None:
            raise CheckpointError(
                _corrupt_message(self.directory / which, steps, "the meta item is missing")
            )
        return restored["state"], restored["meta"]

    def close(self):
        """Finishes pending saves and releases the managers."""
        for manager in self._managers.values():
            manager.close()


def _first_device():
    """Where arrays go whose saved devices this process lacks (`like` None and a new topology)."""
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def _reason(err, limit=120):
    """The first line of `err`, cut to `limit` characters: orbax errors embed long specs."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if isinstance(err, Exception) else text


def _corrupt_message(directory, steps, err):
    path = directory / str(steps[-1])
    previous = f"resume from step {steps[-2]}" if len(steps) > 1 else "start the run afresh"
    return (
        f"checkpoint {path} is corrupt or incomplete and cannot be restored ({_reason(err)}). "
        f"Fix: delete {path} to {previous}, or run with a new --workdir."
    )
