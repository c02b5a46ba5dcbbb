"""Post 004's claims: SpatialDropout2D against Dropout in a denoising UNet.

The case names below are the keys of the `unet` sweep in configs/studies/post004.py, which
imports them from here.
"""

from dropout_study.claims.core import SCORES, beats, below, one, ratio_part, registry

NONE, DROPOUT, SPATIAL = "none", "dropout", "spatial"

CLAIMS = []
claim = registry("post004", CLAIMS)


def _unet(table, case):
    return one(table, sweep="unet", case=case)


@claim(
    "004.1",
    "Spatial dropout is faster per epoch than element dropout, which more than doubles the "
    "time per epoch.",
    "dropout > 2x",
    "epoch time dropout / spatial > 1 and dropout / none > 2 (geometric means over seeds)",
)
def _faster(table):
    drop, spatial, none = (_unet(table, c) for c in (DROPOUT, SPATIAL, NONE))
    times = {t: table.values(t, "epoch_time") for t in (drop, spatial, none)}
    return [
        ratio_part("epoch_time dropout / spatial", times[drop], times[spatial], low=1.0),
        ratio_part("epoch_time dropout / none", times[drop], times[none], low=2.0),
    ]


@claim(
    "004.2",
    "Spatial dropout gives a better denoiser than element dropout.",
    "spatial better",
    "on the test split at the validation-selected checkpoint: loss spatial minus dropout < 0; "
    "PSNR spatial minus dropout > 0, paired",
    SCORES,
)
def _better(table):
    drop, spatial = _unet(table, DROPOUT), _unet(table, SPATIAL)
    return [below(table, spatial, drop, "test_loss"), beats(table, spatial, drop, "test_psnr")]
