"""Plain Flax twins of the bench models: the project's parameter count, and they train."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dropout_study import flax_peers, models

SMALL = {
    "text_cnn": {"vocab_size": 50, "embed_dim": 8, "num_filters": 6, "kernel_sizes": (3,)},
    "lstm": {"vocab_size": 50, "embed_dim": 8, "hidden_dim": 6},
    "vgg": {"filters": (4, 8, 8), "ndense": 16},
}


def _config(name):
    config = models.default_config(name)
    config.update(SMALL[name])
    return config


def _batch(name):
    rng = np.random.default_rng(0)
    x = rng.random((8, 32, 32, 3), np.float32) if name == "vgg" else rng.integers(1, 50, (8, 20))
    return {"x": x, "y": rng.integers(0, 2, 8).astype(np.int32)}


def _count(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_twin_has_the_project_models_parameter_count(name):
    config, x = _config(name), jnp.asarray(_batch(name)["x"])
    ours = models.create_model(config).init(jax.random.key(0), x, train=False)["params"]
    twin = flax_peers.twin(config).init(jax.random.key(0), x, train=False)["params"]
    assert _count(twin) == _count(ours) > 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_twin_step_updates_its_parameters(name):
    optimizer = ml_collections.ConfigDict(
        {"learning_rate": 1e-2, "b1": 0.9, "b2": 0.999, "eps": 1e-7}
    )
    run = flax_peers.step(_config(name), optimizer, _batch(name), jax.random.key(0))
    before = [np.array(leaf) for leaf in jax.tree.leaves(run()[0])]
    after = jax.tree.leaves(run()[0])
    assert all(np.isfinite(a).all() for a in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def test_a_model_without_a_twin_is_refused_by_name():
    with pytest.raises(ValueError, match="'mlp'"):
        flax_peers.twin(models.default_config("mlp"))
