"""Times mask sampling against the compute that dropping units could save.

    python -m dropout_study.timing --config=configs/timing.py[:quick] [--config.output_dir=DIR]

Parts (see configs/timing.py for every size, rate and model):
  1. sampling: every mask sampler x PRNG implementation (and threefry without
     `jax_threefry_partitionable`), the rate, sizes and dtypes under glibc malloc and tcmalloc
     (one subprocess each): elements/s and the ratio to a scaled copy of the same tensor.
  2. attribution: each study model's real train step with dropout off, with masks sampled but
     not applied, and with full dropout: step time = rest + mask sampling + mask application.
  3. compact: dropout that skips the dropped units (`compact.py`) against its masked twin,
     forward + backward, against the rate.
  4. epochs: epoch time against keep probability for the post-000 text models and the VGG net
     with the default sampler, the fastest sampler and compact dropout.
Outputs in `output_dir`: README.md (command, machine, versions, targets, answers to the posts'
speed claims), one markdown table per part, PNG plots and results.json with every sample.

Timing rules: functions are compiled ahead of time (compile time excluded), every call is
waited for with `jax.block_until_ready`, the methods compared are interleaved within each repeat
(order rotated) so that load drift hits them alike, and tables show medians over repeats. Ratios
compare functions timed in the same process and loop.
"""

import datetime
import functools
import json
import math
import operator
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from importlib import metadata

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging
from ml_collections import config_flags

from dropout_study import allocator, compact, dropout, figures, layers, masks

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Timing config file and variant, e.g. configs/timing.py:quick."
)
_WORKER = flags.DEFINE_enum(
    "worker", "", ["", "sizes"], "Internal: run one part in this process and write --worker_out."
)
_WORKER_OUT = flags.DEFINE_string("worker_out", "", "Internal: JSON file a worker writes.")

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS_FILE = "results.json"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "ml-collections", "matplotlib")
# Variants of layers.Dropout whose mask is a `keep_mask` draw (the others draw noise or blocks).
MASK_VARIANTS = ("inverted", "standard", "spatial", "alpha")

# ---------------------------------------------------------------------------------------------
# Measuring


def compiled(fn: Callable, *args) -> Callable[[], object]:
    """`fn(*args)` compiled ahead of time, as a thunk: calling it times execution only."""
    executable = jax.jit(fn).lower(*args).compile()
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


# ---------------------------------------------------------------------------------------------
# Part 1: mask sampling


def make_key(seed: int, impl: str) -> jax.Array:
    """A typed key of PRNG implementation `impl` ('threefry2x32-nonpartitionable' included)."""
    return jax.random.key(seed, impl=impl.removesuffix("-nonpartitionable"))


def available_impls(impls) -> tuple[list[str], dict[str, str]]:
    """(the implementations of `impls` this JAX offers, {missing one: why})."""
    ok, missing = [], {}
    for impl in impls:
        try:
            make_key(0, impl)
            ok.append(impl)
        except (ValueError, TypeError) as error:
            missing[impl] = str(error).split(".")[0]
    return ok, missing


def _partitionable(impl: str):
    """The `jax_threefry_partitionable` setting an implementation name asks for."""
    return jax.threefry_partitionable(not impl.endswith("-nonpartitionable"))


def sampling_group(key, shape, dtype, rate, samplers, *, impl="threefry2x32", with_mask=True):
    """Thunks {copy, mask/<sampler>, dropout/<sampler>} on x of `shape`, `dtype`, compiled now.

    'copy' is x * s with a runtime scalar s: one read and one write of x, the memory traffic of
    dropout without the mask. 'mask' is `masks.keep_mask` alone (a bool array), 'dropout' the
    library's inverted dropout.
    """
    x = jax.random.normal(jax.random.key(1), shape, jnp.float32).astype(dtype)
    scale = jnp.asarray(2.0, dtype)
    with _partitionable(impl):
        fns = {"copy": compiled(lambda x, s: x * s, x, scale)}
        for sampler in samplers:
            if with_mask:
                fns[f"mask/{sampler}"] = compiled(
                    lambda k, s=sampler: masks.keep_mask(k, shape, rate, s), key
                )
            fns[f"dropout/{sampler}"] = compiled(
                lambda k, x, s=sampler: dropout.inverted_dropout(k, x, rate, sampler=s), key, x
            )
    return fns


def sampling_rows(fns, samples, elements, rate, samplers, **fields) -> list[dict]:
    """One row per sampler: medians, elements/s, paired ratios to the copy, effective and
    observed rate, and the samples themselves."""
    rows = []
    for sampler in samplers:
        drop, mask = f"dropout/{sampler}", f"mask/{sampler}"
        row = {
            **fields,
            "sampler": sampler,
            "elements": elements,
            "rate": rate,
            "effective_rate": float(masks.effective_rate(rate, sampler)),
            "copy_ms": median(samples["copy"]) * 1e3,
            "dropout_ms": median(samples[drop]) * 1e3,
            "dropout_gelem_s": elements / median(samples[drop]) / 1e9,
            "dropout_over_copy": paired(samples, drop, "copy"),
        }
        names = {"copy": "copy", "dropout": drop}
        if mask in samples:
            row.update(
                mask_ms=median(samples[mask]) * 1e3,
                mask_gelem_s=elements / median(samples[mask]) / 1e9,
                mask_over_copy=paired(samples, mask, "copy"),
                observed_rate=1.0 - float(np.asarray(fns[mask]()).mean()),
            )
            names["mask"] = mask
        row["samples_ms"] = in_ms(samples, names)
        rows.append(row)
    return rows


