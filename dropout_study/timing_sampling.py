"""Part 1 of the timing run: every mask sampler x PRNG implementation, against the rate, the
size and the dtype, and under each allocator (one subprocess each).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from dropout_study import allocator, dropout, masks
from dropout_study.measure import compiled, in_ms, measure, median, paired, run_worker


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


def sampling_shape(elements: int, width: int = 1024) -> tuple[int, int]:
    if elements % width:
        raise ValueError(f"sampling elements={elements} must be a multiple of {width}.")
    return elements // width, width


def run_impls(cfg, repeats, min_sample_s) -> tuple[list[dict], dict]:
    """Part 1a: samplers x PRNG implementations at one size (this process's allocator)."""
    impls, missing = available_impls(cfg.prng_impls)
    shape, rows = sampling_shape(cfg.impl_elements), []
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
    shape, rows = sampling_shape(cfg.impl_elements), []
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
            shape = sampling_shape(elements)
            fns = sampling_group(
                jax.random.key(0), shape, jnp.dtype(dtype), cfg.rate, cfg.samplers, with_mask=False
            )
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


def fastest_sampler(impl_rows) -> str:
    """The sampler whose full dropout is fastest with JAX's default PRNG."""
    rows = [r for r in impl_rows if r["impl"] == "threefry2x32"]
    return min(rows, key=lambda r: r["dropout_ms"])["sampler"]
