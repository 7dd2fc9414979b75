#!/usr/bin/env bash
# Run vidgen on a Cloud TPU VM or pod slice: the same command on every worker.
#
#   experiments/tpu/launch.sh create NAME ZONE ACCELERATOR [--spot]   # e.g. vidgen-xl us-east5-a v5p-128
#   experiments/tpu/launch.sh setup  NAME ZONE                         # copy this checkout, install
#   experiments/tpu/launch.sh run    NAME ZONE -- COMMAND...           # on all workers, in the checkout
#   experiments/tpu/launch.sh delete NAME ZONE
#
# Example (v5p-128 = 16 hosts; --distributed lets JAX find the other hosts itself):
#   experiments/tpu/launch.sh run vidgen-xl us-east5-a -- python -m vidgen.train \
#     --config experiments/configs/dit_xl2_256.py --workdir gs://BUCKET/runs/xl --distributed \
#     --config.vae_workdir=gs://BUCKET/runs/vae --config.data.array_record.pattern='gs://BUCKET/latents/train-*'
# Preempted (spot) slices send SIGTERM: every worker saves a checkpoint and exits; `run` the
# same command on a new slice and training resumes from gs://.../checkpoints.
set -euo pipefail

cmd=${1:?usage: launch.sh create|setup|run|delete NAME ZONE ...}; shift
name=${1:?NAME}; zone=${2:?ZONE}; shift 2
tpu() { gcloud compute tpus tpu-vm "$@" --zone "$zone"; }

runtime_for() {  # the TPU VM image for an accelerator type
  case "$1" in
    v4-*) echo tpu-ubuntu2204-base ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v5litepod-*|v5e-*) echo v2-alpha-tpuv5-lite ;;
    v6e-*) echo v2-alpha-tpuv6e ;;
    *) echo "unknown accelerator $1" >&2; exit 2 ;;
  esac
}

case "$cmd" in
  create)
    accelerator=${1:?ACCELERATOR, e.g. v5p-128}; shift
    tpu create "$name" --accelerator-type "${accelerator/v5e-/v5litepod-}" \
        --version "${TPU_RUNTIME:-$(runtime_for "$accelerator")}" "$@" ;;
  setup)
    archive=$(mktemp --suffix=.tar.gz)
    git -C "$(dirname "$0")/../.." archive --format=tar.gz -o "$archive" HEAD
    tpu scp "$archive" "$name":vidgen.tar.gz --worker=all
    tpu ssh "$name" --worker=all --command \
        'mkdir -p vidgen && tar -xzf vidgen.tar.gz -C vidgen && cd vidgen && pip install -q -r requirements-tpu.txt' ;;
  run)
    [[ "${1:-}" == -- ]] && shift
    printf -v remote '%q ' "$@"
    tpu ssh "$name" --worker=all --command "cd vidgen && $remote" ;;
  delete)
    tpu delete "$name" --quiet ;;
  *) echo "unknown command $cmd: use create, setup, run or delete" >&2; exit 2 ;;
esac