def _shape(elements: int, width: int = 1024) -> tuple[int, int]:
    if elements % width:
        raise ValueError(f"sampling elements={elements} must be a multiple of {width}.")
    return elements // width, width


def run_impls(cfg, repeats, min_sample_s) -> tuple[list[dict], dict]:
    """Part 1a: samplers x PRNG implementations at one size (this process's allocator)."""
    impls, missing = available_impls(cfg.prng_impls)
    shape, rows = _shape(cfg.impl_elements), []
    for impl in impls:
        logging.info("sampling: PRNG implementation %s", impl)
        key = make_key(0, impl)
        fns = sampling_group(key, shape, jnp.float32, cfg.rate, cfg.samplers, impl=impl)
        samples = measure(fns, repeats, min_sample_s)
        rows += sampling_rows(
            fns,
            samples,
            cfg.impl_elements,
            cfg.rate,
            cfg.samplers,
            impl=impl,
            allocator=allocator.active(),
            dtype="float32",
        )
    return rows, missing


def run_rates(cfg, repeats, min_sample_s) -> list[dict]:
    """Part 1b: full dropout time against the rate for every sampler (default PRNG)."""
    shape, rows = _shape(cfg.impl_elements), []
    key = jax.random.key(0)
    fns = {}
    for rate in cfg.rates:
        group = sampling_group(key, shape, jnp.float32, rate, cfg.samplers, with_mask=False)
        fns.update({f"{name}@{rate}": fn for name, fn in group.items()})
    samples = measure(fns, repeats, min_sample_s)
    for rate in cfg.rates:
        sub = {name.split("@")[0]: s for name, s in samples.items() if name.endswith(f"@{rate}")}
        rows += sampling_rows({}, sub, cfg.impl_elements, rate, cfg.samplers, dtype="float32")
    return rows


def run_sizes(cfg, repeats, min_sample_s) -> list[dict]:
    """Part 1c (run once per allocator, in a subprocess): samplers x sizes x dtypes."""
    rows = []
    for elements in cfg.elements:
        for dtype in cfg.dtypes:
            logging.info("sampling: %d elements of %s", elements, dtype)
            fns = sampling_group(
                jax.random.key(0), _shape(elements), jnp.dtype(dtype), cfg.rate, cfg.samplers,
                with_mask=False,
            )  # fmt: skip
            samples = measure(fns, repeats, min_sample_s)
            rows += sampling_rows(
                fns,
                samples,
                elements,
                cfg.rate,
                cfg.samplers,
                allocator=allocator.active(),
                dtype=dtype,
            )
    return rows


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


def run_allocators(cfg) -> tuple[list[dict], dict]:
    """Part 1c under each allocator, one subprocess each, one after the other."""
    rows, missing = [], {}
    argv = [a for a in sys.argv[1:] if not a.startswith("--worker")]
    for name in cfg.sampling.allocators:
        logging.info("sampling: sizes and dtypes under %s (subprocess)", name)
        try:
            worker = run_worker(
                "dropout_study.timing", [*argv, "--worker=sizes"], "worker_out", name
            )
        except ValueError as err:
            missing[name] = str(err)
            continue
        rows += worker["rows"]
    return rows, missing


# ---------------------------------------------------------------------------------------------
# Parts 2 and 4: the study models' train steps


def study_config(model_cfg):
    """The study's training config (full variant: the posts' model, rates and batch size), with
    the data of its quick variant (the shipped sample; one real batch is all timing needs)."""
    from dropout_study import study  # imported late: it loads TensorFlow, which workers skip

    path = REPO / model_cfg.config
    config = study.load_config_file(path)
    config.data = study.load_config_file(path, "quick").data
    config.update_from_flattened_dict(dict(model_cfg.overrides))
    return config


def set_rate(model_config, fields, rate):
    """Copy of `model_config` with every field in `fields` (a rate or per-level tuple) = rate."""
    model_config = model_config.copy_and_resolve_references()
    for field in fields:
        value = model_config[field]
        model_config[field] = tuple(rate for _ in value) if isinstance(value, tuple) else rate
    return model_config


