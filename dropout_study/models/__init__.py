"""The posts' models, built from an ml_collections model config.

`default_config(name)` lists every field of a model with its default (the module's own defaults);
`resolve_config` fills missing fields from it, rejects unknown ones and records each text dropout
site both as a rate and a keep probability; `create_model` builds the Linen module.
Every model is called as `model.apply(variables, x, train=..., dropout=...)`: batch-norm uses
batch statistics iff `train`, dropout is on iff `train` unless `dropout` says otherwise
(MC dropout: train=False, dropout=True).
"""

import dataclasses

import flax.linen as nn
import ml_collections
from ml_collections import config_dict

from dropout_study import errors
from dropout_study.models import fields
from dropout_study.models.conv_family import ConvFamily
from dropout_study.models.mlp import MLP
from dropout_study.models.text import LSTMClassifier, TextCNN
from dropout_study.models.unet import UNet
from dropout_study.models.vgg import VGG

__all__ = ["MODELS", "build", "create_model", "default_config", "resolve_config"]

MODELS = {
    "text_cnn": TextCNN,
    "lstm": LSTMClassifier,
    "vgg": VGG,
    "conv_family": ConvFamily,
    "unet": UNet,
    "mlp": MLP,
}

# Dropout sites that configs may give as a keep probability (`<site>_keep_prob`), as post 000 does.
KEEP_PROB_SITES = {"text_cnn": ("output",), "lstm": ("input", "recurrent", "output")}


def _check_name(name) -> str:
    errors.check_choice("model.name", name, tuple(MODELS))
    return name


def _module_fields(cls) -> dict:
    """The module's own dataclass fields and defaults (without Flax's `parent` and `name`)."""
    return {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.init and f.name not in ("parent", "name")
    }


def default_config(name: str) -> ml_collections.ConfigDict:
    """Every field of model `name` with its default, plus `name` and any `<site>_keep_prob`."""
    config = ml_collections.ConfigDict({"name": _check_name(name)})
    for field, default in _module_fields(MODELS[name]).items():
        config[field] = tuple(default) if isinstance(default, list) else default
    for site in KEEP_PROB_SITES.get(name, ()):
        config[f"{site}_keep_prob"] = config_dict.placeholder(float)
    return config


def resolve_config(model_config) -> ml_collections.ConfigDict:
    """Complete, checked copy of `model_config`: defaults filled in, rates and keep probs both set.

    Raises ValueError for an unknown model name or field.
    """
    name = _check_name(model_config.get("name"))
    config = default_config(name)
    unknown = sorted(set(model_config) - set(config))
    if unknown:
        raise ValueError(
            f"model.{unknown[0]} is not a field of model {name!r} (unknown: {unknown}); its fields "
            f"are {sorted(config)}."
        )
    with config.unlocked():
        for field in model_config:
            value = model_config[field]
            config[field] = tuple(value) if isinstance(value, list) else value
    return fields.record_rate_pairs(config, KEEP_PROB_SITES.get(name, ()))


def create_model(model_config) -> nn.Module:
    """The Linen module described by `model_config` (see `resolve_config`)."""
    return build(resolve_config(model_config))


def build(config) -> nn.Module:
    """The Linen module of a model config that `resolve_config` already completed."""
    kwargs = {
        field: value
        for field, value in config.items()
        if field != "name" and not field.endswith("_keep_prob")
    }
    return MODELS[config.name](**kwargs)
