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
    the full CIFAR-100 (JPEG copy, source 'local', variant 'jpeg'): 5% of the 50,000 training
    images held out for selection, all 10,000 test images; Cutout 8x8 (DeVries & Taylor's size
    for CIFAR-100); 5 seeds.
  cpu (2 CPU cores: 72 minutes as two shards of one core each, mimalloc, with short test runs
    on the cores at times; results/post002): CIFAR-100 (JPEG copy): a fixed random 4,000-image
    training subset, 2,500 held-out validation images, all 10,000 test images; filters
    (16, 32, 64); batch 32; 40 epochs; checkpoints at epoch ends only; 3 seeds. At 40 epochs
    none, bn, dropout and bn_dropout peak inside the first 80% of training, so 002.2 and 002.3
    are judged (both inconclusive); spatial dropout (best epoch ~39 of 40) and bn_cutout (~34)
    still improve, so 002.1, 002.4 and 002.5 stay untested.

  python -m dropout_study.study --config=configs/studies/post002.py:cpu --workdir=workdirs/studies
  python -m dropout_study.report --workdir=workdirs/studies/post002 --out=results/post002
"""

import pathlib

import ml_collections

from dropout_study import sweeps
from dropout_study.claims import post002 as claims

CONFIGS = pathlib.Path(__file__).resolve().parents[1]
SCALES = ("cpu", "full")
ARCHS = {
    claims.NONE: "none",
    claims.DROPOUT: "dropout",
    claims.SPATIAL: "spatial_dropout",
    claims.BN: "batchnorm",
    claims.BN_DROPOUT: "batchnorm_dropout",
}
CPU = dict(max_train=4000, holdout_fraction=0.05, filters=(16, 32, 64), epochs=40, batch=32)


def _base(scale):
    """configs/cifar100_conv.py on the full CIFAR-100 (JPEG copy) at the study's scale."""
    config = sweeps.load_config_file(CONFIGS / "cifar100_conv.py", "full")
    config.data.update(source="local", variant="jpeg", validation="holdout")
    if scale == "cpu":
        config.data.update(max_train=CPU["max_train"], holdout_fraction=CPU["holdout_fraction"])
        config.model.filters = CPU["filters"]
        config.num_epochs = CPU["epochs"]
        config.batch_size = CPU["batch"]  # 125 steps per epoch: enough updates to converge
        config.checkpoint_every_steps = 0
    return config


def get_config(arg="full"):
    """The study at scale `arg` in SCALES."""
    if arg not in SCALES:
        raise ValueError(f"unknown scale {arg!r} of post002.py; use one of {SCALES}.")
    cpu = arg == "cpu"
    cases = {name: {"model": {"arch": arch}} for name, arch in ARCHS.items()}
    cases[claims.BN_CUTOUT] = {"model": {"arch": "batchnorm"}, "augment": {"cutout": 8}}
    config = ml_collections.ConfigDict()
    config.name = "post002"
    config.scale = arg
    config.notes = (
        f"CIFAR-100 (JPEG copy): a fixed random {CPU['max_train']:,}-image training subset "
        f"(about 40 per class), {CPU['holdout_fraction']:.0%} of the training split held out "
        f"for selection, all 10,000 test images; filters {CPU['filters']}; batch {CPU['batch']}; "
        f"{CPU['epochs']} epochs instead of 50; 3 seeds."
        if cpu
        else ""
    )
    config.seeds = (0, 1, 2) if cpu else (0, 1, 2, 3, 4)
    config.sweeps = ml_collections.ConfigDict()
    config.sweeps.between = ml_collections.ConfigDict(
        {"base": _base(arg), "cases": cases, "reference": claims.NONE}
    )
    return config