class StepBench:
    """One study model's real train step, compiled per dropout mode, timed on one real batch."""

    def __init__(self, model_cfg, seed: int):
        from dropout_study import data, models, optim, train  # late, as in `study_config`
        from dropout_study.data import pipeline

        self.train, self.models = train, models
        self.config = study_config(model_cfg)
        dataset = data.load(self.config.data)
        self.batch = next(pipeline.batches(dataset.train, self.config.batch_size, seed=0, epoch=0))
        self.steps_per_epoch = model_cfg.train_examples // self.config.batch_size
        self.tx = optim.create_optimizer(
            self.config.optimizer, self.steps_per_epoch, self.config.num_epochs
        )
        self.key = jax.random.key(seed)
        self.sample_x = dataset.train.x[:1]
        self.rates = {f: self.config.model[f] for f in model_cfg.rate_fields}
        self._steps = {}

    def step(self, model_config, mode: str = "full") -> Callable[[], object]:
        """Thunk of one train step; mode 'off' (dropout=False), 'sample' (masks drawn, not
        applied) or 'full'. Each thunk owns its (donated) state, as in a training loop; a
        (config, mode) asked for again (parts 2 and 4 share some) is compiled once."""
        cache_key = (model_config.to_json(), mode)
        if cache_key not in self._steps:
            self._steps[cache_key] = self._compile(model_config, mode)
        return self._steps[cache_key]

    def _compile(self, model_config, mode: str) -> Callable[[], object]:
        model = self.models.create_model(model_config)
        state = self.train.create_train_state(model, self.tx, self.key, self.sample_x)
        if mode == "off":
            state = state.replace(apply_fn=functools.partial(model.apply, dropout=False))
        step = functools.partial(
            self.train.train_step,
            task=self.config.task,
            l1=self.config.regularization.l1,
            l2=self.config.regularization.l2,
            augment_kwargs=None,
        )
        carry = [state, self.train.zero_train_sums()]
        jitted = jax.jit(step, donate_argnums=(0, 1))
        intercept = nn.intercept_methods(sample_only) if mode == "sample" else nullcontext()
        with intercept:
            executable = jitted.lower(*carry, self.batch, self.key).compile()
        return chained(executable, carry, self.batch, self.key)


def sample_only(next_fun, args, kwargs, context):
    """Flax interceptor: every active `layers.Dropout` draws its mask and returns x unchanged.

    The mask is reduced to a count that is added times zero, so XLA keeps the sampling (a float
    multiply by zero is not folded) without the mask touching x. Variants that draw noise or
    blocks (gaussian, dropblock) run in full.
    """
    module = context.module
    if not isinstance(module, layers.Dropout) or context.method_name != "__call__":
        return next_fun(*args, **kwargs)
    x = args[0]
    if kwargs.get("deterministic", True) or module.rate == 0 or module.variant not in MASK_VARIANTS:
        return next_fun(*args, **kwargs)
    if module.variant == "spatial":
        shape = (x.shape[0], *(1,) * (x.ndim - 2), x.shape[-1])
    else:
        bdims = {d % x.ndim for d in module.broadcast_dims}
        shape = tuple(1 if i in bdims else n for i, n in enumerate(x.shape))
    mask = dropout.keep_mask(module.make_rng("dropout"), shape, module.rate, sampler=module.sampler)
    return x + (jnp.sum(mask, dtype=jnp.float32) * 0.0).astype(x.dtype)


def _variants(model_config) -> str:
    """The dropout variant(s) a model config names ('inverted' where it names none)."""
    names = {v for k, v in model_config.items() if k.endswith("variant")}
    if model_config.get("arch") in ("dropout", "batchnorm_dropout"):
        names.add("inverted")
    return ",".join(sorted(names)) or "inverted"


