"""Times mask sampling against the compute that dropping units could save.

    python -m dropout_study.timing --config=configs/timing.py[:quick] [--config.output_dir=DIR]
    python -m dropout_study.timing --config=configs/timing.py --from_results=DIR/results.json
      (no timing: re-judges the saved samples against the config's targets and speed claims)

Parts (see configs/timing.py for every size, rate and model):
  1. sampling: every mask sampler x PRNG implementation (and threefry without
     `jax_threefry_partitionable`), the rate, sizes and dtypes under each allocator the config
     names (one subprocess each): elements/s and the ratio to a scaled copy of the same tensor.
  2. attribution: each study model's real train step with dropout off, with masks sampled but
     not applied, and with full dropout: step time = rest + mask sampling + mask application.
  3. compact: dropout that skips the dropped units (`compact.py`) against its masked twin,
     forward + backward, against the rate.
  4. epochs: epoch time against keep probability for the post-000 text models and the VGG net
     with the default sampler, the fastest sampler and compact dropout.
Outputs in `output_dir`: README.md (command, machine, versions, targets, answers to the posts'
speed claims), one markdown table per part, PNG plots and results.json with every sample.

Timing rules (dropout_study.measure): functions are compiled ahead of time, the methods compared
are interleaved within each repeat, and tables show medians over repeats. Part 1 lives in
timing_sampling and the outputs in timing_report; this module holds parts 2-4 and the runner.
"""

import datetime
import functools
import json
import operator
import os
import pathlib
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import app, flags, logging
from ml_collections import config_flags

from dropout_study import (
    allocator,
    compact,
    data,
    dropout,
    layers,
    masks,
    models,
    optim,
    seed_group,
    sweeps,
    timing_report,
    train_step,
    xla_options,
)
from dropout_study.data import pipeline
from dropout_study.machine import describe
from dropout_study.measure import chained, compiled, in_ms, measure, median, paired
from dropout_study.timing_sampling import (
    fastest_sampler,
    run_allocators,
    run_impls,
    run_rates,
    run_sizes,
    sampling_shape,
)

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Timing config file and variant, e.g. configs/timing.py:quick."
)
_WORKER = flags.DEFINE_enum(
    "worker", "", ["", "sizes"], "Internal: run one part in this process and write --worker_out."
)
_WORKER_OUT = flags.DEFINE_string("worker_out", "", "Internal: JSON file a worker writes.")
_FROM_RESULTS = flags.DEFINE_string(
    "from_results",
    "",
    "A results.json of an earlier run: measure nothing, judge its samples against the config's "
    "targets and speed claims, and rewrite the outputs in --config.output_dir.",
)

REPO = pathlib.Path(__file__).resolve().parents[1]
# Variants of layers.Dropout whose mask is a `keep_mask` draw (the others draw noise or blocks).
MASK_VARIANTS = ("inverted", "standard", "spatial", "alpha")

# ---------------------------------------------------------------------------------------------
# Parts 2 and 4: the study models' train steps


def study_config(model_cfg):
    """The study's training config (full variant: the posts' model, rates and batch size), with
    the data of its quick variant (the shipped sample; one real batch is all timing needs)."""
    path = REPO / model_cfg.config
    config = sweeps.load_config_file(path)
    config.data = sweeps.load_config_file(path, "quick").data
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

    def step(
        self, model_config, mode: str = "full", ynn_fusion_types=xla_options.YNN_FUSION_TYPES
    ) -> Callable[[], object]:
        """Thunk of one train step; mode 'off' (dropout=False), 'sample' (masks drawn, not
        applied) or 'full'; `ynn_fusion_types` as in `xla_options.jit`. Each thunk owns its
        (donated) state, as in a training loop; one asked for again (parts 2 and 4 share some)
        is compiled once."""
        cache_key = (model_config.to_json(), mode, ynn_fusion_types)
        if cache_key not in self._steps:
            self._steps[cache_key] = self._compile(model_config, mode, ynn_fusion_types)
        return self._steps[cache_key]

    def _train_step(self):
        """train_step.train_step with this config's fields bound (no augmentation)."""
        return functools.partial(
            train_step.train_step,
            task=self.config.task,
            l1=self.config.regularization.l1,
            l2=self.config.regularization.l2,
            augment_kwargs=None,
            compute_dtype=self.config.compute_dtype,
        )

    def seeds_step(self, seeds: int) -> Callable[[], object]:
        """Thunk of one vmapped train step of `seeds` seeds (as `seeds_per_program` trains them:
        stacked states, each seed's own init and dropout keys) on `seeds` copies of the batch."""
        model = models.create_model(self.config.model)
        keys = jax.random.split(self.key, seeds)
        states = [train_step.create_train_state(model, self.tx, k, self.sample_x) for k in keys]
        stack = jax.jit(seed_group.stack_trees)
        carry = [
            stack(seed_group.share_structure(states)),
            stack([train_step.zero_train_sums()] * seeds),
        ]
        batch = stack([self.batch] * seeds)
        jitted = xla_options.jit(jax.vmap(self._train_step()), donate_argnums=(0, 1))
        return chained(jitted.lower(*carry, batch, keys).compile(), carry, batch, keys)

    def _compile(self, model_config, mode: str, ynn_fusion_types) -> Callable[[], object]:
        model = models.create_model(model_config)
        state = train_step.create_train_state(model, self.tx, self.key, self.sample_x)
        if mode == "off":
            state = state.replace(apply_fn=functools.partial(model.apply, dropout=False))
        step = self._train_step()
        carry = [state, train_step.zero_train_sums()]
        jitted = xla_options.jit(step, ynn_fusion_types=ynn_fusion_types, donate_argnums=(0, 1))
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
    spatial = module.variant == "spatial"
    shape = dropout.mask_shape(
        x.shape, dropout.spatial_axes(x.ndim) if spatial else module.broadcast_dims
    )
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
    executable = (
        xla_options.jit(step, donate_argnums=(0, 1)).lower(*carry, batch, bench.key).compile()
    )
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
        sampling_shape(elements)
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
    results["machine"] = describe()
    results["wall_s"] = time.perf_counter() - start
    return timing_report.judge(results, cfg)


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
    if _FROM_RESULTS.value:
        saved = json.loads(pathlib.Path(_FROM_RESULTS.value).read_text())
        results = dict(timing_report.judge(saved, cfg), judged_with=command_line())
    else:
        allocator.preload()
        results = run(cfg)
    timing_report.write_outputs(results, pathlib.Path(cfg.output_dir))
    logging.info("timing results written to %s", cfg.output_dir)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
