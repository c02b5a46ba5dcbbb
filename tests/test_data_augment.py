"""Augmentation statistics (flip rate 1/2, uniform crop offsets, Cutout); pure and jit-able."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dropout_study.data import augment

# Pixel (h, w) of every image holds h * 32 + w + 1, so a crop's offset can be read off.
POSITIONS = (jnp.arange(32 * 32, dtype=jnp.float32) + 1).reshape(1, 32, 32, 1)


def test_flip_rate_is_one_half():
    images = jnp.broadcast_to(POSITIONS, (4000, 32, 32, 1))
    out = augment.augment(jax.random.key(0), images, crop_pad=0, flip=True)
    flipped = np.asarray(jnp.all(out == images[:, :, ::-1], axis=(1, 2, 3)))
    kept = np.asarray(jnp.all(out == images, axis=(1, 2, 3)))
    assert (flipped ^ kept).all()
    assert abs(flipped.mean() - 0.5) < 0.025  # 3 standard deviations of a binomial(4000, 1/2)


def test_crop_offsets_are_uniform_over_the_padding():
    pad, n = 4, 8100
    images = jnp.broadcast_to(POSITIONS, (n, 32, 32, 1))
    out = augment.augment(jax.random.key(1), images, crop_pad=pad, flip=False)
    centre = np.asarray(out[:, 16, 16, 0]).astype(int) - 1  # original pixel (12 + dy, 12 + dx)
    dy, dx = centre // 32 - 12, centre % 32 - 12
    assert dy.min() == dx.min() == 0 and dy.max() == dx.max() == 2 * pad
    counts = np.bincount(dy * 9 + dx, minlength=81)
    chi2 = np.sum((counts - n / 81) ** 2 / (n / 81))
    assert chi2 < 125, chi2  # 99.9% quantile of chi-square with 80 degrees of freedom
    # the first image moved by (dy, dx) - pad, with zeros where it left the frame
    shifted = np.zeros((40, 40))
    shifted[pad:-pad, pad:-pad] = np.asarray(POSITIONS[0, :, :, 0])
    np.testing.assert_array_equal(out[0, :, :, 0], shifted[dy[0] : dy[0] + 32, dx[0] : dx[0] + 32])


def test_cutout_zeroes_one_square_per_image():
    images = jnp.ones((64, 32, 32, 3))
    out = augment.augment(jax.random.key(2), images, crop_pad=0, flip=False, cutout=8)
    zeros = np.asarray(jnp.sum(out[..., 0] == 0, axis=(1, 2)))
    assert (zeros > 0).all() and (zeros <= 64).all() and (zeros == 64).mean() > 0.5
    assert bool(jnp.all((out == 0).all(axis=-1) | (out == 1).all(axis=-1)))


def test_pure_and_jit_able():
    images = jax.random.normal(jax.random.key(3), (16, 32, 32, 3))
    fn = jax.jit(functools.partial(augment.augment, crop_pad=4, flip=True, cutout=8))
    a, b = fn(jax.random.key(4), images), fn(jax.random.key(4), images)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        a, augment.augment(jax.random.key(4), images, crop_pad=4, flip=True, cutout=8), atol=0
    )
    assert a.shape == images.shape
    assert not np.array_equal(a, fn(jax.random.key(5), images))


def test_disabled_augmentation_is_identity():
    images = jax.random.normal(jax.random.key(6), (4, 32, 32, 3))
    out = augment.augment(jax.random.key(7), images, crop_pad=0, flip=False, cutout=0)
    np.testing.assert_array_equal(out, images)


def test_negative_sizes_are_rejected():
    with pytest.raises(ValueError, match="crop_pad=-1"):
        augment.augment(jax.random.key(0), jnp.ones((1, 8, 8, 1)), crop_pad=-1)
