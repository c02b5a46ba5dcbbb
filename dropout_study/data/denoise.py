"""Denoising pairs: x = corrupted, y = clean CIFAR images, float32 (N, 32, 32, 3) in [0, 1].

Corruptions: 'gaussian' (additive noise, clipped to [0, 1]), 'pixelate' (block means, then
nearest up-sampling) and 'jpeg' (a real Pillow JPEG round trip: 8x8 DCT block artefacts).
Pairs are fixed at load time and reproducible from corruption_seed.
"""

import io

import numpy as np
from PIL import Image

from dropout_study import errors
from dropout_study.data import cifar, data_config, splits

CORRUPTIONS = ("gaussian", "pixelate", "jpeg")
BASES = ("cifar10", "cifar100")


def to_unit(images):
    """uint8 -> float32 in [0, 1]."""
    return images.astype(np.float32) * np.float32(1 / 255)


def gaussian_noise(images, std, rng):
    """uint8 (N, H, W, C) + N(0, std^2) on the [0, 1] scale, clipped to [0, 1]."""
    noisy = to_unit(images) + rng.normal(0.0, std, images.shape).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0)


def pixelate(images, factor):
    """Each factor x factor block replaced by its mean colour (down- then up-sampling)."""
    n, height, width, channels = images.shape
    blocks = to_unit(images).reshape(n, height // factor, factor, width // factor, factor, channels)
    means = blocks.mean(axis=(2, 4), keepdims=True)
    return np.broadcast_to(means, blocks.shape).reshape(images.shape).copy()


def jpeg(images, quality):
    """Each image through a Pillow JPEG encode and decode at `quality` (1..95)."""
    out = np.empty(images.shape, dtype=np.uint8)
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buffer).convert("RGB"))
    return to_unit(out)


def corrupt(images, config, rng):
    """The corrupted float32 copy of uint8 `images` that config.corruption asks for."""
    if config.corruption == "gaussian":
        return gaussian_noise(images, config.noise_std, rng)
    if config.corruption == "pixelate":
        return pixelate(images, config.pixelate_factor)
    return jpeg(images, config.jpeg_quality)


def psnr(a, b):
    """Peak signal-to-noise ratio in dB of images on the [0, 1] scale."""
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def check(config):
    """ValueError naming the first corruption field out of range."""
    errors.check_choice("config.data.base", config.base, BASES)
    errors.check_choice("config.data.corruption", config.corruption, CORRUPTIONS)
    data_config.check_range(config, "noise_std", 0.0, 1.0)
    errors.check_choice("config.data.pixelate_factor", config.pixelate_factor, (1, 2, 4, 8, 16, 32))
    data_config.check_range(config, "jpeg_quality", 1, 95)


def _pair(split, config, index):
    """(corrupted input, clean target) of a split; `index` picks its own noise stream."""
    rng = np.random.default_rng([config.corruption_seed, index])
    return splits.Split(corrupt(split.x, config, rng), to_unit(split.x))


def load(config):
    """Dataset of (corrupted, clean) pairs; info holds the corruption and the baseline PSNR."""
    check(config)
    train, test, _ = cifar.read(
        config.base,
        source=config.source,
        data_dir=config.data_dir,
        variant=config.variant,
        verify=config.verify_checksums,
        download=config.download,
    )
    train, validation, test, info = splits.assign(train, test, config)
    same = test is validation  # validation='test': one split, one draw of the noise
    train, validation = (_pair(split, config, i) for i, split in enumerate((train, validation)))
    test = validation if same else _pair(test, config, 2)
    strength_field = {
        "gaussian": "noise_std",
        "pixelate": "pixelate_factor",
        "jpeg": "jpeg_quality",
    }[config.corruption]
    info.update(
        num_classes=0,
        input_shape=(32, 32, 3),
        base=config.base,
        variant=config.variant,
        corruption=config.corruption,
        strength={strength_field: config[strength_field]},
        corruption_seed=config.corruption_seed,
        baseline_psnr=psnr(validation.x, validation.y),
        origin=cifar.origin(config.base, config.source, config.variant),
    )
    return splits.Dataset(train, validation, test, info)
