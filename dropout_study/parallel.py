"""Data parallelism over every device of every host with `jax.sharding`.

One mesh axis, "data", spans all devices of all processes. Batches are sharded along it; parameters
and optimiser state are replicated (a `PartitionSpec` per leaf, so sharding them later is a change
of specs, not of code). Each process feeds only its own slice of the global batch.

Masks do not depend on how the batch is split (tests/test_parallel.py checks 1, 2, 4 and 8 devices
and 2 processes). This relies on: (1) every key is a function of (seed, step) alone, never of a
device or process index; (2) random bits are drawn inside `jit` for the global, batch-shaped array
(not per shard in `shard_map`/`pmap`), and jit's meaning does not depend on shardings; (3) the PRNG
is JAX's default threefry2x32 (rbg and unsafe_rbg qualify too, unless the XLA flag
`--xla_tpu_spmd_rng_bit_generator_unsafe=1` trades this invariance for speed).
`jax_threefry_partitionable` (True by default since JAX 0.5) lets each device draw only its shard;
flipping it changes the values for every device count alike, so keep it fixed within a run.
Parameters agree across device counts up to float rounding: gradients are summed in a different
order over shards.
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
        _check_flags(coordinator_address, num_processes, process_id)
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
        return True
    if num_processes or process_id != -1:
        raise ValueError(
            f"--num_processes={num_processes} --process_id={process_id} need "
            "--coordinator_address=HOST:PORT (process 0's address); pass it, or drop both flags "
            "on a single machine or a cluster JAX detects (SLURM, Cloud TPU)."
        )
    if _detected_cluster():
        jax.distributed.initialize()
        return True
    return False


def _check_flags(coordinator_address, num_processes, process_id):
    """ValueError naming the flag when the explicit multi-process flags are inconsistent."""
    _, sep, port = coordinator_address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(
            f"--coordinator_address={coordinator_address!r} must be HOST:PORT, e.g. "
            "10.0.0.1:1234 (process 0's host and a free port)."
        )
    if num_processes < 1:
        raise ValueError(
            f"--num_processes={num_processes} must be >= 1 with --coordinator_address; pass the "
            "job's process count."
        )
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process_id={process_id} must lie in [0, {num_processes}) (--num_processes); "
            "give each process its own index."
        )


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
