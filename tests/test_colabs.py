"""The notebooks of colabs/: committed clean, and run top to bottom in their small-data mode.

Each notebook runs in a fresh kernel of this interpreter from the repository root, with
DROPOUT_STUDY_SMALL=1 (read by its parameters cell). A probe cell appended to the in-memory copy
then reports the notebook's own variables as JSON, so the test checks what the notebook computed
and showed, not only that it ran. reading_a_study reads the committed results/post000/raw, its
default.
"""

import json
import math
import pathlib
import sys

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from dropout_study import claims, colab_links, masks, report, run_files

REPO = pathlib.Path(__file__).resolve().parents[1]
COLABS = REPO / "colabs"
NOTEBOOKS = ("quickstart", "dropout_variants", "timing", "mc_dropout", "reading_a_study")
COMMITTED_STUDY = REPO / "results" / "post000" / "raw"
CELL_TIMEOUT_S = 300

PROBES = {
    "quickstart": """{
    "epochs": {n: [e["epoch"] for e in h] for n, h in history.items()},
    "plotted_best": {n: max(e["val_accuracy"] for e in h) for n, h in history.items()},
    "best": {n: s["best_val_accuracy"] for n, s in summaries.items()},
    "output_rate": {n: s["model_config"]["output_rate"] for n, s in summaries.items()},
}""",
    "dropout_variants": """{
    "images": image_stats,
    "maps": activation_stats,
    "maps_shape": list(activations.shape),
    "rate": RATE,
}""",
    "timing": """{
    "impl_rows": [{k: r[k] for k in ("impl", "sampler", "effective_rate", "observed_rate",
                   "mask_ms", "dropout_ms")} for r in impl_rows],
    "rates": sorted({r["rate"] for r in rate_rows}),
    "attribution": [r["model"] for r in attribution_rows],
    "compact": [{k: r[k] for k in ("layer", "rate", "ideal_speedup", "masked_ms", "compact_ms")}
                for r in compact_rows],
    "samplers": list(cfg.sampling.samplers),
}""",
    "mc_dropout": """{
    "numbers": {n: {k: float(v) for k, v in d.items()} for n, d in summary_numbers.items()},
    "rows": {n: len(r["mean_probs"]) for n, r in results.items()},
    "sum_to_one": bool(all(np.allclose(r["mean_probs"].sum(-1), 1.0, atol=1e-4)
                           for r in results.values())),
    "num_eval": NUM_EVAL,
    "num_samples": NUM_SAMPLES,
}""",
    "reading_a_study": """{
    "study": manifest["name"],
    "verdicts": {o.claim.id: o.verdict for o in outcomes},
    "shown": claim.id,
    "shown_verdict": outcome.verdict,
    "plots": sorted(p.name for p in out.glob("*.png")),
}""",
}
# Figures each notebook draws at least (the report's plots come on top for reading_a_study).
MIN_FIGURES = {
    "quickstart": 1,
    "dropout_variants": 2,
    "timing": 4,
    "mc_dropout": 3,
    "reading_a_study": 2,
}


def _read(name):
    return nbformat.read(COLABS / f"{name}.ipynb", as_version=4)


def execute(name):
    """Runs colabs/<name>.ipynb plus its probe in a kernel of this interpreter; (nb, probe).

    The kernel inherits this process's environment (DROPOUT_STUDY_* parameters).
    """
    nb = _read(name)
    probe = f"import json, sys\nprint(json.dumps(dict(prefix=sys.prefix, **{PROBES[name]})))"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    # Only ipykernel's own spec, whose argv is sys.executable: never another interpreter's kernel.
    specs = KernelSpecManager(kernel_dirs=[])
    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    client = NotebookClient(
        nb,
        km=kernel,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(REPO)}},
    )
    client.execute()
    streams = [o for o in nb.cells[-1].outputs if o.output_type == "stream" and o.name == "stdout"]
    result = json.loads(streams[-1].text.strip().splitlines()[-1])
    assert result.pop("prefix") == sys.prefix, "the kernel ran another Python environment"
    return nb, result


