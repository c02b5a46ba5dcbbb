"""Study of post 002: what to put between convolutions (nothing, dropout, batch-norm, both,
spatial dropout) and Cutout.

Claims (dropout_study.claims, ids 002.*): batch-norm is best; dropout between convolutions is
worse than nothing; batch-norm converges in fewer epochs; spatial (channel) dropout works where
element dropout does not; Cutout helps.

Sweep `between` (configs/cifar100_conv.py, model.arch): cases none, dropout, spatial
(spatial_dropout), bn (batchnorm), bn_dropout (batchnorm_dropout), all at the config's rate 0.2
and GAP head, and bn_cutout (batch-norm plus Cutout of the training images).

Scales:
  full: configs/cifar100_conv.py as it is: filters (64, 128, 256), batch 128, Adam, 50 epochs, on
    the full CIFAR-100 from tensorflow-datasets (source 'tfds', 50,000 / 10,000); Cutout 8x8
    (DeVries & Taylor's size for CIFAR-100); 5 seeds.
  cpu (2 CPU cores: 45 minutes as two shards of one core each; results/post002):
    CIFAR-10 instead of CIFAR-100, because the local CIFAR-100 subset (1,117 training images for
    100 classes, 5 to 22 per class) is too small to resolve these differences: the exact-pixel
    CIFAR-10 subset (5,438 / 1,017 images, 10 classes);
    filters (16, 32, 64); 20 epochs; Cutout 16x16 (the paper's size for CIFAR-10); checkpoints
    at epoch ends only; 3 seeds.

  python -m dropout_study.study --config=configs/studies/post002.py:cpu --workdir=workdirs/studies
  python -m dropout_study.report --workdir=workdirs/studies/post002 --out=results/post002
"""

import pathlib

import ml_collections

from dropout_study import config_check, study

CONFIGS = pathlib.Path(__file__).resolve().parents[1]
SCALES = ("cpu", "full")
ARCHS = {
    "none": "none",
    "dropout": "dropout",
    "spatial": "spatial_dropout",
    "bn": "batchnorm",
    "bn_dropout": "batchnorm_dropout",
}


def _base(scale):
    """configs/cifar100_conv.py at the study's scale (CIFAR-10 subset at the cpu scale)."""
    config = study.load_config_file(CONFIGS / "cifar100_conv.py", "full")
    if scale == "cpu":
        config.data = config_check.default_config("cifar10", "conv_family").data
        config.data.source = "local"
        config.data.variant = "exact"
        config.model.num_classes = 10
        config.model.filters = (16, 32, 64)
        config.num_epochs = 20
        config.checkpoint_every_steps = 0
    else:
        config.data.source = "tfds"
    return config


def get_config(arg="full"):
    """The study at scale `arg` in SCALES."""
    if arg not in SCALES:
        raise ValueError(f"unknown scale {arg!r} of post002.py; use one of {SCALES}.")
    cpu = arg == "cpu"
    cases = {name: {"model": {"arch": arch}} for name, arch in ARCHS.items()}
    cases["bn_cutout"] = {"model": {"arch": "batchnorm"}, "augment": {"cutout": 16 if cpu else 8}}
    config = ml_collections.ConfigDict()
    config.name = "post002"
    config.scale = arg
    config.notes = (
        "CIFAR-10 instead of CIFAR-100: the local CIFAR-100 subset (1,117 training images "
        "for 100 classes) is too small to resolve the claims; the exact CIFAR-10 subset "
        "(5,438 / 1,017 images); filters (16, 32, 64); 20 epochs; Cutout 16x16."
        if arg == "cpu"
        else ""
    )
    config.seeds = (0, 1, 2) if cpu else (0, 1, 2, 3, 4)
    config.sweeps = ml_collections.ConfigDict()
    config.sweeps.between = ml_collections.ConfigDict(
        {"base": _base(arg), "cases": cases, "reference": "none"}
    )
    return config
