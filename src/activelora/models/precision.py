"""Which floating-point type the model computes in: ``model.dtype`` = auto, float32 or bfloat16.

``auto`` (the default) picks bfloat16 where the hardware multiplies it natively and float32
elsewhere:

* a CUDA GPU that supports bfloat16 (``torch.cuda.is_bf16_supported()``: Ampere and later);
* a CPU with the AVX-512 BF16 or AMX-BF16 instructions (``avx512_bf16`` / ``amx_bf16`` in
  ``/proc/cpuinfo``; oneDNN's bf16 matmul kernels need them). Without them a CPU emulates
  bfloat16 and is *slower* than in float32, so ``auto`` keeps float32.

Only the base model's weights and activations are bfloat16. peft keeps the LoRA A and B
matrices in float32 (it up-casts adapter weights of a half-precision model), so the
parameters being trained and the optimiser's state stay float32; the losses
(:func:`activelora.training.target_token_loss`) and every log-softmax behind an uncertainty
(:func:`activelora.uncertainty.measures.log_probs`) are computed from logits up-cast to
float32. Measured on 2 cores of an AMD EPYC with AVX-512 BF16 (SmolLM2-135M): forward 1.7x,
forward + backward 1.8x and greedy generation 2.6x faster than float32 (issue 15).

The resolved name is written into the run's config (``config.json``), so a run records what
it computed in; a folder made on a bf16 machine is refused as a changed config on a machine
that would resolve ``auto`` to float32, rather than silently mixing precisions.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

DTYPES = ("auto", "float32", "bfloat16")
_TORCH = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# The CPU flags (Linux names) of native bfloat16 dot products.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty where unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:  # not Linux, or no procfs: nothing known, so nothing assumed
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True where this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX)."""
    return bool(cpu_flags() & BF16_CPU_FLAGS)


def auto_dtype(device: torch.device | str | None = None) -> str:
    """What ``model.dtype=auto`` resolves to on ``device`` (default: where models load)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = torch.device(device).type
    if kind == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if kind == "cpu":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return "float32"


def resolve_dtype(name: str) -> str:
    """``auto`` resolved for this machine; ``float32``/``bfloat16`` returned as given."""
    if name not in DTYPES:
        raise ValueError(f"model.dtype: must be one of {', '.join(DTYPES)}, got {name!r}")
    return auto_dtype() if name == "auto" else name


def torch_dtype(name: str) -> torch.dtype:
    """The torch type of a dtype name (``auto`` resolved first)."""
    return _TORCH[resolve_dtype(name)]
