#!/usr/bin/env bash
# Here, before a lent GPU session: fill .gpu/ (git-ignored) with what the device calls carry.
# The device machine has PyTorch, transformers and accelerate but no gguf, and reaches no
# registry; the embedded model's GGUF file (98 MB) is larger than one call may carry (64 MiB),
# so it travels in two halves, one per call. Then, with the device tool:
#   call 1: run "bash benchmarks/gpu/setup.sh"  carry [".gpu/wheels", ".gpu/model-1"]
#   call 2: run "bash benchmarks/gpu/study.sh benchmarks/gpu/mix-remedies.plan 520"  carry [".gpu/model-2"]  timeout_s 600
#   call 3, at once if device time is left: the same with a smaller budget and FIRST_WAVE 2
# (mix.plan ran in the thirteenth session: its wave 1 finished, its wave 2 was cut.)
# Call 2 must follow call 1 within the machine's warm time (30 s on nvidia-h200): the first half
# waits in the machine's /tmp. Unpack what comes back: cat DIR/runs.tgz.part-* | tar -xz -C runs/gpu
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/model-1 .gpu/model-2
version() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
# peft as the CPU box runs it; gguf, which the device image lacks (both pure Python).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 -d .gpu/wheels "peft==$(version peft)" "gguf==$(version gguf)"
gguf=$(.venv/bin/python -c 'from activelora.models.loading import _embedded_gguf; print(_embedded_gguf("smollm2-135m"))')
half=$(( ($(stat -c %s "$gguf") + 1) / 2 ))
split -b "$half" "$gguf" .gpu/gguf.part.
mv .gpu/gguf.part.aa .gpu/model-1/ && mv .gpu/gguf.part.ab .gpu/model-2/
sha256sum "$gguf" | cut -d' ' -f1 > .gpu/model-2/sha256
# The conversion check: the device converts the same GGUF; its tensors must sum as ours do.
converted=$(.venv/bin/python -c 'from activelora.models.loading import ensure_embedded; print(ensure_embedded())')
.venv/bin/python benchmarks/gpu/tensor_sums.py "$converted" .gpu/model-2/tensor_sums.json
du -sh .gpu/*
