#!/usr/bin/env bash
# The validity study (benchmarks/configs/validity.yaml) on one GPU, within a time budget:
# benchmarks/run_study_gpu.sh with its waves (see there).
#   benchmarks/run_validity_study_gpu.sh OUTPUT SECONDS [JOBS]
set -uo pipefail
cd "$(dirname "$0")/.."
exec benchmarks/run_study_gpu.sh benchmarks/configs/validity.yaml "$1" "$2" "${3:-12}" \
  "0 1 2 3 4|random random-hybrid entropy star" "0 1 2 3 4|star-paper" \
  "5 6 7 8 9|random random-hybrid entropy star" "5 6 7 8 9|star-paper"
