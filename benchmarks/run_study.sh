#!/usr/bin/env bash
# Any study config, pinned and seed-major, so that whatever has finished when it is stopped is
# paired (each seed's strategies share the initial labels and the test sets).
#   benchmarks/run_study.sh CONFIG OUTPUT "SEEDS" "STRATEGIES" ["STRATEGIES" ...]
# Each STRATEGIES group is one `activelora run` per seed (its runs side by side under --jobs);
# the groups run in the order given, every seed of a group before the next group. Example, the
# mix study's headroom pass then its label-free candidates:
#   benchmarks/run_study.sh benchmarks/configs/mix.yaml runs/mix "0 1" \
#       "random oracle-balanced typiclust cluster-weighted" "star probcover adaptive"
#   JOBS=2 (default): runs side by side (activelora run --jobs, threads shared among them).
#   SETS="key=value ...": extra --set overrides for every run (benchmarks/learning_curve.sh).
# Resumable: re-running continues every run after its last completed step.
# The code is pinned: the first start copies the committed src/ and CONFIG of HEAD into
# OUTPUT/code (commit in OUTPUT/code/COMMIT); every later group and resume imports activelora
# from there, so edits to the working tree during the hours it runs cannot mix into the study.
# After each step OUTPUT/validity_table.md (benchmarks/validity_table.py, the working tree's) is rewritten.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { echo "usage: $0 CONFIG OUTPUT \"SEEDS\" \"STRATEGIES\" [\"STRATEGIES\" ...]" >&2; exit 2; }
config=$1 out=$2 seeds=$3
shift 3
jobs=${JOBS:-2}
git ls-files --error-unmatch "$config" > /dev/null 2>&1 || { echo "$config: not a committed file (the study pins HEAD's copy)" >&2; exit 2; }
mkdir -p "$out"
if [ ! -f "$out/code/COMMIT" ]; then
  rm -rf "$out/code" && mkdir -p "$out/code"
  git archive HEAD src "$config" | tar -x -C "$out/code"
  git rev-parse HEAD > "$out/code/COMMIT"
fi
code=$(cd "$out/code" && pwd)
export PYTHONPATH="$code/src${PYTHONPATH:+:$PYTHONPATH}"
echo "$(date -u +%FT%TZ) code: commit $(cat "$out/code/COMMIT"), config $config" >> "$out/driver.log"
run_seed() {  # run_seed SEED STRATEGY...: one `activelora run` of those runs of a seed
  local seed=$1; shift
  local flags=()
  for strategy in "$@"; do flags+=(--strategy "$strategy"); done
  for setting in ${SETS:-}; do flags+=(--set "$setting"); done
  echo "$(date -u +%FT%TZ) seed $seed ($*): start" >> "$out/driver.log"
  # A run killed from outside (e.g. the kernel's OOM killer) resumes where it stopped: try again.
  for attempt in 1 2 3; do
    if nice -n 10 .venv/bin/activelora run --quiet --config "$code/$config" \
        --output "$out" --seed "$seed" "${flags[@]}" --jobs "$jobs" >> "$out/driver.log" 2>&1; then
      break
    fi
    echo "$(date -u +%FT%TZ) seed $seed: activelora run failed (attempt $attempt)" >> "$out/driver.log"
  done
  PYTHONPATH= .venv/bin/python benchmarks/validity_table.py "$out" --out "$out/validity_table" >> "$out/driver.log" 2>&1 || true
  echo "$(date -u +%FT%TZ) seed $seed ($*): done" >> "$out/driver.log"
}
for group in "$@"; do
  for seed in $seeds; do
    # shellcheck disable=SC2086  # a group is a space-separated list of strategy names
    run_seed "$seed" $group
  done
done
