"""The claim machinery on synthetic runs with a known effect and spread: each verdict, the
validity conditions, the Holm correction and the minimal detectable effect."""

import numpy as np
import pytest

from dropout_study import claims, report, stats
from dropout_study.claims import core

SPREAD = 0.01  # seed-to-seed sd of each paired difference (accuracy fraction)


def _rows(effects, seeds, *, spread=SPREAD, best_epoch=5, epochs=20, validation="holdout"):
    """Runs of trial "base" and one trial per effect: acc(trial) - acc(base) ~ effect."""
    rng = np.random.default_rng(len(seeds))
    rows = []
    for seed in seeds:
        base = 0.70 + 0.03 * rng.standard_normal()  # seed effect shared by every trial
        cells = {
            "base": base,
            **{t: base + e + spread * rng.standard_normal() for t, e in effects.items()},
        }
        for trial, acc in cells.items():
            rows.append(
                {
                    "trial": trial,
                    "seed": seed,
                    "params": {"sweep": "s", "case": trial},
                    "metrics": {
                        core.ACC: acc,
                        "best_epoch": best_epoch,
                        "epochs_run": epochs,
                        "num_epochs": epochs,
                    },
                    "facts": {"dataset": "cifar100", "validation": validation},
                }
            )
    return rows


def _claim(cases, conditions=core.SCORES):
    """'Each case beats base', one part per case."""

    def parts(table):
        base = core.one(table, case="base")
        return [core.beats(table, core.one(table, case=c), base) for c in cases]

    return core.Claim(
        "T.1", "synthetic", "each case beats base", "+", "diff > 0", parts, conditions
    )


def _verdict(rows, cases, **kwargs):
    table = stats.Table(rows, steps=report.STEPS, exact=report.EXACT)
    return claims.evaluate(_claim(cases, **kwargs), table)


def test_an_effect_far_above_the_mde_is_supported():
    outcome = _verdict(_rows({"a": 0.05, "b": 0.04}, range(5)), ["a", "b"])
    assert outcome.verdict == stats.SUPPORTED
    for part in outcome.parts:  # the MDE, from the spread, is well below the effect
        mde = stats.minimal_detectable_effect(part.estimate)
        assert 0 < mde < 0.04 and mde == pytest.approx(3.7 * SPREAD / np.sqrt(5), rel=0.6)


def test_no_effect_with_few_seeds_is_inconclusive():
    assert _verdict(_rows({"a": 0.0}, range(3)), ["a"]).verdict == stats.INCONCLUSIVE


def test_a_failed_validity_condition_makes_the_claim_untested():
    still_improving = _rows({"a": 0.05}, range(5), best_epoch=19)  # 95% of 20 epochs
    outcome = _verdict(still_improving, ["a"])
    assert outcome.verdict == stats.UNTESTED
    assert [c.text for c, _ in outcome.failed()] == [core.CONVERGED.text]
    on_test = _verdict(_rows({"a": -0.05}, range(5), validation="test"), ["a"])
    assert (
        on_test.verdict == stats.UNTESTED and "selected on the test split" in on_test.failed()[0][1]
    )
    wrong_data = _verdict(
        _rows({"a": 0.05}, range(5)), ["a"], conditions=(core.dataset("cifar10"),)
    )
    assert wrong_data.verdict == stats.UNTESTED and "not cifar10" in wrong_data.failed()[0][1]
    short = _verdict(_rows({"a": 0.05}, range(5)), ["a"], conditions=(core.min_epochs(25),))
    assert short.verdict == stats.UNTESTED


def test_one_part_against_the_claim_contradicts_only_after_holm():
    """A part whose own test just rejects (p below 2.5%) is not enough among many parts."""
    seeds = range(4)
    # Find an effect whose part alone is contradicted but whose p is above 2.5% / 6.
    for effect in np.linspace(-0.005, -0.03, 26):
        rows = _rows({"a": effect, **{f"n{k}": 0.0 for k in range(5)}}, seeds)
        outcome = _verdict(rows, ["a", *[f"n{k}" for k in range(5)]])
        alone = outcome.parts[0].decision
        if alone.verdict == stats.CONTRADICTED and alone.p_outside > stats.ALPHA / 6:
            break
    else:
        pytest.fail("no effect gave a part that is contradicted alone but not after Holm")
    assert outcome.verdict == stats.INCONCLUSIVE
    assert _verdict(rows, ["a"]).verdict == stats.CONTRADICTED  # the same part alone
    strong = _rows({"a": -0.2, **{f"n{k}": 0.0 for k in range(5)}}, seeds)
    assert _verdict(strong, ["a", *[f"n{k}" for k in range(5)]]).verdict == stats.CONTRADICTED


def test_every_committed_claim_is_decided_by_these_rules():
    assert len(claims.CLAIMS) == 30 and len({c.id for c in claims.CLAIMS}) == 30
    score_claims = [c for c in claims.CLAIMS if core.HELDOUT in c.conditions]
    assert all(core.CONVERGED in c.conditions for c in score_claims if c.id != "000.6")
    assert all(any("cifar100" in k.text for k in c.conditions) for c in claims.for_study("post002"))
