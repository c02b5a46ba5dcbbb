"""CIFAR-10 and CIFAR-100 as NHWC float32 images normalised with training-split statistics.

Sources: the exact-pixel subsets in the original pickle layout or the full, lossy JPEG copies
of CIFAR-10 and CIFAR-100 (source='local', variant 'exact' | 'jpeg'; decoded once, then kept in
the cache of cache.py), the shipped sample, or tensorflow-datasets.
"""

import dataclasses
import io
import json
import pickle
import re
import tarfile

import numpy as np
import PIL
from absl import logging
from PIL import Image

from dropout_study.data import cache, files, splits, tfds_source

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
SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class JpegCopy:
    """A full dataset as JPEG files in <folder>/train.tar.gz and test.tar.gz (see MANIFEST.md)."""

    folder: str
    member: re.Pattern  # every regular-file member: <class folder>/<file>.jpg
    layout: str  # the member layout in words, for errors
    mae: str  # measured mean absolute error against exact pixels, on the 0..255 scale

    def archive(self, split):
        """Path of the `split` archive inside the data folder."""
        return f"{self.folder}/{split}.tar.gz"


JPEG_COPIES = {
    "cifar10": JpegCopy(
        "cifar10_jpeg", re.compile(r"^[a-z_]+/\d{4}\.jpg$"), "<class>/NNNN.jpg", "5.8"
    ),
    "cifar100": JpegCopy(
        "cifar100_jpeg",
        re.compile(r"^[a-z_]+/[a-z0-9_-]+\.jpg$"),
        "<fine_class>/<original_name>.jpg",
        "5.9",
    ),
}
FINE_TO_COARSE = "cifar100_jpeg/fine_to_coarse.json"
_FOLDER = re.compile(r"^[a-z_]+$")  # directory entries (class folders) that an archive may hold
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
    if variant == "jpeg" and source != "local":
        raise ValueError(
            f"variant='jpeg' exists only with source='local' (the {JPEG_COPIES[name].folder} "
            f"archives of the data folder); got source={source!r}. Use variant='exact'."
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
        label_of = _folder_labels(root, name, label_mode, names, verify)
        train, test = (_read_jpeg_split(root, name, split, label_of, verify) for split in SPLITS)
    else:
        train, test = (
            _read_pickle(root, LOCAL_FILES[name][split], name, label_mode, verify)
            for split in SPLITS
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


def read_jpeg(root, name, split, verify=True):
    """(uint8 images (N, 32, 32, 3), member names) of a JPEG archive, from the cache if there.

    The cache key is the archive's sha256 and the Pillow version that decodes it.
    """
    path = files.require(root, JPEG_COPIES[name].archive(split), verify=verify)
    key = f"{JPEG_COPIES[name].folder}-{split}-{files.sha256(path)}-pillow{PIL.__version__}"
    arrays = cache.cached(key, lambda: decode_archive(path, JPEG_COPIES[name]))
    return arrays["images"], arrays["members"]


def decode_archive(path, copy):
    """{'images', 'members'} of every JPEG member with Pillow (about 10 s for a 50k train)."""
    logging.info("decoding the JPEG images of %s (once; then cached in %s)", path, cache.folder())
    images, members = [], []
    with files.parsing(path), tarfile.open(path, "r:gz") as archive:
        for member in archive:
            if member.isdir() and _FOLDER.match(member.name):
                continue
            if not member.isfile() or not copy.member.match(member.name):
                raise files.CorruptDataError(
                    f"Unexpected member {member.name!r} in {path}: expected {copy.layout}. "
                    "Copy the archive again (see MANIFEST.md)."
                )
            image = Image.open(io.BytesIO(archive.extractfile(member).read()))
            images.append(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
            members.append(member.name)
        return dict(images=np.stack(images), members=np.asarray(members))


def _read_jpeg_split(root, name, split, label_of, verify):
    """Split of a JPEG archive, labelled by `label_of` its members' class folders."""
    images, members = read_jpeg(root, name, split, verify)
    folders = [str(member).split("/", 1)[0] for member in members]
    unknown = sorted(set(folders) - set(label_of))
    if unknown:
        raise files.CorruptDataError(
            f"Unexpected class folder(s) {unknown[:3]} in {root / JPEG_COPIES[name].archive(split)}"
            f": not in the class names of {LOCAL_FILES[name]['meta']}. Copy the archive again."
        )
    return splits.Split(images, np.asarray([label_of[f] for f in folders], dtype=np.int32))


def _folder_labels(root, name, label_mode, names, verify):
    """{class folder of a JPEG archive: label id}; the folders are the (fine) class names."""
    if label_mode == "fine":
        return {folder: i for i, folder in enumerate(names)}
    fine = _read_meta(root, name, "fine", verify)
    coarse_of = read_fine_to_coarse(root, fine, names, verify)
    return {folder: names.index(coarse_of[folder]) for folder in fine}


def read_fine_to_coarse(root, fine, coarse, verify=True):
    """{fine name: coarse name} of fine_to_coarse.json, checked against the meta file's names."""
    path = files.require(root, FINE_TO_COARSE, verify=verify)
    with files.parsing(path):
        mapping = json.loads(path.read_text())
    if sorted(mapping) != sorted(fine) or not set(mapping.values()) <= set(coarse):
        raise files.CorruptDataError(
            f"{path} does not map every fine class name of cifar100/meta to one of its coarse "
            "names. Copy it again (see MANIFEST.md)."
        )
    return mapping


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
        copy = JPEG_COPIES[name]
        return f"{copy.folder}/*.tar.gz (full 50k + 10k, JPEG re-encoded, MAE ~{copy.mae}/255)"
    return f"{name}/*_subset (exact-pixel leading subsets of the original files)"


def load(config):
    """Dataset of float32 (N, 32, 32, 3) images and int32 labels; normalisation stats in info."""
    variant = config.variant
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
