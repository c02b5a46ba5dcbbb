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
    """The timing config of `arg` in VARIANTS (default 'full'): the full config, and for 'quick'
    one block that shrinks it."""
    variant = arg or "full"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of timing.py; use one of {VARIANTS}.")
    config = ml_collections.ConfigDict()
    config.output_dir = "results/timing"
    config.seed = 0
    config.repeats = 7  # samples per timed function; tables show medians
    config.model_repeats = 5  # the same for whole train steps (parts 2 and 4)
    config.min_sample_s = 0.05  # each sample lasts at least this long
    config.sampling = ml_collections.ConfigDict(
        {
            "rate": 0.3,  # not a multiple of 1/256: quantised samplers show their effective rate
            "samplers": masks.SAMPLERS,
            "prng_impls": PRNG_IMPLS,
            "impl_elements": 2**22,
            "rates": (0.1, 0.3, 0.5, 0.7, 0.9),
            "elements": (2**16, 2**20, 2**24),
            "dtypes": ("float32", "bfloat16"),
            "allocators": ("tcmalloc", "system"),
        }
    )
    config.compact = ml_collections.ConfigDict(
        {
            "layers": ("dense", "conv", "lstm"),
            "rates": (0.0, 0.25, 0.5, 0.8, 0.9),
            "dense": {"batch": 128, "width": 4096},
            "conv": {"batch": 16, "size": 16, "channels": 128},
            "lstm": {
                "batch": 64,
                "steps": 200,
                "vocab": 20000,
                "embed": 128,
                "hidden": 128,
                "out": 2,
            },
        }
    )
    config.models = ml_collections.ConfigDict(
        {
            "imdb_cnn": _model("configs/imdb_cnn.py", 25000, ("output_rate",)),
            "imdb_rnn": _model("configs/imdb_rnn.py", 25000, ("output_rate",)),
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
    config.attribution = ml_collections.ConfigDict({"models": STUDY_MODELS})
    config.epochs = ml_collections.ConfigDict(
        {"models": ("imdb_cnn", "imdb_rnn", "cifar10_vgg"), "keep_probs": (1.0, 0.8, 0.5, 0.2)}
    )
    # The goals a run is checked against (README 'Targets'): each is met or not.
    config.targets = ml_collections.ConfigDict(
        {
            "dropout_over_copy_max": 2.0,  # full dropout of the default sampler vs a copy
            "mask_gelem_s_min": 1.0,  # masks per second of the default sampler, in G elements
            "step_overhead_max": 0.05,  # what full dropout adds to a study model's train step
            "compact_dense_speedup_min": ((0.5, 1.8), (0.8, 3.5)),  # (rate, fwd+bwd vs masked)
        }
    )
    # The posts' speed claims, judged per repeat by dropout_study.stats like every other claim:
    # the region each asserts for a paired time ratio.
    config.speed_claims = ml_collections.ConfigDict(
        {
            "min_change": 0.05,  # 'slower' / 'grows': a ratio above 1 + this
            "doubling": 2.0,  # post 004's 'more than doubles': a ratio above this
        }
    )
    if variant == "quick":  # seconds, for tests and CI
        config.update(repeats=3, model_repeats=3, min_sample_s=0.002)
        config.sampling.update(
            samplers=("bernoulli", "bits8", masks.DEFAULT_SAMPLER),
            prng_impls=("threefry2x32", "rbg"),
            impl_elements=2**16,
            rates=(0.3, 0.7),
            elements=(2**16,),
            dtypes=("float32",),
            allocators=("mimalloc", "system"),  # both come with pip install (tcmalloc: apt-get)
        )
        config.compact.update(layers=("dense",), rates=(0.5, 0.8))
        config.compact.dense.update(batch=8, width=256)
        config.compact.conv.update(batch=2, size=8, channels=16)
        config.compact.lstm.update(batch=4, steps=10, vocab=100, embed=32, hidden=16)
        small_text = (("batch_size", 8), ("data.maxlen", 32), ("data.num_words", 1000))
        small_text += (("model.vocab_size", 1000), ("model.embed_dim", 16))
        config.models.imdb_cnn.overrides = small_text + (("model.num_filters", 16),)
        config.models.imdb_rnn.overrides = small_text
        config.attribution.models = ("imdb_cnn",)
        config.epochs.update(models=("imdb_cnn",), keep_probs=(1.0, 0.5))
    return config
