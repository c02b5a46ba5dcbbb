"""Data parallelism: the same run on 1, 2, 4, 8 devices and on 1 or 2 processes, multi-process
checkpoints read back by one process, and when `parallel.initialize` joins a cluster.

Device counts are simulated on CPU (`--xla_force_host_platform_device_count`, which must be set
before JAX starts, hence subprocesses); the two processes talk through jax.distributed on
127.0.0.1 with gloo collectives. Every subprocess runs under a deadline and is killed at the end.
"""

import fcntl
import functools
import itertools
import json
import os
import pathlib
import runpy
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from dropout_study import (
    checkpoint,
    data,
    dropout,
    layers,
    masks,
    models,
    optim,
    parallel,
    run_files,
    train,
    train_step,
)
from dropout_study.data import pipeline

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_FILE = "configs/imdb_cnn.py"
# The quick text CNN cut down: 256 training reviews in global batches of 16 (16 steps per epoch).
TINY = {
    "data.max_train": 256,
    "data.max_eval": 128,
    "data.num_words": 2000,
    "data.maxlen": 64,
    "model.vocab_size": 2000,
    "model.embed_dim": 16,
    "model.num_filters": 16,
    "batch_size": 16,
    "eval_batch_size": 64,
    "num_epochs": 2,
    "checkpoint_every_steps": 0,
    "log_every_steps": 8,
}
DEVICE_COUNTS = (1, 2, 4, 8)  # train steps
MASK_DEVICE_COUNTS = (1, 8)  # every mask (their compilation is the slow part)
TRAIN_STEPS = 6
DEADLINE_S = 400  # all subprocesses together; measured ~1 min on 2 busy cores
# Float32 rounding of gradient sums taken in another order (per shard, then across shards).
# Measured: parameters within 7e-7 of each other after 6 Adam steps that moved them by 6e-3;
# losses within 4e-7 (relative).
PARAM_ATOL = 1e-5
LOSS_RTOL = 1e-5


def _config():
    config = runpy.run_path(str(REPO / CONFIG_FILE))["get_config"]("quick")
    config.update_from_flattened_dict(TINY)
    return config


