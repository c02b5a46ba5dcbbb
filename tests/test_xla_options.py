"""Compile options of the steps: matmuls off YNNPACK on CPU, same values, XLA_FLAGS overrides."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import xla_options


def _lstm_like(h, u):
    """A loop of (64, 128) x (128, 512) products, the LSTM step's shape."""

    def body(h, _):
        return jnp.tanh(h @ u)[:, :128], None

    return jax.lax.scan(body, h, None, length=8)[0]


def _args():
    h = jax.random.normal(jax.random.key(0), (64, 128))
    u = jax.random.normal(jax.random.key(1), (128, 512)) / 12
    return h, u


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="options for XLA:CPU only")
def test_project_steps_keep_matmuls_off_ynnpack_and_compute_the_same_values():
    h, u = _args()
    ours = xla_options.jit(_lstm_like).lower(h, u).compile()
    default = (
        xla_options.jit(_lstm_like, ynn_fusion_types=xla_options.DEFAULT).lower(h, u).compile()
    )
    assert xla_options.compile_options() == {xla_options.OPTION: "LIBRARY_FUSION_TYPE_REDUCE"}

    def dots_on_ynnpack(compiled):  # a YNNPACK call is a custom fusion named ynn_fusion
        return [
            line for line in compiled.as_text().splitlines() if "ynn_fusion = f32[64,512]" in line
        ]

    assert len(dots_on_ynnpack(default)) == 1  # XLA's own choice, which the option changes
    assert not dots_on_ynnpack(ours)
    np.testing.assert_allclose(ours(h, u), default(h, u), rtol=1e-5, atol=1e-6)


def test_a_users_xla_flags_choice_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", f"--{xla_options.OPTION}=-individual_dot")
    assert xla_options.compile_options() is None
    assert xla_options.active() == "XLA_FLAGS"
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    assert xla_options.active() == f"{xla_options.OPTION}=LIBRARY_FUSION_TYPE_REDUCE"


def test_xla_default_compiles_with_no_options():
    assert xla_options.compile_options(xla_options.DEFAULT) is None
