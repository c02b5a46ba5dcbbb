"""Post 002's claims: what sits between convolutions (CIFAR-100), and Cutout.

The case names below are the keys of the `between` sweep in configs/studies/post002.py, which
imports them from here.
"""

from dropout_study.claims.core import SCORES, beats, below, dataset, one, registry

NONE, DROPOUT, SPATIAL, BN, BN_DROPOUT, BN_CUTOUT = (
    "none",
    "dropout",
    "spatial",
    "bn",
    "bn_dropout",
    "bn_cutout",
)
CONDITIONS = (*SCORES, dataset("cifar100"))  # the post's claims are about CIFAR-100

CLAIMS = []
claim = registry("post002", CLAIMS)


def _arch(table, case):
    return one(table, sweep="between", case=case)


def _compare(case_a, case_b, metric=None, lower=False):
    """Parts: case_a beats case_b (or has the lower `metric`)."""

    def parts(table):
        a, b = _arch(table, case_a), _arch(table, case_b)
        if lower:
            return [below(table, a, b, metric)]
        return [beats(table, a, b) if metric is None else beats(table, a, b, metric)]

    return parts


@claim(
    "002.1",
    "Batch-norm between convolutions is best.",
    "BN best",
    "test accuracy, bn minus none, dropout, bn+dropout and spatial > 0, paired",
    CONDITIONS,
)
def _bn_best(table):
    bn = _arch(table, BN)
    return [beats(table, bn, _arch(table, c)) for c in (NONE, DROPOUT, BN_DROPOUT, SPATIAL)]


claim(
    "002.2",
    "Dropout between convolutions is worse than nothing.",
    "dropout < none",
    "test accuracy, none minus dropout > 0, paired",
    CONDITIONS,
)(_compare(NONE, DROPOUT))

claim(
    "002.3",
    "Batch-norm converges in fewer epochs.",
    "BN faster",
    "converge epoch (first within 1 pt of the run's best validation accuracy), bn minus none "
    "< 0, paired",
    CONDITIONS,
)(_compare(BN, NONE, "converge_epoch", lower=True))


@claim(
    "002.4",
    "Spatial (channel) dropout works where element dropout does not.",
    "spatial > dropout",
    "test accuracy, spatial minus dropout > 0 and spatial minus none > 0, paired",
    CONDITIONS,
)
def _spatial(table):
    spatial = _arch(table, SPATIAL)
    return [beats(table, spatial, _arch(table, DROPOUT)), beats(table, spatial, _arch(table, NONE))]


claim(
    "002.5",
    "Cutout helps.",
    "Cutout > none",
    "test accuracy, bn+cutout minus bn > 0, paired",
    CONDITIONS,
)(_compare(BN_CUTOUT, BN))
