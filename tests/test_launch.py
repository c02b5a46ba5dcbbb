"""Launch scripts: valid shell, shellcheck-clean, and dry runs that print the commands they run."""

import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest

LAUNCH = pathlib.Path(__file__).resolve().parents[1] / "launch"
SHELLCHECK = shutil.which("shellcheck") or shutil.which(
    "shellcheck", path=str(pathlib.Path(sys.executable).parent)
)
SCRIPTS = sorted(p for p in LAUNCH.iterdir() if p.suffix in (".sh", ".sbatch"))
MAIN = ["python", "-m", "dropout_study.main", "--config=configs/cifar10_vgg.py"]


def _dry_run(script, *args):
    result = subprocess.run(
        ["bash", str(LAUNCH / script), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed")
def test_scripts_pass_shellcheck():
    result = subprocess.run([SHELLCHECK, *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_tpu_pod_dry_run_runs_the_command_on_every_worker():
    lines = _dry_run(
        "tpu_pod.sh",
        "--dry-run",
        "--name",
        "pod",
        "--zone",
        "us-central2-b",
        "--workdir",
        "gs://bucket/run",
        "--",
        *MAIN,
    )
    assert lines[0].startswith("gcloud compute tpus tpu-vm create pod --zone us-central2-b")
    assert "--accelerator-type v4-32" in lines[0]
    run = [line for line in lines if "dropout_study.main" in line]
    assert len(run) == 1 and "--worker=all" in run[0] and "--workdir=gs://bucket/run" in run[0]
    assert not any(
        line.startswith("gcloud compute tpus tpu-vm scp") and "--worker=0" in line for line in lines
    ), "a gs:// workdir needs no copy back"


def _tpu_pod_dry_run(*args):
    """The dry run's commands, each split into its words as the shell would."""
    lines = _dry_run("tpu_pod.sh", "--dry-run", "--name", "pod", "--zone", "z", *args, "--", *MAIN)
    return [shlex.split(line) for line in lines]


def test_tpu_pod_copies_a_local_data_folder_to_every_worker_beside_the_checkout():
    commands = _tpu_pod_dry_run("--data", "../shared/data", "--workdir", "gs://bucket/run")
    (copy,) = [c for c in commands if "../shared/data" in c]
    assert copy[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"] and "--worker=all" in copy
    assert copy[-1] == "pod:~/shared/data"  # <checkout>/../shared/data: where 'local' reads
    (run,) = [c for c in commands if "dropout_study.main" in c[-1]]
    assert commands.index(copy) < commands.index(run) and "TFDS_DATA_DIR" not in run[-1]


def test_tpu_pod_gives_a_gcs_tfds_folder_to_every_worker_as_tfds_data_dir():
    commands = _tpu_pod_dry_run("--data", "gs://bucket/tfds", "--workdir", "gs://bucket/run")
    (run,) = [c for c in commands if "dropout_study.main" in c[-1]]
    assert run[-1].startswith("cd ~/dropout_study && TFDS_DATA_DIR=gs://bucket/tfds python -m")
    assert not any("~/shared/data" in " ".join(c) for c in commands)


def test_tpu_pod_refuses_missing_arguments():
    result = subprocess.run(
        ["bash", str(LAUNCH / "tpu_pod.sh"), "--dry-run", "--", *MAIN],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "usage" in result.stderr


def test_slurm_array_substitutes_the_shard():
    lines = _dry_run(
        "slurm.sbatch", "--dry-run", "python", "-m", "dropout_study.study", "--shard=@ARRAY"
    )
    assert lines == ["srun python -m dropout_study.study --shard=0/1 "]


def test_gpu_node_sets_visible_devices():
    (line,) = _dry_run("gpu_node.sh", "--dry-run", "--gpus", "0,1", "--", *MAIN)
    assert "CUDA_VISIBLE_DEVICES=0\\,1" in line and line.rstrip().endswith("cifar10_vgg.py")


def test_gpu_check_dry_run_checks_the_gpu_then_tests_benches_and_projects():
    commands = [shlex.split(line) for line in _dry_run("gpu_check.sh", "--dry-run", "--out", "o")]
    assert "d.platform == 'gpu'" in commands[0][-1]  # nothing runs on a machine without one
    assert commands[1][1:4] == ["-m", "pytest", "-q"] and "tests/test_train.py" in commands[1]
    bench = [c for c in commands if c[1:3] == ["-m", "dropout_study.bench"]]
    assert "--readme_dir=o" in bench[0] and "--steps_json=o/vgg_steps.json" in bench[1]
    (last,) = commands[-1:]
    assert last[1:3] == ["-m", "dropout_study.projection"]
    assert "--steps_json=o/vgg_steps.json" in last and "--out=o/projection.md" in last
    assert "--study=configs/studies/post001.py:full" in last
