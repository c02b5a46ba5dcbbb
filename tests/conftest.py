"""Fixtures shared by the data tests: a private decode cache and a tiny CIFAR-100 JPEG folder."""

import mini_data
import pytest

from dropout_study.data import cache


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Every test (and its subprocesses) caches decoded data in its own folder, never in ~."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("decode_cache")
        patch.setenv(cache.ENV, str(folder))
        yield folder


@pytest.fixture
def mini_jpeg_folder(tmp_path):
    """A fresh tiny cifar100_jpeg data folder (see mini_data.py) that a test may damage."""
    return mini_data.build(tmp_path / "data")
