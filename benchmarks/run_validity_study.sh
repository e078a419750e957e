#!/usr/bin/env bash
# The powered validity study (issue 9, deliver 9): benchmarks/configs/validity.yaml,
# run SEED-MAJOR so that whatever has finished when it is stopped is paired: each seed's
# strategies share the initial labels and the test set. After each step the table is
# rewritten from the run folders.
# Two passes over the seeds. First star, entropy, random and random-hybrid (the question
# "does STAR beat random and naive entropy?", and the control): with 2 workers, star
# (K + 1 scoring passes a round) runs on one while the other runs the three cheaper ones,
# which take about as long together. Then star-paper for every seed (alone, 2 threads).
#   benchmarks/run_validity_study.sh [OUTPUT] [SEED ...]       (default: runs/validity, seeds 0-4)
#   JOBS=2 (default): runs side by side, one worker per core (activelora run --jobs).
# Resumable: re-running continues every run after its last completed step.
# The code is pinned: the first start copies the committed src/ of HEAD into OUTPUT/code
# and the committed benchmarks/configs/validity.yaml (commit in OUTPUT/code/COMMIT) and every later seed and resume imports activelora from
# there, so edits to the working tree during the hours it runs cannot mix into the study.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/validity}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2 3 4)
jobs=${JOBS:-2}
mkdir -p "$out"
if [ ! -f "$out/code/COMMIT" ]; then
  rm -rf "$out/code" && mkdir -p "$out/code"
  git archive HEAD src benchmarks/configs/validity.yaml | tar -x -C "$out/code"
  git rev-parse HEAD > "$out/code/COMMIT"
fi
code=$(cd "$out/code" && pwd)
export PYTHONPATH="$code/src${PYTHONPATH:+:$PYTHONPATH}"
echo "$(date -u +%FT%TZ) code: commit $(cat "$out/code/COMMIT")" >> "$out/driver.log"
run_seed() {  # run_seed SEED STRATEGY...: one `activelora run` of those runs of a seed
  local seed=$1; shift
  local flags=()
  for strategy in "$@"; do flags+=(--strategy "$strategy"); done
  echo "$(date -u +%FT%TZ) seed $seed ($*): start" >> "$out/driver.log"
  # A run killed from outside (e.g. the kernel's OOM killer) resumes where it stopped: try again.
  for attempt in 1 2 3; do
    if nice -n 10 .venv/bin/activelora run --quiet --config "$code/benchmarks/configs/validity.yaml" \
        --output "$out" --seed "$seed" "${flags[@]}" --jobs "$jobs" >> "$out/driver.log" 2>&1; then
      break
    fi
    echo "$(date -u +%FT%TZ) seed $seed: activelora run failed (attempt $attempt)" >> "$out/driver.log"
  done
  # The table script imports the working tree's activelora (not the pinned copy).
  PYTHONPATH= .venv/bin/python benchmarks/validity_table.py "$out" --out "$out/validity_table" >> "$out/driver.log" 2>&1 || true
  echo "$(date -u +%FT%TZ) seed $seed ($*): done" >> "$out/driver.log"
}
for seed in "${seeds[@]}"; do run_seed "$seed" star entropy random random-hybrid; done
for seed in "${seeds[@]}"; do run_seed "$seed" star-paper; done