def run_attribution(cfg, benches, repeats) -> list[dict]:
    """Part 2: step time off / sample / full for each study model at the posts' rates."""
    rows = []
    for name in cfg.attribution.models:
        logging.info("attribution: %s", name)
        bench = benches[name]
        fns = {mode: bench.step(bench.config.model, mode) for mode in ("off", "sample", "full")}
        samples = measure(fns, repeats, 0.0)
        rows.append(
            {
                "model": name,
                "rates": dict(bench.rates),
                "sampler": bench.config.model.get("sampler", masks.DEFAULT_SAMPLER),
                "variant": _variants(bench.config.model),
                "batch_size": bench.config.batch_size,
                **{f"{m}_ms": median(samples[m]) * 1e3 for m in fns},
                "sampling_ms": paired(samples, "sample", "off", operator.sub) * 1e3,
                "application_ms": paired(samples, "full", "sample", operator.sub) * 1e3,
                "overhead": paired(samples, "full", "off") - 1.0,
                "samples_ms": in_ms(samples, {m: m for m in fns}),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Part 3: compact dropout against its masked twin


def layer_case(kind: str, c, key):
    """(params, input, units of each dropout site, compact fn, masked fn, argnums to grad)."""
    kp, kx = jax.random.split(key)
    if kind == "dense":
        params = compact.init_dense_pair(kp, c.width, c.width, c.width)
        x = jax.random.normal(kx, (c.batch, c.width))
        return params, x, (c.width,), compact.compact_dense_pair, compact.masked_dense_pair, (0, 1)
    if kind == "conv":
        params = compact.init_conv_pair(kp, c.channels, c.channels, c.channels)
        x = jax.random.normal(kx, (c.batch, c.size, c.size, c.channels))
        return params, x, (c.channels,), compact.compact_conv_pair, compact.masked_conv_pair, (0, 1)
    params = compact.init_lstm(kp, c.vocab, c.embed, c.hidden, c.out)
    tokens = jax.random.randint(kx, (c.batch, c.steps), 0, c.vocab)
    return params, tokens, (c.embed, c.hidden), compact.compact_lstm, compact.masked_lstm, (0,)


def layer_fns(kind: str, c, rates, key) -> dict:
    """Thunks of fwd+bwd (sum of squares loss) of layer `kind` at every rate: 'masked@rate',
    'compact@rate' (full-size gradients) and, for dense, 'compact_slices@rate' (gradients
    w.r.t. the kept slices only). Every dropout site of the layer drops at `rate`."""
    params, x, sites, compact_fn, masked_fn, argnums = layer_case(kind, c, key)
    fns = {}
    for rate in rates:
        kept = [
            compact.kept_units(jax.random.fold_in(key, i), u, rate) for i, u in enumerate(sites)
        ]
        site_masks = [compact.batch_mask(k, u) for k, u in zip(kept, sites, strict=True)]
        for method, fn, args in (("masked", masked_fn, site_masks), ("compact", compact_fn, kept)):
            loss = lambda p, x, *a, fn=fn: jnp.sum(fn(p, x, *a) ** 2)
            fns[f"{method}@{rate}"] = compiled(jax.grad(loss, argnums), params, x, *args)
        if kind == "dense":
            fns[f"compact_slices@{rate}"] = compiled(_dense_slice_grads, params, x, kept[0])
    return fns, sites


def _dense_slice_grads(params, x, kept):
    """Gradients of the compact dense pair w.r.t. x and the kept slices of its kernels only:
    what an update that writes back just those slices needs (dropped ones get zero gradient)."""
    units = params["w1t"].shape[0]
    w1t, b1, w2 = (compact.take_units(params[k], kept, 0) for k in ("w1t", "b1", "w2"))

    def loss(w1t, b1, w2, b2, x):
        h = jax.nn.relu(x @ w1t.T + b1) * (units / kept.shape[0])
        return jnp.sum((h @ w2 + b2) ** 2)

    return jax.grad(loss, argnums=(0, 1, 2, 3, 4))(w1t, b1, w2, params["b2"], x)


def run_compact(cfg, repeats, min_sample_s) -> list[dict]:
    """Part 3: fwd+bwd time of compact dropout and its masked twin against the rate."""
    rows = []
    for kind in cfg.compact.layers:
        c = cfg.compact[kind]
        logging.info("compact: %s", kind)
        fns, sites = layer_fns(kind, c, cfg.compact.rates, jax.random.key(cfg.seed))
        samples = measure(fns, repeats, min_sample_s)
        units = sites[0]
        for rate in cfg.compact.rates:
            names = {m: f"{m}@{rate}" for m in ("masked", "compact", "compact_slices")}
            names = {m: key for m, key in names.items() if key in samples}
            row = {
                "layer": kind,
                "rate": rate,
                "effective_rate": compact.effective_rate(units, rate),
                **{f"{m}_ms": median(samples[key]) * 1e3 for m, key in names.items()},
                "speedup": paired(samples, names["masked"], names["compact"]),
                "ideal_speedup": units / compact.kept_count(units, rate),
                "samples_ms": in_ms(samples, names),
            }
            if "compact_slices" in names:
                row["speedup_slices"] = paired(samples, names["masked"], names["compact_slices"])
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Part 4: epoch time against keep probability


def _twin(name: str, config):
    """(init, compact forward, masked forward, units) of compact.py's twin of a text model."""
    m = config.model
    if name == "text_cnn":
        return (
            lambda k: compact.init_text_cnn(
                k, m.vocab_size, m.embed_dim, m.num_filters, m.kernel_sizes[0], m.num_classes
            ),
            lambda p, t, kept: compact.compact_text_cnn(p, t, kept),
            lambda p, t, mask: compact.masked_text_cnn(p, t, mask),
            m.num_filters,
        )
    return (
        lambda k: compact.init_lstm(k, m.vocab_size, m.embed_dim, m.hidden_dim, m.num_classes),
        lambda p, t, kept: compact.compact_lstm(p, t, None, kept),
        lambda p, t, mask: compact.masked_lstm(p, t, None, mask),
        m.hidden_dim,
    )


def twin_step(bench: StepBench, forward, units, rate, compact_method: bool):
    """Thunk of an Adam train step of compact.py's twin (one dropout mask per batch)."""
    init, tx = forward[0], optax.adam(1e-3)
    params = init(jax.random.key(0))
    fwd = forward[1] if compact_method else forward[2]

    def step(params, opt_state, batch, key):
        kept = compact.kept_units(key, units, rate)

        def loss_fn(p):
            logits = fwd(p, batch["x"], kept if compact_method else compact.batch_mask(kept, units))
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()

        grads = jax.grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    carry = [params, tx.init(params)]
    batch = {k: jnp.asarray(v) for k, v in bench.batch.items()}
    executable = jax.jit(step, donate_argnums=(0, 1)).lower(*carry, batch, bench.key).compile()
    return chained(executable, carry, batch, bench.key)


def run_epochs(cfg, benches, fastest: str, repeats) -> list[dict]:
    """Part 4: projected epoch time (median step time x steps per epoch) against keep prob."""
    rows = []
    for name in cfg.epochs.models:
        logging.info("epochs: %s", name)
        bench = benches[name]
        model_name = bench.config.model.name
        twin = _twin(model_name, bench.config) if model_name in ("text_cnn", "lstm") else None
        fns = {}
        for keep in cfg.epochs.keep_probs:
            rate = round(1.0 - keep, 6)
            model_config = set_rate(bench.config.model, cfg.models[name].rate_fields, rate)
            if rate == 0:  # no dropout: the same computation as part 2's 'off' step
                fns[f"default@{keep}"] = bench.step(bench.config.model, "off")
            for method, sampler in (("default", masks.DEFAULT_SAMPLER), ("fastest", fastest)):
                if rate == 0 or (method == "fastest" and fastest == masks.DEFAULT_SAMPLER):
                    continue  # the same computation as 'default'
                with model_config.unlocked():
                    model_config.sampler = sampler
                fns[f"{method}@{keep}"] = bench.step(model_config)
            if twin is not None:
                for method in ("masked_twin", "compact_twin"):
                    fns[f"{method}@{keep}"] = twin_step(
                        bench, twin, twin[3], rate, method == "compact_twin"
                    )
        samples = measure(fns, repeats, 0.0)
        off = f"default@{max(cfg.epochs.keep_probs)}"  # the highest keep prob: the baseline
        for keep in cfg.epochs.keep_probs:
            row = {"model": name, "keep_prob": keep, "steps_per_epoch": bench.steps_per_epoch}
            names = {}
            for method in ("default", "fastest", "masked_twin", "compact_twin"):
                key = f"{method}@{keep}"
                if method == "fastest" and key not in samples:
                    key = f"default@{keep}"  # the fastest sampler is the default one
                if key in samples:
                    names[method] = key
                    row[f"{method}_epoch_s"] = median(samples[key]) * bench.steps_per_epoch
            row["default_vs_baseline"] = paired(samples, names["default"], off)
            if "compact_twin" in names:
                row["twin_speedup"] = paired(samples, names["masked_twin"], names["compact_twin"])
            row["samples_ms"] = in_ms(samples, names)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Part 5: tables, plots, summary


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; floats with 4 significant digits."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table(rows: list[dict], columns) -> str:
    """Markdown table of dict rows; columns: (header, key or function of the row); a missing
    key is a blank cell."""
    return markdown_table(
        [header for header, _ in columns],
        [[get(r) if callable(get) else r.get(get, "") for _, get in columns] for r in rows],
    )


SAMPLING_COLUMNS = (
    ("sampler", "sampler"),
    ("rate", "rate"),
    ("effective rate", "effective_rate"),
    ("observed rate", "observed_rate"),
    ("mask G el/s", "mask_gelem_s"),
    ("dropout G el/s", "dropout_gelem_s"),
    ("copy ms", "copy_ms"),
    ("dropout ms", "dropout_ms"),
    ("dropout / copy", "dropout_over_copy"),
    ("mask / copy", "mask_over_copy"),
)
ATTRIBUTION_COLUMNS = (
    ("model", "model"),
    ("dropout", "variant"),
    ("rates", lambda r: json.dumps(r["rates"])),
    ("batch", "batch_size"),
    ("off ms", "off_ms"),
    ("sample ms", "sample_ms"),
    ("full ms", "full_ms"),
    ("sampling ms", "sampling_ms"),
    ("application ms", "application_ms"),
    ("overhead", lambda r: f"{100 * r['overhead']:.1f}%"),
)
COMPACT_COLUMNS = (
    ("layer", "layer"),
    ("rate", "rate"),
    ("effective rate", "effective_rate"),
    ("masked ms", "masked_ms"),
    ("compact ms", "compact_ms"),
    ("speed-up", "speedup"),
    ("compact, kept-slice grads ms", "compact_slices_ms"),
    ("speed-up, kept-slice grads", "speedup_slices"),
    ("ideal", "ideal_speedup"),
)
EPOCH_COLUMNS = (
    ("model", "model"),
    ("keep prob", "keep_prob"),
    ("steps/epoch", "steps_per_epoch"),
    ("default sampler s", "default_epoch_s"),
    ("fastest sampler s", "fastest_epoch_s"),
    ("masked twin s", "masked_twin_epoch_s"),
    ("compact twin s", "compact_twin_epoch_s"),
    ("default / highest keep", "default_vs_baseline"),
    ("masked twin / compact twin", "twin_speedup"),
)


def sampling_tables(results) -> str:
    s = results["sampling"]
    allocator_name = s["impl_rows"][0]["allocator"] if s["impl_rows"] else "-"
    out = [
        "# Mask sampling\n\nElements/s of a keep mask alone (bool) and of a full inverted dropout; "
        "ratios to a scaled copy x*s of the same tensor timed in the same repeat (median of the "
        "per-repeat ratios). Effective rate: "
        "the rate a sampler realises (integer thresholds quantise it); observed: in one mask.\n",
        f"\n## Samplers x PRNG implementations ({s['impl_elements']} float32 elements, "
        f"allocator {allocator_name})\n\n",
        table(s["impl_rows"], (("PRNG", "impl"), *SAMPLING_COLUMNS)),
        *(f"\nNot available in this JAX: {k} ({why}).\n" for k, why in s["missing_impls"].items()),
        "\n## Dropout time against the rate (default PRNG)\n\n",
        table(s["rate_rows"], SAMPLING_COLUMNS),
        "\n## Allocators x sizes x dtypes (one subprocess per allocator)\n\n",
        table(
            s["size_rows"],
            (
                ("allocator", "allocator"),
                ("elements", "elements"),
                ("dtype", "dtype"),
                *SAMPLING_COLUMNS,
            ),
        ),  # fmt: skip
        *(f"\nAllocator {k} not measured: {why}.\n" for k, why in s["missing_allocators"].items()),
    ]
    return "".join(out)


def attribution_table(rows) -> str:
    return (
        "# Dropout inside the study models' train steps\n\nMedian time of one real train step "
        "(forward, backward, optimiser update) with dropout off, with every mask sampled but "
        "not applied, and with full dropout, at the posts' rates. sampling = sample - off, "
        "application = full - sample, overhead = full / off - 1: medians over repeats of the "
        "per-repeat differences and ratios (steps timed in the same repeat); negative values are "
        "timing noise.\n\n" + table(rows, ATTRIBUTION_COLUMNS)
    )


def compact_table(rows) -> str:
    return (
        "# Compact dropout against its masked twin\n\nForward + backward of a layer pair with "
        "one dropout mask per batch. 'compact' differentiates w.r.t. the full parameters "
        "(gradients scattered back into full-size arrays); 'kept-slice grads' w.r.t. the "
        "gathered kept slices only. Speed-up: median over repeats of masked / compact timed "
        "in the same repeat; ideal = units / kept units.\n\n" + table(rows, COMPACT_COLUMNS)
    )


def epochs_table(rows) -> str:
    return (
        "# Epoch time against keep probability\n\nProjected epoch time: median train-step time "
        "x steps per epoch of the full training set (input pipeline excluded). 'twin' columns: "
        "compact.py's functional twin of the model (same shapes, Adam, one mask per batch), "
        "masked and compact. Ratios: median over repeats of the per-repeat ratio of steps timed "
        "in the same repeat.\n\n" + table(rows, EPOCH_COLUMNS)
    )


def _plot_sampling(results, path):
    rows = results["sampling"]["rate_rows"]
    fig, ax = figures.figure(figsize=(6, 4))
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == sampler]
        ax.plot([r["rate"] for r in mine], [r["dropout_ms"] for r in mine], "o-", label=sampler)
    copy = statistics.median(r["copy_ms"] for r in rows)
    ax.axhline(copy, color="k", ls="--", label="copy")
    ax.set(
        xlabel="drop rate",
        ylabel="ms per dropout",
        yscale="log",
        title=f"Inverted dropout of {results['sampling']['impl_elements']} float32",
    )
    ax.legend(fontsize=7)
    figures.save(fig, path)


def _plot_attribution(rows, path):
    fig, ax = figures.figure(figsize=(6, 4))
    names = [r["model"] for r in rows]
    parts = np.array(
        [[r["off_ms"], max(r["sampling_ms"], 0.0), max(r["application_ms"], 0.0)] for r in rows]
    )
    shares = parts / parts.sum(axis=1, keepdims=True)  # (models, 3)
    bottom = np.zeros(len(rows))
    for share, label in zip(
        shares.T, ("rest of the step", "mask sampling", "mask application"), strict=True
    ):
        ax.bar(names, share, bottom=bottom, label=label)
        bottom = bottom + share
    low = max(0.0, float(shares[:, 0].min()) - 0.05)
    ax.set(ylabel="share of the train step", ylim=(low, 1.0), title="Train step split")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=7)
    figures.save(fig, path)


