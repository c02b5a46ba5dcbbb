"""CIFAR-10 with the VGG-like net of post 001: 3 blocks of 2 convs, batch-norm, dropout, 2 dense.

Commands:
  python -m dropout_study.main --config=configs/cifar10_vgg.py --workdir=workdirs/cifar10_vgg
  python -m dropout_study.main --config=configs/cifar10_vgg.py:quick --workdir=workdirs/vgg_quick
Overrides: --config.model.block_rates=(0.2,0.2,0.2) --config.model.dense_rates=(0.5,0.5)
--config.model.batch_norm=False --config.model.ndense=1024; augmentation (off in the post):
--config.augment.crop_pad=4 --config.augment.flip=True.

Variants:
  full (default): the post's best configuration: filters (64, 128, 256), batch-norm, dropout 0.2
    after every conv block and 0.5 after both 512-unit dense layers, batch 128, Adam with the
    post's learning rate 2e-3 (Keras epsilon 1e-7), 250 epochs, best epoch by test accuracy.
    Data: source 'local', variant 'jpeg': the full 50,000 / 10,000 CIFAR-10 from the JPEG
    archives in <repo>/../shared/data/cifar10_jpeg (lossy, mean abs. error ~5.8/255; exact pixels
    of a 5,438 / 1,017 subset with --config.data.variant=exact). With tensorflow-datasets
    (`cifar10` prepared, or --config.data.download=True): --config.data.source=tfds.
    Runtime: 2 CPU cores: 256-277 s of training per epoch (~1.5 steps/s) plus ~20 s to evaluate
    the 10,000 test images, so 250 epochs take ~20 hours, a job for a GPU; one GPU: not measured.
    Result: the post reports 0.8831 after 250 epochs. On 2 CPU cores, the 60-minute recipe
    --config.num_epochs=12 --config.optimizer.schedule=cosine --config.augment.flip=True
    reached test accuracy 0.7512 after 30 minutes of training (epoch 6) and 0.8000 after 38.5
    minutes (epoch 8, where that run was stopped).
  quick: the shipped sample (1,500 training / 500 test images, exact pixels), 3 epochs, batch 32.
    Runtime: 2 CPU cores: 90 s for the whole command, measured with another training job
    running; one GPU: not measured.
    Result: best test accuracy 0.272 (epoch 3) on the sample's 500 test images (still rising).
"""

from dropout_study import run_config

VARIANTS = run_config.VARIANTS


def get_config(arg=None):
    """The run config of `arg` in VARIANTS (default 'full')."""
    variant, config = run_config.variant_config("cifar10", "vgg", arg, full_epochs=250)
    config.model.filters = (64, 128, 256)
    config.model.ndense = 512
    config.model.batch_norm = True
    config.model.block_rates = (0.2, 0.2, 0.2)
    config.model.dense_rates = (0.5, 0.5)
    config.optimizer.learning_rate = 2e-3
    config.batch_size = 128
    if variant == "full":
        config.data.variant = "jpeg"
    else:
        config.batch_size = 32  # more steps on the small sample
    return config
