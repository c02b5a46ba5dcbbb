"""gs:// workdirs: every run and study file goes through etils.epath, and an unreachable bucket
is refused before anything is written.

The bucket here is fsspec's in-memory filesystem registered as `gcs`, reached through epath's
own fsspec backend (the one epath uses for gs:// without TensorFlow): the project's code path is
the real one, only the storage is fake. Orbax writes checkpoint arrays through tensorstore's gs://
driver instead, which needs a real bucket.
"""

import json
import os
import pathlib
import subprocess
import sys
import time

import ml_collections
import pytest
from etils.epath import backend as epath_backend
from etils.epath import gpath as epath_gpath
from fsspec.implementations.memory import MemoryFileSystem

from dropout_study import report, run_config, run_files, sweeps
from dropout_study import study as study_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
fsspec_registry = sys.modules["fsspec.registry"]  # `fsspec.registry` names its mapping


class FakeGCS(MemoryFileSystem):
    """gs://bucket/... kept in memory, with gcsfs's path form ('bucket/key', no scheme)."""

    protocol = ("gs", "gcs")

    def __init__(self, *args, finalize_on_close=None, **kwargs):  # epath passes gcsfs's option
        super().__init__(*args, **kwargs)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        for prefix in ("gs://", "gcs://"):
            path = path.removeprefix(prefix)
        return path.strip("/")


@pytest.fixture
def gcs(monkeypatch, tmp_path):
    """An empty fake GCS holding the bucket `bucket`; the test runs in an empty local folder."""
    # epath's choice of backend, as without TensorFlow (it caches the answer: patch the function).
    monkeypatch.setattr(epath_gpath, "_is_tf_installed", lambda: False)
    monkeypatch.setitem(fsspec_registry._registry, "gcs", FakeGCS)
    monkeypatch.setattr(FakeGCS, "store", {})
    monkeypatch.setattr(FakeGCS, "pseudo_dirs", [""])
    monkeypatch.chdir(tmp_path)
    epath_backend._FileSystemSpecBackend._get_filesystem.cache_clear()
    FakeGCS.clear_instance_cache()
    run_files._probe_bucket.cache_clear()
    FakeGCS().mkdir("bucket")
    yield FakeGCS.store
    epath_backend._FileSystemSpecBackend._get_filesystem.cache_clear()
    FakeGCS.clear_instance_cache()
    run_files._probe_bucket.cache_clear()


def _study():
    config = ml_collections.ConfigDict()
    config.name = "toy"
    config.scale = "cpu"
    config.seeds = (0, 1)
    base = {"seed": 0, "num_epochs": 2, "model": {"name": "mlp", "rate": 0.0}}
    config.sweeps = ml_collections.ConfigDict(
        {"a": {"base": base, "axes": {"rate": sweeps.axis("model.rate", (0.0, 0.5))}}}
    )
    return config


