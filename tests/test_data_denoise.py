"""Denoising pairs: each corruption does what it says, with its strength, reproducibly."""

import numpy as np
import pytest

from dropout_study import data
from dropout_study.data import denoise


def pairs(**fields):
    config = data.default_config("denoise")  # the shipped sample: 1,500 + 500 CIFAR-10 images
    config.update({"validation": "test", **fields})
    return data.load(config)


def test_clean_targets_are_the_images_on_the_unit_scale():
    dataset = pairs(max_train=200)
    config = data.default_config("cifar10")
    config.update(normalise=False, max_train=200, validation="test")
    clean = data.load(config)
    np.testing.assert_array_equal(dataset.train.y, clean.train.x)
    assert dataset.train.x.dtype == dataset.train.y.dtype == np.float32
    assert dataset.train.x.shape == dataset.train.y.shape == (200, 32, 32, 3)
    assert dataset.validation.x.shape == (500, 32, 32, 3)
    assert dataset.train.x.min() >= 0.0 and dataset.train.x.max() <= 1.0


def test_gaussian_noise_has_its_std_and_is_seeded():
    dataset = pairs(corruption="gaussian", noise_std=0.1, max_train=300)
    residual = dataset.train.x - dataset.train.y
    middle = (dataset.train.y > 0.3) & (dataset.train.y < 0.7)  # away from the clipping
    assert abs(residual[middle].std() - 0.1) < 0.002 and abs(residual[middle].mean()) < 0.002
    again = pairs(corruption="gaussian", noise_std=0.1, max_train=300)
    np.testing.assert_array_equal(again.train.x, dataset.train.x)
    other = pairs(corruption="gaussian", noise_std=0.1, max_train=300, corruption_seed=1)
    assert not np.array_equal(other.train.x, dataset.train.x)
    assert not np.array_equal(
        dataset.train.x[:100] - dataset.train.y[:100],
        dataset.validation.x[:100] - dataset.validation.y[:100],
    )


def test_pixelate_makes_constant_blocks_of_the_block_mean():
    dataset = pairs(corruption="pixelate", pixelate_factor=4, max_train=50)
    blocks = dataset.train.x.reshape(50, 8, 4, 8, 4, 3)
    np.testing.assert_array_equal(blocks, np.broadcast_to(blocks[:, :, :1, :, :1], blocks.shape))
    means = dataset.train.y.reshape(50, 8, 4, 8, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(blocks[:, :, 0, :, 0], means, atol=1e-6)


def test_stronger_corruption_lowers_the_baseline_psnr():
    psnr = {
        name: [
            pairs(corruption=name, max_eval=100, max_train=10, **{field: value}).info[
                "baseline_psnr"
            ]
            for value in values
        ]
        for name, field, values in (
            ("gaussian", "noise_std", (0.05, 0.2)),
            ("pixelate", "pixelate_factor", (2, 8)),
            ("jpeg", "jpeg_quality", (50, 5)),
        )
    }
    for name, (weak, strong) in psnr.items():
        assert weak > strong + 3.0, (name, weak, strong)
    assert 25 < psnr["gaussian"][0] < 27  # 20 log10(1 / 0.05) = 26.0 dB, slightly more clipped


def test_jpeg_corruption_is_a_real_jpeg_round_trip():
    images = (np.random.default_rng(0).random((4, 32, 32, 3)) * 255).astype(np.uint8)
    out = denoise.jpeg(images, 10)
    again = denoise.jpeg(images, 10)
    np.testing.assert_array_equal(out, again)
    assert out.dtype == np.float32 and 0.0 < np.abs(out - images / 255).mean() < 0.5


def test_info_records_the_corruption():
    info = pairs(corruption="jpeg", jpeg_quality=20, max_train=10, max_eval=10).info
    assert info["corruption"] == "jpeg" and info["strength"] == {"jpeg_quality": 20}
    assert info["base"] == "cifar10" and info["num_classes"] == 0


def test_cifar100_jpeg_copy_can_be_the_clean_base(mini_jpeg_folder):
    dataset = pairs(base="cifar100", source="local", variant="jpeg", data_dir=str(mini_jpeg_folder))
    assert dataset.info["variant"] == "jpeg" and dataset.info["base"] == "cifar100"
    assert dataset.info["origin"].startswith("cifar100_jpeg/")
    assert dataset.train.y.shape == (12, 32, 32, 3) and dataset.validation.y.shape == (8, 32, 32, 3)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("corruption", "blur", "corruption='blur'"),
        ("pixelate_factor", 3, "pixelate_factor=3"),
        ("noise_std", 1.5, "noise_std=1.5"),
        ("jpeg_quality", 0, "jpeg_quality=0"),
        ("base", "mnist", "base='mnist'"),
    ],
)
def test_bad_corruption_fields_are_named(field, value, match):
    with pytest.raises(ValueError, match=match):
        pairs(**{field: value})