def _plot_compact(rows, path):
    fig, ax = figures.figure(figsize=(6, 4))
    for layer in dict.fromkeys(r["layer"] for r in rows):
        mine = [r for r in rows if r["layer"] == layer]
        ax.plot([r["rate"] for r in mine], [r["speedup"] for r in mine], "o-", label=layer)
        if "speedup_slices" in mine[0]:
            ax.plot(
                [r["rate"] for r in mine],
                [r["speedup_slices"] for r in mine],
                "s--",
                label=f"{layer} (kept-slice grads)",
            )
    rates = sorted({r["rate"] for r in rows})
    ax.plot(rates, [1 / (1 - r) for r in rates], "k:", label="ideal 1/(1-rate)")
    ax.set(
        xlabel="drop rate",
        ylabel="masked / compact time",
        yscale="log",
        title="Compact dropout speed-up (fwd+bwd)",
    )
    ax.legend(fontsize=7)
    figures.save(fig, path)


def _plot_epochs(rows, path):
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = figures.figure(1, len(models), figsize=(4 * len(models), 3.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in rows if r["model"] == model]
        same = all(r["fastest_epoch_s"] == r["default_epoch_s"] for r in mine)
        for method in ("default", "fastest", "masked_twin", "compact_twin"):
            pts = [
                (r["keep_prob"], r[f"{method}_epoch_s"]) for r in mine if f"{method}_epoch_s" in r
            ]
            if pts and not (method == "fastest" and same):  # fastest = default: one line
                ax.plot(*zip(*pts, strict=True), "o-", label=method.replace("_", " "))
        ax.set(xlabel="keep probability", ylabel="s per epoch", title=model, ylim=(0, None))
        ax.legend(fontsize=7)
    figures.save(fig, path)


def targets(results) -> list[list]:
    """[target, measured, met] for each of the issue's targets that this run measured."""
    out = []
    default_rows = [
        r
        for r in results["sampling"]["impl_rows"]
        if r["impl"] == "threefry2x32" and r["sampler"] == masks.DEFAULT_SAMPLER
    ]
    for r in default_rows:
        out.append(
            [
                f"default sampler ({r['sampler']}) full dropout <= 2x a copy",
                f"{r['dropout_over_copy']:.2f}x ({r['elements']} float32)",
                r["dropout_over_copy"] <= 2.0,
            ]
        )
        out.append(
            [
                f"default sampler ({r['sampler']}) masks >= 1 G elements/s",
                f"{r['mask_gelem_s']:.3f} G/s",
                r["mask_gelem_s"] >= 1.0,
            ]
        )
    for r in results["attribution"]:
        ratios = np.array(r["samples_ms"]["full"]) / np.array(r["samples_ms"]["off"]) - 1.0
        q1, q3 = np.percentile(ratios, [25, 75])  # the spread of the paired ratios: the noise
        out.append(
            [
                f"dropout overhead of the {r['model']} train step <= 5%",
                f"{100 * r['overhead']:.1f}% (quartiles {100 * q1:.1f}%, {100 * q3:.1f}%)",
                r["overhead"] <= 0.05,
            ]
        )
    for r in results["compact"]:
        if r["layer"] == "dense" and r["rate"] in (0.5, 0.8):
            goal = 1.8 if r["rate"] == 0.5 else 3.5
            best = max(r["speedup"], r.get("speedup_slices", 0.0))
            out.append(
                [
                    f"compact dense fwd+bwd >= {goal}x masked at rate {r['rate']}",
                    f"{r['speedup']:.2f}x (full-size grads), "
                    f"{r.get('speedup_slices', float('nan')):.2f}x (kept-slice grads)",
                    best >= goal,
                ]
            )
    return out


def _verdict(change: float, supported: bool) -> str:
    return (
        "within 5%, not supported"
        if abs(change) <= 0.05
        else ("supported" if supported else "not supported")
    )


def claims(results) -> list[str]:
    """Answers to the posts' speed claims, from this run's numbers."""
    out = []
    default = [r for r in results["sampling"]["rate_rows"] if r["sampler"] == masks.DEFAULT_SAMPLER]
    if len(default) >= 2:
        lo, hi = default[0], default[-1]
        change = hi["dropout_ms"] / lo["dropout_ms"] - 1.0
        out.append(
            f"**Post 003: time grows with the rate.** A full dropout of "
            f"{results['sampling']['impl_elements']} float32 with the default sampler takes "
            f"{lo['dropout_ms']:.2f} ms at rate {lo['rate']} and {hi['dropout_ms']:.2f} ms at "
            f"rate {hi['rate']} ({100 * change:+.0f}%): {_verdict(change, change > 0)}."
        )
    epochs = results["epochs"]
    for model in dict.fromkeys(r["model"] for r in epochs):
        mine = sorted((r for r in epochs if r["model"] == model), key=lambda r: -r["keep_prob"])
        on = [r for r in mine if r["keep_prob"] < 1.0]  # dropout on: compare these if 2+
        a, b = (on[0], on[-1]) if len(on) >= 2 else (mine[0], mine[-1])
        change = b["default_vs_baseline"] / a["default_vs_baseline"] - 1.0
        steps = ", ".join(
            f"{r['keep_prob']}: {r['default_epoch_s']:.1f} s ({r['default_vs_baseline']:.3f})"
            for r in mine
        )
        text = (
            f"**Post 000: a smaller keep probability makes training slower ({model}).** "
            f"Projected epoch time with the default sampler at keep {steps} (in brackets: "
            f"relative to keep {mine[0]['keep_prob']}, paired per repeat). From keep "
            f"{a['keep_prob']} to {b['keep_prob']}: {100 * change:+.1f}%, "
            f"{_verdict(change, change > 0)}"
        )
        if "twin_speedup" in b:
            text += (
                f". Dropout that skips the dropped units (one mask per batch) makes compact.py's "
                f"twin of the model {b['twin_speedup']:.2f}x as fast as the masked twin at keep "
                f"{b['keep_prob']}"
            )
        out.append(text + ".")
    for r in results["attribution"]:
        if not r["model"].startswith("denoise"):
            continue
        out.append(
            f"**Post 004: element dropout more than doubles the epoch time ({r['model']}, "
            f"{r['variant']} dropout).** Full dropout adds {100 * r['overhead']:.1f}% to the "
            f"train step (sampling {r['sampling_ms']:.1f} ms, application "
            f"{r['application_ms']:.1f} ms of {r['full_ms']:.0f} ms): "
            f"{_verdict(r['overhead'], r['overhead'] >= 1.0)}."
        )
    return out


def machine() -> dict:
    """What ran this: CPU, cores, memory, load, OS, allocator, versions."""
    cpu = platform.processor()
    if pathlib.Path("/proc/cpuinfo").exists():
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "os": platform.platform(),
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
        "allocator": allocator.active(),
        "default_prng_impl": jax.config.jax_default_prng_impl,
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "load_average": os.getloadavg(),
        "versions": versions,
    }


