#!/usr/bin/env bash
# The powered validity study (issue 9, deliver 9): benchmarks/configs/validity.yaml through
# benchmarks/run_study.sh (pinned code, seed-major, resumable; see there).
# Two passes over the seeds. First star, entropy, random and random-hybrid (the question
# "does STAR beat random and naive entropy?", and the control): with 2 workers, star
# (K + 1 scoring passes a round) runs on one while the other runs the three cheaper ones,
# which take about as long together. Then star-paper for every seed.
#   benchmarks/run_validity_study.sh [OUTPUT] [SEED ...]       (default: runs/validity, seeds 0-4)
#   JOBS=2 (default): runs side by side, one worker per core (activelora run --jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/validity}
shift || true
seeds="${*:-0 1 2 3 4}"
exec benchmarks/run_study.sh benchmarks/configs/validity.yaml "$out" "$seeds" \
    "star entropy random random-hybrid" "star-paper"
