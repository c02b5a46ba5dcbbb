#!/usr/bin/env bash
# Runs one dropout_study command on every worker of a Cloud TPU VM slice, then fetches its results.
#
#   launch/tpu_pod.sh [--dry-run] --name NAME --zone ZONE --type v4-32 --version tpu-ubuntu2204-base \
#       --data ../shared/data --workdir gs://BUCKET/run -- \
#       python -m dropout_study.main --config=configs/cifar10_vgg.py --config.data.source=local
#
# Steps: create the slice (skipped if it exists), copy this checkout to every worker, install it with
# the TPU extra, give every worker the data, run the same command on --worker=all
# (jax.distributed.initialize() needs no arguments on a TPU slice), copy the workdir back to
# ./results/NAME when it is local to worker 0 (a gs:// workdir holds the results already).
# --data: a local data folder (as ../shared/data, read by source='local') is copied to ~/shared/data
# on every worker, beside the checkout, where source='local' looks; a gs:// tensorflow-datasets
# folder (source='tfds') is passed to every worker as TFDS_DATA_DIR. Without --data the workers
# have only the samples shipped in the package (source='sample').
# With --dry-run every command is printed instead of run.
set -euo pipefail

dry_run=0 name="" zone="" type="v4-32" version="tpu-ubuntu2204-base" workdir="" data=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    --name) name=$2; shift 2 ;;
    --zone) zone=$2; shift 2 ;;
    --type) type=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [[ -z $name || -z $zone || -z $workdir || $# -eq 0 ]]; then
  echo "usage: $0 [--dry-run] --name NAME --zone ZONE [--type T] [--version V] [--data DIR] --workdir DIR -- CMD..." >&2
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
env_prefix=""
if [[ $data == gs://* ]]; then
  env_prefix="TFDS_DATA_DIR=$data "
elif [[ -n $data ]]; then
  if [[ $dry_run -eq 0 && ! -d $data ]]; then
    echo "--data $data is not a folder; pass the data folder (e.g. ../shared/data) or a gs:// tfds folder" >&2
    exit 2
  fi
  run "${tpu[@]}" ssh "$name" --zone "$zone" --worker=all --command "mkdir -p ~/shared"
  run "${tpu[@]}" scp --recurse --zone "$zone" --worker=all "$data" "$name":~/shared/data
fi
cmd=$(printf '%q ' "$@")
run "${tpu[@]}" ssh "$name" --zone "$zone" --worker=all \
  --command "cd ~/dropout_study && $env_prefix$cmd --workdir=$workdir"
if [[ $workdir != gs://* ]]; then
  run "${tpu[@]}" scp --recurse --zone "$zone" --worker=0 "$name":"$workdir" "results/$name"
fi
