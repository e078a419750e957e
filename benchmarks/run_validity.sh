#!/usr/bin/env bash
# Reproduces the validity, ablation and calibration tables in docs/results.md.
# About an hour on 2 CPU cores: two single-threaded workers side by side (one torch process
# per core; two 2-thread processes on 2 cores slow each other down many times over).
#   benchmarks/run_validity.sh [OUTPUT_ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-runs/bench}
bin=.venv/bin/activelora
export OMP_NUM_THREADS=1
(
  $bin run --config benchmarks/configs/validity_arith.yaml --output "$root/validity" --quiet
) > "$root.validity.log" 2>&1 &
(
  $bin run --config benchmarks/configs/calibration_arith.yaml --output "$root/calib-plain" --set regularization.apply=none --quiet
  $bin run --config benchmarks/configs/calibration_arith.yaml --output "$root/calib-hybrid" --set regularization.apply=all --quiet
  $bin run --config benchmarks/configs/ablations_arith.yaml --output "$root/ablations" --quiet
) > "$root.calibration.log" 2>&1 &
wait
$bin compare "$root/validity" "$root/ablations" --out "$root/validity-all"
.venv/bin/python benchmarks/calibration_table.py "$root/calib-plain" "$root/calib-hybrid"
