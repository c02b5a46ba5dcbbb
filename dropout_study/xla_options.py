"""Compile options of every compiled step: on XLA:CPU, matmuls run on Eigen rather than YNNPACK.

By default XLA:CPU hands each matmul ("individual dot") to YNNPACK. YNNPACK runs the LSTM's
per-step products, (64, 128) x (128, 512), on one thread, but Eigen's matmul uses every core.
`YNN_FUSION_TYPES` keeps YNNPACK for reductions only, which is XLA_FLAGS'
`--xla_cpu_experimental_ynn_fusion_type=-individual_dot` applied to this project's steps alone.
It also makes XLA's own 2-D convolutions, whose backward passes are slow under the defaults,
faster than matmuls over patches, so the conv nets use them (`models/conv.py`).
`python -m dropout_study.bench --xla_default` times both choices in one run.
Eigen's kernels round differently, so a run compiled one way does not resume the other way bit
for bit: the option is fixed here, and a user's own `--xla_cpu_experimental_ynn_fusion_type` in
XLA_FLAGS overrides it for everything.
"""

import os

import jax

OPTION = "xla_cpu_experimental_ynn_fusion_type"
YNN_FUSION_TYPES = ("REDUCE",)  # XLA's DebugOptions.LibraryFusionType names, without the prefix
DEFAULT = "default"  # XLA's own choice, for bench --xla_default


def compile_options(ynn_fusion_types=YNN_FUSION_TYPES) -> dict[str, str] | None:
    """Options for `Lowered.compile`: None (XLA's defaults) off the CPU backend, for
    ynn_fusion_types=DEFAULT, or where XLA_FLAGS sets the option itself."""
    if (
        ynn_fusion_types == DEFAULT
        or jax.default_backend() != "cpu"
        or OPTION in os.environ.get("XLA_FLAGS", "")
    ):
        return None
    return {OPTION: ",".join(f"LIBRARY_FUSION_TYPE_{t}" for t in ynn_fusion_types)}


def jit(fn, *, ynn_fusion_types=YNN_FUSION_TYPES, **jit_kwargs):
    """`jax.jit(fn, **jit_kwargs)` with these compile options: for every step that does math."""
    return jax.jit(fn, compiler_options=compile_options(ynn_fusion_types), **jit_kwargs)


def active() -> str:
    """What compiled this process's steps, for run summaries and bench output."""
    options = compile_options()
    if options is None:
        return "XLA default" if OPTION not in os.environ.get("XLA_FLAGS", "") else "XLA_FLAGS"
    return f"{OPTION}={options[OPTION]}"
