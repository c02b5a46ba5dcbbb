"""Study of post 004: Dropout vs SpatialDropout2D in a denoising UNet.

Claims (dropout_study.claims, ids 004.*): spatial dropout is faster per epoch than element
dropout, which more than doubled the time per epoch; spatial dropout gives a better denoiser
(test loss and PSNR at the validation-selected checkpoint).

Sweep `unet` (configs/denoise_unet.py: Gaussian noise of std 0.1, encoder dropout 0.1 per level):
cases none (no dropout), dropout (element-wise, inverted) and spatial (whole channels). Each run
saves 4 test images with its best checkpoint's output for the report's examples plot.

Scales:
  full: configs/denoise_unet.py as it is: filters (32, 64, 128), batch 32, Adam, 30 epochs, clean
    images from the full CIFAR-10 (JPEG copy): 5% of the 50,000 training images held out for
    selection, all 10,000 test images; 5 seeds.
  cpu (2 CPU cores: 63 minutes as two shards of one core each, mimalloc, with short tests on the
    cores at times; results/post004): filters (16, 32, 64); clean images from CIFAR-10 (JPEG
    copy): a fixed random 2,000-image training subset, 2,500 held-out validation images, a fixed
    random 2,000 test images; 24 epochs; checkpoints at epoch ends only; 4 seeds. At 24 epochs
    (as at 12) the dropout UNets still improve in the last fifth (best validation epoch at 92-98%
    of training), so 004.2 stays untested; 30 epochs would take about 80 minutes.

  python -m dropout_study.study --config=configs/studies/post004.py:cpu --workdir=workdirs/studies
  python -m dropout_study.report --workdir=workdirs/studies/post004 --out=results/post004
"""

import pathlib

import ml_collections

from dropout_study import sweeps
from dropout_study.claims import post004 as claims

CONFIGS = pathlib.Path(__file__).resolve().parents[1]
SCALES = ("cpu", "full")
CPU = dict(max_train=2000, holdout_fraction=0.05, max_test=2000, epochs=24)


def _base(scale):
    """configs/denoise_unet.py at the study's scale."""
    config = sweeps.load_config_file(CONFIGS / "denoise_unet.py", "full")
    config.data.update(variant="jpeg", validation="holdout")
    if scale == "cpu":
        config.model.filters = (16, 32, 64)
        config.data.update(
            max_train=CPU["max_train"],
            holdout_fraction=CPU["holdout_fraction"],
            max_test=CPU["max_test"],
        )
        config.num_epochs = CPU["epochs"]
        config.checkpoint_every_steps = 0
    return config


def get_config(arg="full"):
    """The study at scale `arg` in SCALES."""
    if arg not in SCALES:
        raise ValueError(f"unknown scale {arg!r} of post004.py; use one of {SCALES}.")
    base = _base(arg)
    rates = tuple(base.model.encoder_rates)
    no_dropout = tuple(0.0 for _ in rates)
    config = ml_collections.ConfigDict()
    config.name = "post004"
    config.scale = arg
    config.notes = (
        f"filters (16, 32, 64); clean images from CIFAR-10 (JPEG copy): a fixed random "
        f"{CPU['max_train']:,}-image training subset, {CPU['holdout_fraction']:.0%} of the "
        f"training split held out for selection, a fixed random {CPU['max_test']:,} test "
        f"images; {CPU['epochs']} epochs instead of 30; 4 seeds."
        if arg == "cpu"
        else ""
    )
    config.seeds = (0, 1, 2, 3) if arg == "cpu" else (0, 1, 2, 3, 4)
    config.sweeps = ml_collections.ConfigDict()
    config.sweeps.unet = ml_collections.ConfigDict(
        {
            "base": base,
            "cases": {
                claims.NONE: {"model": {"encoder_rates": no_dropout}},
                claims.DROPOUT: {"model": {"dropout_variant": "inverted", "encoder_rates": rates}},
                claims.SPATIAL: {"model": {"dropout_variant": "spatial", "encoder_rates": rates}},
            },
            "reference": claims.NONE,
            "examples": 4,
        }
    )
    return config
