"""Projected wall time of a whole study from one measured train step: an estimate, not a run.

    python -m dropout_study.bench --models=cifar10_vgg --steps_json=vgg_steps.json
    python -m dropout_study.projection --steps_json=vgg_steps.json --model=cifar10_vgg \
        --study=configs/studies/post001.py:full --out=projection.md

Every run of the study is costed as its epochs x (train steps x the measured step time +
validation examples at a third of a train step's cost per example, as bench counts a train step
as three forward passes), plus the test split scored twice at the end (selected and final
checkpoints). Compilation, checkpoints and the input pipeline are left out, and every variant of
the model (half width, wider dense layers, any dropout) is costed as the measured one.
"""

import dataclasses
import json
import math
import pathlib

from absl import app, flags

from dropout_study import sweeps

# The full datasets' (train, test) split sizes; a study's holdout comes out of the train split.
FULL_SPLITS = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "imdb": (25_000, 25_000)}
EVAL_COST = 1 / 3  # an evaluated example against a trained one (forward only)


@dataclasses.dataclass(frozen=True)
class RunCost:
    """One run's examples: trained (in whole batches), validated each epoch, tested at the end."""

    epochs: int
    steps_per_epoch: int
    batch: int
    validation: int
    test: int

    def seconds(self, step_s):
        """Wall seconds at `step_s` per train step of this run's batch."""
        per_example = step_s / self.batch
        epoch_s = self.steps_per_epoch * step_s + self.validation * EVAL_COST * per_example
        return self.epochs * epoch_s + 2 * self.test * EVAL_COST * per_example


def run_cost(config):
    """The RunCost of a training config at the full size of its dataset."""
    data = config.data
    train, test = FULL_SPLITS[data.name]
    validation = round(train * data.holdout_fraction) if data.validation == "holdout" else test
    train -= validation if data.validation == "holdout" else 0
    if data.get("max_train"):
        train = min(train, data.max_train)
    if data.get("max_test"):
        test = min(test, data.max_test)
    return RunCost(
        epochs=config.num_epochs,
        steps_per_epoch=train // config.batch_size,
        batch=config.batch_size,
        validation=validation,
        test=test,
    )


def project(study, step_ms):
    """(number of runs, total train steps, projected seconds) of every run of `study`."""
    costs = [run_cost(run.config()) for run in sweeps.runs_of(study)]
    steps = sum(c.epochs * c.steps_per_epoch for c in costs)
    return len(costs), steps, sum(c.seconds(step_ms / 1e3) for c in costs)


def report(study_spec, model, steps_payload):
    """Markdown lines: what was measured, what is projected from it, labelled as an estimate."""
    path, _, scale = study_spec.partition(":")
    study = sweeps.load_config_file(path, scale or "full")
    (row,) = [r for r in steps_payload["rows"] if r["model"] == model]
    runs, steps, seconds = project(study, row["step_ms"])
    devices = steps_payload["devices"]
    return [
        f"Measured on {devices}: {model} train step at batch {row['batch']}: "
        f"{row['step_ms']:.2f} ms ({row['batch'] / row['step_ms'] * 1e3:,.0f} images/s, "
        f"{row['gflops']:.0f} GFLOP/s, {row['fraction']:.0%} of a float32 2048x2048 matmul's "
        f"rate on the same device).",
        "",
        f"Projected (an estimate, see dropout_study/projection.py): {study.name} at scale "
        f"{study.scale}: {runs} runs, {steps:,} train steps, {seconds / 3600:.2f} h "
        f"({math.ceil(seconds / 60)} min) of training and evaluation on one such device, run "
        "one after another.",
    ]


def define_flags():
    """The command's flags; defined on start, not on import, as bench's module shares names."""
    flags.DEFINE_string("steps_json", None, "Rows written by bench --steps_json.")
    flags.DEFINE_string("model", "cifar10_vgg", "Which measured model the study trains.")
    flags.DEFINE_string("study", None, "Study config and scale, e.g. ...post001.py:full.")
    flags.DEFINE_string("out", None, "Markdown file to write (printed as well).")
    flags.mark_flags_as_required(["steps_json", "study"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    f = flags.FLAGS
    payload = json.loads(pathlib.Path(f.steps_json).read_text())
    text = "\n".join(report(f.study, f.model, payload)) + "\n"
    if f.out:
        pathlib.Path(f.out).write_text(text)
    print(text, end="")


if __name__ == "__main__":
    define_flags()
    app.run(main)
