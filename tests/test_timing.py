"""The timing module: its measuring functions, the sample-only mode, and the quick CLI's outputs."""

import json
import pathlib
import subprocess
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dropout_study import compact, layers, masks, measure, timing, timing_report, timing_sampling

REPO = pathlib.Path(__file__).resolve().parents[1]
OUTPUTS = ("README.md", "sampling.md", "attribution.md", "compact.md", "epochs.md", "results.json")
PLOTS = ("sampling_vs_rate.png", "attribution.png", "compact_speedup.png", "epochs.png")


def test_measure_interleaves_and_takes_medians():
    calls = []

    def thunk(name, seconds):
        return lambda: calls.append(name) or time.sleep(seconds)

    samples = measure.measure({"a": thunk("a", 0.001), "b": thunk("b", 0.05)}, 4, 0.0)
    assert [len(s) for s in samples.values()] == [4, 4]
    assert calls[4:] == ["a", "b", "b", "a", "a", "b", "b", "a"]  # after 2 warm-up calls each
    assert 0.001 <= measure.median(samples["a"]) < measure.median(samples["b"])


def test_markdown_table_and_set_rate():
    table = timing_report.markdown_table(["x", "y"], [[0.123456, "s"], [12345.6, 3]])
    assert table.splitlines() == ["| x | y |", "|---|---|", "| 0.1235 | s |", "| 12346 | 3 |"]
    config = ml_collections.ConfigDict({"block_rates": (0.2, 0.3), "dense": 0.5, "other": 1})
    assert timing.set_rate(config, ("block_rates", "dense"), 0.7).to_dict() == {
        "block_rates": (0.7, 0.7), "dense": 0.7, "other": 1,
    }  # fmt: skip


def test_unknown_prng_impls_are_reported_not_fatal():
    ok, missing = timing_sampling.available_impls(("threefry2x32", "rbg", "no_such_prng"))
    assert ok == ["threefry2x32", "rbg"] and list(missing) == ["no_such_prng"]
    assert jax.random.key_impl(timing_sampling.make_key(0, "threefry2x32-nonpartitionable")) == (
        jax.random.key_impl(jax.random.key(0))
    )


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
        return layers.Dropout(0.5)(x, deterministic=not train) * 3.0


def test_sample_only_draws_masks_but_leaves_the_input():
    x = jnp.arange(1.0, 4097.0).reshape(4, 1024)
    net = _Net()

    def apply(train):
        return jax.jit(lambda x, k: net.apply({}, x, train=train, rngs={"dropout": k}))

    key = jax.random.key(0)
    with nn.intercept_methods(timing.sample_only):
        sampled = apply(True)
        hlo_sampled = sampled.lower(x, key).compile().as_text()
        np.testing.assert_array_equal(sampled(x, key), x * 3.0)  # mask not applied
    hlo_off = apply(False).lower(x, key).compile().as_text()
    full = apply(True)(x, key)
    assert 0.4 < float(jnp.mean(full == 0)) < 0.6  # the real dropout drops half
    # the threefry hash (rotations: shifts) is in the sample-only program, not in the 'off' one
    assert hlo_sampled.count("shift-left") >= 10 and "shift-left" not in hlo_off


def test_sampling_shape_must_tile_rows():
    with pytest.raises(ValueError, match="multiple of 1024"):
        timing_sampling.sampling_shape(1000)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Runs the CLI's quick config once; returns (output dir, results dict)."""
    out = tmp_path_factory.mktemp("timing")
    command = [
        sys.executable, "-m", "dropout_study.timing", "--config=configs/timing.py:quick",
        f"--config.output_dir={out}",
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=600)
    return out, json.loads((out / "results.json").read_text())


def test_quick_cli_writes_every_table_and_plot(quick_run):
    out, results = quick_run
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 100, name
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    readme = (out / "README.md").read_text()
    assert "python -m dropout_study.timing --config=configs/timing.py:quick" in readme
    assert f"jax {jax.__version__}" in readme and "## Targets" in readme
    assert len(results["targets"]) == 5  # sampler x2, one model, compact dense at 0.5 and 0.8
    assert readme.count("Post 000") == 1 and readme.count("Post 003") == 1


def test_quick_sampling_numbers_are_sane(quick_run):
    out, results = quick_run
    s = results["sampling"]
    rows = s["impl_rows"] + s["rate_rows"] + s["size_rows"]
    assert {r["impl"] for r in s["impl_rows"]} == {"threefry2x32", "rbg"}
    assert {r["allocator"] for r in s["size_rows"]} == {"mimalloc", "system"}
    table = (out / "sampling.md").read_text()
    for r in rows:
        assert r["copy_ms"] > 0 and r["dropout_gelem_s"] > 0
        drop, copy = (np.array(r["samples_ms"][k]) for k in ("dropout", "copy"))
        assert len(drop) == len(copy) == 3  # repeats
        assert r["dropout_over_copy"] == pytest.approx(np.median(drop / copy))
        assert r["dropout_ms"] == pytest.approx(np.median(drop))
        assert r["dropout_gelem_s"] == pytest.approx(r["elements"] / r["dropout_ms"] / 1e6)
        assert r["effective_rate"] == pytest.approx(masks.effective_rate(r["rate"], r["sampler"]))
        assert f"{r['dropout_over_copy']:.4g}" in table
    for r in s["impl_rows"]:
        assert r["mask_gelem_s"] > 0
        bound = 5 * np.sqrt(r["effective_rate"] * (1 - r["effective_rate"]) / r["elements"])
        assert abs(r["observed_rate"] - r["effective_rate"]) < bound
    bits8 = [r for r in rows if r["sampler"] == "bits8" and r["rate"] == 0.3]
    assert bits8 and all(r["effective_rate"] == 77 / 256 for r in bits8)  # quantised, reported
    assert results["fastest_sampler"] in masks.SAMPLERS


