"""Post 001's claims: the VGG-like CIFAR-10 net, batch-norm and dropout at each depth.

The case names below are the keys of the `vgg` sweep in configs/studies/post001.py, which
imports them from here.
"""

from dropout_study import stats
from dropout_study.claims.core import SAME_TIME, SCORES, Part, beats, one, registry

PLAIN, BN, HALF = "plain", "bn", "half"
CONV0P2, CONV0P5 = "conv0p2", "conv0p5"
DENSE0P2, DENSE0P5 = "dense0p2", "dense0p5"
CONV0P2_DENSE0P5 = "conv0p2_dense0p5"
WIDE_NONE, WIDE_DENSE0P5, WIDE_CONV0P2_DENSE0P5 = (
    "wide_none",
    "wide_dense0p5",
    "wide_conv0p2_dense0p5",
)

CLAIMS = []
claim = registry("post001", CLAIMS)


def _vgg(table, case):
    return one(table, sweep="vgg", case=case)


def _pairs(*pairs):
    """Parts 'a beats b' for (a, b) case names of the vgg sweep."""
    return lambda table: [beats(table, _vgg(table, a), _vgg(table, b)) for a, b in pairs]


claim(
    "001.1",
    "Batch-norm beats the plain network.",
    "BN > plain",
    "test accuracy, bn minus plain, paired; region > 0",
    SCORES,
)(_pairs((BN, PLAIN)))

claim(
    "001.2",
    "Conv dropout 0.2 beats the batch-norm baseline; conv dropout 0.5 hurts.",
    "0.2 > BN > 0.5",
    "conv0.2 minus bn > 0 and bn minus conv0.5 > 0, paired",
    SCORES,
)(_pairs((CONV0P2, BN), (BN, CONV0P5)))

claim(
    "001.3",
    "Half the filters without dropout beats full filters with conv dropout 0.5.",
    "half > full+0.5",
    "half minus conv0.5 > 0, paired",
    SCORES,
)(_pairs((HALF, CONV0P5)))

claim(
    "001.4",
    "Dense dropout helps marginally: 0.5 > 0.2 > 0.",
    "0.5 > 0.2 > 0",
    "dense0.5 minus dense0.2 > 0 and dense0.2 minus bn > 0, paired",
    SCORES,
)(_pairs((DENSE0P5, DENSE0P2), (DENSE0P2, BN)))


@claim(
    "001.5",
    "Conv dropout 0.2 with dense dropout 0.5 is the best configuration.",
    "0.8831",
    "conv0.2+dense0.5 minus every other configuration > 0, paired (absolute accuracy not "
    "compared: the cpu scale trains a narrower net on a CIFAR-10 subset)",
    SCORES,
)
def _best_overall(table):
    top = _vgg(table, CONV0P2_DENSE0P5)
    others = [t for t in table.trials(sweep="vgg") if t != top]
    others += table.trials(sweep="blocks")
    return [beats(table, top, t) for t in others]


claim(
    "001.6",
    "With 1024-unit dense layers: conv+dense dropout > dense only > none.",
    "conv+dense > dense > none",
    "with doubled dense width (1024 in the post): conv0.2+dense0.5 minus dense0.5 > 0 and "
    "dense0.5 minus no dropout > 0, paired",
    SCORES,
)(_pairs((WIDE_CONV0P2_DENSE0P5, WIDE_DENSE0P5), (WIDE_DENSE0P5, WIDE_NONE)))


def _one_block(table):
    """{(block (1-based), rate): trial} of the 'blocks' sweep (dropout in one block only)."""
    found = {}
    for t in table.trials(sweep="blocks"):
        rates = table.params(t)["rates"]
        active = [i for i, r in enumerate(rates) if r > 0]
        if len(active) == 1:
            found[active[0] + 1, rates[active[0]]] = t
    return found


@claim(
    "001.7",
    "Dropout in one block only: shallow blocks are more sensitive; the third block gains "
    "even at 0.5.",
    "block 3 gains at 0.5",
    "block-3-only minus block-1-only > 0 at each one-block rate run (0.2, 0.5); block-3-only "
    "at 0.5 minus bn > 0, paired",
    SCORES,
)
def _blocks(table):
    base, cells = _vgg(table, BN), _one_block(table)
    rates = sorted({r for b, r in cells if (1, r) in cells and (3, r) in cells})
    if 0.5 not in rates:
        raise stats.MissingData("no 'blocks' trials with rate 0.5 in block 1 and in block 3")
    # Shallow blocks more sensitive: the same rate costs more (gains less) in block 1 than in 3.
    parts = [beats(table, cells[3, r], cells[1, r]) for r in rates]
    parts.append(beats(table, cells[3, 0.5], base))
    return parts


@claim(
    "001.8",
    "Dropout needs more epochs but not more time per epoch.",
    "more epochs, same time",
    "converge epoch (first within 1 pt of the run's best validation accuracy), "
    "conv0.2+dense0.5 minus bn > 0; epoch time ratio in (1/1.1, 1.1)",
    SCORES,
)
def _epochs_not_time(table):
    drop, base = _vgg(table, CONV0P2_DENSE0P5), _vgg(table, BN)
    ratio = table.ratio(drop, base, "epoch_time")
    return [
        Part(f"converge_epoch: {drop} - {base}", table.difference(drop, base, "converge_epoch"), 0),
        Part(f"epoch_time {drop} / {base}", ratio, 1 / SAME_TIME, SAME_TIME, unit="x"),
    ]
