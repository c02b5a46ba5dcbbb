"""CIFAR-10/100: counts, balance, normalisation, labels, and the JPEG copy against exact pixels."""

import io
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from dropout_study import data
from dropout_study.data import cifar, files

needs_shared = pytest.mark.skipif(
    not files.LOCAL_ROOT.is_dir(), reason=f"the data folder {files.LOCAL_ROOT} is absent"
)

# MANIFEST.md: first JPEG number k of each class (airplane ... truck) in data_batch_1 ... 5.
JPEG_FIRST_K = np.array(
    [
        [0] * 10,
        [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981],
        [1989, 1981, 2042, 2011, 2009, 1925, 2038, 2027, 2012, 1966],
        [2983, 3023, 3007, 3008, 2999, 2954, 3016, 3042, 2973, 2995],
        [3986, 3986, 4048, 3984, 4003, 3975, 4020, 4023, 3997, 3978],
    ]
)


def config_for(name, **fields):
    config = data.default_config(name)
    config.update({"validation": "test", **fields})  # the files' own splits, unless asked
    return config


@needs_shared
def test_local_cifar10_subset_counts_balance_and_stats():
    dataset = data.load(config_for("cifar10", source="local"))
    assert dataset.train.x.shape == (5438, 32, 32, 3) and dataset.train.x.dtype == np.float32
    assert dataset.validation.x.shape == (1017, 32, 32, 3) and dataset.train.y.dtype == np.int32
    np.testing.assert_array_equal(
        np.bincount(dataset.train.y), [541, 564, 524, 529, 563, 523, 540, 548, 572, 534]
    )
    np.testing.assert_array_equal(
        np.bincount(dataset.validation.y), [105, 93, 100, 104, 92, 87, 114, 102, 110, 110]
    )
    # training-split statistics as MANIFEST.md gives them; the train split is then standardised
    np.testing.assert_allclose(dataset.info["mean"], (0.4940, 0.4847, 0.4483), atol=6e-5)
    np.testing.assert_allclose(dataset.info["std"], (0.2481, 0.2445, 0.2623), atol=6e-5)
    np.testing.assert_allclose(dataset.train.x.mean(axis=(0, 1, 2), dtype=float), 0.0, atol=1e-6)
    np.testing.assert_allclose(dataset.train.x.std(axis=(0, 1, 2), dtype=float), 1.0, atol=1e-6)
    low = (0 - np.array(dataset.info["mean"])) / dataset.info["std"]
    np.testing.assert_allclose(dataset.train.x.min(axis=(0, 1, 2)), low, rtol=1e-5)
    assert dataset.info["label_names"][0] == "airplane" and dataset.info["num_classes"] == 10


@needs_shared
def test_local_cifar100_fine_and_coarse_labels():
    fine = data.load(config_for("cifar100", source="local", normalise=False))
    coarse = data.load(config_for("cifar100", source="local", label_mode="coarse"))
    assert len(fine.train) == 1117 and len(fine.validation) == 916
    assert fine.info["num_classes"] == 100 and coarse.info["num_classes"] == 20
    assert set(np.unique(fine.train.y)) == set(range(100))
    np.testing.assert_array_equal(
        np.bincount(coarse.train.y),
        [50, 55, 61, 40, 62, 53, 56, 51, 54, 53, 66, 51, 68, 51, 72, 49, 63, 49, 55, 58],
    )
    pairs = set(zip(fine.train.y.tolist(), coarse.train.y.tolist(), strict=True))
    assert len(pairs) == 100  # every fine class lies in exactly one coarse class
    assert fine.train.x.min() == 0.0 and fine.train.x.max() == 1.0  # normalise=False: [0, 1]
    assert coarse.info["label_mode"] == "coarse"
    assert coarse.info["label_names"][0] == "aquatic_mammals"


@needs_shared
def test_jpeg_test_split_matches_exact_subset():
    """Every exact test image against its JPEG copy (MANIFEST mapping): same label, MAE < 10."""
    _, exact, names = cifar.read("cifar10", source="local")
    jpeg = cifar.read_jpeg(files.LOCAL_ROOT, cifar.JPEG_FILES["test"], names)
    np.testing.assert_array_equal(np.bincount(jpeg.y), [1000] * 10)
    # k = number of earlier rows with the same label; the archive is sorted by class, then k
    k = np.array([np.sum(exact.y[:i] == exact.y[i]) for i in range(len(exact))])
    copy = jpeg.take(exact.y * 1000 + k)
    np.testing.assert_array_equal(copy.y, exact.y)
    mae = np.abs(copy.x.astype(np.float64) - exact.x).mean()
    assert 4.0 < mae < 10.0, mae  # MANIFEST: 5.797 / 255 for test


@needs_shared
def test_jpeg_train_archive_counts_and_batch_mapping():
    """All 50k member names (5,000 per class); the first 12 rows of each batch vs their JPEG."""
    root = files.LOCAL_ROOT
    names = cifar.read("cifar10", source="local")[2]
    with open(root / cifar.LOCAL_FILES["cifar10"]["train"], "rb") as f:
        subset = pickle.load(f, encoding="bytes")
    images, labels = cifar.to_nhwc(subset[b"data"]), np.asarray(subset[b"labels"])
    batch_of = np.array([int(b.decode()[-1]) - 1 for b in subset[b"orig_batch"]])
    wanted = {}  # JPEG member name -> subset row
    for b in range(5):
        rows = np.flatnonzero(batch_of == b)
        for i, row in enumerate(rows[:12]):
            k = JPEG_FIRST_K[b, labels[row]] + np.sum(labels[rows[:i]] == labels[row])
            wanted[f"{names[labels[row]]}/{k:04d}.jpg"] = row
    counts, errors = np.zeros(10, int), []
    with tarfile.open(root / cifar.JPEG_FILES["train"], "r:gz") as archive:
        for member in archive:
            counts[names.index(member.name.split("/")[0])] += 1
            if member.name in wanted:
                image = Image.open(io.BytesIO(archive.extractfile(member).read())).convert("RGB")
                errors.append(np.abs(np.asarray(image, float) - images[wanted[member.name]]).mean())
    np.testing.assert_array_equal(counts, [5000] * 10)
    assert len(errors) == len(wanted) == 60
    assert np.mean(errors) < 10.0 and max(errors) < 20.0, errors  # MANIFEST: median 5.7, p95 8.3
