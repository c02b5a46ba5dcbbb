"""The run config: every field at its default, and validation before any compute.

`default_config(dataset, model)` is what the files in configs/ start from. `validate` raises a
ValueError naming the field and the fix: required fields and their types, known task, dataset,
model and optimiser names, dropout rates in [0, 1) (every `model` field named `*rate` or
`*rates`; keep probabilities in (0, 1]), ranges of the training fields. `check_workdir` refuses a
workdir that holds a run of a different config.
"""

import json
import math
import numbers
import os
import pathlib

import ml_collections

from dropout_study import data, dropout, errors, models, optim, run_files, train_step

TASKS = ("classification", "denoise")
MONITORS = {"classification": ("val_accuracy", "val_loss"), "denoise": ("val_psnr", "val_loss")}
AUGMENTED_DATASETS = ("cifar10", "cifar100")
# The datasets each model takes (token ids, 32x32 images, or image pairs); others take any.
MODEL_DATASETS = {
    "text_cnn": ("imdb",),
    "lstm": ("imdb",),
    "vgg": ("cifar10", "cifar100"),
    "conv_family": ("cifar10", "cifar100"),
    "unet": ("denoise",),
}
# Fields that steer how a run is carried out, not what it computes: they may change on resume.
RUN_CONTROL_FIELDS = ("checkpoint_every_steps", "log_every_steps", "device_resident")
# Fields added after runs were saved, with the value that a saved config without them ran with.
LEGACY_DEFAULTS = {"compute_dtype": "float32", "device_resident": False}

_REQUIRED = {
    "seed": numbers.Integral,
    "task": str,
    "batch_size": numbers.Integral,
    "eval_batch_size": numbers.Integral,
    "num_epochs": numbers.Integral,
    "compute_dtype": str,
    "device_resident": bool,
    "monitor": str,
    "test_every_epoch": bool,
    "checkpoint_every_steps": numbers.Integral,
    "log_every_steps": numbers.Integral,
    "data.name": str,
    "model.name": str,
    "optimizer.name": str,
    "optimizer.learning_rate": numbers.Real,
    "optimizer.eps": numbers.Real,
    "optimizer.momentum": numbers.Real,
    "optimizer.weight_decay": numbers.Real,
    "optimizer.schedule": str,
    "optimizer.grad_clip_norm": numbers.Real,
    "regularization.l1": numbers.Real,
    "regularization.l2": numbers.Real,
    "early_stopping.patience": numbers.Integral,
    "early_stopping.min_delta": numbers.Real,
    "augment.crop_pad": numbers.Integral,
    "augment.flip": bool,
    "augment.cutout": numbers.Integral,
}


VARIANTS = ("full", "quick")  # the variants of every training config in configs/


def variant_config(dataset, model, arg, *, full_epochs):
    """(variant, config) for `--config=FILE:arg` of a training config file.

    'full' (the default) trains `full_epochs` epochs on the real data (source 'local'); 'quick'
    trains 3 epochs on the sample shipped in the package, logging every 10 steps.
    """
    variant = arg or "full"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}.")
    config = default_config(dataset, model)
    quick = variant == "quick"
    config.data.source = "sample" if quick else "local"
    config.num_epochs = 3 if quick else full_epochs
    if quick:
        config.log_every_steps = 10
    return variant, config


def default_config(dataset, model):
    """A run config with every field: `dataset`'s and `model`'s defaults, training defaults."""
    denoise = dataset == "denoise"
    return ml_collections.ConfigDict(
        {
            "seed": 0,  # seeds initialisation, batch order, dropout masks and augmentation
            "task": "denoise" if denoise else "classification",
            "data": data.default_config(dataset),
            "model": models.default_config(model),
            "batch_size": 64,  # global batch, split over all devices and hosts
            "eval_batch_size": 256,
            "num_epochs": 10,
            "compute_dtype": "float32",  # or bfloat16: float32 parameters and optimizer state
            "device_resident": False,  # training split uploaded once, batches gathered there
            "monitor": "val_psnr" if denoise else "val_accuracy",  # best checkpoint, early stop
            "test_every_epoch": False,  # also score the test split each epoch (never selects)
            "checkpoint_every_steps": 500,  # mid-epoch 'latest' checkpoints; 0 = epoch ends only
            "log_every_steps": 100,  # progress lines (running loss) and the NaN check
            "optimizer": optim.default_config(),
            "regularization": {"l1": 0.0, "l2": 0.0},  # Keras-style penalties on kernels
            "early_stopping": {"patience": 0, "min_delta": 0.0},  # patience 0 = never stop early
            "augment": {"crop_pad": 0, "flip": False, "cutout": 0},  # images only; 0/False = off
        }
    )


