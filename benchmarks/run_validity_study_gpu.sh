#!/usr/bin/env bash
# The validity study (benchmarks/configs/validity.yaml) on one GPU, within a time budget.
#   benchmarks/run_validity_study_gpu.sh OUTPUT SECONDS [JOBS]
# A run of SmolLM2-135M is bound by kernel launches, not by the GPU, so JOBS worker processes
# (activelora run --jobs) share the one GPU. Waves of seeds, so that whatever has finished
# when the budget runs out is paired: each wave holds every strategy of its seeds, run side by
# side, so the runs of a seed progress together round by round. Larger decoding batches than on
# the CPU (eval 100, score 64): greedy answers do not depend on the batch, and the MC-dropout
# masks are keyed by example (activelora.models.keyed_dropout), so neither do the scores.
# The table is rewritten at the end (benchmarks/validity_table.py; --rounds cuts unfinished
# curves to a common length).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$1; budget=$2; jobs=${3:-12}
py=${PYTHON:-python3}
end=$(( $(date +%s) + budget ))
mkdir -p "$out"
( while sleep 20; do echo "$(date -u +%T) gpu memory used: $(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader 2>/dev/null)"; done ) >> "$out/driver.log" 2>&1 &
monitor=$!
wave() {  # wave "SEEDS" STRATEGY...
  local seeds=($1); shift
  local left=$(( end - $(date +%s) ))
  [ "$left" -gt 30 ] || return 1
  local flags=()
  for s in "${seeds[@]}"; do flags+=(--seed "$s"); done
  for strategy in "$@"; do flags+=(--strategy "$strategy"); done
  echo "$(date -u +%T) wave seeds ${seeds[*]} ($*): start, ${left}s left" >> "$out/driver.log"
  # Its own process group, so that what the budget cuts short (the command and its workers) is
  # stopped without touching any other activelora process on the machine.
  setsid timeout -k 10 "$left" "$py" -m activelora run --quiet --config benchmarks/configs/validity.yaml \
    --output "$out" --set eval.batch_size=100 --set score.batch_size=64 --jobs "$jobs" "${flags[@]}" \
    >> "$out/driver.log" 2>&1 &
  local group=$!
  wait "$group"
  local status=$?
  kill -TERM -- "-$group" 2>/dev/null
  echo "$(date -u +%T) wave seeds ${seeds[*]} ($*): exit $status" >> "$out/driver.log"
}
wave "0 1 2 3 4" random random-hybrid entropy star &&
  wave "0 1 2 3 4" star-paper &&
  wave "5 6 7 8 9" random random-hybrid entropy star &&
  wave "5 6 7 8 9" star-paper
kill "$monitor" 2>/dev/null
"$py" benchmarks/validity_table.py "$out" --out "$out/validity_table" >> "$out/driver.log" 2>&1
