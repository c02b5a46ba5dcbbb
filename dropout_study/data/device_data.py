"""The training split held in device memory: uploaded once, each batch gathered on the device.

With `config.device_resident = True` the training loop takes its batches from here instead of
`pipeline.batches`. The rows of every batch are the host pipeline's (the same `epoch_order`
permutation of (seed, epoch), the same slice per step), so batches, masks, resume and the
device-count invariance are exactly those of a host-fed run; per step only the batch's row
indices travel to the device. The split is replicated on every device of the mesh in the dtype
it was loaded in (a float32 CIFAR training split is 614 MB); augmentation already runs on the
device, inside the train step.
"""

import dataclasses
from collections.abc import Callable, Iterator

import jax
import numpy as np

from dropout_study import parallel
from dropout_study.data import pipeline


@dataclasses.dataclass(frozen=True)
class DeviceSplit:
    """A split on the devices: x (N, ...), y (N, ...) replicated; `take(x, y, rows)` -> batch."""

    x: jax.Array
    y: jax.Array
    take: Callable  # jitted (x, y, rows (B,)) -> {"x", "y"} sharded along the batch axis

    def __len__(self):
        return self.x.shape[0]


def put(split, mesh) -> DeviceSplit:
    """Uploads `split` (numpy x, y) once to every device of `mesh`."""
    replicated = parallel.replicated(mesh)
    take = jax.jit(
        lambda x, y, rows: {"x": x[rows], "y": y[rows]},
        out_shardings=parallel.batch_sharding(mesh),
    )
    return DeviceSplit(
        jax.device_put(split.x, replicated), jax.device_put(split.y, replicated), take
    )


def batches(
    split: DeviceSplit, batch_size, *, seed, epoch, start_step=0
) -> Iterator[dict[str, jax.Array]]:
    """Yields the global batches {"x", "y"} of `pipeline.batches` for (seed, epoch), as device
    arrays sharded along the batch axis (every process passes the same global rows)."""
    for rows in pipeline.global_rows(
        split, batch_size, seed=seed, epoch=epoch, start_step=start_step
    ):
        yield split.take(split.x, split.y, rows.astype(np.int32))
