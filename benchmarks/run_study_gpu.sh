#!/usr/bin/env bash
# Any study config on one GPU, within a time budget, in waves of seeds.
#   benchmarks/run_study_gpu.sh CONFIG OUTPUT SECONDS JOBS "SEEDS|STRATEGIES" ["SEEDS|STRATEGIES" ...]
# e.g. the mix study's headroom and label-free candidates, then the uncertainty strategies:
#   benchmarks/run_study_gpu.sh benchmarks/configs/mix.yaml runs/mix 540 12 \
#       "0 1 2 3 4|random oracle-balanced typiclust cluster-weighted probcover adaptive" \
#       "0 1 2 3 4|star entropy star-paper oracle-loss oracle-easy"
# A run of SmolLM2-135M is bound by kernel launches, not by the GPU, so JOBS worker processes
# (activelora run --jobs) share the one GPU. Each wave holds every listed strategy of its
# seeds, run side by side, so whatever has finished when the budget runs out is paired.
# Larger decoding batches than on the CPU (eval 100, score 64): greedy answers do not depend
# on the batch, and the MC-dropout masks are keyed by example
# (activelora.models.keyed_dropout), so neither do the scores. The table is rewritten at the
# end (benchmarks/validity_table.py; --rounds cuts unfinished curves to a common length).
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 5 ] || { echo "usage: $0 CONFIG OUTPUT SECONDS JOBS \"SEEDS|STRATEGIES\" ..." >&2; exit 2; }
config=$1 out=$2 budget=$3 jobs=$4
shift 4
py=${PYTHON:-python3}
end=$(( $(date +%s) + budget ))
mkdir -p "$out"
( while sleep 20; do echo "$(date -u +%T) gpu memory used: $(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader 2>/dev/null)"; done ) >> "$out/driver.log" 2>&1 &
monitor=$!
wave() {  # wave "SEEDS|STRATEGY ..."
  local seeds=(${1%%|*}) strategies=(${1#*|})
  local left=$(( end - $(date +%s) ))
  [ "$left" -gt 30 ] || return 1
  local flags=()
  for s in "${seeds[@]}"; do flags+=(--seed "$s"); done
  for strategy in "${strategies[@]}"; do flags+=(--strategy "$strategy"); done
  echo "$(date -u +%T) wave seeds ${seeds[*]} (${strategies[*]}): start, ${left}s left" >> "$out/driver.log"
  # Its own process group, so that what the budget cuts short (the command and its workers) is
  # stopped without touching any other activelora process on the machine.
  setsid timeout -k 10 "$left" "$py" -m activelora run --quiet --config "$config" \
    --output "$out" --set eval.batch_size=100 --set score.batch_size=64 --jobs "$jobs" "${flags[@]}" \
    >> "$out/driver.log" 2>&1 &
  local group=$!
  wait "$group"
  local status=$?
  kill -TERM -- "-$group" 2>/dev/null
  echo "$(date -u +%T) wave seeds ${seeds[*]} (${strategies[*]}): exit $status" >> "$out/driver.log"
}
for spec in "$@"; do wave "$spec" || break; done
kill "$monitor" 2>/dev/null
"$py" benchmarks/validity_table.py "$out" --out "$out/validity_table" >> "$out/driver.log" 2>&1
