#!/usr/bin/env bash
# Reproduces the validity, ablation and calibration tables in docs/results.md.
# About an hour on 2 CPU cores: two single-threaded workers side by side (one torch process
# per core; two 2-thread processes on 2 cores slow each other down many times over).
# Runs resume: re-running this script after an interruption continues where it stopped.
#   benchmarks/run_validity.sh [OUTPUT_ROOT]
# Seeds: 0, 1, 2 for random, entropy, pe and star; seed 0 only for the three STAR ablations
# and for the calibration pair (what fitted in a 3-hour session on 2 cores; add
# `--seed 1 --seed 2` to those lines for more).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-runs/bench}
mkdir -p "$root"
run() { .venv/bin/activelora run --quiet "$@"; }
export OMP_NUM_THREADS=1
validity=(--config benchmarks/configs/validity_arith.yaml --output "$root/validity")
ablations=(--config benchmarks/configs/ablations_arith.yaml --output "$root/ablations" --seed 0)
calibration=(--config benchmarks/configs/calibration_arith.yaml --seed 0)
(
  run "${validity[@]}" --strategy random --strategy entropy --strategy star
  run "${ablations[@]}" --strategy star-no-dynamic
) > "$root/worker-a.log" 2>&1 &
(
  run "${calibration[@]}" --output "$root/calib-plain" --set regularization.apply=none
  run "${calibration[@]}" --output "$root/calib-hybrid" --set regularization.apply=all
  run "${validity[@]}" --strategy pe
  run "${ablations[@]}" --strategy star-no-l2 --strategy star-no-mc
) > "$root/worker-b.log" 2>&1 &
wait
.venv/bin/activelora compare "$root/validity" "$root/ablations" --out "$root/validity-all"
.venv/bin/python benchmarks/calibration_table.py "$root/calib-plain" "$root/calib-hybrid"
