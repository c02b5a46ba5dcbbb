"""The shipped sample: small, intact, balanced as its rule says, and rebuilt byte for byte."""

import hashlib
import lzma

import numpy as np
import pytest

from dropout_study import data
from dropout_study.data import files, imdb, make_sample

OFFICIAL_WORD_INDEX_SHA256 = "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6"


def test_sample_is_at_most_8_mb_and_matches_its_checksums():
    total = sum(path.stat().st_size for path in files.SAMPLE_ROOT.rglob("*") if path.is_file())
    assert total <= 8_000_000, total
    listed = files.read_checksums(files.SAMPLE_ROOT)
    assert sorted(listed) == ["cifar10.npz", "cifar100.npz", "imdb.npz", "imdb_word_index.json.xz"]
    for name in listed:
        files.check_sha256(files.SAMPLE_ROOT, name)
    assert (files.SAMPLE_ROOT / "SELECTION.md").is_file()


def test_word_index_is_the_official_file():
    packed = (files.SAMPLE_ROOT / imdb.SAMPLE_WORD_INDEX).read_bytes()
    assert hashlib.sha256(lzma.decompress(packed)).hexdigest() == OFFICIAL_WORD_INDEX_SHA256


@pytest.mark.parametrize(
    "name, train, validation",
    [
        ("imdb", [1000, 1000], [500, 500]),
        ("cifar10", [150] * 10, [50] * 10),
        ("cifar100", [4] * 100, [2] * 100),
    ],
)
def test_every_class_is_equally_represented(name, train, validation):
    dataset = data.load(data.default_config(name))  # holdout of 10%, stratified
    held = np.bincount(dataset.validation.y, minlength=len(train))
    np.testing.assert_array_equal(np.bincount(dataset.train.y) + held, train)
    assert held.sum() == round(0.1 * sum(train)) and held.max() - held.min() <= 1
    np.testing.assert_array_equal(np.bincount(dataset.test.y), validation)


def test_first_per_class_keeps_row_order():
    rows = make_sample.first_per_class([2, 0, 2, 1, 0, 2, 1, 0], 2)
    np.testing.assert_array_equal(rows, [0, 1, 2, 3, 4, 6])
    with pytest.raises(ValueError, match=r"labels \[1\] have fewer than 3 rows"):
        make_sample.first_per_class([0, 0, 0, 1], 3)


@pytest.mark.slow
@pytest.mark.skipif(not files.LOCAL_ROOT.is_dir(), reason=f"{files.LOCAL_ROOT} is absent")
def test_rebuild_from_the_data_folder_is_byte_identical():
    assert make_sample.differing_files(files.LOCAL_ROOT, files.SAMPLE_ROOT) == []