def _fake_train(config, workdir):
    """Writes what train.train_and_evaluate leaves, through run_files, as training does."""
    if config.model.rate == 0.5 and config.seed == 1:
        raise RuntimeError("boom")
    workdir = run_files.path(workdir)
    rows = [{"epoch": e, "val_accuracy": 0.5, "val_loss": 1.0} for e in (1, 2)]
    (workdir / run_files.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_files.write_json(workdir / run_files.SUMMARY_FILE, {"best_epoch": 2})


def test_epath_study_tree_lives_in_the_bucket_and_reads_back(gcs, tmp_path):
    counts = study_lib.run_study(_study(), "gs://bucket/studies", train_fn=_fake_train)
    assert counts == {"done": 3, "skipped": 0, "failed": 1}
    assert "bucket/studies/toy/study.json" in gcs
    assert "bucket/studies/toy/a-rate0.5/seed_1/failed.json" in gcs
    assert "bucket/studies/toy/a-rate0/seed_0/summary.json" in gcs
    manifest, records = run_files.load_study("gs://bucket/studies/toy")
    assert manifest["seeds"] == [0, 1]
    assert sorted((r.trial, r.seed, r.status) for r in records) == [
        ("a-rate0", 0, "done"),
        ("a-rate0", 1, "done"),
        ("a-rate0.5", 0, "done"),
        ("a-rate0.5", 1, "failed"),
    ]
    assert all(len(r.epochs) == 2 for r in records if r.status == "done")
    # A second pass skips the finished runs it finds in the bucket.
    counts = study_lib.run_study(_study(), "gs://bucket/studies", train_fn=_fake_train)
    assert counts == {"done": 0, "skipped": 3, "failed": 1}
    # The report copies the raw files out of the bucket, in the same layout.
    report.copy_raw(run_files.path("gs://bucket/studies/toy"), records, tmp_path / "raw")
    copied = json.loads((tmp_path / "raw/a-rate0/seed_1/summary.json").read_text())
    assert copied == {"best_epoch": 2}
    assert not (tmp_path / "gs:").exists()


def test_epath_finished_run_check_reads_a_gcs_workdir(gcs):
    config = ml_collections.ConfigDict({"seed": 0, "num_epochs": 2})
    workdir = run_files.path("gs://bucket/run")
    assert run_config.finished_summary(config, workdir) is None
    (workdir / run_files.CONFIG_FILE).write_text(run_config.config_json(config))
    run_files.write_json(workdir / run_files.SUMMARY_FILE, {"best_epoch": 1})
    assert run_config.finished_summary(config, "gs://bucket/run") == {"best_epoch": 1}
    config.num_epochs = 3
    with pytest.raises(ValueError, match="holds a run of a different config"):
        run_config.finished_summary(config, "gs://bucket/run")


def test_gcs_bucket_that_does_not_exist_is_refused_before_anything_is_written(gcs, tmp_path):
    with pytest.raises(OSError, match=r"gs://missing does not exist\).*local --workdir"):
        run_files.check_reachable("gs://missing/run")
    with pytest.raises(OSError, match="cannot be reached"):
        study_lib.run_study(_study(), "gs://missing/studies", train_fn=_fake_train)
    assert sorted(gcs) == [] and list(tmp_path.iterdir()) == []


def test_gcs_bucket_that_answered_is_not_asked_again(gcs, monkeypatch):
    asked = []
    exists = FakeGCS.exists
    monkeypatch.setattr(FakeGCS, "exists", lambda self, p, **kw: asked.append(p) or exists(self, p))
    for run in ("gs://bucket/studies/a/seed_0", "gs://bucket/studies/a/seed_1", "gs://bucket"):
        run_files.check_reachable(run)
    assert asked == ["gs://bucket"]


def test_gcs_probe_that_hangs_is_cut_off(monkeypatch):
    monkeypatch.setattr(run_files, "path", lambda location: _Hangs())
    start = time.monotonic()
    with pytest.raises(OSError, match=r"no answer from gs://slow within 0.2 s"):
        run_files.check_reachable("gs://slow/run", timeout_s=0.2)
    assert time.monotonic() - start < 5


class _Hangs:
    def exists(self):
        time.sleep(30)


def test_local_paths_are_not_remote():
    assert run_files.is_remote("gs://b/run") and run_files.is_remote(run_files.path("s3://b"))
    assert not run_files.is_remote("workdirs/gs_run") and not run_files.is_remote("/tmp/x")
    run_files.check_reachable("workdirs/never_created")  # local: nothing to probe


def test_gcs_workdir_offline_fails_fast_with_one_line_and_no_local_folder(tmp_path):
    """The real storage client (TensorFlow's), as a user without network or credentials meets it."""
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dropout_study.main",
            f"--config={REPO / 'configs' / 'imdb_cnn.py'}:quick",
            "--workdir=gs://dropout-study-no-such-bucket/run",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EPATH_USE_TF": "true", "DROPOUT_STUDY_ALLOCATOR": "system"},
    )
    elapsed = time.monotonic() - start
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: workdir gs://dropout-study-no-such-bucket/run cannot be reached")
    assert elapsed < 60
    assert list(tmp_path.iterdir()) == []
