"""Rebuilds the shipped sample (dropout_study/data/sample/) from the data folder, byte for byte.

    python -m dropout_study.data.make_sample [--data_dir=DIR] [--out=DIR] [--check]

The selection rule is written in sample/SELECTION.md; this module is its executable form. Files
are compressed with LZMA inside zip archives with fixed time stamps, so a rebuild gives the same
bytes (and the same SHA256SUMS) on every machine.
"""

import io
import json
import lzma
import pathlib
import pickle
import sys
import tempfile
import zipfile

import numpy as np
from absl import app, flags

from dropout_study.data import cifar, files, imdb

IMDB_PER_CLASS = {"train": 1000, "test": 500}
CIFAR10_PER_CLASS = {"train": 150, "test": 50}
CIFAR100_PER_CLASS = {"train": 4, "test": 2}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def first_per_class(labels, count):
    """Sorted row indices of the first `count` rows of every label, in row order."""
    labels = np.asarray(labels)
    rows = [np.flatnonzero(labels == label)[:count] for label in np.unique(labels)]
    short = [int(label) for label, r in zip(np.unique(labels), rows, strict=True) if len(r) < count]
    if short:
        raise ValueError(f"labels {short} have fewer than {count} rows; cannot draw the sample.")
    return np.sort(np.concatenate(rows))


def write_npz(path, arrays):
    """An .npz (readable by np.load) of LZMA-compressed members with fixed zip metadata."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_LZMA
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def _pickle(root, relpath):
    path = files.require(root, relpath)
    with files.parsing(path), open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def imdb_arrays(root):
    """The first 1000 (train) / 500 (test) reviews of each label, in file order."""
    path = files.require(root, imdb.LOCAL_NPZ)
    arrays = {}
    with files.parsing(path), np.load(path, allow_pickle=True) as npz:
        for split, count in IMDB_PER_CLASS.items():
            rows = first_per_class(npz[f"y_{split}"], count)
            reviews = imdb.Reviews.from_lists(npz[f"x_{split}"][rows], npz[f"y_{split}"][rows])
            arrays.update(
                {
                    f"{split}_ranks": reviews.ranks,
                    f"{split}_lengths": reviews.lengths,
                    f"{split}_labels": reviews.labels,
                    f"{split}_rows": rows,
                }
            )
    return arrays


def cifar10_arrays(root):
    """The first 150 (train) / 50 (test) images of each class of the exact subsets."""
    meta = _pickle(root, cifar.LOCAL_FILES["cifar10"]["meta"])
    arrays = {"label_names": np.array([n.decode() for n in meta[b"label_names"]])}
    for split, count in CIFAR10_PER_CLASS.items():
        batch = _pickle(root, cifar.LOCAL_FILES["cifar10"][split])
        rows = first_per_class(batch[b"labels"], count)
        arrays[f"x_{split}"] = cifar.to_nhwc(batch[b"data"][rows])
        arrays[f"y_{split}"] = np.asarray(batch[b"labels"], dtype=np.int32)[rows]
        arrays[f"rows_{split}"] = rows  # row of the subset; orig_batch / orig_index give more
    return arrays


def cifar100_arrays(root):
    """The first 4 (train) / 2 (test) images of each fine class of the exact subsets."""
    meta = _pickle(root, cifar.LOCAL_FILES["cifar100"]["meta"])
    arrays = {
        f"label_names_{mode}": np.array([n.decode() for n in meta[f"{mode}_label_names".encode()]])
        for mode in cifar.LABEL_MODES
    }
    for split, count in CIFAR100_PER_CLASS.items():
        batch = _pickle(root, cifar.LOCAL_FILES["cifar100"][split])
        rows = first_per_class(batch[b"fine_labels"], count)
        arrays[f"x_{split}"] = cifar.to_nhwc(batch[b"data"][rows])
        for mode in cifar.LABEL_MODES:
            labels = batch[f"{mode}_labels".encode()]
            arrays[f"y_{split}_{mode}"] = np.asarray(labels, dtype=np.int32)[rows]
        arrays[f"rows_{split}"] = rows
    return arrays


def build(data_dir, out):
    """Writes the sample files and their SHA256SUMS into `out` from the data folder `data_dir`."""
    root, out = pathlib.Path(data_dir), pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_npz(out / imdb.SAMPLE_NPZ, imdb_arrays(root))
    word_index = files.require(root, imdb.LOCAL_WORD_INDEX).read_bytes()
    json.loads(word_index)  # a parse check before it is shipped
    (out / imdb.SAMPLE_WORD_INDEX).write_bytes(lzma.compress(word_index, preset=9))
    write_npz(out / "cifar10.npz", cifar10_arrays(root))
    write_npz(out / "cifar100.npz", cifar100_arrays(root))
    names = [imdb.SAMPLE_NPZ, imdb.SAMPLE_WORD_INDEX, "cifar10.npz", "cifar100.npz"]
    sums = "".join(f"{files.sha256(out / name)}  {name}\n" for name in names)
    (out / files.CHECKSUMS).write_text(sums)
    return names + [files.CHECKSUMS]


def differing_files(data_dir, shipped):
    """Names of sample files whose rebuild from `data_dir` differs from those in `shipped`."""
    shipped = pathlib.Path(shipped)
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = {name: (pathlib.Path(tmp) / name).read_bytes() for name in build(data_dir, tmp)}
    return [
        name
        for name, content in rebuilt.items()
        if not (shipped / name).is_file() or (shipped / name).read_bytes() != content
    ]


_DATA_DIR = flags.DEFINE_string("data_dir", str(files.LOCAL_ROOT), "Data folder to draw from.")
_OUT = flags.DEFINE_string("out", str(files.SAMPLE_ROOT), "Where the sample files go.")
_CHECK = flags.DEFINE_bool("check", False, "Only compare a rebuild with the files in --out.")


def main(argv):
    del argv
    if _CHECK.value:
        differ = differing_files(_DATA_DIR.value, _OUT.value)
        print("sample is byte-identical" if not differ else f"differing files: {differ}")
        sys.exit(1 if differ else 0)
    names = build(_DATA_DIR.value, _OUT.value)
    total = sum((pathlib.Path(_OUT.value) / name).stat().st_size for name in names)
    print(f"wrote {names} to {_OUT.value}: {total:,} bytes")


if __name__ == "__main__":
    app.run(main)