def test_quick_model_and_compact_numbers_are_consistent(quick_run):
    _, results = quick_run
    (attribution,) = results["attribution"]
    off, sample, full = (np.array(attribution["samples_ms"][m]) for m in ("off", "sample", "full"))
    assert min(off.min(), sample.min(), full.min()) > 0
    assert attribution["full_ms"] == pytest.approx(np.median(full))
    assert attribution["overhead"] == pytest.approx(np.median(full / off) - 1)
    assert attribution["sampling_ms"] == pytest.approx(np.median(sample - off))
    for r in results["compact"]:
        masked, kept = (np.array(r["samples_ms"][m]) for m in ("masked", "compact"))
        assert r["speedup"] == pytest.approx(np.median(masked / kept))
        assert r["speedup_slices"] > 0
        assert r["ideal_speedup"] == pytest.approx(1 / (1 - r["effective_rate"]))
        assert r["effective_rate"] == pytest.approx(compact.effective_rate(256, r["rate"]))
    epochs = results["epochs"]
    assert [r["keep_prob"] for r in epochs] == [1.0, 0.5]
    for r in epochs:
        assert r["steps_per_epoch"] == 25000 // 8
        for method in ("default", "fastest", "masked_twin", "compact_twin"):
            assert r[f"{method}_epoch_s"] > 0
        assert r["twin_speedup"] > 0
    assert epochs[0]["default_vs_baseline"] == 1.0  # keep 1.0 is the baseline itself


def _speed_results(slow_ms, fast_ms):
    """A results dict with one post-004 attribution row: full-dropout and 'off' step samples."""
    overhead = float(np.median(np.asarray(slow_ms) / np.asarray(fast_ms))) - 1.0
    samples = {"full": list(slow_ms), "off": list(fast_ms), "sample": list(fast_ms)}
    row = {"model": "denoise_unet_element", "variant": "inverted", "overhead": overhead,
           "sampling_ms": 0.0, "application_ms": 0.0, "full_ms": float(np.median(slow_ms)),
           "samples_ms": samples}  # fmt: skip
    return {
        "config": {},
        "sampling": {"impl_rows": [], "rate_rows": [], "impl_elements": 0},
        "attribution": [row],
        "compact": [],
        "epochs": [],
    }


@pytest.mark.parametrize(
    ("factor", "noise", "expected"),
    [(3.0, 0.01, "supported"), (1.0, 0.01, "contradicted"), (2.0, 0.3, "inconclusive")],
)
def test_speed_claims_are_judged_by_the_shared_statistics(factor, noise, expected):
    """Post 004's 'more than doubles' on per-repeat samples with a known ratio and spread."""
    rng = np.random.default_rng(0)
    fast = 100.0 * np.exp(rng.normal(0, 0.02, 7))
    slow = fast * factor * np.exp(rng.normal(0, noise, 7))
    config = ml_collections.ConfigDict(
        {"targets": {"dropout_over_copy_max": 2.0, "mask_gelem_s_min": 1.0,
                     "step_overhead_max": 0.05, "compact_dense_speedup_min": ((0.5, 1.8),)},
         "speed_claims": {"min_change": 0.05, "doubling": 2.0}}
    )  # fmt: skip
    judged = timing_report.judge(_speed_results(slow, fast), config)
    (claim,) = judged["claims"]
    assert f"claimed > 2x: **{expected}**" in claim
    assert judged["targets"][0][2] is (factor == 1.0)  # the 5% overhead target: met at 1x only


def test_from_results_rejudges_saved_samples_against_the_config(quick_run, tmp_path):
    out, results = quick_run
    command = [
        sys.executable, "-m", "dropout_study.timing", "--config=configs/timing.py:quick",
        f"--config.output_dir={tmp_path}", "--config.targets.step_overhead_max=-1.0",
        f"--from_results={out / 'results.json'}",
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300)
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["sampling"] == results["sampling"] and again["epochs"] == results["epochs"]
    overhead = [t for t in again["targets"] if "overhead" in t[0]]
    assert overhead and not any(met for _, _, met in overhead)  # no overhead is below -100%
    assert "re-judged from its samples with: `python -m dropout_study.timing" in (
        (tmp_path / "README.md").read_text()
    )