def _get(config, dotted):
    node = config
    for part in dotted.split("."):
        if part not in node:
            raise ValueError(
                f"config.{dotted} is missing; it is required (start from a file in configs/, "
                f"whose get_config() sets every field)."
            )
        node = node[part]
    return node


def _check_min(name, value, low, *, strict=False):
    if value < low or (strict and value == low) or math.isnan(value):
        bound = f"> {low}" if strict else f">= {low}"
        raise ValueError(f"config.{name}={value!r} is out of range; it must be {bound}.")


def _walk(node, prefix):
    """(dotted name, value) for every leaf of a nested config."""
    for key, value in node.items():
        name = f"{prefix}.{key}"
        if hasattr(value, "items"):
            yield from _walk(value, name)
        else:
            yield name, value


def check_rates(model_config):
    """Every `*rate(s)` field of the model config in [0, 1), every `*keep_prob(s)` in (0, 1].

    None means "not set" (a model takes `<site>_keep_prob=None` to mean: use `<site>_rate`).
    """
    for name, value in _walk(model_config, "config.model"):
        field = name.rsplit(".", 1)[-1]
        values = value if isinstance(value, (tuple, list)) else [value]
        for v in (v for v in values if v is not None):
            if field.endswith(("rate", "rates")):
                dropout.check_rate(v, name=name)
            elif field.endswith(("keep_prob", "keep_probs")):
                try:
                    dropout.keep_to_rate(v)
                except ValueError as error:
                    raise ValueError(f"{name}: {error}") from None


def validate(config):
    """Raises ValueError naming the first invalid field of a run config; returns its model
    config completed by `models.resolve_config` (resolved here once for the whole run)."""
    for name, kind in _REQUIRED.items():
        value = _get(config, name)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(
                f"config.{name}={value!r} has type {type(value).__name__}; "
                f"it must be {kind.__name__}."
            )
    errors.check_choice("config.task", config.task, TASKS)
    errors.check_choice("config.data.name", config.data.name, data.DATASETS)
    data.resolve(config.data)
    errors.check_choice("config.model.name", config.model.name, models.MODELS)
    model_config = models.resolve_config(config.model)
    errors.check_choice("config.optimizer.name", config.optimizer.name, optim.OPTIMIZERS)
    errors.check_choice("config.optimizer.schedule", config.optimizer.schedule, optim.SCHEDULES)
    if (config.task == "denoise") != (config.data.name == "denoise"):
        raise ValueError(
            f"config.task={config.task!r} does not fit config.data.name={config.data.name!r}; "
            f"the 'denoise' task goes with the 'denoise' dataset and only with it."
        )
    errors.check_choice("config.monitor", config.monitor, MONITORS[config.task])
    errors.check_choice("config.compute_dtype", config.compute_dtype, train_step.COMPUTE_DTYPES)
    fits = MODEL_DATASETS.get(config.model.name, data.DATASETS)
    if config.data.name not in fits:
        raise ValueError(
            f"config.model.name={config.model.name!r} does not take config.data.name="
            f"{config.data.name!r}; it takes {fits}."
        )
    for name in ("batch_size", "eval_batch_size", "num_epochs", "log_every_steps"):
        _check_min(name, config[name], 1)
    _check_min("checkpoint_every_steps", config.checkpoint_every_steps, 0)
    _check_min("optimizer.learning_rate", config.optimizer.learning_rate, 0.0, strict=True)
    _check_min("optimizer.eps", config.optimizer.eps, 0.0)
    _check_min("optimizer.grad_clip_norm", config.optimizer.grad_clip_norm, 0.0)
    if not 0.0 <= config.optimizer.momentum < 1.0:
        raise ValueError(
            f"config.optimizer.momentum={config.optimizer.momentum!r} is out of range [0, 1)."
        )
    _check_min("optimizer.weight_decay", config.optimizer.weight_decay, 0.0)
    if config.optimizer.weight_decay and config.optimizer.name != "adamw":
        raise ValueError(
            f"config.optimizer.weight_decay={config.optimizer.weight_decay!r} needs "
            f"optimizer.name='adamw' (decoupled decay); for a penalty in the loss set "
            f"regularization.l2 instead."
        )
    for name in ("regularization.l1", "regularization.l2", "early_stopping.min_delta"):
        _check_min(name, _get(config, name), 0.0)
    for name in ("early_stopping.patience", "augment.crop_pad", "augment.cutout"):
        _check_min(name, _get(config, name), 0)
    augmenting = config.augment.crop_pad or config.augment.flip or config.augment.cutout
    if augmenting and config.data.name not in AUGMENTED_DATASETS:
        raise ValueError(
            f"config.augment is set ({config.augment.to_dict()}) but config.data.name="
            f"{config.data.name!r} is not an image classification dataset "
            f"{AUGMENTED_DATASETS}; set augment.crop_pad=0, augment.flip=False, augment.cutout=0."
        )
    check_rates(config.model)
    return model_config


