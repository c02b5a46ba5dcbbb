"""Train, validation and test splits: the Split/Dataset types, a stratified holdout and size caps.

With validation='holdout' the validation split is held out of the training data (stratified,
fixed seed) and selects epochs, checkpoints and hyper-parameters; the test split is scored only
at the selected checkpoint. With validation='test' (the posts' protocol) both are the test split.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
    """Examples x (N, ...) and targets y (N, ...): labels, or clean images for denoising."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"Split has {len(self.x)} inputs but {len(self.y)} targets.")

    def __len__(self):
        return len(self.x)

    def take(self, indices):
        """The examples at `indices`, in that order."""
        return Split(self.x[indices], self.y[indices])


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What `load` returns: the three splits and a record of where they came from (`info`)."""

    train: Split
    validation: Split
    test: Split
    info: dict


def holdout_indices(labels, fraction, seed):
    """(train_idx, holdout_idx), both sorted: round(fraction * N) rows held out, stratified.

    Each class gives floor(fraction * its count) rows, and the rows still missing come from the
    classes with the largest remainders, so the holdout keeps the class balance.
    """
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.floor(fraction * counts).astype(int)
    missing = int(round(fraction * len(labels))) - quotas.sum()
    quotas[np.argsort(-(fraction * counts - quotas), kind="stable")[:missing]] += 1
    rng = np.random.default_rng(seed)
    held = [
        rng.permutation(np.flatnonzero(labels == label))[:quota]
        for label, quota in zip(classes, quotas, strict=True)
    ]
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held), held


def subset_indices(n, cap, seed):
    """Sorted indices of a fixed random subset of size min(cap, n); cap 0 keeps all n."""
    if cap == 0 or cap >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:cap])


def assign(train, test, config):
    """Chooses the validation and test splits and applies the size caps.

    Returns (train, validation, test, info). The holdout is stratified by the labels train.y:
    each class loses the same fraction. With validation='test' the test split is the validation
    split (same examples, max_eval cap), as the posts did.
    """
    holdout = config.validation == "holdout"
    if holdout:
        keep, held = holdout_indices(train.y, config.holdout_fraction, config.split_seed)
        train, validation = train.take(keep), train.take(held)
    else:
        validation = test
    available = {"train": len(train), "validation": len(validation), "test": len(test)}
    train = train.take(subset_indices(len(train), config.max_train, config.split_seed))
    validation = validation.take(
        subset_indices(len(validation), config.max_eval, config.split_seed + 1)
    )
    if holdout:
        test = test.take(subset_indices(len(test), config.max_test, config.split_seed + 2))
    else:
        test = validation
    for split_name, split in (("train", train), ("validation", validation), ("test", test)):
        if len(split) == 0:
            raise ValueError(
                f"The {split_name} split is empty (validation={config.validation!r}, "
                f"holdout_fraction={config.holdout_fraction}); use a larger holdout_fraction or "
                "more data."
            )
    info = dict(
        validation=config.validation,
        holdout_fraction=config.holdout_fraction if holdout else 0.0,
        split_seed=config.split_seed,
        max_train=config.max_train,
        max_eval=config.max_eval,
        max_test=config.max_test if holdout else config.max_eval,
        available=available,
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
    )
    return train, validation, test, info
