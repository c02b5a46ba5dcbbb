"""MC-dropout predictions, uncertainty split and calibration measures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study import dropout, mc_dropout

X = jax.random.normal(jax.random.key(0), (32, 10))
W = jax.random.normal(jax.random.key(1), (10, 4))


def _noisy_model(key, x):
    """A linear classifier with inverted dropout on its input."""
    return dropout.inverted_dropout(key, x, 0.5) @ W


def test_mean_matches_manual_passes_and_uncertainty_split():
    key = jax.random.key(2)
    out = jax.jit(lambda k, x: mc_dropout.mc_predict(_noisy_model, k, x, 16, return_samples=True))(
        key, X
    )
    one_pass = jax.jit(lambda k: jax.nn.softmax(_noisy_model(k, X)))
    probs = np.stack([one_pass(k) for k in jax.random.split(key, 16)])
    np.testing.assert_allclose(out["samples"], probs, rtol=1e-5, atol=1e-6)
    mean = probs.mean(0)
    np.testing.assert_allclose(out["mean_probs"], mean, rtol=1e-5, atol=1e-6)
    entropy = -np.sum(mean * np.log(mean), -1)
    expected = np.mean(-np.sum(probs * np.log(probs), -1), 0)
    np.testing.assert_allclose(out["predictive_entropy"], entropy, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["mutual_information"], entropy - expected, atol=1e-5)
    assert np.all(np.asarray(out["mutual_information"]) > 0)  # the passes disagree


def test_deterministic_model_has_zero_mutual_information():
    out = mc_dropout.mc_predict(lambda k, x: x @ W, jax.random.key(0), X, 4)
    probs = jax.nn.softmax(X @ W)
    np.testing.assert_allclose(out["mean_probs"], probs, rtol=1e-6)
    np.testing.assert_allclose(out["mutual_information"], 0.0, atol=1e-6)
    assert "samples" not in out


def test_disagreeing_confident_passes_give_log2_mutual_information():
    def coin(key, x):  # each pass is certain, of class 0 or class 1 with prob. 1/2
        heads = jax.random.bernoulli(key, 0.5, (x.shape[0], 1))
        return jnp.where(heads, jnp.array([60.0, 0.0]), jnp.array([0.0, 60.0]))

    out = mc_dropout.mc_predict(coin, jax.random.key(3), X, 4000)
    np.testing.assert_allclose(out["mean_probs"], 0.5, atol=0.05)
    np.testing.assert_allclose(out["predictive_entropy"], np.log(2), atol=0.01)
    np.testing.assert_allclose(out["mutual_information"], np.log(2), atol=0.01)


def test_num_samples_must_be_positive():
    with pytest.raises(ValueError, match=r"num_samples=0 must be an int >= 1"):
        mc_dropout.mc_predict(_noisy_model, jax.random.key(0), X, 0)


def test_reliability_bins_by_hand():
    probs = jnp.array([[0.95, 0.05], [0.05, 0.95], [0.6, 0.4], [0.55, 0.45], [0.5, 0.5]])
    labels = jnp.array([0, 0, 0, 1, 1])  # correct, wrong, correct, wrong, argmax 0: wrong
    bins = mc_dropout.reliability_bins(probs, labels, num_bins=4)  # (0,.25] .. (.75,1]
    np.testing.assert_allclose(bins["bin_edges"], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(bins["count"], [0, 1, 2, 2])  # 0.5 belongs to (0.25, 0.5]
    np.testing.assert_allclose(bins["accuracy"][1:], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(bins["confidence"][1:], [0.5, 0.575, 0.95])
    assert np.isnan(bins["accuracy"][0])
    ece = mc_dropout.expected_calibration_error(probs, labels, num_bins=4)
    assert float(ece) == pytest.approx((1 * 0.5 + 2 * 0.075 + 2 * 0.45) / 5)


def test_ece_of_calibrated_and_overconfident_predictions():
    n = 20000
    conf = jax.random.uniform(jax.random.key(0), (n,), minval=0.5, maxval=1.0)
    probs = jnp.stack([conf, 1 - conf], -1)
    correct = jax.random.uniform(jax.random.key(1), (n,)) < conf  # right with prob. = conf
    labels = jnp.where(correct, 0, 1)
    assert float(mc_dropout.expected_calibration_error(probs, labels)) < 0.02
    overconfident = jnp.tile(jnp.array([[0.9, 0.1]]), (n, 1))
    labels = (jnp.arange(n) % 10 >= 6).astype(jnp.int32)  # accuracy 0.6 at confidence 0.9
    ece = mc_dropout.expected_calibration_error(overconfident, labels)
    assert float(ece) == pytest.approx(0.3, abs=1e-5)


def test_calibration_input_errors():
    with pytest.raises(ValueError, match=r"probs must be \(N, K\)"):
        mc_dropout.expected_calibration_error(jnp.ones((4, 2)), jnp.zeros(5, jnp.int32))
    with pytest.raises(ValueError, match=r"num_bins=0"):
        mc_dropout.reliability_bins(jnp.ones((4, 2)) / 2, jnp.zeros(4, jnp.int32), num_bins=0)


def test_ece_of_no_examples_raises():
    with pytest.raises(ValueError, match=r"no examples \(probs.shape=\(0, 3\)\)"):
        mc_dropout.expected_calibration_error(jnp.zeros((0, 3)), jnp.zeros(0, jnp.int32))
