"""Batches of numpy arrays: deterministic per (seed, epoch), fixed shapes, one slice per host.

Every host computes the same permutation of the split for (seed, epoch) and takes its own
contiguous slice of each global batch, so the global batch does not depend on the host count.
A run resumed at global step k restarts at epoch k // num_batches, batch k % num_batches and
sees exactly the batches an uninterrupted run would have seen.
"""

import numpy as np


def num_batches(split, batch_size):
    """Full batches per epoch (the remainder is dropped so every batch has the same shape)."""
    if batch_size < 1 or batch_size > len(split):
        raise ValueError(
            f"batch_size={batch_size} must lie in [1, {len(split)}] (the split's size); use a "
            "smaller batch or more data."
        )
    return len(split) // batch_size


def epoch_order(n, seed, epoch):
    """The permutation of n examples used in `epoch` (a new one every epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def global_rows(split, batch_size, *, seed, epoch, shuffle=True, start_step=0):
    """Yields the row indices (batch_size,) of each global batch of `epoch`, from `start_step`.

    The one definition of the training order: `batches` slices each host's rows from these, and
    `device_data.batches` gathers them on the device.
    """
    steps = num_batches(split, batch_size)
    if not 0 <= start_step <= steps:
        raise ValueError(f"start_step={start_step} must lie in [0, {steps}] (batches per epoch).")
    order = epoch_order(len(split), seed, epoch) if shuffle else np.arange(len(split))
    for step in range(start_step, steps):
        yield order[step * batch_size : (step + 1) * batch_size]


def batches(
    split,
    batch_size,
    *,
    seed,
    epoch,
    shuffle=True,
    process_index=0,
    process_count=1,
    start_step=0,
):
    """Yields {"x", "y"} holding this host's batch_size // process_count rows of each batch.

    batch_size is the global batch. start_step skips that many batches of the epoch without
    touching their data (cheap resume).
    """
    local = local_batch_size(batch_size, process_index, process_count)
    mine = slice(process_index * local, (process_index + 1) * local)
    for rows in global_rows(
        split, batch_size, seed=seed, epoch=epoch, shuffle=shuffle, start_step=start_step
    ):
        yield {"x": split.x[rows[mine]], "y": split.y[rows[mine]]}


def padded_batches(split, batch_size, *, process_index=0, process_count=1):
    """Every example once, in order, for evaluation: {"x", "y", "mask"} with fixed shapes.

    The last batch is filled up with copies of row 0 whose mask is False (exclude them from
    metrics), so jit compiles one shape and no example is dropped.
    """
    local = local_batch_size(batch_size, process_index, process_count)
    steps = -(-len(split) // batch_size)
    for step in range(steps):
        rows = step * batch_size + process_index * local + np.arange(local)
        mask = rows < len(split)
        rows = np.where(mask, rows, 0)
        yield {"x": split.x[rows], "y": split.y[rows], "mask": mask}


def local_batch_size(batch_size, process_index, process_count):
    """Rows of each global batch that one host holds."""
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(
            f"process_index={process_index} must lie in [0, process_count={process_count})."
        )
    if batch_size % process_count:
        raise ValueError(
            f"batch_size={batch_size} is not divisible by process_count={process_count}; use a "
            f"multiple of {process_count}."
        )
    return batch_size // process_count