def figures(nb):
    """PNG outputs (matplotlib inline figures and displayed images) of an executed notebook."""
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.fixture(autouse=True)
def _small_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("DROPOUT_STUDY_SMALL", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' run folders land in tmp_path


def test_notebooks_are_committed_clean_and_start_with_the_colab_setup():
    assert sorted(p.stem for p in COLABS.glob("*.ipynb")) == sorted(NOTEBOOKS)
    for name in NOTEBOOKS:
        nb = _read(name)
        nbformat.validate(nb)
        assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3", name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        setup = nb.cells[0].source
        assert nb.cells[0].cell_type == "code"
        assert setup == colab_links.setup_cell(colab_links.REPOSITORY), name
        assert "except importlib.metadata.PackageNotFoundError:\n    !pip install" in setup, name
        parameters = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(parameters) == 1, name
        wanted = "DROPOUT_STUDY_RESULTS" if name == "reading_a_study" else "DROPOUT_STUDY_SMALL"
        assert wanted in parameters[0].source, name
        text = "".join(c.source for c in nb.cells)
        assert str(REPO.parent) + "/" not in text and "/tmp/" not in text, name
        assert "%matplotlib inline" in text, name


def test_badges_and_clone_cells_follow_one_repository_and_retarget_together(tmp_path):
    readme = (REPO / "README.md").read_text()
    assert "OWNER" not in readme
    assert readme.count(colab_links.badge_prefix(colab_links.REPOSITORY)) == len(NOTEBOOKS)
    copy = tmp_path / "checkout"
    (copy / "colabs").mkdir(parents=True)
    (copy / "README.md").write_text(readme)
    for name in NOTEBOOKS:
        (copy / "colabs" / f"{name}.ipynb").write_bytes((COLABS / f"{name}.ipynb").read_bytes())
    colab_links.retarget(copy, "git@github.com:someone/fork.git")
    moved = (copy / "README.md").read_text()
    assert moved.count("colab.research.google.com/github/someone/fork/blob/main/colabs/") == len(
        NOTEBOOKS
    )
    assert colab_links.badge_prefix(colab_links.REPOSITORY) not in moved
    for name in NOTEBOOKS:
        setup = nbformat.read(copy / "colabs" / f"{name}.ipynb", as_version=4).cells[0].source
        assert 'REPOSITORY = "https://github.com/someone/fork"' in setup, name
        assert "OWNER" not in (COLABS / f"{name}.ipynb").read_text(), name
    colab_links.retarget(copy, colab_links.REPOSITORY)  # and back: byte for byte
    assert (copy / "README.md").read_text() == readme
    for name in NOTEBOOKS:
        assert (copy / "colabs" / f"{name}.ipynb").read_bytes() == (
            COLABS / f"{name}.ipynb"
        ).read_bytes()


def test_a_repository_that_is_not_on_github_is_refused_by_name():
    with pytest.raises(ValueError, match="'https://gitlab.com/a/b' is not a GitHub"):
        colab_links.github_path("https://gitlab.com/a/b")


def test_quickstart_trains_both_models_and_plots_their_metrics():
    nb, got = execute("quickstart")
    assert figures(nb) >= MIN_FIGURES["quickstart"]
    assert got["epochs"] == {"CNN": [1, 2], "LSTM": [1, 2]}
    assert got["output_rate"] == {"CNN": 0.5, "LSTM": 0.5}  # KEEP_PROB = 0.5 reached the models
    for name, best in got["best"].items():
        assert 0.0 < best < 1.0 and got["plotted_best"][name] == best  # curves = the run's record


def test_dropout_variants_statistics_match_the_rate():
    nb, got = execute("dropout_variants")
    assert figures(nb) >= MIN_FIGURES["dropout_variants"]
    keep = 1.0 - masks.effective_rate(got["rate"])
    images, maps = got["images"], got["maps"]
    # 64 images x 32 x 32 x 3 units: the element-wise kept fraction is within 0.01 of keep.
    assert images["inverted"]["kept"] == pytest.approx(keep, abs=0.01)
    assert images["standard"]["kept"] == images["alpha"]["kept"] == images["inverted"]["kept"]
    assert images["Gaussian"]["kept"] == 1.0
    assert 1 - 16**2 / 32**2 <= images["Cutout"]["kept"] <= 1 - 8**2 / 32**2  # clipped squares
    assert 0.5 < images["spatial"]["kept"] < 0.9  # 64 x 3 channel draws
    assert got["maps_shape"][:3] == [64, 15, 15]
    mean_in = maps["inverted"]["mean"][0]
    assert mean_in > 0.0  # after ReLU
    assert maps["inverted"]["mean"][1] == pytest.approx(mean_in, rel=0.05)  # rescaled
    assert maps["standard"]["mean"][1] == pytest.approx(keep * mean_in, rel=0.05)  # not rescaled


def test_timing_notebook_measures_every_sampler_and_layer():
    nb, got = execute("timing")
    assert figures(nb) >= MIN_FIGURES["timing"]
    assert {(r["impl"], r["sampler"]) for r in got["impl_rows"]} >= {
        ("threefry2x32", s) for s in got["samplers"]
    }
    for row in got["impl_rows"]:
        assert row["observed_rate"] == pytest.approx(row["effective_rate"], abs=0.02)
        assert row["mask_ms"] > 0 and row["dropout_ms"] > 0
    assert got["rates"] == [0.3, 0.7] and got["attribution"] == ["imdb_cnn"]
    for row in got["compact"]:
        assert row["masked_ms"] > 0 and row["compact_ms"] > 0
    assert [r["ideal_speedup"] for r in got["compact"]] == pytest.approx([2.0, 256 / 51])


def test_mc_dropout_uncertainty_is_well_formed():
    nb, got = execute("mc_dropout")
    assert figures(nb) >= MIN_FIGURES["mc_dropout"]
    assert got["sum_to_one"] and set(got["rows"].values()) == {got["num_eval"]}
    assert len(got["numbers"]) == 5  # clean, two noise levels, pixelation, JPEG
    for numbers in got["numbers"].values():
        assert 0.0 <= numbers["entropy"] <= math.log(10) + 1e-6
        assert 0.0 <= numbers["mutual"] <= numbers["entropy"]
        for key in ("acc_det", "acc_mc", "ece_det", "ece_mc"):
            assert 0.0 <= numbers[key] <= 1.0


def test_reading_a_study_shows_the_library_verdicts_of_the_committed_results(monkeypatch):
    monkeypatch.delenv("DROPOUT_STUDY_RESULTS", raising=False)
    nb, got = execute("reading_a_study")
    manifest, records = run_files.load_study(COMMITTED_STUDY)
    table = report.build_table(records)
    expected = {c.id: claims.evaluate(c, table).verdict for c in claims.for_study("post000")}
    assert got["study"] == manifest["name"] == "post000"
    assert got["verdicts"] == expected and got["shown"] == "000.1"
    assert got["shown_verdict"] == expected["000.1"]
    assert any(p.startswith("curves_") for p in got["plots"])
    assert figures(nb) >= len(got["plots"]) + MIN_FIGURES["reading_a_study"]


def test_reading_a_study_names_a_missing_results_folder(tmp_path, monkeypatch):
    missing = tmp_path / "no_study_here"
    monkeypatch.setenv("DROPOUT_STUDY_RESULTS", str(missing))
    with pytest.raises(CellExecutionError, match="FileNotFoundError") as error:
        execute("reading_a_study")
    assert str(missing) in str(error.value) and "python -m dropout_study.study" in str(error.value)
