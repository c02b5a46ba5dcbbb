"""Image augmentation as pure jax functions of an explicit key (jit-able, inside the train step).

Images are (N, H, W, C), usually already normalised, so the zero padding of the crop and the
zeroed Cutout square are the training-set mean colour.
"""

import jax
import jax.numpy as jnp
from jax import lax

from dropout_study import dropout


def random_crop(key, images, pad):
    """Pads H and W by `pad` zeros on each side, then crops H x W at a uniform offset per image."""
    if pad == 0:
        return images
    n, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)  # (N, [dy, dx])

    def crop(image, offset):
        return lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))

    return jax.vmap(crop)(padded, offsets)


def random_flip(key, images):
    """Mirrors each image left-right with probability 1/2."""
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1, :], images)


def augment(key, images, *, crop_pad=4, flip=True, cutout=0):
    """Random crop (crop_pad pixels of padding), horizontal flip, then Cutout of size `cutout`."""
    if crop_pad < 0 or cutout < 0:
        raise ValueError(
            f"crop_pad={crop_pad} and cutout={cutout} must be >= 0 (0 turns them off)."
        )
    key_crop, key_flip, key_cutout = jax.random.split(key, 3)
    images = random_crop(key_crop, images, crop_pad)
    if flip:
        images = random_flip(key_flip, images)
    return dropout.cutout(key_cutout, images, cutout)
