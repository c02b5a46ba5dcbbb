"""Timing primitives shared by `timing` and `bench`: compiled thunks, interleaved samples,
paired ratios, and workers that run under a chosen allocator.

Rules: functions are compiled ahead of time (compile time excluded), every call is waited for
with `jax.block_until_ready`, and the thunks compared are interleaved within each repeat (order
rotated) so that load drift hits them alike.
"""

import json
import math
import operator
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import jax

from dropout_study import allocator, xla_options


def compiled(
    fn: Callable, *args, ynn_fusion_types=xla_options.YNN_FUSION_TYPES
) -> Callable[[], object]:
    """`fn(*args)` compiled ahead of time (`xla_options.jit`), as a thunk: calling it times
    execution only."""
    executable = xla_options.jit(fn, ynn_fusion_types=ynn_fusion_types).lower(*args).compile()
    return lambda: executable(*args)


def measure(fns: dict, repeats: int, min_sample_s: float) -> dict[str, list[float]]:
    """Seconds per call of each thunk in `fns`, one sample per repeat, thunks interleaved.

    Each thunk runs once to warm up; a sample repeats it until it lasts about `min_sample_s`
    (short calls are dominated by dispatch otherwise). The order rotates every repeat.
    """
    calls = {}
    for name, fn in fns.items():
        jax.block_until_ready(fn())
        start = time.perf_counter()
        jax.block_until_ready(fn())
        calls[name] = max(1, math.ceil(min_sample_s / max(time.perf_counter() - start, 1e-7)))
    samples = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            for _ in range(calls[name]):
                jax.block_until_ready(fns[name]())
            samples[name].append((time.perf_counter() - start) / calls[name])
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def paired(samples: dict, a: str, b: str, op=operator.truediv) -> float:
    """Median over repeats r of op(a_r, b_r). Within a repeat a and b run one shortly after the
    other, so load that drifts between repeats cancels; a ratio of medians would not cancel it."""
    return median([op(x, y) for x, y in zip(samples[a], samples[b], strict=True)])


def in_ms(samples: dict, names) -> dict[str, list[float]]:
    """{short name: samples in ms} of `names` ({short: key of samples}), kept in the results."""
    return {short: [1e3 * t for t in samples[key]] for short, key in names.items()}


def chained(executable: Callable, carry: list, *args) -> Callable[[], object]:
    """Thunk for a train step `carry = executable(*carry, *args)` that donates its carry."""

    def run():
        carry[:] = executable(*carry, *args)
        return carry

    return run


def allocator_env(name: str) -> dict:
    """Environment of a subprocess that runs under allocator `name`; ValueError if unavailable."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    _, path = allocator.choose(name)
    return {**env, allocator.ENV: name, **({"LD_PRELOAD": path} if path else {})}


def run_worker(module: str, argv: list[str], out_flag: str, allocator_name: str) -> dict:
    """Runs `python -m module *argv --out_flag=FILE` under `allocator_name` in a fresh process
    and returns the JSON it wrote to FILE, which names the allocator it ran under.

    ValueError (from allocator_env) when that allocator is not installed.
    """
    env = allocator_env(allocator_name)
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "worker.json"
        command = [sys.executable, "-m", module, *argv, f"--{out_flag}={out}"]
        subprocess.run(command, env=env, check=True, cwd=os.getcwd())
        worker = json.loads(out.read_text())
    if worker["allocator"] != allocator_name:
        raise RuntimeError(f"the {allocator_name} worker ran under {worker['allocator']}.")
    return worker
