"""Data parallelism over every device of every host with `jax.sharding`.

One mesh axis, "data", spans all devices of all processes. Batches are sharded along it; parameters
and optimiser state are replicated (a `PartitionSpec` per leaf, so sharding them later is a change
of specs, not of code). Each process feeds only its own slice of the global batch.

Masks do not depend on how the batch is split: dropout keys are folded from the step only, and
random bits are drawn for the global (batch-shaped) array inside `jit`. With
`jax_threefry_partitionable=True` (JAX's default since 0.5) threefry bits of a sharded array equal
those of the unsharded array, so 1, 2, 4 or 8 devices and 1 or 2 hosts see the same masks.
"""

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize(coordinator_address="", num_processes=0, process_id=-1):
    """Joins JAX's multi-controller runtime when the job spans several processes.

    Explicit flags win (GPU clusters without a scheduler JAX detects). Under SLURM with more than
    one task, or on a multi-host Cloud TPU slice, `jax.distributed.initialize()` finds the cluster
    by itself. On a single machine nothing is initialised. Returns True when it initialised.
    """
    if coordinator_address:
        if num_processes < 1 or process_id < 0:
            raise ValueError(
                f"--coordinator_address={coordinator_address!r} needs --num_processes >= 1 and "
                f"--process_id >= 0 (got {num_processes}, {process_id})."
            )
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
        return True
    if _detected_cluster():
        jax.distributed.initialize()
        return True
    return False


def _detected_cluster():
    """True for a SLURM job with several tasks or a multi-host TPU slice."""
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return True
    tpu_hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return len([h for h in tpu_hosts.split(",") if h]) > 1


def make_mesh(devices=None):
    """A 1-D mesh named "data" over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh):
    """Shards the leading (batch) axis over the mesh."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh):
    """Every device holds the whole value."""
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(global_batch_size, mesh):
    """The global batch must split evenly over devices and processes."""
    n = mesh.devices.size
    if global_batch_size % n:
        raise ValueError(
            f"batch_size={global_batch_size} is not divisible by the {n} devices of the mesh; "
            f"use a multiple of {n}."
        )


def global_batch(local_batch, mesh):
    """Assembles each process's slice (a dict of numpy arrays) into globally sharded arrays."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )


def replicate(tree, mesh):
    """Places a pytree (params, optimiser state) on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))
