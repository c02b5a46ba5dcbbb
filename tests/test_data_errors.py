"""Every data error names the problem and the fix."""

import shutil

import mini_data
import ml_collections
import numpy as np
import pytest

from dropout_study import data
from dropout_study.data import files, pipeline


def config_for(name="cifar100", **fields):
    config = data.default_config(name)
    config.update(fields)
    return config


@pytest.fixture
def sample_copy(tmp_path):
    """A private copy of the shipped sample that tests may damage."""
    root = tmp_path / "sample"
    shutil.copytree(files.SAMPLE_ROOT, root)
    return root


def assert_three_ways(message):
    assert "source='local'" in message and "source='tfds'" in message
    assert "source='sample'" in message


def test_missing_directory_names_the_three_ways(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        data.load(config_for(source="local", data_dir=str(missing)))
    assert str(missing) in str(err.value)
    assert_three_ways(str(err.value))


def test_missing_file_names_the_file_and_the_three_ways(tmp_path):
    with pytest.raises(FileNotFoundError, match="'cifar100/meta' is missing") as err:
        data.load(config_for(source="local", data_dir=str(tmp_path)))
    assert_three_ways(str(err.value))


def test_checksum_mismatch_names_the_file_and_the_fix(sample_copy):
    path = sample_copy / "cifar100.npz"
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(data.CorruptDataError, match="Checksum mismatch") as err:
        data.load(config_for(data_dir=str(sample_copy)))
    assert str(path) in str(err.value) and "make_sample" in str(err.value)


def test_unreadable_file_is_reported_even_without_checksums(sample_copy):
    (sample_copy / "cifar100.npz").write_bytes(b"not a zip archive")
    config = config_for(data_dir=str(sample_copy), verify_checksums=False)
    with pytest.raises(data.CorruptDataError, match="Cannot read data file .*cifar100.npz"):
        data.load(config)


def test_missing_checksum_list_names_the_opt_out(sample_copy):
    (sample_copy / files.CHECKSUMS).unlink()
    with pytest.raises(FileNotFoundError, match="verify_checksums=False"):
        data.load(config_for(data_dir=str(sample_copy)))
    assert len(data.load(config_for(data_dir=str(sample_copy), verify_checksums=False)).train)


def _jpeg(root, **fields):
    fields = {"validation": "test", "data_dir": str(root), **fields}  # the archives' own splits
    return config_for("cifar100", source="local", variant="jpeg", **fields)


def test_missing_jpeg_archive_names_the_file_and_the_three_ways(mini_jpeg_folder):
    (mini_jpeg_folder / "cifar100_jpeg/test.tar.gz").unlink()
    with pytest.raises(FileNotFoundError, match="'cifar100_jpeg/test.tar.gz' is missing") as err:
        data.load(_jpeg(mini_jpeg_folder))
    assert_three_ways(str(err.value))


def test_damaged_jpeg_archive_fails_its_checksum(mini_jpeg_folder):
    path = mini_jpeg_folder / "cifar100_jpeg/train.tar.gz"
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(data.CorruptDataError, match="Checksum mismatch") as err:
        data.load(_jpeg(mini_jpeg_folder))
    assert str(path) in str(err.value) and "copy it again" in str(err.value)


def test_truncated_jpeg_archive_is_reported_even_without_checksums(mini_jpeg_folder):
    path = mini_jpeg_folder / "cifar100_jpeg/train.tar.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(data.CorruptDataError, match="Cannot read data file .*train.tar.gz"):
        data.load(_jpeg(mini_jpeg_folder, verify_checksums=False))


@pytest.mark.parametrize(
    "member, match",
    [
        ("apple/apple 1.png", r"Unexpected member 'apple/apple 1.png'.*<fine_class>/"),
        ("apple/deeper/apple_1.jpg", "Unexpected member 'apple/deeper/apple_1.jpg'"),
        ("pear/pear_s_000001.jpg", r"Unexpected class folder\(s\) \['pear'\]"),
    ],
)
def test_unexpected_jpeg_member_is_named(mini_jpeg_folder, member, match):
    archive = mini_jpeg_folder / "cifar100_jpeg/train.tar.gz"
    mini_data.write_archive(archive, {member: mini_data.jpeg_bytes(0)})
    mini_data.write_checksums(mini_jpeg_folder)
    with pytest.raises(data.CorruptDataError, match=match):
        data.load(_jpeg(mini_jpeg_folder))


def test_fine_to_coarse_that_misses_a_class_is_named(mini_jpeg_folder):
    path = mini_jpeg_folder / "cifar100_jpeg/fine_to_coarse.json"
    path.write_text('{"apple": "fruit_and_vegetables"}')
    mini_data.write_checksums(mini_jpeg_folder)
    with pytest.raises(data.CorruptDataError, match="does not map every fine class name"):
        data.load(_jpeg(mini_jpeg_folder, label_mode="coarse"))
    assert len(data.load(_jpeg(mini_jpeg_folder)).train) == 12  # fine labels do not need it


def test_unknown_dataset_and_field_are_named():
    with pytest.raises(ValueError, match="name='mnist'.*'imdb'"):
        data.load(_named("mnist"))
    with pytest.raises(ValueError, match="name='mnist'"):
        data.default_config("mnist")
    with pytest.raises(ValueError, match=r"Unknown data config field\(s\) \['num_wrods'\]"):
        data.load(_named("imdb", num_wrods=100))


def _named(name, **fields):
    """A hand-written data config (not from default_config)."""
    return ml_collections.ConfigDict(dict(name=name, **fields))


def test_missing_fields_take_their_defaults():
    dataset = data.load(_named("cifar100", max_train=10))
    assert dataset.info["source"] == "sample" and len(dataset.train) == 10


@pytest.mark.parametrize(
    "name, field, value, match",
    [
        ("imdb", "source", "web", "source='web'"),
        ("imdb", "padding", "middle", "padding='middle'"),
        ("imdb", "maxlen", 0, "maxlen=0"),
        ("imdb", "num_words", 3, "num_words=3"),
        ("imdb", "validation", "train", "validation='train'"),
        ("cifar10", "holdout_fraction", 1.0, "holdout_fraction=1.0"),
        ("cifar10", "max_train", -1, "max_train=-1"),
        ("cifar10", "variant", "jpeg", "'jpeg' exists only with source='local'.*cifar10_jpeg"),
        ("cifar100", "variant", "jpeg", "'jpeg' exists only with source='local'.*cifar100_jpeg"),
        ("cifar100", "variant", "webp", "variant='webp' is not allowed"),
        ("cifar100", "label_mode", "superclass", "label_mode='superclass'"),
    ],
)
def test_bad_field_values_are_named(name, field, value, match):
    with pytest.raises(ValueError, match=match):
        data.load(config_for(name, **{field: value}))


def test_holdout_that_leaves_a_split_empty_is_refused():
    with pytest.raises(ValueError, match="validation split is empty"):
        data.load(config_for(validation="holdout", holdout_fraction=0.0001))


def test_bad_batching_arguments_are_named():
    split = data.Split(np.arange(10), np.arange(10))
    with pytest.raises(ValueError, match=r"batch_size=11 must lie in \[1, 10\]"):
        next(pipeline.batches(split, 11, seed=0, epoch=0))
    with pytest.raises(ValueError, match="not divisible by process_count=3"):
        next(pipeline.batches(split, 4, seed=0, epoch=0, process_index=0, process_count=3))
    with pytest.raises(ValueError, match="process_index=2"):
        next(pipeline.batches(split, 4, seed=0, epoch=0, process_index=2, process_count=2))
    with pytest.raises(ValueError, match="start_step=3"):
        next(pipeline.batches(split, 4, seed=0, epoch=0, start_step=3))
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        data.Split(np.zeros(3), np.zeros(2))
