"""A tiny real training run (text CNN on the shipped IMDB sample) and what tests read back."""

import json

import jax

from dropout_study import checkpoint, run_config, run_files, train


def text_cnn_config(**overrides):
    """A small text CNN on 640 reviews of the shipped IMDB sample (10 steps per epoch)."""
    config = run_config.default_config("imdb", "text_cnn")
    config.data.update(source="sample", num_words=3000, maxlen=64, max_train=640, max_eval=256)
    config.model.update(vocab_size=3000, embed_dim=16, num_filters=16, output_rate=0.5)
    config.update(num_epochs=2, batch_size=64, log_every_steps=5, checkpoint_every_steps=4)
    config.optimizer.learning_rate = 1e-2
    config.update_from_flattened_dict(overrides)
    return config


def records(workdir):
    """metrics.jsonl without the fields that time the machine."""
    lines = (workdir / run_files.METRICS_FILE).read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in train.TIME_FIELDS} for line in lines
    ]


def latest_params(workdir):
    """The parameter arrays of the newest 'latest' checkpoint."""
    checkpoints = checkpoint.Checkpoints(workdir / run_files.CHECKPOINT_DIR)
    try:
        state = checkpoints.restore(checkpoint.LATEST, None)[0]["state"]
    finally:
        checkpoints.close()
    return jax.tree.leaves(state["params"])
