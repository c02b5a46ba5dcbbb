"""Trains one config: `python -m dropout_study.main --config=configs/imdb_rnn.py --workdir=DIR`.

`--config=FILE:VARIANT` picks a variant (e.g. `:quick`) and `--config.FIELD=VALUE` overrides a
field (`--config.model.output_rate=0.3`); an unknown field is an error. A workdir that already
holds checkpoints of the same config resumes from them; a finished one is left as it is.
A bad input (config file, field, data, workdir, checkpoint) or a diverging run ends with one line
naming the problem and the fix and a non-zero exit; `--traceback` shows the full traceback.
"""

import logging as std_logging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from dropout_study import allocator, parallel
from dropout_study.errors import INPUT_ERRORS, innermost, one_line

# TensorFlow (tfds and TensorBoard files only) prints its oneDNN notice on every start.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Training config file and variant, e.g. configs/imdb_rnn.py:quick."
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory: checkpoints, metrics.jsonl, TensorBoard files, summary.json."
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", "", "host:port of process 0 for multi-process jobs JAX cannot detect."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "Processes in a multi-process job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "This process's index in the job.")
_TRACEBACK = flags.DEFINE_bool(
    "traceback", False, "On a bad input, print the full traceback instead of one line."
)


def _last_line(text):
    """The last line of a message that embeds a traceback: the exception that ended it."""
    return [line for line in text.strip().splitlines() if line.strip()][-1].strip()


def _flag_message(err):
    """One line for an absl flag error, which may embed a config file's traceback."""
    text = str(err).strip()
    if "Traceback" not in text:
        return " ".join(text.split())
    return f"{text.splitlines()[0].rstrip(':')}: {_last_line(text)}"


def _unknown_field(argv, key):
    """One line for an override that names no config field, quoting the flag that did."""
    flag = next(
        (a for a in argv if a.startswith("--config.") and key in a.split("=")[0].split(".")),
        f"--config...{key}",
    )
    return (
        f"error: {flag.split('=')[0]} names no field of the config ({key!r} is unknown). "
        "Fix: check the spelling against the config file (every field is in "
        "dropout_study/run_config.py:default_config)."
    )


def _parse_flags(argv):
    """absl's flag parsing, with config-file and override errors as one line."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        sys.exit(f"error: {_flag_message(err)} (see --helpshort)")
    except (AttributeError, KeyError) as err:  # ml_collections: an override names no field
        sys.exit(_unknown_field(argv, one_line(innermost(err))))


def _config():
    """The parsed config; a config file that failed to load exits with its root cause."""
    try:
        config = _CONFIG.value
        config.keys()  # a file that failed to load raises on first use
        return config
    except OSError as err:  # ml_collections wraps every load failure in an OSError
        if _TRACEBACK.value:
            raise
        sys.exit(
            f"error: cannot load --config={flags.FLAGS['config'].serialize().split('=', 1)[-1]}"
            f": {_last_line(str(err))}. Fix: pass an existing configs/*.py file."
        )


# INFO lines that repeat on every run: orbax's file writes, JAX probing for a TPU, clu's
# steps/s notes (also on the progress bar and in TensorBoard). Warnings and errors still pass.
NOISY_SOURCES = ("/orbax/", "xla_bridge.py", "/clu/platform/")


def _not_noise(record):
    return record.levelno >= std_logging.WARNING or not any(
        source in record.pathname for source in NOISY_SOURCES
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    allocator.preload()
    logging.get_absl_handler().addFilter(_not_noise)
    config = _config()
    try:
        from dropout_study import run_config  # light: no TensorFlow

        summary = run_config.finished_summary(config, _WORKDIR.value)
        if summary is not None:
            print(
                f"{_WORKDIR.value} is finished (best epoch {summary['best_epoch']}); nothing to do."
            )
            return
        parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        from dropout_study import train  # imported after the re-exec: it loads TensorFlow (slow)

        train.train_and_evaluate(config, _WORKDIR.value)
    except INPUT_ERRORS as err:
        if _TRACEBACK.value:
            raise
        sys.exit(f"error: {one_line(err)}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main, flags_parser=_parse_flags)
