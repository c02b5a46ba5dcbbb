"""CIFAR-10/100: counts, balance, normalisation, labels, JPEG copies vs exact pixels, the cache."""

import collections
import hashlib
import io
import pickle
import tarfile

import mini_data
import numpy as np
import pytest
from PIL import Image

from dropout_study import data
from dropout_study.data import cache, cifar, files

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
    images, members = cifar.read_jpeg(files.LOCAL_ROOT, "cifar10", "test")
    jpeg = data.Split(images, np.array([names.index(m.split("/")[0]) for m in members]))
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
    with tarfile.open(root / cifar.JPEG_COPIES["cifar10"].archive("train"), "r:gz") as archive:
        for member in archive:
            counts[names.index(member.name.split("/")[0])] += 1
            if member.name in wanted:
                image = Image.open(io.BytesIO(archive.extractfile(member).read())).convert("RGB")
                errors.append(np.abs(np.asarray(image, float) - images[wanted[member.name]]).mean())
    np.testing.assert_array_equal(counts, [5000] * 10)
    assert len(errors) == len(wanted) == 60
    assert np.mean(errors) < 10.0 and max(errors) < 20.0, errors  # MANIFEST: median 5.7, p95 8.3


# The full CIFAR-100 JPEG copy (MANIFEST.md, cifar100_jpeg/) -----------------------------------


@pytest.fixture(scope="module")
def c100_jpeg():
    """Both splits with fine and coarse labels and member names: decoded once, then cached."""
    fine_train, fine_test, fine_names = cifar.read("cifar100", source="local", variant="jpeg")
    coarse_train, coarse_test, coarse_names = cifar.read(
        "cifar100", source="local", variant="jpeg", label_mode="coarse"
    )
    members = {s: cifar.read_jpeg(files.LOCAL_ROOT, "cifar100", s)[1] for s in cifar.SPLITS}
    return dict(
        fine={"train": fine_train, "test": fine_test},
        coarse={"train": coarse_train, "test": coarse_test},
        fine_names=fine_names,
        coarse_names=coarse_names,
        members=members,
    )


def exact_subset(split):
    """The cifar100 exact-pixel subset pickle of `split` as a dict with str keys."""
    with open(files.LOCAL_ROOT / cifar.LOCAL_FILES["cifar100"][split], "rb") as f:
        return {k.decode(): v for k, v in pickle.load(f, encoding="bytes").items()}


@needs_shared
def test_cifar100_jpeg_counts_per_fine_and_coarse_class(c100_jpeg):
    for split, per_fine in (("train", 500), ("test", 100)):
        assert c100_jpeg["fine"][split].x.shape == (per_fine * 100, 32, 32, 3)
        assert c100_jpeg["fine"][split].x.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(c100_jpeg["fine"][split].y), [per_fine] * 100)
        np.testing.assert_array_equal(
            np.bincount(c100_jpeg["coarse"][split].y), [per_fine * 5] * 20
        )
        np.testing.assert_array_equal(c100_jpeg["fine"][split].x, c100_jpeg["coarse"][split].x)
    assert len(c100_jpeg["fine_names"]) == 100 and len(c100_jpeg["coarse_names"]) == 20


@needs_shared
def test_cifar100_jpeg_fine_to_coarse_equals_the_exact_subsets(c100_jpeg):
    jpeg_pairs, exact_pairs = set(), set()
    for split in cifar.SPLITS:
        fine, coarse = c100_jpeg["fine"][split].y, c100_jpeg["coarse"][split].y
        jpeg_pairs |= set(zip(fine.tolist(), coarse.tolist(), strict=True))
        subset = exact_subset(split)
        exact_pairs |= set(zip(subset["fine_labels"], subset["coarse_labels"], strict=True))
    assert len(jpeg_pairs) == 100 and jpeg_pairs == exact_pairs


@needs_shared
def test_cifar100_jpeg_holds_the_known_byte_identical_duplicates():
    """MANIFEST: 26 pairs, e.g. baby/girl and otter/seal, some shared by train and test."""
    copies = collections.defaultdict(list)
    for split in cifar.SPLITS:
        path = files.LOCAL_ROOT / cifar.JPEG_COPIES["cifar100"].archive(split)
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.isfile():
                    digest = hashlib.sha256(archive.extractfile(member).read()).digest()
                    copies[digest].append(f"{split}:{member.name}")
    groups = [sorted(names) for names in copies.values() if len(names) > 1]
    assert len(groups) == 26 and {len(group) for group in groups} == {2}
    splits_of = collections.Counter(
        "+".join(sorted({name.split(":")[0] for name in group})) for group in groups
    )
    assert splits_of == {"train": 14, "test": 2, "test+train": 10}
    assert ["train:baby/baby_s_000333.jpg", "train:girl/baby_s_000333.jpg"] in groups
    assert ["test:seal/seal_s_001807.jpg", "train:otter/otter_s_000563.jpg"] in groups