# ---------------------------------------------------------------------------------------------
# Subprocesses


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(num_devices):
    """This environment with `num_devices` CPU devices and no cluster JAX could detect."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "TPU_", "JAX_", "XLA_", "CLOUD_TPU"))
    }
    return {
        **env,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={num_devices}",
        "JAX_PLATFORMS": "cpu",
        "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
    }


class _Job:
    """A subprocess logging to a file."""

    def __init__(self, args, num_devices, log):
        self.log = pathlib.Path(log)
        with open(log, "w") as f:
            self.process = subprocess.Popen(
                args, cwd=REPO, env=_env(num_devices), stdout=f, stderr=subprocess.STDOUT
            )

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def report(self, why):
        return f"{self.process.args} {why}; its log ends:\n{self.log.read_text()[-4000:]}"


def _finish(jobs, deadline):
    """Waits for every job; fails at the first one that fails (a peer would wait for it) or at
    the deadline. The caller kills what is left."""
    running = list(jobs)
    while running:
        for job in list(running):
            code = job.process.poll()
            if code is None:
                continue
            running.remove(job)
            if code:
                pytest.fail(job.report(f"exited with status {code}"))
        if running and time.monotonic() > deadline:
            pytest.fail(running[0].report(f"ran past the {DEADLINE_S} s deadline"))
        time.sleep(0.2)


def _main_command(workdir, *flags):
    overrides = [f"--config.{k}={v}" for k, v in TINY.items()]
    return [
        sys.executable,
        "-m",
        "dropout_study.main",
        f"--config={CONFIG_FILE}:quick",
        *overrides,
        f"--workdir={workdir}",
        *flags,
    ]


def _run_all(root):
    """Starts every subprocess at once (they overlap their start-up) and waits for them all."""
    coordinator = f"127.0.0.1:{_free_port()}"
    deadline = time.monotonic() + DEADLINE_S
    jobs = []
    try:
        jobs.append(_Job([sys.executable, __file__, str(root / "inv")], 8, root / "inv.log"))
        jobs.append(_Job(_main_command(root / "single"), 4, root / "single.log"))
        resident = _main_command(root / "resident", "--config.device_resident=True")
        jobs.append(_Job(resident, 4, root / "resident.log"))
        for process_id in (0, 1):
            flags = (f"--coordinator_address={coordinator}", "--num_processes=2")
            command = _main_command(root / "multi", *flags, f"--process_id={process_id}")
            jobs.append(_Job(command, 2, root / f"multi{process_id}.log"))
        _finish(jobs, deadline)
    finally:
        for job in jobs:
            job.kill()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"inv": dir of per-device-count results, "multi": workdir of the 2-process 4-device run,
    "single": workdir of the 1-process 4-device run, "resident": the same with the training split
    on the devices}, made once per test session.

    Under pytest-xdist the workers share the session's temporary directory; a lock lets the first
    worker run the subprocesses while another waits for it, then reuses its results.
    """
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "parallel"
    root.mkdir(exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if not (root / "done").exists():
            if (root / "started").exists():
                pytest.fail(f"the subprocesses failed in another xdist worker; logs in {root}")
            (root / "started").touch()
            _run_all(root)
            (root / "done").touch()
    return {name: root / name for name in ("inv", "multi", "single", "resident")}


# ---------------------------------------------------------------------------------------------
# 1. One process, 1 / 2 / 4 / 8 devices (the worker below runs in an 8-device subprocess)


def _dropped(key, x):
    """Every dropout variant and sampler applied to x (N, H, W, C) inside one jitted function."""
    out = {}
    for i, variant in enumerate(layers.VARIANTS):
        layer = layers.Dropout(0.5, variant=variant, block_size=3)
        rngs = {"dropout": jax.random.fold_in(key, i)}
        out[variant] = layer.apply({}, x, deterministic=False, rngs=rngs)
    flat = x.reshape(x.shape[0], -1)  # (N, H*W*C)
    for i, sampler in enumerate(masks.SAMPLERS):
        keep = dropout.keep_mask(jax.random.fold_in(key, 100 + i), flat.shape, 0.5, sampler=sampler)
        out[f"sampler_{sampler}"] = flat * keep
    input_mask, recurrent_mask = dropout.variational_masks(
        jax.random.fold_in(key, 200), flat.shape[0], 24, 40, 0.5, 0.5
    )
    out["variational"] = jnp.concatenate(
        [flat[:, :24] * input_mask, flat[:, :40] * recurrent_mask], 1
    )
    return out


def _invariance_worker(out_dir):
    """TRAIN_STEPS train steps on meshes of 1, 2, 4, 8 devices; every mask on 1 and 8."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir()
    assert jax.device_count() == 8, jax.devices()
    config = _config()
    dataset = data.load(config.data)
    steps_per_epoch = pipeline.num_batches(dataset.train, config.batch_size)
    tx = optim.create_optimizer(config.optimizer, steps_per_epoch, config.num_epochs)
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    model = models.create_model(config.model)
    state = train_step.create_train_state(model, tx, init_key, dataset.train.x[:1])
    np.savez(out_dir / "init.npz", **_flat(state.params))
    step = jax.jit(
        functools.partial(
            train_step.train_step,
            task=config.task,
            l1=0.0,
            l2=0.0,
            augment_kwargs=None,
            compute_dtype="float32",
        )
    )
    draw = jax.jit(_dropped)
    x = np.ones((16, 6, 6, 4), np.float32)  # (N, H, W, C)
    for n in DEVICE_COUNTS:
        mesh = parallel.make_mesh(jax.devices()[:n])
        carry = parallel.replicate({"state": state, "sums": train_step.zero_train_sums()}, mesh)
        batches = pipeline.batches(dataset.train, config.batch_size, seed=config.seed, epoch=0)
        losses = []  # (TRAIN_STEPS,) summed loss of each batch
        for batch in itertools.islice(batches, TRAIN_STEPS):
            before = float(carry["sums"]["loss"])
            new_state, sums = step(
                carry["state"], carry["sums"], parallel.global_batch(batch, mesh), train_key
            )
            carry = {"state": new_state, "sums": sums}
            losses.append(float(sums["loss"]) - before)
        results = {
            "losses": np.asarray(losses),
            **{f"params/{k}": np.asarray(v) for k, v in _flat(carry["state"].params).items()},
        }
        if n in MASK_DEVICE_COUNTS:
            dropped = draw(jax.random.key(7), parallel.global_batch(x, mesh))
            results.update({f"dropped/{k}": np.asarray(v) for k, v in dropped.items()})
            results.update({f"shards/{k}": len(v.sharding.device_set) for k, v in dropped.items()})
        np.savez(out_dir / f"{n}.npz", **results)


def _flat(params):
    return traverse_util.flatten_dict(params, sep="/")


def _load(path):
    with np.load(path) as f:
        return dict(f)


def _section(results, prefix):
    return {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith(prefix + "/")}


@pytest.mark.slow
def test_masks_are_identical_on_1_and_8_devices(runs):
    reference = _section(_load(runs["inv"] / "1.npz"), "dropped")
    assert set(reference) == {*layers.VARIANTS, *(f"sampler_{s}" for s in masks.SAMPLERS)} | {
        "variational"
    }
    for name, values in reference.items():  # real masks: about half the units dropped, or noise
        dropped = np.mean(values < values.max())
        assert 0.3 < dropped < 0.7 or name == "gaussian" and np.unique(values).size > 1000, name
    results = _load(runs["inv"] / "8.npz")
    shards = _section(results, "shards")
    assert set(shards) == set(reference) and all(int(s) == 8 for s in shards.values()), shards
    for name, values in _section(results, "dropped").items():
        np.testing.assert_array_equal(values, reference[name], err_msg=name)


@pytest.mark.slow
def test_train_steps_on_1_2_4_8_devices_give_the_same_parameters(runs):
    init = _load(runs["inv"] / "init.npz")
    one = _load(runs["inv"] / "1.npz")
    params = _section(one, "params")
    moved = max(float(np.max(np.abs(params[k] - init[k]))) for k in init)
    assert moved > 100 * PARAM_ATOL  # the steps changed the parameters well beyond the tolerance
    for n in DEVICE_COUNTS[1:]:
        results = _load(runs["inv"] / f"{n}.npz")
        np.testing.assert_allclose(results["losses"], one["losses"], rtol=LOSS_RTOL)
        for name, value in _section(results, "params").items():
            np.testing.assert_allclose(value, params[name], rtol=0, atol=PARAM_ATOL, err_msg=name)


# ---------------------------------------------------------------------------------------------
# 2 and 3. Two processes of 2 devices against one process of 4 devices


def _records(workdir):
    lines = (workdir / run_files.METRICS_FILE).read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in train.TIME_FIELDS} for line in lines
    ]


@pytest.mark.slow
def test_two_processes_train_like_one_process_on_as_many_devices(runs):
    multi = json.loads((runs["multi"] / run_files.SUMMARY_FILE).read_text())
    single = json.loads((runs["single"] / run_files.SUMMARY_FILE).read_text())
    assert multi["devices"] == {"platform": "cpu", "count": 4, "processes": 2}
    assert single["devices"] == {"platform": "cpu", "count": 4, "processes": 1}
    multi_records, single_records = _records(runs["multi"]), _records(runs["single"])
    assert [r["step"] for r in multi_records] == [16, 32]  # process 0 alone writes the metrics
    assert len(single_records) == len(multi_records)
    for got, want in zip(multi_records, single_records, strict=True):
        assert got == pytest.approx(want, rel=LOSS_RTOL)
    assert multi["best_epoch"] == single["best_epoch"]


@pytest.mark.slow
def test_device_resident_data_on_4_devices_trains_exactly_like_the_host_pipeline(runs):
    resident = json.loads((runs["resident"] / run_files.SUMMARY_FILE).read_text())
    single = json.loads((runs["single"] / run_files.SUMMARY_FILE).read_text())
    assert resident["device_resident"] and not single["device_resident"]
    assert resident["devices"] == single["devices"]
    assert _records(runs["resident"]) == _records(runs["single"])
    assert resident["test"] == single["test"]


@pytest.mark.slow
def test_checkpoint_of_two_processes_restores_in_one_process(runs):
    assert jax.process_count() == 1 and jax.device_count() == 1
    multi = checkpoint.Checkpoints(runs["multi"] / run_files.CHECKPOINT_DIR)
    single = checkpoint.Checkpoints(runs["single"] / run_files.CHECKPOINT_DIR)
    try:
        state, meta = multi.restore(checkpoint.LATEST, None)
        want, want_meta = single.restore(checkpoint.LATEST, None)
        assert meta["step"] == want_meta["step"] == 32 and meta["done"]
        assert jax.tree.structure(state) == jax.tree.structure(want)
        jax.tree_util.tree_map_with_path(
            lambda path, value, expected: np.testing.assert_allclose(
                value, expected, rtol=LOSS_RTOL, atol=PARAM_ATOL, err_msg=jax.tree_util.keystr(path)
            ),
            state,
            want,
        )
        # Restoring into a template on this process's one device (as a resume does) gives the same.
        again, _ = multi.restore(checkpoint.LATEST, state)
        jax.tree.map(np.testing.assert_array_equal, again, state)
    finally:
        multi.close()
        single.close()
    # The best parameters, read in one process, score what the two processes measured in memory.
    config = _config()
    model, variables = train.restore_best(config, runs["multi"])
    validation = data.load(config.data).validation
    logits = model.apply(variables, jnp.asarray(validation.x), train=False)
    loss, _ = train_step.per_example(config.task, logits, jnp.asarray(validation.y))
    best = json.loads((runs["multi"] / run_files.SUMMARY_FILE).read_text())["best"]
    assert float(jnp.mean(loss)) == pytest.approx(best["val_loss"], rel=LOSS_RTOL)


# ---------------------------------------------------------------------------------------------
# 4. parallel.initialize


@pytest.fixture
def calls(monkeypatch):
    """Records jax.distributed.initialize calls instead of joining a cluster; clears cluster env."""
    recorded = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *args: recorded.append(args))
    for name in ("SLURM_NTASKS", "TPU_WORKER_HOSTNAMES"):
        monkeypatch.delenv(name, raising=False)
    return recorded


def test_initialize_is_a_no_op_on_one_machine(calls, monkeypatch):
    assert parallel.initialize() is False
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "localhost")
    assert parallel.initialize("", 0, -1) is False
    assert calls == []


def test_initialize_passes_explicit_flags(calls):
    assert parallel.initialize("10.0.0.1:1234", 4, 3) is True
    assert calls == [("10.0.0.1:1234", 4, 3)]


@pytest.mark.parametrize(
    "flags, message",
    [
        (("10.0.0.1", 2, 0), "must be HOST:PORT"),
        (("10.0.0.1:port", 2, 0), "must be HOST:PORT"),
        (("10.0.0.1:1234", 0, 0), "--num_processes=0 must be >= 1"),
        (("10.0.0.1:1234", 2, -1), r"--process_id=-1 must lie in \[0, 2\)"),
        (("10.0.0.1:1234", 2, 2), r"--process_id=2 must lie in \[0, 2\)"),
        (("", 2, 0), "need --coordinator_address"),
        (("", 0, 1), "need --coordinator_address"),
    ],
)
def test_initialize_rejects_inconsistent_flags(calls, flags, message):
    with pytest.raises(ValueError, match=message):
        parallel.initialize(*flags)
    assert calls == []


@pytest.mark.parametrize(
    "name, value", [("SLURM_NTASKS", "4"), ("TPU_WORKER_HOSTNAMES", "t1v-w-0,t1v-w-1")]
)
def test_initialize_lets_jax_find_a_detected_cluster(calls, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert parallel.initialize() is True
    assert calls == [()]


def test_explicit_flags_win_over_a_detected_cluster(calls, monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert parallel.initialize("10.0.0.1:1234", 2, 1) is True
    assert calls == [("10.0.0.1:1234", 2, 1)]


if __name__ == "__main__":  # the subprocess of the device-count tests
    _invariance_worker(sys.argv[1])
