"""What a user meets on bad input: one line naming the problem and the fix, nothing left behind.

The table calls the API the command runs (config, data, workdir, checkpoint, dropout arguments,
training) and checks the line `python -m dropout_study.main` would print for the error. The
command-line cases run the command itself and check that it prints that one line, no traceback.
"""

import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from dropout_study import checkpoint, data, dropout, errors, run_config, run_files, train

REPO = pathlib.Path(__file__).resolve().parents[1]
ERRORS = (*errors.INPUT_ERRORS, TypeError)  # TypeError: API misuse, outside the command


def _cnn(**overrides):
    """The quick text CNN on 640 reviews of the shipped IMDB sample."""
    config = run_config.default_config("imdb", "text_cnn")
    config.data.update(source="sample", num_words=2000, maxlen=50, max_train=640, max_eval=200)
    config.model.update(vocab_size=2000, embed_dim=8, num_filters=8)
    config.update(num_epochs=1, batch_size=64)
    config.update_from_flattened_dict(overrides)
    return config


def _run(tmp_path, **overrides):
    return train.train_and_evaluate(_cnn(**overrides), tmp_path / "run")


def _data(name="imdb", **fields):
    config = data.default_config(name)
    config.update(fields)
    return data.load(config)


def _a_file(tmp_path):
    (tmp_path / "taken").write_text("")
    return tmp_path / "taken"


def _other_config_recorded(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / run_files.CONFIG_FILE).write_text(
        run_config.config_json(_cnn(num_epochs=7))
    )
    return _run(tmp_path)


def _corrupt_checkpoint(tmp_path, damage):
    saved = checkpoint.Checkpoints(tmp_path / "ckpt")
    state = {"w": jnp.arange(4.0)}
    for step in (1, 2):
        saved.save(checkpoint.LATEST, step, state, {"step": step})
    saved.close()
    damage(tmp_path / "ckpt" / checkpoint.LATEST / "2")
    checkpoint.Checkpoints(tmp_path / "ckpt").restore(checkpoint.LATEST, state)


def _garble_arrays(step_dir):
    for path in (step_dir / "state").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(b"\x00garbage")


