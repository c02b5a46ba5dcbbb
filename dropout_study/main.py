"""Trains one config: `python -m dropout_study.main --config=configs/imdb_rnn.py --workdir=DIR`.

`--config=FILE:VARIANT` picks a variant (e.g. `:quick`) and `--config.FIELD=VALUE` overrides a
field (`--config.model.output_rate=0.3`); an unknown field is an error. A workdir that already
holds checkpoints of the same config resumes from them.
"""

import logging as std_logging

from absl import app, flags, logging
from ml_collections import config_flags

from dropout_study import allocator, parallel

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


def _not_orbax_info(record):
    """Orbax logs every file it writes at INFO; its warnings and errors still pass."""
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    allocator.use_tcmalloc()
    logging.get_absl_handler().addFilter(_not_orbax_info)
    parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    from dropout_study import train  # imported after the re-exec: it loads TensorFlow (slow)

    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