def check_against_data(config, info):
    """The model fits the loaded data: class count, and an embedding as large as the vocabulary."""
    model = config.model
    classes = info.get("num_classes")
    if config.task == "classification" and model.get("num_classes", classes) != classes:
        raise ValueError(
            f"config.model.num_classes={model.num_classes} but the data ({config.data.name}) has "
            f"{classes} classes; set --config.model.num_classes={classes}."
        )
    if "vocab_size" in model and "vocab_size" in info and model.vocab_size < info["vocab_size"]:
        raise ValueError(
            f"config.model.vocab_size={model.vocab_size} is smaller than the data's vocabulary "
            f"({info['vocab_size']} ids, config.data.num_words={config.data.num_words}); set "
            f"--config.model.vocab_size={info['vocab_size']}."
        )


def _flatten(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_json(config):
    """The config as JSON text, the form in which a run records it in its workdir."""
    return config.to_json_best_effort(indent=2, sort_keys=True)


def _check_writable(workdir):
    """The workdir, or the nearest folder above it that exists, is a writable directory."""
    existing = workdir.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == workdir.absolute() else f"lies under the file {existing}"
        raise ValueError(
            f"--workdir {workdir} {where}, not a directory. Fix: pass a directory path "
            "(missing folders are created)."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"--workdir {workdir} cannot be written ({existing} is read-only to this user). "
            "Fix: pass a writable directory."
        )


def finished_summary(config, workdir):
    """The summary dict of a finished run of `config` in `workdir`, or None if unfinished.

    Checks the workdir first (check_workdir), so a finished run of another config is refused.
    """
    check_workdir(config, workdir)
    return run_files.read_json(run_files.path(workdir) / run_files.SUMMARY_FILE)


def config_changes(saved: dict, new: dict) -> dict:
    """{dotted field: (saved value, new value)} where two configs in their saved (JSON) form
    differ; a field that a config predates counts as its LEGACY_DEFAULTS value."""
    old, new = (_flatten({**LEGACY_DEFAULTS, **c}) for c in (saved, new))
    absent = "<absent>"
    return {
        k: (old.get(k, absent), new.get(k, absent))
        for k in sorted(old.keys() | new.keys())
        if old.get(k, absent) != new.get(k, absent)
    }


def check_workdir(config, workdir):
    """Refuses a workdir that cannot hold a run, or holds a run of a different config.

    Resuming with a different config would mix two runs' results in one workdir. Fields in
    RUN_CONTROL_FIELDS may differ. Nothing is created here. A bucket (gs://) must be reachable.
    """
    if run_files.is_remote(workdir):
        run_files.check_reachable(workdir)
    else:
        _check_writable(pathlib.Path(workdir))
    old = run_files.read_json(run_files.path(workdir) / run_files.CONFIG_FILE)
    if old is None:
        return
    differ = config_changes(old, json.loads(config_json(config)))
    differ = {k: v for k, v in differ.items() if k not in RUN_CONTROL_FIELDS}
    if differ:
        changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differ.items())
        raise ValueError(
            f"workdir {workdir} holds a run of a different config ({changes}). Refusing to mix "
            f"results: use a new --workdir, or delete {workdir} to start this run afresh."
        )
