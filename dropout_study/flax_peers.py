"""Plain Flax twins of bench's models, as a Flax user would write them, for `bench --plain_flax`.

Stock layers only (nn.Embed, nn.Conv, nn.RNN over nn.OptimizedLSTMCell, nn.BatchNorm,
nn.max_pool, nn.Dropout, nn.Dense), `optax.adam` and `jax.jit` with XLA's default compile
options. Sizes and dropout rates are read from the study model's config; the step is forward, loss,
backward and the Adam update, dropout on, on bench's real batch.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class TextCNN(nn.Module):
    """Embedding -> Conv1D (VALID) -> ReLU -> global max pool -> dropout -> dense."""

    vocab_size: int
    embed_dim: int
    num_filters: int
    width: int
    rate: float
    num_classes: int

    @nn.compact
    def __call__(self, tokens, train: bool):
        x = nn.Embed(self.vocab_size, self.embed_dim)(tokens)
        x = nn.relu(nn.Conv(self.num_filters, (self.width,), padding="VALID")(x)).max(axis=1)
        x = nn.Dropout(self.rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)


class LSTMClassifier(nn.Module):
    """Embedding -> LSTM -> last hidden state -> dropout -> dense."""

    vocab_size: int
    embed_dim: int
    hidden_dim: int
    rate: float
    num_classes: int

    @nn.compact
    def __call__(self, tokens, train: bool):
        x = nn.Embed(self.vocab_size, self.embed_dim)(tokens)
        x = nn.RNN(nn.OptimizedLSTMCell(self.hidden_dim))(x)[:, -1]
        x = nn.Dropout(self.rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)


class VGG(nn.Module):
    """Post 001's VGG-like net: per block conv SAME, BN, ReLU, conv VALID, BN, ReLU, pool, drop."""

    filters: tuple
    block_rates: tuple
    ndense: int
    dense_rates: tuple
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool):
        for features, rate in zip(self.filters, self.block_rates, strict=True):
            for padding in ("SAME", "VALID"):
                x = nn.Conv(features, (3, 3), padding=padding)(x)
                x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
                x = nn.relu(x)
            x = nn.Dropout(rate, deterministic=not train)(nn.max_pool(x, (2, 2), (2, 2)))
        x = x.reshape(x.shape[0], -1)
        for rate in self.dense_rates:
            x = nn.Dropout(rate, deterministic=not train)(nn.relu(nn.Dense(self.ndense)(x)))
        return nn.Dense(self.num_classes)(x)


def twin(model_config) -> nn.Module:
    """The plain Flax twin of a study model config ('text_cnn', 'lstm' or 'vgg')."""
    m = model_config
    if m.name == "text_cnn":
        (width,) = m.kernel_sizes
        return TextCNN(m.vocab_size, m.embed_dim, m.num_filters, width, m.output_rate, 2)
    if m.name == "lstm":
        return LSTMClassifier(m.vocab_size, m.embed_dim, m.hidden_dim, m.output_rate, 2)
    if m.name == "vgg":
        return VGG(tuple(m.filters), tuple(m.block_rates), m.ndense, tuple(m.dense_rates), 10)
    raise ValueError(f"no plain Flax twin of model {m.name!r}; use text_cnn, lstm or vgg.")


def step(model_config, optimizer, batch, key) -> Callable[[], object]:
    """Thunk of one plain Flax train step on `batch`; it owns its (donated) state."""
    model = twin(model_config)
    variables = model.init(key, batch["x"], train=False)
    params, stats = variables["params"], variables.get("batch_stats", {})
    tx = optax.adam(optimizer.learning_rate, b1=optimizer.b1, b2=optimizer.b2, eps=optimizer.eps)

    def train_step(params, stats, opt_state, batch, key):
        def loss_fn(params):
            logits, updates = model.apply(
                {"params": params, "batch_stats": stats},
                batch["x"],
                train=True,
                rngs={"dropout": key},
                mutable=["batch_stats"],
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
            return loss, updates.get("batch_stats", {})

        grads, stats = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state

    carry = [params, stats, tx.init(params)]
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    executable = jax.jit(train_step, donate_argnums=(0, 1, 2)).lower(*carry, batch, key).compile()

    def run():
        carry[:] = executable(*carry, batch, key)
        return carry

    return run
