"""The table of every claim that opens results/README.md, made from the committed raw metrics.

    python -m dropout_study.results_index --results=results

Evaluates each study's claims on `results/<study>/raw` exactly as its REPORT.md does and
rewrites the part of results/README.md between the two marker lines; the rest of the file is
left as it is. tests/test_results.py checks that the committed table regenerates unchanged.
"""

import json
import pathlib

from absl import app, flags

from dropout_study import claims, report, run_config, run_files, sweeps

README = "README.md"
START, END = "<!-- claims table: start -->", "<!-- claims table: end -->"


def study_outcomes(results_dir, name):
    """The claim outcomes of study `name` from `results_dir/<name>/raw`."""
    _, records = run_files.load_study(pathlib.Path(results_dir) / name / "raw")
    table = report.build_table(records)
    return [claims.evaluate(c, table) for c in claims.for_study(name)]


def is_current(results_dir, name, configs_dir):
    """Whether the committed runs of `name` are those of its config's cpu scale today."""
    manifest, _ = run_files.load_study(pathlib.Path(results_dir) / name / "raw")
    config = sweeps.load_config_file(pathlib.Path(configs_dir) / f"{name}.py", "cpu")
    committed = {t["name"]: t["config"] for t in manifest["trials"]}
    planned = {t.name: json.loads(t.config.to_json()) for t in sweeps.expand(config)}
    return (
        committed.keys() == planned.keys()
        and not any(run_config.config_changes(committed[n], planned[n]) for n in planned)
        and sorted(manifest["seeds"]) == sorted(config.seeds)
    )


def studies_markdown(results_dir, names, configs_dir):
    """One line per study: its runs, and whether they are its config's cpu scale today."""
    lines = []
    for name in names:
        _, records = run_files.load_study(pathlib.Path(results_dir) / name / "raw")
        done = sum(r.status == run_files.DONE for r in records)
        state = (
            "the cpu scale of its config today"
            if is_current(results_dir, name, configs_dir)
            else "made with an earlier cpu scale of its config (re-run it to replace them)"
        )
        lines.append(f"- {name}: {done} runs done, {state}.")
    return "\n".join(lines)


def _conditions(outcome):
    failed = outcome.failed()
    if failed:
        return "<br>".join(f"failed: {why}" for _, why in failed)
    return "all held" if outcome.conditions else "none"


def table_markdown(results_dir, names):
    """One row per claim: the post's figure, ours, the verdict, its conditions and the MDE."""
    lines = [
        "| id | claim | post | ours: mean [95% CI] | verdict | conditions | MDE (80% power) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for o in study_outcomes(results_dir, name):
            ours = o.missing or "<br>".join(f"{p.label}: {p.shown()}" for p in o.parts)
            mde = "-" if o.missing else "<br>".join(p.mde() for p in o.parts)
            lines.append(
                f"| {o.claim.id} | {o.claim.text} | {o.claim.post_number} | {ours} | "
                f"**{o.verdict}** | {_conditions(o)} | {mde} |"
            )
    return "\n".join(lines)


def counts_line(results_dir, names):
    """'N claims: a supported, b contradicted, ...' over every study."""
    verdicts = [o.verdict for n in names for o in study_outcomes(results_dir, n)]
    kinds = ("supported", "contradicted", "inconclusive", "untested")
    shown = ", ".join(f"{verdicts.count(k)} {k}" for k in kinds)
    return f"{len(verdicts)} claims: {shown}."


def render(results_dir, text, configs_dir):
    """`text` (README.md) with the claims table between the markers regenerated."""
    if START not in text or END not in text:
        raise ValueError(f"{README} needs the lines {START!r} and {END!r} around the table.")
    names = sorted({c.study for c in claims.CLAIMS})
    block = "\n".join(
        [
            START,
            "",
            studies_markdown(results_dir, names, configs_dir),
            "",
            counts_line(results_dir, names),
            "",
            table_markdown(results_dir, names),
            "",
        ]
    )
    head, rest = text.split(START, 1)
    return head + block + END + rest.split(END, 1)[1]


def define_flags():
    flags.DEFINE_string("results", "results", "The folder holding postNNN/raw and README.md.")
    flags.DEFINE_string("configs", "configs/studies", "The folder of the study configs.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    path = pathlib.Path(flags.FLAGS.results) / README
    path.write_text(render(flags.FLAGS.results, path.read_text(), flags.FLAGS.configs))
    print(f"wrote the claims table of {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
