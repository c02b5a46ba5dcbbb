"""Decoded arrays kept on disk as .npz, so slow decodes (50k JPEGs: ~10 s) run once per input.

Callers key each entry by the sha256 of its input file, so a changed file never reads a stale
entry. The folder: $DROPOUT_STUDY_CACHE, else $XDG_CACHE_HOME/dropout_study, else
~/.cache/dropout_study.
"""

import os
import pathlib
import tempfile

import numpy as np
from absl import logging

ENV = "DROPOUT_STUDY_CACHE"


def folder():
    """The cache folder the environment names (it need not exist yet)."""
    if os.environ.get(ENV):
        return pathlib.Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "dropout_study"


def cached(key, build):
    """The dict of arrays stored under `key`; on a miss, build() is called and stored first."""
    path = folder() / f"{key}.npz"
    arrays = load(path)
    if arrays is None:
        arrays = build()
        store(path, arrays)
    return arrays


def load(path):
    """The arrays of the .npz at `path`, or None if it is absent or unreadable (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as err:  # a truncated or foreign file: zipfile, numpy and OS errors alike
        logging.warning("Cache file %s is unreadable (%s); decoding again.", path, err)
        return None


def store(path, arrays):
    """Writes `arrays` to `path` atomically (temp file + rename); a failed write only warns."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = pathlib.Path(f.name)
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as err:
        logging.warning(
            "Cannot write cache file %s (%s); set %s to a writable folder.", path, err, ENV
        )
    finally:
        if tmp is not None:  # gone after the rename; left by a failed or interrupted write
            tmp.unlink(missing_ok=True)
