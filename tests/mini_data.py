"""A tiny data folder in the cifar100_jpeg layout, built from random images, for fast tests."""

import io
import json
import pickle
import tarfile

import numpy as np
from PIL import Image

from dropout_study.data import cifar, files

MINI_FINE = ("apple", "baby", "girl", "otter")
MINI_COARSE = ("aquatic_mammals", "fruit_and_vegetables", "people")
MINI_FINE_TO_COARSE = dict(
    apple="fruit_and_vegetables", baby="people", girl="people", otter="aquatic_mammals"
)
MINI_PER_CLASS = {"train": 3, "test": 2}


def jpeg_bytes(seed):
    """A random 32x32 RGB image as JPEG bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def write_archive(path, members):
    """A tar.gz at `path`: a directory entry per class folder (as the real archives have), then
    {member name: bytes} as regular files."""
    with tarfile.open(path, "w:gz") as archive:
        for folder in sorted({name.split("/")[0] for name in members}):
            archive.addfile(_directory(folder))
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def _directory(name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def write_checksums(root):
    """root/SHA256SUMS for every file under root (sha256sum format)."""
    lines = [
        f"{files.sha256(path)}  {path.relative_to(root).as_posix()}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != files.CHECKSUMS
    ]
    (root / files.CHECKSUMS).write_text("\n".join(lines) + "\n")


def build(root):
    """root as a data folder in the cifar100_jpeg layout: 4 fine classes, 3 + 2 images each."""
    (root / "cifar100").mkdir(parents=True)
    (root / "cifar100_jpeg").mkdir()
    meta = {
        b"fine_label_names": [n.encode() for n in MINI_FINE],
        b"coarse_label_names": [n.encode() for n in MINI_COARSE],
    }
    (root / cifar.LOCAL_FILES["cifar100"]["meta"]).write_bytes(pickle.dumps(meta))
    (root / cifar.FINE_TO_COARSE).write_text(json.dumps(MINI_FINE_TO_COARSE))
    copy = cifar.JPEG_COPIES["cifar100"]
    for split, count in MINI_PER_CLASS.items():
        members = {
            f"{fine}/{fine}_s_{split}_{i:06d}.jpg": jpeg_bytes([c, i, len(split)])
            for c, fine in enumerate(MINI_FINE)
            for i in range(count)
        }
        write_archive(root / copy.archive(split), members)
    write_checksums(root)
    return root
