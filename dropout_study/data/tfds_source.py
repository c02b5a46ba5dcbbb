"""Whole splits from tensorflow-datasets as numpy arrays, never downloading unless asked."""

import socket
import threading

import numpy as np
import tensorflow_datasets as tfds

from dropout_study.data import files

TFDS_NAMES = {"imdb": "imdb_reviews", "cifar10": "cifar10", "cifar100": "cifar100"}
# Where each tfds builder downloads from; probed first, because offline tfds retries for minutes.
DOWNLOAD_HOSTS = {
    "imdb": "ai.stanford.edu",
    "cifar10": "www.cs.toronto.edu",
    "cifar100": "www.cs.toronto.edu",
}
PROBE_TIMEOUT_S = 10.0


def reachable(host, timeout_s=PROBE_TIMEOUT_S):
    """Whether a TCP connection to `host`:443 opens within `timeout_s` (DNS included)."""
    opened = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout_s).close()
            opened.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)  # a hung DNS lookup is left behind
    thread.start()
    thread.join(timeout_s)
    return bool(opened)


def read(name, split, *, data_dir, download):
    """({feature: array (N, ...)}, tfds DatasetInfo) for split 'train' or 'test' of `name`."""
    tfds_name = TFDS_NAMES[name]
    if download and not reachable(DOWNLOAD_HOSTS[name]):
        raise ConnectionError(
            f"config.data.download=True but {DOWNLOAD_HOSTS[name]}, where tfds downloads "
            f"{tfds_name!r} from, cannot be reached (offline?). Fix: run `tfds build {tfds_name} "
            "--data_dir=DIR` where there is internet and set data_dir=DIR with download=False, "
            f"or use source='local'. {files.HOW_TO_GET_DATA}"
        )
    try:
        dataset, info = tfds.load(
            tfds_name,
            split=split,
            data_dir=data_dir or None,
            download=download,
            batch_size=4096,  # batch_size=-1 (one tensor) does not work under tfds mock_data
            with_info=True,
        )
    except AssertionError as err:  # what tfds raises for a dataset that is not prepared
        raise FileNotFoundError(
            f"tensorflow-datasets has no prepared {tfds_name!r} in data_dir="
            f"{data_dir or tfds.core.constants.DATA_DIR!r} and config.data.download=False. Run "
            f"`tfds build {tfds_name} --data_dir=DIR` where there is internet and copy DIR here "
            f"(then set data_dir=DIR), or set download=True. {files.HOW_TO_GET_DATA}"
        ) from err
    parts = list(tfds.as_numpy(dataset))
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}, info
