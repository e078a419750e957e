"""model.dtype=auto: what it resolves to, that the run records it, and what stays float32 in bf16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from activelora.config import ModelConfig, build_config
from activelora.errors import ConfigError
from activelora.models import precision
from activelora.models.lora import attach_lora
from activelora.config import LoraSection


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    return path


def test_cpu_flags_are_read_from_the_first_flags_line(tmp_path):
    flags = precision.cpu_flags(_cpuinfo(tmp_path, "fpu sse2 avx512f avx512_bf16"))
    assert "avx512_bf16" in flags and "avx512f" in flags and "amx_bf16" not in flags
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("flags, expected", [
    ("fpu avx2 avx512f avx512_bf16", "bfloat16"),
    ("fpu avx2 amx_tile amx_bf16", "bfloat16"),
    ("fpu avx2 avx512f avx512_vnni", "float32"),  # AVX-512 without BF16 emulates it: slower
    ("", "float32"),
])
def test_auto_is_bf16_only_on_a_cpu_that_has_native_bf16(tmp_path, monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: precision.BF16_CPU_FLAGS & set(flags.split()))
    precision.cpu_has_native_bf16.cache_clear()
    try:
        assert precision.auto_dtype("cpu") == expected
        assert precision.resolve_dtype("auto") == expected or torch.cuda.is_available()
    finally:
        precision.cpu_has_native_bf16.cache_clear()


def test_explicit_dtypes_pass_through_and_unknown_ones_fail():
    assert precision.resolve_dtype("float32") == "float32"
    assert precision.resolve_dtype("bfloat16") == "bfloat16"
    assert precision.torch_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="model.dtype"):
        precision.resolve_dtype("float16")
    with pytest.raises(ConfigError, match="model.dtype: must be auto, float32 or bfloat16"):
        ModelConfig(dtype="half")


def test_the_built_config_records_what_auto_resolved_to(monkeypatch):
    auto = {"model": {"dtype": "auto"}}
    monkeypatch.setattr(precision, "auto_dtype", lambda device=None: "bfloat16")
    assert ModelConfig().dtype == "float32"  # the default, until bf16 passes the ranking check
    assert build_config(overrides=auto).model.dtype == "bfloat16"
    monkeypatch.setattr(precision, "auto_dtype", lambda device=None: "float32")
    assert build_config(overrides=auto).model.dtype == "float32"
    # An explicit choice is never overridden.
    assert build_config(overrides={"model": {"dtype": "bfloat16"}}).model.dtype == "bfloat16"


def test_a_bf16_base_trains_float32_lora_weights_and_a_float32_loss(make_tiny_llama, smol_tokenizer):
    """The base model computes in bf16; the trained A/B matrices, their gradients and the
    optimiser state stay float32, and the loss is float32 (close to the float32 model's)."""
    from activelora.run.training import target_token_loss

    model32 = attach_lora(make_tiny_llama(), LoraSection(r=4, lora_alpha=8, lora_dropout=0.0))
    model16 = attach_lora(make_tiny_llama().to(torch.bfloat16), LoraSection(r=4, lora_alpha=8, lora_dropout=0.0))
    trainable = [p for p in model16.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    frozen = [p for n, p in model16.named_parameters() if not p.requires_grad and n.endswith("q_proj.base_layer.weight")]
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)

    ids = torch.tensor([smol_tokenizer.encode("Q: What is 2 plus 3?\nA: 5")] * 2)
    labels = ids.clone()
    labels[:, :5] = -100
    batch = {"input_ids": ids, "labels": labels}
    # Eval mode: the tiny model's attention dropout would make the two losses incomparable;
    # gradients flow the same.
    loss16 = target_token_loss(model16.eval(), batch)
    loss32 = target_token_loss(model32.eval(), batch)
    assert loss16.dtype == torch.float32
    # Independent float64 reference for the float32 model's loss: log-softmax by hand.
    with torch.no_grad():
        logits = model32(input_ids=ids).logits.double()
    logp = logits[:, :-1] - torch.logsumexp(logits[:, :-1], -1, keepdim=True)
    target = labels[:, 1:]
    keep = target != -100
    reference = -logp[keep].gather(-1, target[keep][:, None]).mean()
    assert float(loss32.detach()) == pytest.approx(float(reference), rel=1e-5)
    assert float(loss16.detach()) == pytest.approx(float(reference), rel=2e-2)  # bf16 activations: ~3 digits

    loss16.backward()
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    optimizer.step()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainable)
    assert all(t.dtype == torch.float32 for s in optimizer.state.values() for t in s.values() if t.dim() > 0)


def test_bf16_entropies_are_float32_and_close_to_float32(make_tiny_llama):
    """Log-softmax and entropies are computed from logits up-cast to float32."""
    from activelora.uncertainty.measures import log_probs

    ids = torch.arange(3, 19)[None]
    with torch.no_grad():
        logits32 = make_tiny_llama()(input_ids=ids).logits
        logits16 = make_tiny_llama().to(torch.bfloat16)(input_ids=ids).logits
    assert logits16.dtype == torch.bfloat16 and log_probs(logits16).dtype == torch.float32
    p32, p16 = log_probs(logits32).exp().double(), log_probs(logits16).exp().double()
    h32 = -(p32 * p32.clamp_min(1e-300).log()).sum(-1)
    h16 = -(p16 * p16.clamp_min(1e-300).log()).sum(-1)
    np.testing.assert_allclose(h16.numpy(), h32.numpy(), rtol=2e-2)


def test_an_experiment_built_in_python_records_what_auto_resolved_to(tmp_path, tiny_model_dir, monkeypatch):
    """A Config handed straight to the experiment (not through build_config) is resolved too."""
    import json

    from activelora.config import Config, DataConfig, LoopConfig, ModelConfig, TrainConfig
    from activelora.experiment.runner import run_experiment

    monkeypatch.setattr(precision, "auto_dtype", lambda device=None: "float32")
    config = Config(model=ModelConfig(name=str(tiny_model_dir), dtype="auto"),
                    loop=LoopConfig(strategies=["random"], seeds=[0], rounds=0, initial=2, pool_limit=6,
                                    test_limit=2, probe_size=0),
                    train=TrainConfig(epochs=1, batch_size=2))
    run_experiment(config, tmp_path / "exp", progress=False)
    saved = json.loads((tmp_path / "exp" / "random" / "seed-0" / "config.json").read_text())
    assert saved["model"]["dtype"] == "float32"