def _loads(loads) -> str:
    return ", ".join(f"{v:.1f}" for v in loads)


def summary(results) -> str:
    m = results["machine"]
    lines = [
        "# Timing: mask sampling against the compute dropout could save\n",
        f"Command: `{results['command']}`  ",
        f"Run: {results['started']}, {results['wall_s']:.0f} s wall.\n",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}; "
        f"backend {m['backend']}; allocator {m['allocator']}; default PRNG "
        f"{m['default_prng_impl']} (partitionable={m['threefry_partitionable']}); load average "
        f"(1, 5, 15 min) at start {_loads(results['load_start'])}, at end "
        f"{_loads(m['load_average'])}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".\n",
        f"Repeats: {results['config']['repeats']} (medians); the fastest sampler here: "
        f"{results['fastest_sampler']}.\n",
        "## Targets\n",
        markdown_table(
            ["target", "measured", "met"],
            [[t, v, "yes" if ok else "**no**"] for t, v, ok in results["targets"]],
        ),
        "\n## The posts' speed claims\n",
        *(f"- {c}" for c in results["claims"]),
        "\n## Files\n",
        "sampling.md, attribution.md, compact.md, epochs.md (tables); sampling_vs_rate.png, "
        "attribution.png, compact_speedup.png, epochs.png (plots); results.json (all samples).\n",
    ]
    return "\n".join(lines)


