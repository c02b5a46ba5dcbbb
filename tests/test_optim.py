"""Optimiser settings: Keras Adam defaults, SGD momentum, AdamW decay, schedules, penalties."""

import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import optim


def _config(**overrides):
    config = optim.default_config()
    config.update(overrides)
    return config


def _first_update(config, grads, params):
    tx = optim.create_optimizer(config, steps_per_epoch=10, num_epochs=2)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_defaults_are_keras_adam():
    config = optim.default_config()
    assert (config.name, config.learning_rate, config.eps) == ("adam", 1e-3, 1e-7)
    assert (config.b1, config.b2) == (0.9, 0.999)


def test_adam_first_step_shows_epsilon_1e_7():
    # Step 1: m_hat = g, v_hat = g**2, so the update is -lr * g / (|g| + eps).
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1e-7, 1.0, -2.0])}
    update = _first_update(optim.default_config(), grads, params)["w"]
    np.testing.assert_allclose(update, [-1e-3 * 0.5, -1e-3, 1e-3], rtol=1e-5)


def test_post_001_learning_rate():
    params = {"w": jnp.zeros(2)}
    update = _first_update(_config(learning_rate=2e-3), {"w": jnp.array([3.0, -1.0])}, params)
    np.testing.assert_allclose(update["w"], [-2e-3, 2e-3], rtol=1e-5)


def test_sgd_momentum_accumulates():
    config = _config(name="sgd", learning_rate=0.1, momentum=0.9)
    tx = optim.create_optimizer(config, 10, 1)
    params, grads = {"w": jnp.zeros(())}, {"w": jnp.ones(())}
    state = tx.init(params)
    first, state = tx.update(grads, state, params)
    second, _ = tx.update(grads, state, params)
    np.testing.assert_allclose([first["w"], second["w"]], [-0.1, -0.1 * 1.9], rtol=1e-6)


def test_adamw_decays_kernels_only():
    params = {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full((2,), 2.0)}
    grads = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)}
    config = _config(name="adamw", learning_rate=0.1, weight_decay=0.01)
    update = _first_update(config, grads, params)
    np.testing.assert_allclose(update["kernel"], -0.1 * 0.01 * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(update["bias"], 0.0)


def test_cosine_schedule_warms_up_and_decays():
    schedule = optim.learning_rate_schedule(
        _config(schedule="cosine", warmup_epochs=1.0), steps_per_epoch=10, num_epochs=5
    )
    np.testing.assert_allclose(
        [schedule(0), schedule(5), schedule(10), schedule(50)], [0.0, 5e-4, 1e-3, 0.0], atol=1e-9
    )


def test_cosine_schedule_without_warmup_starts_at_the_peak():
    schedule = optim.learning_rate_schedule(
        _config(schedule="cosine"), steps_per_epoch=10, num_epochs=5
    )
    np.testing.assert_allclose(
        [schedule(0), schedule(25), schedule(50)], [1e-3, 5e-4, 0.0], atol=1e-9
    )


def test_step_schedule_multiplies_at_epochs():
    schedule = optim.learning_rate_schedule(
        _config(schedule="step", decay_epochs=(2, 4), decay_factor=0.5), 10, 6
    )
    np.testing.assert_allclose(
        [schedule(19), schedule(20), schedule(40)], [1e-3, 5e-4, 2.5e-4], rtol=1e-6
    )


def test_gradient_clipping():
    params = {"w": jnp.zeros(2)}
    config = _config(name="sgd", momentum=0.0, learning_rate=1.0, grad_clip_norm=1.0)
    update = _first_update(config, {"w": jnp.array([3.0, 4.0])}, params)
    np.testing.assert_allclose(update["w"], [-0.6, -0.8], rtol=1e-6)


def test_penalty_is_keras_l1_l2_on_kernels():
    params = {"dense": {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([10.0])}}
    assert float(optim.penalty(params, l1=0.1)) == pytest.approx(0.3)
    assert float(optim.penalty(params, l2=0.01)) == pytest.approx(0.05)
    assert float(optim.penalty(params, l1=0.1, l2=0.01)) == pytest.approx(0.35)
    assert float(optim.penalty(params)) == 0.0


@pytest.mark.parametrize(
    "field, value", [("name", "adagrad"), ("schedule", "linear")], ids=["name", "schedule"]
)
def test_unknown_choice_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"optimizer.{field}='{value}'"):
        optim.create_optimizer(_config(**{field: value}), 10, 1)
