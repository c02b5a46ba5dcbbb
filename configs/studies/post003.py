"""Study of post 003: dropout rate, variants, other regularisers, architectures and MC dropout.

Claims (dropout_study.claims, ids 003.*): a rate of about 0.5 is best and training time grows
with the rate; with dropout, train accuracy is lower and test accuracy higher; "trainable
parameters fall as the rate rises"; every variant (standard, inverted, spatial, alpha with SELU,
Gaussian, DropBlock) regularises; dropout against L1, L2, weight decay and early stopping and
their combinations; dropout helps CNNs, RNNs and MLPs; MC dropout at inference against
deterministic inference (accuracy, NLL, ECE); weight scaling at inference against inverted dropout.

The post names no model or data for these experiments; this study uses CIFAR-10 and the
project's models:
  rate:        MLP (512, 512, ReLU) with rate r after both hidden layers, r in 0, 0.3, 0.5, 0.7,
               0.9; MC dropout (30 passes at the cpu scale, 100 at full) on the best checkpoint.
  variant:     the post-001 VGG-like net (batch-norm, no dense dropout) with dropout 0.2 after
               each conv block: none, standard (weight scaling at inference), inverted, spatial,
               gaussian, dropblock (block size 2: the last block's map is 2x2).
  selu:        the MLP with SELU and LeCun-normal weights: none vs alpha dropout 0.1.
  regularizer: the MLP: none, dropout 0.5, L1 1e-5, L2 1e-4 (Keras-style penalties on kernels),
               AdamW weight decay 0.01, early stopping (patience 3 on validation accuracy), and
               dropout with L2 and with early stopping. Compared on the test accuracy after the
               last epoch, and for early stopping at the checkpoint it restores.
  rnn:         the post-000 LSTM on IMDB: none vs output dropout 0.5 with recurrent (variational)
               dropout 0.2.
The CNN/RNN/MLP comparison reuses variant none/inverted, rnn and rate 0/0.5.

Scales:
  full: the MLP on the full CIFAR-10 (JPEG copy) for 100 epochs, batch 128, Adam, 5% of the
    50,000 training images held out for selection, all 10,000 test images; the VGG and LSTM at
    post 001's and post 000's full settings; 3 seeds.
  cpu (2 CPU cores: 40 minutes as two shards of one core each, tcmalloc, with other work on the
    cores at times; results/post003): the MLP on CIFAR-10 (JPEG copy): a fixed random 5,000-image
    training subset, 2,500 held-out validation images, all 10,000 test images, 30 epochs; the VGG
    at post001.py's cpu widths and data for 25 epochs (CPU_VGG_EPOCHS) and the LSTM at
    post000.py's cpu data for 10 epochs (CPU_LSTM_EPOCHS); checkpoints at epoch ends only;
    3 seeds. rate-rate0.5 and regularizer-dropout (and rate-rate0 and regularizer-none) are one
    config and share their runs: 63 runs.

  python -m dropout_study.study --config=configs/studies/post003.py:cpu --workdir=workdirs/studies
  python -m dropout_study.report --workdir=workdirs/studies/post003 --out=results/post003
"""

import pathlib

import ml_collections

from dropout_study import run_config, sweeps
from dropout_study.claims import post003 as claims

STUDIES = pathlib.Path(__file__).resolve().parent
SCALES = ("cpu", "full")
RATES = (0.0, 0.3, 0.5, 0.7, 0.9)
NO_DROPOUT = (0.0, 0.0)
CPU_MLP = dict(max_train=5000, holdout_fraction=0.05, epochs=30)
CPU_VGG_EPOCHS = 25  # the VGG runs committed in results/post003
CPU_LSTM_EPOCHS = 10  # the LSTM runs committed in results/post003


def _mlp(scale):
    """The MLP on CIFAR-10 without dropout."""
    config = run_config.default_config("cifar10", "mlp")
    config.data.update(source="local", variant="jpeg", validation="holdout")
    config.model.hidden = (512, 512)
    config.model.rates = NO_DROPOUT
    config.batch_size = 128
    if scale == "cpu":
        config.data.update(
            max_train=CPU_MLP["max_train"], holdout_fraction=CPU_MLP["holdout_fraction"]
        )
        config.num_epochs = CPU_MLP["epochs"]
        config.checkpoint_every_steps = 0
    else:
        config.num_epochs = 100
    return config