def _drop_meta(step_dir):
    for path in sorted((step_dir / "meta").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (step_dir / "meta").rmdir()


X = jnp.ones((4, 8))
KEY = jax.random.key(0)

CASES = {
    # config
    "unknown model": (lambda t: _run(t, **{"model.name": "resnet"}), r"model\.name='resnet'"),
    "unknown optimizer": (lambda t: _run(t, **{"optimizer.name": "sgdd"}), r"'sgdd'"),
    "zero epochs": (lambda t: _run(t, num_epochs=0), r"num_epochs=0 is out of range"),
    "zero batch": (lambda t: _run(t, batch_size=0), r"batch_size=0"),
    "rate of one": (lambda t: _run(t, **{"model.output_rate": 1.0}), r"output_rate=1\.0"),
    "negative rate": (lambda t: _run(t, **{"model.output_rate": -0.1}), r"output_rate=-0\.1"),
    "keep of zero": (lambda t: _run(t, **{"model.output_keep_prob": 0.0}), r"output_keep_prob"),
    "wrong monitor": (lambda t: _run(t, monitor="val_psnr"), r"monitor='val_psnr'"),
    "wrong task": (lambda t: _run(t, task="denoise"), r"task='denoise' does not fit"),
    "negative lr": (
        lambda t: _run(t, **{"optimizer.learning_rate": -1.0}),
        r"learning_rate=-1\.0",
    ),
    "batch over data": (lambda t: _run(t, batch_size=4096), r"batch_size=4096"),
    # data
    "unknown source": (lambda t: _data(source="web"), r"source='web'"),
    "unknown dataset": (lambda t: _data("mnist"), r"mnist"),
    "bad padding": (lambda t: _data(padding="middle"), r"padding='middle'"),
    "no local data": (
        lambda t: _data(source="local", data_dir=str(t / "nowhere")),
        r"nowhere",
    ),
    "jpeg sample": (lambda t: _data("cifar10", variant="jpeg"), r"'jpeg' exists only"),
    "empty holdout": (
        lambda t: _data(validation="holdout", holdout_fraction=0.0001),
        r"validation split is empty",
    ),
    "unprepared tfds": (
        lambda t: _data("cifar10", source="tfds", data_dir=str(t), validation="test"),
        r"no prepared 'cifar10'",
    ),
    # workdir
    "workdir is a file": (lambda t: train.train_and_evaluate(_cnn(), _a_file(t)), r"is a file"),
    "workdir under a file": (
        lambda t: train.train_and_evaluate(_cnn(), _a_file(t) / "run"),
        r"lies under the file",
    ),
    "workdir of another run": (_other_config_recorded, r"different config \(num_epochs: 7 -> 1\)"),
    # checkpoint
    "garbled arrays": (
        lambda t: _corrupt_checkpoint(t, _garble_arrays),
        r"latest/2 is corrupt.*Fix: delete .*latest/2 to resume from step 1",
    ),
    "missing meta": (
        lambda t: _corrupt_checkpoint(t, _drop_meta),
        r"latest/2 is corrupt.*resume from step 1",
    ),
    # dropout arguments
    "rate above one": (lambda t: dropout.inverted_dropout(KEY, X, 1.5), r"rate"),
    "rate nan": (lambda t: dropout.inverted_dropout(KEY, X, float("nan")), r"rate"),
    "keep above one": (lambda t: dropout.keep_to_rate(1.5), r"1\.5"),
    "unknown sampler": (
        lambda t: dropout.inverted_dropout(KEY, X, 0.5, sampler="coin"),
        r"'coin'",
    ),
    "not a key": (lambda t: dropout.inverted_dropout(42, X, 0.5), r"key"),
    "dropblock too big": (
        lambda t: dropout.dropblock(KEY, jnp.ones((1, 4, 4, 2)), 0.1, 5),
        r"block_size=5",
    ),
    "spatial wrong rank": (lambda t: dropout.spatial_dropout2d(KEY, X, 0.5), r"rank|ndim|shape"),
    # training
    "divergence": (
        lambda t: _run(t, num_epochs=2, **{"optimizer.learning_rate": 7e10}),
        r"diverged in epoch 1.*checkpoint",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gives_one_line_naming_it(tmp_path, case):
    call, expected = CASES[case]
    with pytest.raises(ERRORS) as info:
        call(tmp_path)
    line = errors.one_line(info.value)
    assert "\n" not in line and "Traceback" not in line
    assert re.search(expected, line), line
    assert len(line) < 800, line  # one line a terminal shows in a few rows
    assert not list(tmp_path.rglob(run_files.SUMMARY_FILE))  # no bad input finishes a run


def _command(*flags, workdir):
    return subprocess.run(
        [sys.executable, "-m", "dropout_study.main", f"--workdir={workdir}", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "flags, expected",
    [
        (
            ["--config=configs/imdb_cnn.py:quick", "--config.model.nope=1"],
            r"^error: --config\.model\.nope names no field of the config",
        ),
        (
            ["--config=configs/nope.py"],
            r"^error: cannot load --config=configs/nope\.py: \[Errno 2\] No such file",
        ),
        (["--config=configs/imdb_cnn.py:tiny"], r"^error: .*unknown variant 'tiny'"),
        (
            ["--config=configs/imdb_cnn.py:quick", "--config.num_epochs=abc"],
            r"^error: flag --config\.num_epochs=abc: invalid literal",
        ),
        (
            ["--config=configs/imdb_cnn.py:quick", "--config.batch_size=0"],
            r"^error: config\.batch_size=0",
        ),
    ],
    ids=["unknown field", "unknown file", "unknown variant", "bad literal", "bad value"],
)
def test_the_command_prints_one_line_and_writes_nothing(tmp_path, flags, expected):
    result = _command(*flags, workdir=tmp_path / "run")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(expected, lines[0]), result.stderr[-2000:]
    assert not (tmp_path / "run").exists()


TINY = [
    "--config=configs/imdb_cnn.py:quick",
    "--config.data.max_train=640",
    "--config.data.max_eval=300",
    "--config.data.num_words=2000",
    "--config.model.vocab_size=2000",
    "--config.num_epochs=1",
]


def test_the_command_leaves_a_finished_run_as_it_is(tmp_path):
    workdir = tmp_path / "run"
    first = _command(*TINY, workdir=workdir)
    assert first.returncode == 0, first.stderr[-2000:]
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    again = _command(*TINY, workdir=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{workdir} is finished (best epoch 1); nothing to do." in again.stdout
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before
    changed = _command(*TINY, "--config.num_epochs=2", workdir=workdir)
    assert changed.returncode != 0
    assert "different config (num_epochs: 1 -> 2)" in changed.stderr


def test_one_line_folds_a_long_message_into_one_line():
    assert errors.one_line(ValueError("bad thing\n  spec: {...}\n  more")) == (
        "bad thing spec: {...} more"
    )
    assert errors.one_line(OSError()) == "OSError"
