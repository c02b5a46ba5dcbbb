"""Denoising CIFAR-10 images with the UNet of post 004: SpatialDropout2D (default) or Dropout.

The task is 'denoise': the loss is the mean squared error against the clean image and the
validation metric is PSNR in dB (best checkpoint and early stopping on val_psnr).

Commands:
  python -m dropout_study.main --config=configs/denoise_unet.py --workdir=workdirs/denoise_unet
  python -m dropout_study.main --config=configs/denoise_unet.py:quick --workdir=workdirs/unet_quick
Overrides: --config.model.dropout_variant=inverted (element dropout) or spatial
--config.model.encoder_rates=(0.1,0.1,0.1) --config.model.skip_rates=(0.1,0.1,0.1);
corruption: --config.data.corruption=pixelate (gaussian, pixelate, jpeg),
--config.data.noise_std=0.2.

Variants:
  full (default): filters (32, 64, 128), spatial dropout 0.1 in the encoder, sigmoid output,
    Gaussian noise (std 0.1 on the [0, 1] scale), batch 32, Adam (Keras defaults), 30 epochs (the
    epoch count and batch are this project's choice). Data: source 'local', clean images from the
    full CIFAR-10 JPEG archives in <repo>/../shared/data/cifar10_jpeg (50,000 / 10,000; exact
    pixels of a 5,438 / 1,017 subset with --config.data.variant=exact). With
    tensorflow-datasets (`cifar10` prepared, or --config.data.download=True):
    --config.data.source=tfds.
    Runtime: 2 CPU cores: not run; the quick run's ~0.8 s per batch of 32 (under load) makes
    it ~20 minutes per epoch, ~10 hours for 30 epochs, a job for a GPU; one GPU: not measured.
    Result: not measured (summary.json records the noisy input's PSNR as data.baseline_psnr).
  quick: the shipped sample (1,500 training / 500 test images), 3 epochs.
    Runtime: 2 CPU cores: 180 s for the whole command, measured with another training job
    running (without it: less); one GPU: not measured.
    Result: best validation PSNR 24.40 dB (epoch 3); the noisy input itself: 20.33 dB.
"""

from dropout_study import run_config

VARIANTS = run_config.VARIANTS


def get_config(arg=None):
    """The run config of `arg` in VARIANTS (default 'full')."""
    variant, config = run_config.variant_config("denoise", "unet", arg, full_epochs=30)
    config.data.base = "cifar10"
    config.data.corruption = "gaussian"
    config.data.noise_std = 0.1
    config.model.filters = (32, 64, 128)
    config.model.dropout_variant = "spatial"
    config.model.encoder_rates = (0.1, 0.1, 0.1)
    config.batch_size = 32
    if variant == "full":
        config.data.variant = "jpeg"
    return config
