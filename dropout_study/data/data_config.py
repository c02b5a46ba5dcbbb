"""The data config: every field with its default, and checks that name the bad field and the fix."""

import math

import ml_collections

from dropout_study import errors

DATASETS = ("imdb", "cifar10", "cifar100", "denoise")
SOURCES = ("sample", "local", "tfds")
VALIDATIONS = ("test", "holdout")

COMMON = dict(
    source="sample",  # 'sample' (shipped in the package), 'local' (data_dir) or 'tfds'
    data_dir="",  # '' = default root of the source (local: <repo>/../shared/data)
    validation="holdout",  # 'holdout' (part of the training split) selects; 'test': the posts'
    holdout_fraction=0.1,  # share of the training split held out when validation='holdout'
    split_seed=0,  # seeds the holdout and the max_train / max_eval subsets
    max_train=0,  # 0 = every training example; else a fixed random subset of this size
    max_eval=0,  # 0 = every validation example; else a fixed random subset of this size
    max_test=0,  # validation='holdout': 0 = every test example; else a fixed random subset
    verify_checksums=True,  # check local and sample files against their SHA256SUMS
    download=False,  # source='tfds' only: allow tfds to download (needs internet)
)

PER_DATASET = dict(
    imdb=dict(
        num_words=20000,  # keep word ids < num_words (after index_from), else oov_char; 0 = all
        skip_top=0,  # word ids < skip_top become oov_char (Keras semantics)
        maxlen=200,  # every review padded or truncated to this many ids
        padding="pre",  # where padding goes: 'pre' (Keras default) or 'post'
        truncating="pre",  # which end is cut from long reviews: 'pre' (Keras default) or 'post'
        index_from=3,  # word of rank r gets id r + index_from
        start_char=1,  # id put before every review
        oov_char=2,  # id of words outside [skip_top, num_words)
    ),
    cifar10=dict(
        variant="exact",  # 'exact' pixels, or 'jpeg': full 50k + 10k lossy copy (source='local')
        normalise=True,  # per-channel (x - mean) / std with training-split statistics
    ),
    cifar100=dict(
        variant="exact",  # as for cifar10: 'jpeg' is the full 50k + 10k lossy copy (source='local')
        label_mode="fine",  # 'fine' (100 classes) or 'coarse' (20 superclasses)
        normalise=True,
    ),
    denoise=dict(
        base="cifar10",  # clean images come from 'cifar10' or 'cifar100'
        variant="exact",  # as for cifar10 and cifar100: 'jpeg' (source='local') for the full base
        corruption="gaussian",  # 'gaussian', 'pixelate' or 'jpeg'
        noise_std=0.1,  # gaussian: noise std on the [0, 1] pixel scale
        pixelate_factor=4,  # pixelate: block size of the down- then up-sampling (divides 32)
        jpeg_quality=10,  # jpeg: Pillow JPEG quality 1..95 (lower = stronger block artefacts)
        corruption_seed=0,  # seeds the gaussian noise
    ),
)


def default_config(name="cifar10"):
    """A ConfigDict with every field for dataset `name` at its default value."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset name={name!r}; choose one of {DATASETS}.")
    return ml_collections.ConfigDict(dict(name=name, **COMMON, **PER_DATASET[name]))


def resolve(config):
    """Checks the common fields; returns a copy with missing fields at their defaults.

    Unknown fields raise (a typo must not be ignored silently).
    """
    name = config.get("name")
    if name not in DATASETS:
        raise ValueError(
            f"Unknown dataset config.data.name={name!r}; choose one of {DATASETS} "
            "(dropout_study.data.DATASETS)."
        )
    full = default_config(name)
    unknown = sorted(set(config.keys()) - set(full.keys()))
    if unknown:
        raise ValueError(
            f"Unknown data config field(s) {unknown} for name={name!r}; allowed: {sorted(full)}."
        )
    full.update(dict(config.items()))
    errors.check_choice("config.data.source", full.source, SOURCES)
    errors.check_choice("config.data.validation", full.validation, VALIDATIONS)
    check_range(full, "holdout_fraction", 0.0, 1.0, closed=False)
    for field in ("max_train", "max_eval", "max_test"):
        check_range(full, field, 0, math.inf)
    return full


def check_range(config, field, low, high, *, closed=True):
    """ValueError unless low <= config[field] <= high (strict inequalities if not closed)."""
    value = config[field]
    ok = low <= value <= high if closed else low < value < high
    if not ok:
        brackets = "[]" if closed else "()"
        raise ValueError(
            f"config.data.{field}={value!r} is out of range; it must lie in "
            f"{brackets[0]}{low}, {high}{brackets[1]}."
        )
