"""CIFAR-100 with the conv family of post 002: what sits between convolutions (batch-norm default).

Commands:
  python -m dropout_study.main --config=configs/cifar100_conv.py --workdir=workdirs/cifar100_conv
  python -m dropout_study.main --config=configs/cifar100_conv.py:quick --workdir=workdirs/c100_quick
Overrides: --config.model.arch=spatial_dropout (none, dropout, spatial_dropout, batchnorm,
batchnorm_dropout) --config.model.rate=0.2 --config.model.head=dense; Cutout:
--config.augment.cutout=8; coarse labels: --config.data.label_mode=coarse
--config.model.num_classes=20.

Variants:
  full (default): filters (64, 128, 256), two convs per stage, batch-norm between convolutions,
    global-average-pooling head, batch 128, Adam (Keras defaults), 50 epochs, best epoch by test
    accuracy (the epoch count is this project's choice). Data: source 'local', variant 'exact':
    the exact-pixel CIFAR-100 subsets (1,117 training / 916 test images, all 100 classes). The
    full 50,000 / 10,000: --config.data.source=local --config.data.variant=jpeg (the JPEG copy in
    <repo>/../shared/data/cifar100_jpeg; lossy, mean abs. error ~6/255; decoded once, then
    cached), or with tensorflow-datasets (exact pixels; `cifar100` prepared, or
    --config.data.download=True): --config.data.source=tfds.
    Runtime: 2 CPU cores: not run; the quick run's ~0.55 s per batch of 32 (under load) makes
    the local subset ~25 s per epoch (~20 minutes for 50 epochs) and the full set ~20 minutes
    per epoch; one GPU: not measured. A smaller check on the full JPEG copy,
    --config.data.variant=jpeg --config.num_epochs=1 --config.model.filters='(16,32,64)', took
    158 s for the whole command on 2 shared CPU cores (no other training job running): ~15 s
    to read the data (archives decoded, not yet cached), 6 s to compile, 123 s of training
    (~3 steps/s) and 8 s to evaluate.
    Result: the full config: not measured. That one-epoch check: test accuracy 0.166
    (chance: 0.010).
  quick: the shipped sample (400 training / 200 test images, 4 and 2 per class), 3 epochs, batch 32.
    Runtime: 2 CPU cores: 56 s for the whole command, measured with another training job
    running; one GPU: not measured.
    Result: test accuracy 0.015 (chance: 0.010): 4 images per class are a smoke test, not a
    result.
"""

from dropout_study import run_config

VARIANTS = run_config.VARIANTS


def get_config(arg=None):
    """The run config of `arg` in VARIANTS (default 'full')."""
    variant, config = run_config.variant_config("cifar100", "conv_family", arg, full_epochs=50)
    config.data.label_mode = "fine"
    config.model.arch = "batchnorm"
    config.model.head = "gap"
    config.model.filters = (64, 128, 256)
    config.model.num_classes = 100
    config.batch_size = 128 if variant == "full" else 32
    if variant == "quick":
        config.log_every_steps = 4
    return config
