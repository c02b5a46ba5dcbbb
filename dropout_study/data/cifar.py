"""CIFAR-10 and CIFAR-100 as NHWC float32 images normalised with training-split statistics.

Sources: the exact-pixel subsets in the original pickle layout or the full CIFAR-10 JPEG
archives (source='local', variant 'exact' | 'jpeg'), the shipped sample, or tensorflow-datasets.
"""

import io
import pickle
import re
import tarfile

import numpy as np
from absl import logging
from PIL import Image

from dropout_study.data import files, splits, tfds_source

LOCAL_FILES = {
    "cifar10": {
        "meta": "cifar10/batches.meta",
        "train": "cifar10/train_subset",
        "test": "cifar10/test_subset",
    },
    "cifar100": {
        "meta": "cifar100/meta",
        "train": "cifar100/train_subset",
        "test": "cifar100/test_subset",
    },
}
JPEG_FILES = {"train": "cifar10_jpeg/train.tar.gz", "test": "cifar10_jpeg/test.tar.gz"}
_JPEG_MEMBER = re.compile(r"^([a-z_]+)/(\d{4})\.jpg$")
VARIANTS = ("exact", "jpeg")
LABEL_MODES = ("fine", "coarse")


def to_nhwc(rows):
    """(N, 3072) rows of the pickle layout (R plane, G plane, B plane) -> (N, 32, 32, 3) uint8."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def check(name, source, variant, label_mode):
    """ValueError for a variant or label mode the source cannot give."""
    if variant not in VARIANTS:
        raise ValueError(
            f"config.data.variant={variant!r} is not allowed; choose one of {VARIANTS}."
        )
    if label_mode not in LABEL_MODES:
        raise ValueError(
            f"config.data.label_mode={label_mode!r} is not allowed; choose one of {LABEL_MODES}."
        )
    if variant == "jpeg" and (name != "cifar10" or source != "local"):
        raise ValueError(
            f"variant='jpeg' exists only for cifar10 with source='local' (the cifar10_jpeg "
            f"archives); got name={name!r}, source={source!r}. Use variant='exact'."
        )


def read(
    name, *, source, data_dir="", variant="exact", label_mode="fine", verify=True, download=False
):
    """(train, test, label_names): Splits of uint8 (N, 32, 32, 3) images and int32 labels."""
    check(name, source, variant, label_mode)
    if source == "tfds":
        return _read_tfds(name, label_mode, data_dir, download)
    root = files.root_for(source, data_dir)
    if source == "sample":
        return _read_sample(root, name, label_mode, verify)
    names = _read_meta(root, name, label_mode, verify)
    if variant == "jpeg":
        train, test = (read_jpeg(root, JPEG_FILES[split], names, verify) for split in JPEG_FILES)
    else:
        train, test = (
            _read_pickle(root, LOCAL_FILES[name][split], name, label_mode, verify)
            for split in ("train", "test")
        )
    return train, test, names


def _label_key(name, label_mode):
    return "labels" if name == "cifar10" else f"{label_mode}_labels"


def _read_meta(root, name, label_mode, verify):
    path = files.require(root, LOCAL_FILES[name]["meta"], verify=verify)
    key = "label_names" if name == "cifar10" else f"{label_mode}_label_names"
    with files.parsing(path), open(path, "rb") as f:
        return tuple(n.decode() for n in pickle.load(f, encoding="bytes")[key.encode()])


def _read_pickle(root, relpath, name, label_mode, verify):
    path = files.require(root, relpath, verify=verify)
    with files.parsing(path), open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
        x = to_nhwc(np.asarray(batch[b"data"], dtype=np.uint8))
        y = np.asarray(batch[_label_key(name, label_mode).encode()], dtype=np.int32)
    return splits.Split(x, y)


def read_jpeg(root, relpath, names, verify=True):
    """Decodes every `<class>/NNNN.jpg` member with Pillow (about 10 s for the 50k train)."""
    path = files.require(root, relpath, verify=verify)
    logging.info("decoding the CIFAR-10 JPEG images of %s", path)
    images, labels = [], []
    with files.parsing(path), tarfile.open(path, "r:gz") as archive:
        for member in archive:
            match = _JPEG_MEMBER.match(member.name)
            if not member.isfile() or not match or match.group(1) not in names:
                raise files.CorruptDataError(
                    f"Unexpected member {member.name!r} in {path}: expected <class>/NNNN.jpg "
                    f"with a class in {names}. Copy the archive again (see MANIFEST.md)."
                )
            image = Image.open(io.BytesIO(archive.extractfile(member).read()))
            images.append(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
            labels.append(names.index(match.group(1)))
    return splits.Split(np.stack(images), np.asarray(labels, dtype=np.int32))


def _read_sample(root, name, label_mode, verify):
    path = files.require(root, f"{name}.npz", verify=verify)
    suffix = "" if name == "cifar10" else f"_{label_mode}"
    with files.parsing(path), np.load(path) as npz:
        train, test = (
            splits.Split(npz[f"x_{split}"], npz[f"y_{split}{suffix}"].astype(np.int32))
            for split in ("train", "test")
        )
        names = tuple(str(n) for n in npz[f"label_names{suffix}"])
    return train, test, names


def _read_tfds(name, label_mode, data_dir, download):
    feature = "coarse_label" if name == "cifar100" and label_mode == "coarse" else "label"
    out = []
    for split in ("train", "test"):
        data, info = tfds_source.read(name, split, data_dir=data_dir, download=download)
        out.append(splits.Split(data["image"], data[feature].astype(np.int32)))
    return out[0], out[1], tuple(info.features[feature].names)


def channel_stats(images):
    """Exact per-channel (mean, std) of uint8 images (N, H, W, C) on the [0, 1] scale."""
    means, stds = [], []
    for channel in range(images.shape[-1]):
        counts = np.bincount(images[..., channel].ravel(), minlength=256).astype(np.float64)
        values = np.arange(256) / 255.0
        mean = counts @ values / counts.sum()
        means.append(mean)
        stds.append(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
    return np.asarray(means), np.asarray(stds)


def normalise(images, mean, std):
    """uint8 (N, H, W, C) -> float32 (x / 255 - mean) / std, per channel."""
    out = images.astype(np.float32)
    out *= np.float32(1 / 255)
    out -= mean.astype(np.float32)
    out /= std.astype(np.float32)
    return out


def origin(name, source, variant):
    """Plain words for results: which files or dataset the images came from."""
    if source == "tfds":
        return f"tfds {tfds_source.TFDS_NAMES[name]} (full, exact pixels)"
    if source == "sample":
        return f"package sample {name}.npz (exact pixels)"
    if variant == "jpeg":
        return "cifar10_jpeg/*.tar.gz (full 50k + 10k, JPEG re-encoded, MAE ~5.8/255)"
    return f"{name}/*_subset (exact-pixel leading subsets of the original files)"


def load(config):
    """Dataset of float32 (N, 32, 32, 3) images and int32 labels; normalisation stats in info."""
    variant = config.get("variant", "exact")  # cifar100 configs have no variant field
    label_mode = config.get("label_mode", "fine")  # cifar10 configs have no label_mode field
    train, test, names = read(
        config.name,
        source=config.source,
        data_dir=config.data_dir,
        variant=variant,
        label_mode=label_mode,
        verify=config.verify_checksums,
        download=config.download,
    )
    train, validation, test, info = splits.assign(train, test, config)
    mean, std = channel_stats(train.x) if config.normalise else (np.zeros(3), np.ones(3))
    train, validation, test = (
        splits.Split(normalise(split.x, mean, std), split.y) for split in (train, validation, test)
    )
    info.update(
        num_classes=len(names),
        label_names=names,
        input_shape=(32, 32, 3),
        normalise=config.normalise,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        variant=variant,
        origin=origin(config.name, config.source, variant),
    )
    if config.name == "cifar100":
        info["label_mode"] = label_mode
    return splits.Dataset(train, validation, test, info)
