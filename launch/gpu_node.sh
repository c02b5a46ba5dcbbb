#!/usr/bin/env bash
# Runs a dropout_study command on every GPU of one machine: a single process sees all local GPUs and
# shards the batch over them, so no jax.distributed set-up is needed.
#
#   launch/gpu_node.sh [--dry-run] [--gpus 0,1,2,3] -- python -m dropout_study.main \
#       --config=configs/cifar10_vgg.py --workdir=/tmp/vgg
set -euo pipefail

dry_run=0 gpus=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    --gpus) gpus=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--dry-run] [--gpus LIST] -- CMD..." >&2; exit 2; }

env_args=(XLA_PYTHON_CLIENT_MEM_FRACTION=0.9)
[[ -n $gpus ]] && env_args+=("CUDA_VISIBLE_DEVICES=$gpus")
if [[ $dry_run -eq 1 ]]; then
  printf '%q ' env "${env_args[@]}" "$@"; echo
else
  exec env "${env_args[@]}" "$@"
fi
