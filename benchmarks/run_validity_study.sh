#!/usr/bin/env bash
# The powered validity study (issue 9, deliver 9): benchmarks/configs/validity.yaml,
# run SEED-MAJOR (every strategy of seed 0, then of seed 1, ...) so that whatever has
# finished when it is stopped is paired: each seed's strategies share the initial labels
# and the test set. After each seed the table is rewritten from the run folders.
#   benchmarks/run_validity_study.sh [OUTPUT] [SEED ...]       (default: runs/validity, seeds 0-4)
#   JOBS=2 (default): runs side by side, one worker per core (activelora run --jobs).
# Resumable: re-running continues every run after its last completed step.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/validity}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2 3 4)
jobs=${JOBS:-2}
mkdir -p "$out"
for seed in "${seeds[@]}"; do
  echo "$(date -u +%FT%TZ) seed $seed: start" >> "$out/driver.log"
  nice -n 10 .venv/bin/activelora run --quiet --config benchmarks/configs/validity.yaml \
      --output "$out" --seed "$seed" --jobs "$jobs" >> "$out/driver.log" 2>&1 \
    || echo "$(date -u +%FT%TZ) seed $seed: activelora run exited $?" >> "$out/driver.log"
  .venv/bin/python benchmarks/validity_table.py "$out" --out "$out/validity_table" >> "$out/driver.log" 2>&1 || true
  echo "$(date -u +%FT%TZ) seed $seed: done" >> "$out/driver.log"
done