def write_outputs(results, out_dir: pathlib.Path) -> None:
    """Tables, plots, summary and results.json into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sampling.md").write_text(sampling_tables(results))
    (out_dir / "attribution.md").write_text(attribution_table(results["attribution"]))
    (out_dir / "compact.md").write_text(compact_table(results["compact"]))
    (out_dir / "epochs.md").write_text(epochs_table(results["epochs"]))
    _plot_sampling(results, out_dir / "sampling_vs_rate.png")
    if results["attribution"]:
        _plot_attribution(results["attribution"], out_dir / "attribution.png")
    _plot_compact(results["compact"], out_dir / "compact_speedup.png")
    if results["epochs"]:
        _plot_epochs(results["epochs"], out_dir / "epochs.png")
    (out_dir / RESULTS_FILE).write_text(json.dumps(results, indent=1, default=float))
    (out_dir / "README.md").write_text(summary(results))


def fastest_sampler(impl_rows) -> str:
    """The sampler whose full dropout is fastest with JAX's default PRNG."""
    rows = [r for r in impl_rows if r["impl"] == "threefry2x32"]
    return min(rows, key=lambda r: r["dropout_ms"])["sampler"]


def command_line() -> str:
    return " ".join(["python -m dropout_study.timing", *sys.argv[1:]])


