"""Validation of model fields: named choices, per-level tuples, and rate / keep-probability pairs.

The posts speak of keep probability, the code of drop rate. A model config may give either for each
dropout site (`<site>_rate` or `<site>_keep_prob`, which wins when set); `resolve_rate` turns the
pair into one rate and `record_rate_pairs` writes both back, so a recorded config shows both.
"""

from collections.abc import Sequence

from dropout_study import dropout, errors, layers
from dropout_study.masks import check_sampler

# Variants that act elementwise, for dropout on (N, F) features or time-major sequences.
ELEMENTWISE_VARIANTS = tuple(v for v in layers.VARIANTS if v not in ("spatial", "dropblock"))


def check_level_rates(name: str, rates: Sequence, levels: int) -> None:
    """Raises ValueError unless `rates` has one entry per level, each a valid dropout rate."""
    rates = tuple(rates)
    if len(rates) != levels:
        raise ValueError(
            f"{name}={rates!r} has {len(rates)} entries but the model has {levels} levels; "
            f"give one value per level."
        )
    check_rates(name, rates)


def active(train: bool, dropout_flag: bool | None) -> bool:
    """Dropout is on iff `train` if `dropout_flag` is None, else iff `dropout_flag` (MC dropout)."""
    return train if dropout_flag is None else dropout_flag


def resolve_rate(site: str, rate, keep_prob) -> float:
    """The drop rate of a dropout site: 1 - `keep_prob` when a keep probability is set, else `rate`.

    A keep probability takes precedence so that a sweep can override it alone on the command line
    (`--config.model.output_keep_prob=0.8`) while `<site>_rate` keeps its default.
    """
    if keep_prob is None:
        return dropout.check_rate(rate, f"model.{site}_rate")
    try:
        return dropout.keep_to_rate(keep_prob)
    except ValueError as error:
        raise ValueError(f"model.{site}_keep_prob: {error}") from None


def record_rate_pairs(config, sites: Sequence[str]):
    """Copy of `config` with `<site>_rate` and `<site>_keep_prob` both set for every site."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        for site in sites:
            rate = round(
                resolve_rate(site, config[f"{site}_rate"], config[f"{site}_keep_prob"]), 12
            )
            config[f"{site}_rate"] = rate
            config[f"{site}_keep_prob"] = 1.0 - rate
    return config


def check_dropout(name: str, variant: str, sampler: str, allowed=layers.VARIANTS) -> None:
    """Raises ValueError unless `variant` is usable at this site and `sampler` is known."""
    errors.check_choice(name, variant, allowed)
    check_sampler(sampler)


def check_rates(name: str, rates) -> None:
    """Raises ValueError unless every entry of `rates` (a rate or a tuple) is in [0, 1)."""
    for rate in rates if isinstance(rates, (tuple, list)) else (rates,):
        dropout.check_rate(rate, name)
