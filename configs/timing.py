"""Timing of mask sampling against the compute dropout could save (dropout_study/timing.py).

Commands:
  python -m dropout_study.timing --config=configs/timing.py
  python -m dropout_study.timing --config=configs/timing.py:quick --config.output_dir=DIR
Overrides, e.g. --config.repeats=9 --config.attribution.models=(imdb_cnn,).

Variants:
  full (default): every sampler and PRNG implementation on 4M float32 elements, rates 0.1-0.9,
    sizes 64K/1M/16M in float32 and bfloat16 under glibc malloc and tcmalloc; the train steps of
    every study model at the posts' rates and batch sizes; compact dense (4096 wide), conv and
    LSTM pairs; epoch time against keep probability for the text CNN, the LSTM and the VGG net.
    Runtime: 2 CPU cores: about 15 minutes.
  quick: a few samplers, small tensors, the text CNN only: seconds, for tests and CI.
"""

import ml_collections

from dropout_study import masks

VARIANTS = ("full", "quick")
STUDY_MODELS = (
    "imdb_cnn",
    "imdb_rnn",
    "cifar10_vgg",
    "cifar100_conv",
    "denoise_unet",
    "denoise_unet_element",
)

# Every PRNG implementation a recent JAX may offer; those missing are reported, not an error.
PRNG_IMPLS = (
    "threefry2x32",
    "threefry2x32-nonpartitionable",  # with jax_threefry_partitionable=False
    "rbg",
    "unsafe_rbg",
    "philox2x32",
    "philox4x32",
    "threefry4x32",
)


def _model(config, train_examples, rate_fields, overrides=()):
    """A study model to time: its training config file, training-set size (for the epoch time),
    the model fields holding its dropout rates, and (dotted field, value) overrides."""
    return ml_collections.ConfigDict(
        {
            "config": config,
            "train_examples": train_examples,
            "rate_fields": rate_fields,
            "overrides": overrides,
        }
    )


def get_config(arg=None):
    """The timing config of `arg` in VARIANTS (default 'full')."""
    variant = arg or "full"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of timing.py; use one of {VARIANTS}.")
    quick = variant == "quick"
    config = ml_collections.ConfigDict()
    config.output_dir = "results/timing"
    config.seed = 0
    config.repeats = 3 if quick else 7  # samples per timed function; tables show medians
    config.model_repeats = 3 if quick else 5  # the same for whole train steps (parts 2 and 4)
    config.min_sample_s = 0.002 if quick else 0.05  # each sample lasts at least this long
    config.sampling = ml_collections.ConfigDict(
        {
            "rate": 0.3,  # not a multiple of 1/256: quantised samplers show their effective rate
            "samplers": ("bernoulli", "bits8", masks.DEFAULT_SAMPLER) if quick else masks.SAMPLERS,
            "prng_impls": ("threefry2x32", "rbg") if quick else PRNG_IMPLS,
            "impl_elements": 2**16 if quick else 2**22,
            "rates": (0.3, 0.7) if quick else (0.1, 0.3, 0.5, 0.7, 0.9),
            "elements": (2**16,) if quick else (2**16, 2**20, 2**24),
            "dtypes": ("float32",) if quick else ("float32", "bfloat16"),
            # quick: both come with pip install (tcmalloc needs apt-get): any test machine has them
            "allocators": ("mimalloc", "system") if quick else ("tcmalloc", "system"),
        }
    )
    config.compact = ml_collections.ConfigDict(
        {
            "layers": ("dense",) if quick else ("dense", "conv", "lstm"),
            "rates": (0.5, 0.8) if quick else (0.0, 0.25, 0.5, 0.8, 0.9),
            "dense": {"batch": 8 if quick else 128, "width": 256 if quick else 4096},
            "conv": {
                "batch": 2 if quick else 16,
                "size": 8 if quick else 16,
                "channels": 16 if quick else 128,
            },  # fmt: skip
            "lstm": {
                "batch": 4 if quick else 64,
                "steps": 10 if quick else 200,
                "vocab": 100 if quick else 20000,
                "embed": 32 if quick else 128,
                "hidden": 16 if quick else 128,
                "out": 2,
            },  # fmt: skip
        }
    )
    small_text = (
        (("batch_size", 8), ("data.maxlen", 32), ("data.num_words", 1000))
        + (("model.vocab_size", 1000), ("model.embed_dim", 16))
        if quick
        else ()
    )
    config.models = ml_collections.ConfigDict(
        {
            "imdb_cnn": _model(
                "configs/imdb_cnn.py",
                25000,
                ("output_rate",),
                small_text + ((("model.num_filters", 16),) if quick else ()),
            ),
            "imdb_rnn": _model("configs/imdb_rnn.py", 25000, ("output_rate",), small_text),
            "cifar10_vgg": _model("configs/cifar10_vgg.py", 50000, ("block_rates", "dense_rates")),
            # post 002's net with elementwise dropout between all convolutions (the most masks)
            "cifar100_conv": _model(
                "configs/cifar100_conv.py", 50000, ("rate",), (("model.arch", "dropout"),)
            ),
            "denoise_unet": _model("configs/denoise_unet.py", 50000, ("encoder_rates",)),
            # post 004's comparison: the same UNet with element-wise dropout
            "denoise_unet_element": _model(
                "configs/denoise_unet.py",
                50000,
                ("encoder_rates",),
                (("model.dropout_variant", "inverted"),),
            ),
        }
    )
    config.attribution = ml_collections.ConfigDict(
        {"models": ("imdb_cnn",) if quick else STUDY_MODELS}
    )
    config.epochs = ml_collections.ConfigDict(
        {
            "models": ("imdb_cnn",) if quick else ("imdb_cnn", "imdb_rnn", "cifar10_vgg"),
            "keep_probs": (1.0, 0.5) if quick else (1.0, 0.8, 0.5, 0.2),
        }
    )
    return config
