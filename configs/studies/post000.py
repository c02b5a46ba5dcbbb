"""Study of post 000: IMDB sentiment, text CNN vs LSTM over the keep probability of output dropout.

Claims (dropout_study.claims, ids 000.*): similar accuracy with the LSTM about 1 point better; LSTM
accuracy rises as keep falls (best below 0.4) while the CNN's does not; the CNN trains ~1.68x
faster per epoch; a smaller keep makes training slower or leaves it unchanged; dropout changes
the CNN's time less than the LSTM's; convergence between epochs 6 and 15, overfitting after.

Sweeps: `cnn` (configs/imdb_cnn.py) and `lstm` (configs/imdb_rnn.py), axis `keep` on
model.output_keep_prob (dropout before the classifier, the posts' "keep probability").

Scales:
  full: the post's setting: keep 0.1, 0.2, ..., 0.9; the full 25,000 / 25,000 split, 20,000
    words, reviews cut/padded to 200, embedding 128, 128 filters / units, batch 64, Adam,
    20 epochs; 5 seeds.
  cpu (2 CPU cores: 44 minutes as two shards of one core each, mimalloc; results/post000):
    keep 0.1, 0.3, 0.5, 0.7, 0.9 (5 of the 9 values); a fixed random 3,000-review training
    subset, 1,000 held-out validation reviews (4% of the training split, stratified), a fixed
    random 10,000 of the 25,000 test reviews; the post's 20 epochs; checkpoints at epoch ends
    only; 4 seeds. Every trial's median best validation epoch is within the first 80% of training
    (the latest: lstm-keep0.1, epoch 16); 000.6 is untested at this scale (it needs at least
    20,000 training reviews, as the post's 25,000).

  python -m dropout_study.study --config=configs/studies/post000.py:cpu --workdir=workdirs/studies
  python -m dropout_study.report --workdir=workdirs/studies/post000 --out=results/post000
"""

import pathlib

import ml_collections

from dropout_study import sweeps

CONFIGS = pathlib.Path(__file__).resolve().parents[1]
SCALES = ("cpu", "full")


CPU = dict(max_train=3000, holdout_fraction=0.04, max_test=10000, epochs=20)


def _base(file, scale):
    """A training config of configs/<file> at the study's scale, selecting on a holdout."""
    config = sweeps.load_config_file(CONFIGS / file, "full")
    config.data.validation = "holdout"
    if scale == "cpu":
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
        raise ValueError(f"unknown scale {arg!r} of post000.py; use one of {SCALES}.")
    cpu = arg == "cpu"
    keeps = (0.1, 0.3, 0.5, 0.7, 0.9) if cpu else tuple(k / 10 for k in range(1, 10))
    config = ml_collections.ConfigDict()
    config.name = "post000"
    config.scale = arg
    config.notes = (
        f"5 of the 9 keep probabilities; a fixed random {CPU['max_train']:,}-review training "
        f"subset; {CPU['holdout_fraction']:.0%} of the 25,000 training reviews held out for "
        f"selection; a fixed random {CPU['max_test']:,} of the 25,000 test reviews; "
        f"{CPU['epochs']} epochs (the post's); 4 seeds."
        if cpu
        else ""
    )
    config.seeds = (0, 1, 2, 3) if cpu else (0, 1, 2, 3, 4)
    config.sweeps = ml_collections.ConfigDict()
    for sweep, file in (("cnn", "imdb_cnn.py"), ("lstm", "imdb_rnn.py")):
        config.sweeps[sweep] = ml_collections.ConfigDict(
            {
                "base": _base(file, arg),
                "axes": {"keep": sweeps.axis("model.output_keep_prob", keeps)},
                "reference": f"keep{keeps[-1]:g}",
            }
        )
    return config