COMPACT_LAYERS = ("dense", "conv", "lstm")


def check_config(cfg) -> None:
    """Raises ValueError naming the field for any setting the run cannot use, before compute."""
    for part in ("attribution", "epochs"):
        for name in cfg[part].models:
            if name not in cfg.models:
                raise ValueError(
                    f"{part}.models names {name!r}, which is not in config.models "
                    f"{tuple(cfg.models)}; add it there or pick one of those."
                )
    for sampler in cfg.sampling.samplers:
        masks.check_sampler(sampler)
    for elements in (cfg.sampling.impl_elements, *cfg.sampling.elements):
        _shape(elements)
    for layer in cfg.compact.layers:
        if layer not in COMPACT_LAYERS:
            raise ValueError(f"compact.layers has {layer!r}; allowed: {COMPACT_LAYERS}.")
    for field, rates in (("sampling.rates", (cfg.sampling.rate, *cfg.sampling.rates)),
                         ("compact.rates", cfg.compact.rates)):  # fmt: skip
        for rate in rates:
            dropout.check_rate(rate, field)
    for keep in cfg.epochs.keep_probs:
        dropout.keep_to_rate(keep)
    if cfg.repeats < 1 or cfg.model_repeats < 1:
        raise ValueError(
            f"repeats={cfg.repeats}, model_repeats={cfg.model_repeats}: both must be >= 1."
        )


def run(cfg) -> dict:
    """Every part of the timing study; returns the results dict written by `write_outputs`."""
    check_config(cfg)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    load_start, start = os.getloadavg(), time.perf_counter()
    s = cfg.sampling
    impl_rows, missing = run_impls(s, cfg.repeats, cfg.min_sample_s)
    rate_rows = run_rates(s, cfg.repeats, cfg.min_sample_s)
    size_rows, missing_alloc = run_allocators(cfg)
    fastest = fastest_sampler(impl_rows)
    results = {
        "command": command_line(),
        "started": started,
        "load_start": load_start,
        "config": cfg.to_dict(),
        "fastest_sampler": fastest,
        "sampling": {
            "impl_elements": s.impl_elements,
            "impl_rows": impl_rows,
            "missing_impls": missing,
            "rate_rows": rate_rows,
            "size_rows": size_rows,
            "missing_allocators": missing_alloc,
        },
        "compact": run_compact(cfg, cfg.repeats, cfg.min_sample_s),
    }
    names = dict.fromkeys([*cfg.attribution.models, *cfg.epochs.models])
    benches = {name: StepBench(cfg.models[name], cfg.seed) for name in names}
    results["attribution"] = run_attribution(cfg, benches, cfg.model_repeats)
    results["epochs"] = run_epochs(cfg, benches, fastest, cfg.model_repeats)
    results["machine"] = machine()
    results["wall_s"] = time.perf_counter() - start
    results["targets"] = targets(results)
    results["claims"] = claims(results)
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    cfg = _CONFIG.value
    if _WORKER.value == "sizes":
        rows = run_sizes(cfg.sampling, cfg.repeats, cfg.min_sample_s)
        pathlib.Path(_WORKER_OUT.value).write_text(
            json.dumps({"allocator": allocator.active(), "rows": rows})
        )
        return
    allocator.preload()
    results = run(cfg)
    write_outputs(results, pathlib.Path(cfg.output_dir))
    logging.info("timing results written to %s", cfg.output_dir)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
