#!/usr/bin/env bash
# A task's learning curve from random labels (issue 16, deliver 3): one pinned `activelora run`
# per size (loop.initial = size, no query round) and seed, in OUTPUT/n-<size>/random/seed-<n>/.
#   benchmarks/learning_curve.sh CONFIG OUTPUT "SIZES" "SEEDS"
#   e.g. benchmarks/learning_curve.sh benchmarks/configs/curve_boolq.yaml runs/curve_boolq "32 64 128 256 512" "0 1 2"
# Then: .venv/bin/python benchmarks/curve_table.py OUTPUT. Resumable (run_study.sh's pinning and resume);
# sizes run seed-major within a size, smallest first, so a stopped curve is complete as far as it got.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 4 ] || { echo "usage: $0 CONFIG OUTPUT \"SIZES\" \"SEEDS\"" >&2; exit 2; }
config=$1 out=$2 sizes=$3 seeds=$4
for size in $sizes; do
  SETS="loop.initial=$size loop.rounds=0" JOBS=${JOBS:-1} benchmarks/run_study.sh "$config" "$out/n-$size" "$seeds" random
done
