#!/usr/bin/env bash
# The GPU check: on one GPU, in about 10 minutes, what a CPU cannot show.
#
#   launch/gpu_check.sh [--dry-run] [--out results/bench/gpu]
#
# Steps: (1) refuse to go on unless JAX sees a GPU; (2) the tests that train, sample masks and
# shard batches (package samples only: no data folder needed) on the GPU; (3) bench's train-step
# table of the VGG-like net, the IMDB LSTM and the text CNN at the posts' batch sizes (step time,
# images/s, GFLOP/s and its fraction of a float32 matmul's rate on the same GPU) into OUT/README.md;
# (4) the VGG step's rows as JSON and, from them, the projected wall time of post 001 at its full
# scale (250 epochs, full width, full CIFAR-10, every configuration, 3 seeds) into
# OUT/projection.md, labelled as an estimate. With --dry-run every command is printed instead.
set -euo pipefail

dry_run=0 out="results/bench/gpu"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

run() {
  if [[ $dry_run -eq 1 ]]; then printf '%q ' "$@"; echo; else "$@"; fi
}

cd "$(dirname "$0")/.."
py=${PYTHON:-python}
run "$py" -c "import jax; d = jax.devices()[0]; assert d.platform == 'gpu', f'no GPU: {d}'; print(d)"
run "$py" -m pytest -q -x tests/test_train.py tests/test_masks.py tests/test_dropout.py \
  tests/test_parallel.py tests/test_bf16.py tests/test_device_resident.py \
  tests/test_seed_group.py
run mkdir -p "$out"
run "$py" -m dropout_study.bench --models=cifar10_vgg,imdb_rnn,imdb_cnn --source=sample \
  --repeats=10 --readme_dir="$out"
run "$py" -m dropout_study.bench --models=cifar10_vgg --repeats=10 --steps_json="$out/vgg_steps.json"
run "$py" -m dropout_study.projection --steps_json="$out/vgg_steps.json" --model=cifar10_vgg \
  --study=configs/studies/post001.py:full --out="$out/projection.md"