@needs_shared
@pytest.mark.parametrize(
    "split, rows, mean_mae, max_mae", [("train", 1117, 5.94, 13.2), ("test", 916, 6.01, 14.3)]
)
def test_cifar100_jpeg_pixels_lie_within_the_measured_error(
    c100_jpeg, split, rows, mean_mae, max_mae
):
    """Exact subset images matched by <fine class>/<file name>: MAE as MANIFEST.md measured.

    MANIFEST gives train mean 5.94, p99 10.5, max 13.2 and test mean 6.01; the test maximum
    (14.3) is what the archive holds. No image is exact: the exact pixels are not mixed in.
    """
    subset = exact_subset(split)
    index = {member: i for i, member in enumerate(c100_jpeg["members"][split].tolist())}
    wanted = [
        f"{c100_jpeg['fine_names'][fine]}/{name.decode().removesuffix('.png')}.jpg"
        for fine, name in zip(subset["fine_labels"], subset["filenames"], strict=True)
    ]
    jpeg = c100_jpeg["fine"][split].take(np.array([index[w] for w in wanted]))
    np.testing.assert_array_equal(jpeg.y, subset["fine_labels"])
    exact = cifar.to_nhwc(np.asarray(subset["data"], dtype=np.uint8))
    mae = np.abs(jpeg.x.astype(np.float64) - exact).mean(axis=(1, 2, 3))
    assert len(mae) == rows
    assert abs(mae.mean() - mean_mae) < 0.01 and mae.max() < max_mae + 0.05, mae.max()
    assert mae.min() > 1.0
    if split == "train":
        assert np.percentile(mae, 99) < 10.5


@needs_shared
def test_load_cifar100_jpeg_records_its_origin_and_uses_training_statistics():
    config = config_for(
        "cifar100", source="local", variant="jpeg", label_mode="coarse", max_train=2000
    )
    dataset = data.load(config)
    assert len(dataset.train) == 2000 and len(dataset.validation) == 10000
    assert dataset.info["num_classes"] == 20 and dataset.info["variant"] == "jpeg"
    assert dataset.info["origin"].startswith("cifar100_jpeg/*.tar.gz")
    assert "JPEG re-encoded" in dataset.info["origin"]
    np.testing.assert_allclose(dataset.train.x.mean(axis=(0, 1, 2), dtype=float), 0.0, atol=1e-5)


# The cache of decoded archives (on the tiny folder of mini_data.py) ----------------------------


def _mini(root, **fields):
    return config_for("cifar100", source="local", variant="jpeg", data_dir=str(root), **fields)


def _no_decoding(*args):
    raise AssertionError("decoded although the cache holds this archive")


def test_second_load_reads_the_cache_for_fine_and_coarse(mini_jpeg_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    first = data.load(_mini(mini_jpeg_folder, normalise=False))
    assert len(list((tmp_path / "cache").glob("cifar100_jpeg-*.npz"))) == 2
    monkeypatch.setattr(cifar, "decode_archive", _no_decoding)
    again = data.load(_mini(mini_jpeg_folder, normalise=False))
    coarse = data.load(_mini(mini_jpeg_folder, normalise=False, label_mode="coarse"))
    for a, b in ((first.train, again.train), (first.validation, again.validation)):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
    fine_names, coarse_names = first.info["label_names"], coarse.info["label_names"]
    assert fine_names == mini_data.MINI_FINE and coarse_names == mini_data.MINI_COARSE
    coarse_of = mini_data.MINI_FINE_TO_COARSE
    expected = [coarse_names.index(coarse_of[fine_names[f]]) for f in first.train.y]
    np.testing.assert_array_equal(coarse.train.y, expected)
    np.testing.assert_array_equal(coarse.train.x, first.train.x)


def test_changed_archive_misses_the_cache(mini_jpeg_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    before = cifar.read_jpeg(mini_jpeg_folder, "cifar100", "test")
    members = {"apple/apple_s_000001.jpg": mini_data.jpeg_bytes(99)}
    mini_data.write_archive(mini_jpeg_folder / "cifar100_jpeg/test.tar.gz", members)
    mini_data.write_checksums(mini_jpeg_folder)
    after_images, after_members = cifar.read_jpeg(mini_jpeg_folder, "cifar100", "test")
    assert len(before[1]) == 8 and after_members.tolist() == list(members)
    assert len(list((tmp_path / "cache").glob("cifar100_jpeg-test-*.npz"))) == 2
    assert after_images.shape == (1, 32, 32, 3)


def test_unreadable_cache_file_is_rebuilt(mini_jpeg_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    images, members = cifar.read_jpeg(mini_jpeg_folder, "cifar100", "train")
    (path,) = (tmp_path / "cache").glob("cifar100_jpeg-train-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # a truncated file
    again, _ = cifar.read_jpeg(mini_jpeg_folder, "cifar100", "train")
    np.testing.assert_array_equal(again, images)
    assert cache.load(path) is not None  # rewritten whole


def test_failed_cache_write_leaves_no_file_and_still_returns(tmp_path, monkeypatch):
    def half_write(f, **arrays):
        f.write(b"PK half a zip")
        raise OSError("disk full")

    monkeypatch.setenv(cache.ENV, str(tmp_path))
    monkeypatch.setattr(cache.np, "savez", half_write)
    arrays = cache.cached("key", lambda: {"x": np.arange(3)})
    np.testing.assert_array_equal(arrays["x"], np.arange(3))
    assert list(tmp_path.iterdir()) == []


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "mine"))
    assert cache.folder() == tmp_path / "mine"
    monkeypatch.delenv(cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.folder() == tmp_path / "xdg" / "dropout_study"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.folder() == tmp_path / "home" / ".cache" / "dropout_study"
