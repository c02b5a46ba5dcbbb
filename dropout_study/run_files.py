"""The files a run and a study leave on disk: their names, the run-folder layout, and reading
them back.

One training run's workdir holds `config.json`, `metrics.jsonl` (a row per epoch),
`summary.json` (written last: a workdir holding it holds a finished run) and `checkpoints/`.
A study puts each run at `WORKDIR/<study>/<trial>/seed_<k>/`, next to `study.json`, and adds
`failed.json`, `mc_eval.json` or `examples.npz` to a run's folder. Nothing here imports
TensorFlow or JAX, so the report and the finished-run check stay light.

Every path goes through `path()` (etils.epath, the path library orbax writes with), so a workdir
can be a local folder or a `gs://` (`s3://`) URI, and `check_reachable` refuses a bucket that
cannot be reached before anything is written.
"""

import dataclasses
import functools
import json
import os
import threading

from etils import epath

from dropout_study.errors import one_line

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"
MANIFEST = "study.json"
FAILED = "failed.json"
MC_EVAL = "mc_eval.json"
EXAMPLES = "examples.npz"
EVAL_OUTPUTS = {"mc_samples": MC_EVAL, "examples": EXAMPLES}  # study evaluation -> its file
SEED_DIR_PREFIX = "seed_"
DONE, SKIPPED, FAILED_STATUS, PARTIAL, PENDING = "done", "skipped", "failed", "partial", "pending"
REMOTE_PREFIXES = ("gs://", "s3://")
REACH_TIMEOUT_S = 30  # offline, a bucket's first request fails in seconds or hangs: cut it here


def path(location):
    """`location` (a local path or a gs:// / s3:// URI) as an epath.Path.

    The standard library's pathlib would read `gs://bucket/run` as the local `gs:/bucket/run`.
    """
    return epath.Path(location)


def is_remote(location):
    """Whether `location` names a bucket (gs://, s3://) rather than a local path."""
    return os.fspath(location).startswith(REMOTE_PREFIXES)


def check_reachable(location, timeout_s=REACH_TIMEOUT_S):
    """Raises OSError when the bucket of a remote `location` cannot be reached or does not exist.

    Local paths pass. The probe asks whether the bucket exists, on a thread cut off after
    `timeout_s`, so an offline machine fails in seconds and creates nothing, locally or remotely.
    A bucket that answered once is not asked again by this process (a study checks every run).
    """
    if not is_remote(location):
        return
    scheme, rest = os.fspath(location).split("://", 1)
    try:
        _probe_bucket(f"{scheme}://{rest.split('/', 1)[0]}", timeout_s)
    except OSError as e:
        raise OSError(
            f"workdir {location} cannot be reached ({e}). Fix: check the network, the "
            "credentials (gcloud auth application-default login) and the bucket's name, or pass "
            "a local --workdir."
        ) from None


@functools.cache  # successes only: a failed probe raises, so the next check asks again
def _probe_bucket(bucket, timeout_s):
    """Returns when `bucket` exists; else OSError saying why (error, absent or no answer)."""
    answer = {}

    def probe():
        try:
            answer["exists"] = path(bucket).exists()
        except Exception as e:  # any failure of the storage client means unreachable
            answer["error"] = e

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if answer.get("exists"):
        return
    if "error" in answer:
        raise OSError(one_line(answer["error"]))
    if "exists" in answer:
        raise OSError(f"{bucket} does not exist")
    raise OSError(f"no answer from {bucket} within {timeout_s} s")


def run_name(trial, seed):
    """`<trial>/seed_<k>`: the one place a run's folder name is built (also its name in logs)."""
    return f"{trial}/{SEED_DIR_PREFIX}{seed}"


def run_dir(study_dir, trial, seed):
    """`<study_dir>/<trial>/seed_<k>`: where a study's run lives."""
    return path(study_dir) / run_name(trial, seed)


def seeds_on_disk(trial_dir):
    """The seeds with a run folder under `trial_dir`."""
    found = path(trial_dir).glob(f"{SEED_DIR_PREFIX}*")
    return {int(p.name.removeprefix(SEED_DIR_PREFIX)) for p in found if p.is_dir()}


def write_json(file, obj):
    """Writes JSON atomically (temporary file, then rename), so readers never see half a file."""
    file = path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    tmp.replace(file)


def read_json(file):
    """The JSON object in `file`, or None when the file does not exist."""
    file = path(file)
    return json.loads(file.read_text()) if file.exists() else None


def read_metrics(file):
    """The per-epoch rows of `metrics.jsonl`, one per epoch (a resumed run's repeat wins).

    A last line cut off by a crash is ignored; a damaged line elsewhere raises ValueError.
    """
    file = path(file)
    if not file.exists():
        return []
    lines = [line for line in file.read_text().splitlines() if line.strip()]
    rows = {}
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break
            raise ValueError(
                f"{file} line {i + 1} is not JSON ({e}); delete the run to redo."
            ) from e
        rows[row["epoch"]] = row
    return [rows[e] for e in sorted(rows)]


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What one run left on disk: its per-epoch metrics, summary, evaluations or failure."""

    trial: str
    seed: int
    params: dict
    status: str  # 'done', 'failed', 'partial' (metrics but no summary) or 'pending'
    epochs: list
    summary: dict | None
    mc_eval: dict | None
    failure: dict | None
    directory: epath.Path | None = None  # the run's folder (a shared trial's: its owner's)

    @property
    def score(self):
        """What the run's epochs score besides the loss: 'psnr' (denoising) or 'accuracy'."""
        return "psnr" if self.epochs and "val_psnr" in self.epochs[0] else "accuracy"


def run_status(run_dir):
    """'done', 'failed', 'partial' or 'pending' for a run directory."""
    run_dir = path(run_dir)
    if (run_dir / FAILED).exists():
        return FAILED_STATUS
    if (run_dir / SUMMARY_FILE).exists():
        return DONE
    return PARTIAL if (run_dir / METRICS_FILE).exists() else PENDING


def load_study(study_dir):
    """(manifest, [RunRecord]) for every trial of the manifest and every seed found or planned."""
    study_dir = path(study_dir)
    found = read_json(study_dir / MANIFEST)
    if found is None:
        raise FileNotFoundError(
            f"{study_dir / MANIFEST} does not exist; point --workdir at a study's folder "
            "(WORKDIR/<study>) written by `python -m dropout_study.study`."
        )
    records = []
    for trial in found["trials"]:
        owner = trial.get("same_as") or trial["name"]  # shared runs live in the owner's folder
        for seed in sorted(seeds_on_disk(study_dir / owner) | set(found["seeds"])):
            directory = run_dir(study_dir, owner, seed)
            records.append(
                RunRecord(
                    trial=trial["name"],
                    seed=seed,
                    params=trial["params"],
                    status=run_status(directory),
                    epochs=read_metrics(directory / METRICS_FILE),
                    summary=read_json(directory / SUMMARY_FILE),
                    mc_eval=read_json(directory / MC_EVAL),
                    failure=read_json(directory / FAILED),
                    directory=directory,
                )
            )
    return found, records