def _variant(name):
    """Override: dropout 0.2 of variant `name` after each conv block."""
    model = {"block_rates": (0.2, 0.2, 0.2), "block_variant": name}
    if name == "dropblock":
        model["block_size"] = 2
    return {"model": model}


HALF = {"model": {"rates": (0.5, 0.5)}}
STOP = {"early_stopping": {"patience": 3}}
REGULARIZERS = {
    claims.NONE: {},
    claims.DROPOUT: HALF,
    claims.L1: {"regularization": {"l1": 1e-5}},
    claims.L2: {"regularization": {"l2": 1e-4}},
    claims.WEIGHT_DECAY: {"optimizer": {"name": "adamw", "weight_decay": 0.01}},
    claims.EARLY_STOPPING: STOP,
    claims.DROPOUT_L2: {**HALF, "regularization": {"l2": 1e-4}},
    claims.DROPOUT_EARLY_STOPPING: {**HALF, **STOP},
}


def get_config(arg="full"):
    """The study at scale `arg` in SCALES."""
    if arg not in SCALES:
        raise ValueError(f"unknown scale {arg!r} of post003.py; use one of {SCALES}.")
    cpu = arg == "cpu"
    vgg = sweeps.load_config_file(STUDIES / "post001.py", arg).sweeps.vgg.base
    lstm = sweeps.load_config_file(STUDIES / "post000.py", arg).sweeps.lstm.base
    if cpu:
        vgg.num_epochs = CPU_VGG_EPOCHS
        lstm.num_epochs = CPU_LSTM_EPOCHS
    selu = _mlp(arg)
    selu.model.activation = "selu"
    config = ml_collections.ConfigDict()
    config.name = "post003"
    config.scale = arg
    config.notes = (
        f"MLP on CIFAR-10 (JPEG copy): a fixed random {CPU_MLP['max_train']:,}-image training "
        f"subset, {CPU_MLP['holdout_fraction']:.0%} of the training split held out for "
        f"selection, all 10,000 test images, {CPU_MLP['epochs']} epochs; the VGG at post 001's "
        f"cpu widths and data for {CPU_VGG_EPOCHS} epochs, the LSTM at post 000's cpu data for "
        f"{CPU_LSTM_EPOCHS} epochs; 3 seeds."
        if arg == "cpu"
        else ""
    )
    config.seeds = (0, 1, 2)
    config.sweeps = ml_collections.ConfigDict()
    config.sweeps.rate = ml_collections.ConfigDict(
        {
            "base": _mlp(arg),
            "axes": {"rate": sweeps.axis("model.rates", RATES, repeat=2)},
            "mc_samples": 30 if cpu else 100,
        }
    )
    variants = (claims.STANDARD, claims.INVERTED, claims.SPATIAL, claims.GAUSSIAN, claims.DROPBLOCK)
    config.sweeps.variant = ml_collections.ConfigDict(
        {
            "base": vgg,
            "cases": {claims.NONE: {}, **{v: _variant(v) for v in variants}},
            "reference": claims.NONE,
        }
    )
    config.sweeps.selu = ml_collections.ConfigDict(
        {
            "base": selu,
            "cases": {claims.NONE: {}, claims.ALPHA: {"model": {"rates": (0.1, 0.1)}}},
            "reference": claims.NONE,
        }
    )
    config.sweeps.regularizer = ml_collections.ConfigDict(
        {"base": _mlp(arg), "cases": REGULARIZERS, "reference": claims.NONE}
    )
    config.sweeps.rnn = ml_collections.ConfigDict(
        {
            "base": lstm,
            "cases": {
                claims.NONE: {"model": {"output_keep_prob": 1.0}},
                claims.DROPOUT: {"model": {"output_keep_prob": 0.5, "recurrent_rate": 0.2}},
            },
            "reference": claims.NONE,
        }
    )
    return config
