#!/usr/bin/env bash
# Runs one dropout_study command on every worker of a Cloud TPU VM slice, then fetches its results.
#
#   launch/tpu_pod.sh [--dry-run] --name NAME --zone ZONE --type v4-32 --version tpu-ubuntu2204-base \
#       --workdir gs://BUCKET/run -- python -m dropout_study.main --config=configs/cifar10_vgg.py
#
# Steps: create the slice (skipped if it exists), copy this checkout to every worker, install it with
# the TPU extra, run the same command on --worker=all (jax.distributed.initialize() needs no
# arguments on a TPU slice), copy the workdir back to ./results/NAME when it is local to worker 0.
# With --dry-run every command is printed instead of run.
set -euo pipefail

dry_run=0 name="" zone="" type="v4-32" version="tpu-ubuntu2204-base" workdir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    --name) name=$2; shift 2 ;;
    --zone) zone=$2; shift 2 ;;
    --type) type=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [[ -z $name || -z $zone || -z $workdir || $# -eq 0 ]]; then
  echo "usage: $0 [--dry-run] --name NAME --zone ZONE [--type T] [--version V] --workdir DIR -- CMD..." >&2
  exit 2
fi

run() {
  if [[ $dry_run -eq 1 ]]; then printf '%q ' "$@"; echo; else "$@"; fi
}

repo=$(cd "$(dirname "$0")/.." && pwd)
tpu=(gcloud compute tpus tpu-vm)
if [[ $dry_run -eq 1 ]] || ! "${tpu[@]}" describe "$name" --zone "$zone" >/dev/null 2>&1; then
  run "${tpu[@]}" create "$name" --zone "$zone" --accelerator-type "$type" --version "$version"
fi
run "${tpu[@]}" scp --recurse --zone "$zone" --worker=all "$repo" "$name":~/dropout_study
run "${tpu[@]}" ssh "$name" --zone "$zone" --worker=all \
  --command "cd ~/dropout_study && pip install -q -e '.[tpu]'"
cmd=$(printf '%q ' "$@")
run "${tpu[@]}" ssh "$name" --zone "$zone" --worker=all \
  --command "cd ~/dropout_study && $cmd --workdir=$workdir"
if [[ $workdir != gs://* ]]; then
  run "${tpu[@]}" scp --recurse --zone "$zone" --worker=0 "$name":"$workdir" "results/$name"
fi
