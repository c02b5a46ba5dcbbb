"""IMDB sentiment with a 1-D CNN (post 000): embedding -> Conv1D -> max pool -> dropout -> dense.

Commands:
  python -m dropout_study.main --config=configs/imdb_cnn.py --workdir=workdirs/imdb_cnn
  python -m dropout_study.main --config=configs/imdb_cnn.py:quick --workdir=workdirs/imdb_cnn_quick
Overrides, e.g. the post's keep probability: --config.model.output_keep_prob=0.5 (or
--config.model.output_rate=0.5); several widths: --config.model.kernel_sizes=(3,4,5).

Variants:
  full (default): the post's setting: 20,000-word vocabulary, reviews cut/padded to 200 words,
    embedding 128, 128 filters of width 3, output dropout 0.5, batch 64, Adam (Keras defaults),
    20 epochs, best epoch by test accuracy. Data: source 'local', the full 25,000 / 25,000 split
    from <repo>/../shared/data/imdb (elsewhere: --config.data.data_dir=DIR). With
    tensorflow-datasets (`imdb_reviews` prepared, or --config.data.download=True):
    --config.data.source=tfds.
    Runtime: 2 CPU cores: 27-51 s of training per epoch plus 15-21 s of evaluation, measured
    with other jobs running (20 epochs: about 15-25 minutes); one GPU: not measured.
    Result: with --config.early_stopping.patience=3 the run stopped after 5 epochs (~5 minutes)
    with best test accuracy 0.8737 at epoch 2 (target >= 0.86).
  quick: the shipped sample (2,000 training / 1,000 test reviews), 3 epochs.
    Runtime: 2 CPU cores: 21 s for the whole command, measured with another training job
    running; one GPU: not measured.
    Result: best test accuracy 0.750 (epoch 3) on the sample's 1,000 test reviews.
"""

from dropout_study import run_config

VARIANTS = run_config.VARIANTS


def get_config(arg=None):
    """The run config of `arg` in VARIANTS (default 'full')."""
    _, config = run_config.variant_config("imdb", "text_cnn", arg, full_epochs=20)
    config.data.num_words = 20000
    config.data.maxlen = 200
    config.model.vocab_size = 20000
    config.model.embed_dim = 128
    config.model.num_filters = 128
    config.model.kernel_sizes = (3,)
    config.model.output_rate = 0.5
    config.batch_size = 64
    return config
