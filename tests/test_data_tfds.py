"""The tensorflow-datasets source, with tfds.testing.mock_data (nothing is ever downloaded)."""

import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dropout_study import data
from dropout_study.data import imdb, tfds_source


def tfds_config(name, data_dir, **fields):
    config = data.default_config(name)
    config.update({"source": "tfds", "data_dir": str(data_dir), "validation": "test", **fields})
    return config


@pytest.mark.slow
def test_imdb_text_is_tokenised_with_the_keras_rules(tmp_path):
    with tfds.testing.mock_data(num_examples=64):
        dataset = data.load(tfds_config("imdb", tmp_path, num_words=0, maxlen=40))
        texts = tfds_source.read("imdb", "train", data_dir=str(tmp_path), download=False)[0]
    word_index = imdb.read_word_index(tfds_config("imdb", tmp_path))
    expected = imdb.keras_ids(
        imdb.tokenize(texts["text"], word_index, texts["label"]),
        tfds_config("imdb", tmp_path, num_words=0, maxlen=40),
        dataset.info["vocab_size"],
    )
    np.testing.assert_array_equal(dataset.train.x, expected)
    np.testing.assert_array_equal(dataset.train.y, texts["label"])
    assert dataset.train.x.shape == (64, 40) and dataset.validation.x.shape == (64, 40)
    assert dataset.info["source"] == "tfds" and "imdb_reviews" in dataset.info["origin"]
    assert (dataset.train.x > 3).sum() > 20  # the mock's random text holds real words ("a", "i")


@pytest.mark.parametrize(
    "name, label_mode, classes", [("cifar10", None, 10), ("cifar100", "coarse", 20)]
)
def test_cifar_images_and_labels(tmp_path, name, label_mode, classes):
    fields = {"label_mode": label_mode} if label_mode else {}
    with tfds.testing.mock_data(num_examples=50):
        dataset = data.load(tfds_config(name, tmp_path, validation="holdout", **fields))
    assert dataset.train.x.shape == (45, 32, 32, 3) and dataset.train.x.dtype == np.float32
    assert len(dataset.validation) == 5 and dataset.info["num_classes"] == classes
    assert dataset.train.y.min() >= 0 and dataset.train.y.max() < classes
    np.testing.assert_allclose(dataset.train.x.mean(axis=(0, 1, 2), dtype=float), 0, atol=1e-5)
    assert dataset.info["origin"].startswith(f"tfds {name}")


def test_denoise_pairs_from_tfds(tmp_path):
    with tfds.testing.mock_data(num_examples=20):
        dataset = data.load(tfds_config("denoise", tmp_path, corruption="pixelate"))
    assert dataset.train.x.shape == dataset.train.y.shape == (20, 32, 32, 3)
    assert dataset.train.y.min() >= 0.0 and dataset.train.y.max() <= 1.0


def test_unprepared_dataset_with_downloads_off_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load(tfds_config("cifar10", tmp_path))
    message = str(err.value)
    assert "no prepared 'cifar10'" in message and str(tmp_path) in message
    assert "tfds build cifar10" in message and "download=True" in message
    assert "source='local'" in message and "source='sample'" in message


def test_download_offline_fails_fast_naming_the_host(tmp_path, monkeypatch):
    def unreachable(address, timeout):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(tfds_source.socket, "create_connection", unreachable)
    with pytest.raises(ConnectionError, match="www.cs.toronto.edu.*cannot be reached"):
        data.load(tfds_config("cifar10", tmp_path, download=True))
    assert not list(tmp_path.iterdir())  # nothing was downloaded or prepared


def test_a_hung_network_probe_gives_up_after_its_timeout(monkeypatch):
    def hung(address, timeout):  # a DNS lookup that hangs, then times out as a real one does
        time.sleep(30)
        raise TimeoutError("timed out")

    monkeypatch.setattr(tfds_source.socket, "create_connection", hung)
    start = time.monotonic()
    assert not tfds_source.reachable("ai.stanford.edu", timeout_s=0.5)
    assert time.monotonic() - start < 5
