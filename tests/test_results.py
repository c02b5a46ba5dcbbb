"""The committed study results: every run of the cpu scale finished, and each report regenerates
from its committed raw metrics exactly."""

import json
import pathlib
import shlex

import pytest

from dropout_study import report, results_index, run_files, sweeps
from dropout_study.claims import core as claims_core

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
# Every study config; each must have its cpu-scale results committed under results/.
STUDIES = sorted(p.stem for p in (REPO / "configs" / "studies").glob("post*.py"))
TABLES = ("runs.csv", "cells.csv", "differences.csv")


def _without_regenerate_line(text):
    """REPORT.md less the line naming its own output folder."""
    return [line for line in text.splitlines() if not line.startswith("Report regenerated with")]


CONFIGS = REPO / "configs" / "studies"


@pytest.mark.parametrize("name", STUDIES)
def test_committed_study_holds_every_run_of_its_cpu_scale(name):
    manifest, records = run_files.load_study(RESULTS / name / "raw")
    assert manifest["name"] == name and manifest["scale"] == "cpu"
    if not results_index.is_current(RESULTS, name, CONFIGS):
        # Runs of an earlier cpu scale, said so in results/README.md: they selected on the test
        # split, so none of their score claims may be decided.
        for outcome in results_index.study_outcomes(RESULTS, name):
            if claims_core.HELDOUT in outcome.claim.conditions:
                assert outcome.verdict == "untested", outcome.claim.id
        return
    config = sweeps.load_config_file(CONFIGS / f"{name}.py", "cpu")
    expected = {(t.name, seed) for t in sweeps.expand(config) for seed in config.seeds}
    assert {(r.trial, r.seed) for r in records if r.status == run_files.DONE} == expected


@pytest.mark.parametrize("name", STUDIES)
def test_committed_report_regenerates_from_its_raw_metrics(name, tmp_path):
    committed = RESULTS / name
    report.write_report(committed / "raw", tmp_path)
    for table in TABLES:
        assert (tmp_path / table).read_text() == (committed / table).read_text(), table
    assert _without_regenerate_line((tmp_path / "REPORT.md").read_text()) == (
        _without_regenerate_line((committed / "REPORT.md").read_text())
    )
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(
        p.name for p in committed.glob("*.png")
    )


def test_the_claims_table_of_results_readme_regenerates():
    text = (RESULTS / results_index.README).read_text()
    assert results_index.render(RESULTS, text, CONFIGS) == text
    assert text.count("\n| 0") == 30  # one row per claim


def test_committed_raw_data_names_no_path_of_the_machine_that_made_it():
    for path in RESULTS.glob("*/raw/**/summary.json"):
        workdir = json.loads(path.read_text())["workdir"]
        assert not pathlib.PurePath(workdir).is_absolute(), (path, workdir)
    for path in RESULTS.glob("*/raw/study.json"):
        flags = shlex.split(json.loads(path.read_text())["command"])
        workdirs = [f.split("=", 1)[1] for f in flags if f.startswith("--workdir=")]
        assert all(not pathlib.PurePath(w).is_absolute() for w in workdirs), (path, workdirs)
