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

from dropout_study import measure


class ConvMaxPool(nn.Module):
    """(N, T, E) -> Conv1D (VALID) -> ReLU -> global max pool over time -> (N, F)."""

    num_filters: int
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Conv(self.num_filters, (self.width,), padding="VALID")(x)).max(axis=1)


class LastLSTMState(nn.Module):
    """(N, T, E) -> LSTM -> its last hidden state (N, H)."""

    hidden_dim: int

    @nn.compact
    def __call__(self, x):
        return nn.RNN(nn.OptimizedLSTMCell(self.hidden_dim))(x)[:, -1]


class TextClassifier(nn.Module):
    """Embedding -> `encoder` (N, T, E) -> (N, F) -> dropout -> dense."""

    vocab_size: int
    embed_dim: int
    encoder: nn.Module
    rate: float
    num_classes: int

    @nn.compact
    def __call__(self, tokens, train: bool):
        x = self.encoder(nn.Embed(self.vocab_size, self.embed_dim)(tokens))
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
    if m.name == "vgg":
        return VGG(
            filters=tuple(m.filters),
            block_rates=tuple(m.block_rates),
            ndense=m.ndense,
            dense_rates=tuple(m.dense_rates),
            num_classes=m.num_classes,
        )
    if m.name == "text_cnn":
        (width,) = m.kernel_sizes
        encoder = ConvMaxPool(m.num_filters, width)
    elif m.name == "lstm":
        encoder = LastLSTMState(m.hidden_dim)
    else:
        raise ValueError(f"no plain Flax twin of model {m.name!r}; use text_cnn, lstm or vgg.")
    return TextClassifier(m.vocab_size, m.embed_dim, encoder, m.output_rate, m.num_classes)


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
    return measure.chained(executable, carry, batch, key)
