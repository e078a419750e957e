"""The A-input dropout's masks (models/lora_dropout.py) against independent float64 references,
and the context managers that switch it on for training and Monte-Carlo scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from activelora.config import LoraSection
from activelora.models.lora import (
    any_dropout_active,
    attach_lora,
    lora_dropout_modules,
    lora_input_dropout,
    mc_dropout,
)
from activelora.models.lora_dropout import LoraInputDropout, keep_multiplier


def _effective_rate(p: float) -> float:
    """The documented drop probability, computed here in float64: round(p * 2^16) / 2^16."""
    return float(np.round(np.float64(p) * 65536.0) / 65536.0)


def _within(observed: float, expected: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n) + 1e-12


@pytest.mark.parametrize("p", [0.05, 0.1, 0.3, 0.5])
def test_drop_rate_and_scale_match_float64_reference(p):
    torch.manual_seed(0)
    m = keep_multiplier((64, 50, 96), p).double()
    n = m.numel()
    dropped = float((m == 0).double().mean())
    assert _within(dropped, _effective_rate(p), n)
    kept = m[m != 0]
    # Every kept entry is 1/(1-p) (float32 rounding of the float64 value), nothing else.
    torch.testing.assert_close(kept, torch.full_like(kept, 1.0 / (1.0 - p)), rtol=1e-7, atol=0)
    # Inverted dropout is unbiased: E[m] = (1 - p') / (1 - p), 1 to within 2^-16.
    assert abs(float(m.mean()) - (1 - _effective_rate(p)) / (1 - p)) < 5 * math.sqrt(p / (1 - p) / n)


def test_mask_bits_follow_the_documented_rule():
    """Re-derive one mask from the generator's raw 64-bit words with Python integers."""
    p, shape = 0.2, (3, 7, 5)  # 105 entries: not a multiple of 4, so the last word is cut
    n = math.prod(shape)
    gen = torch.Generator().manual_seed(11)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None, generator=gen)
    threshold = int(round(p * 65536))
    expected = []
    for w in words.tolist():
        w &= (1 << 64) - 1
        for k in range(4):  # little-endian int16 quarters, lowest first
            bits = (w >> (16 * k)) & 0xFFFF
            signed = bits - 65536 if bits >= 32768 else bits
            expected.append(0.0 if signed < threshold - 32768 else 1.0 / (1.0 - p))
    expected = torch.tensor(expected[:n], dtype=torch.float64).view(shape)
    got = keep_multiplier(shape, p, generator=torch.Generator().manual_seed(11)).double()
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=0)


def test_masks_are_independent_between_draws_and_entries():
    p = 0.3
    torch.manual_seed(1)
    shape = (200, 1000)
    first, second = (keep_multiplier(shape, p) == 0 for _ in range(2))
    rate, n = _effective_rate(p), first.numel()
    assert not torch.equal(first, second)
    # Two draws (two forward passes, or two modules): P(both dropped) = p'^2.
    assert _within(float((first & second).double().mean()), rate ** 2, n)
    # Neighbouring entries share a 64-bit word: still independent.
    assert _within(float((first[:, 0::2] & first[:, 1::2]).double().mean()), rate ** 2, n // 2)
    # Entries four apart come from neighbouring words.
    assert _within(float((first[:, 0:-4:4] & first[:, 4::4]).double().mean()), rate ** 2, n // 4)


def test_masks_are_deterministic_under_a_seed():
    torch.manual_seed(5)
    a = keep_multiplier((4, 9, 33), 0.1)
    torch.manual_seed(5)
    b = keep_multiplier((4, 9, 33), 0.1)
    torch.manual_seed(6)
    c = keep_multiplier((4, 9, 33), 0.1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_module_output_and_gradient_are_the_masked_input():
    torch.manual_seed(2)
    x = torch.randn(3, 11, 40, dtype=torch.float64).requires_grad_(True)
    weight = torch.randn(3, 11, 40, dtype=torch.float64)
    module = LoraInputDropout(0.25).train()
    y = module(x)
    multiplier = (y / x).detach()
    values = set(np.round(multiplier.unique().numpy(), 12).tolist())
    assert values == {0.0, round(1 / 0.75, 12)}
    (y * weight).sum().backward()
    torch.testing.assert_close(x.grad, weight * multiplier)
    module.eval()
    assert module(x) is x
    assert LoraInputDropout(0.0).train()(x) is x


def test_same_distribution_as_the_keyed_scoring_masks():
    """Training's stream masks and the scorer's keyed masks drop at the same rate."""
    keyed = pytest.importorskip("activelora.models.keyed_dropout")
    p = 0.3
    keys = torch.arange(64, dtype=torch.int64) * 7919 + 3
    keyed_drop = float((~keyed.keep_mask(keys, 0, 40, 96, p)).double().mean())
    n = 64 * 40 * 96
    assert _within(keyed_drop, _effective_rate(p), n)
    torch.manual_seed(3)
    stream_drop = float((keep_multiplier((64, 40, 96), p) == 0).double().mean())
    assert _within(stream_drop, _effective_rate(p), n)


@pytest.fixture()
def lora_model(make_tiny_llama):
    return attach_lora(make_tiny_llama(), LoraSection(r=4, lora_alpha=8, lora_dropout=0.2,
                                                      target_modules=["q_proj", "v_proj", "down_proj"]))


def test_context_swaps_in_and_restores_peft_modules(lora_model):
    originals = lora_dropout_modules(lora_model)
    assert originals and all(type(m) is nn.Dropout for m in originals)
    with lora_input_dropout(lora_model, 0.4):
        inside = lora_dropout_modules(lora_model)
        assert all(isinstance(m, LoraInputDropout) and m.p == 0.4 and not m.training for m in inside)
    after = lora_dropout_modules(lora_model)
    assert all(a is o for a, o in zip(after, originals)) and all(m.p == 0.2 for m in after)
    with lora_input_dropout(lora_model):  # no rate: each module's own
        assert all(m.p == 0.2 for m in lora_dropout_modules(lora_model))


def test_context_restores_modules_after_an_error(lora_model):
    originals = lora_dropout_modules(lora_model)
    with pytest.raises(RuntimeError):
        with lora_input_dropout(lora_model, 0.1):
            raise RuntimeError("boom")
    assert all(a is o for a, o in zip(lora_dropout_modules(lora_model), originals))


def test_mc_dropout_samples_with_the_training_dropout(lora_model):
    with torch.no_grad():  # B = 0 at init would hide the dropout
        for name, param in lora_model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.1)
    with mc_dropout(lora_model):
        modules = lora_dropout_modules(lora_model)
        assert all(isinstance(m, LoraInputDropout) and m.training and m.p == 0.2 for m in modules)
        # Only the LoRA dropout samples: every other module (the tiny model's attention,
        # whose dropout is on in train mode) is in eval mode.
        assert all(not m.training for m in lora_model.modules() if not isinstance(m, LoraInputDropout))
        x = torch.tensor([[5, 6, 7, 8]])
        with torch.no_grad():
            a, b = lora_model(input_ids=x).logits, lora_model(input_ids=x).logits
        assert not torch.equal(a, b)
    assert not any_dropout_active(lora_model)
    assert all(type(m) is nn.Dropout for m in lora_dropout_modules(lora_model))


def test_checkpointing_recomputes_the_same_masks(make_tiny_llama):
    """Activation checkpointing reruns each layer in the backward pass; the masks must be the
    ones the forward pass drew (the generator state is restored), so gradients match."""
    lora = LoraSection(r=4, lora_alpha=8, lora_dropout=0.3, target_modules=["q_proj", "v_proj", "up_proj"])
    ids = torch.tensor([[3, 9, 4, 7, 1, 8], [2, 2, 5, 6, 9, 4]])
    grads = []
    for checkpointing in (False, True):
        base = make_tiny_llama()
        base.config.attention_dropout = 0.0
        for module in base.modules():
            if hasattr(module, "attention_dropout"):
                module.attention_dropout = 0.0
        model = attach_lora(base, lora, seed=4)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.1, generator=torch.Generator().manual_seed(9))
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        with lora_input_dropout(model):
            model.train()
            torch.manual_seed(17)
            model(input_ids=ids, labels=ids).loss.backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.requires_grad])
    for plain, checkpointed in zip(*grads):
        assert plain.abs().max() > 0
        torch.testing.assert_close(checkpointed, plain, rtol=1e-5, atol=1e-7)


def test_mc_dropout_leaves_an_outer_keyed_dropout_in_place(lora_model):
    """keyed_dropout outside mc_dropout, or inside it: the keyed masks are the ones used."""
    keyed = pytest.importorskip("activelora.models.keyed_dropout")
    with keyed.keyed_dropout(lora_model), mc_dropout(lora_model):
        assert all(isinstance(m, keyed.KeyedDropout) and m.training for m in lora_dropout_modules(lora_model))
    with mc_dropout(lora_model), keyed.keyed_dropout(lora_model):
        assert all(isinstance(m, keyed.KeyedDropout) and m.training for m in lora_dropout_modules(lora_model))
    assert all(type(m) is nn.Dropout and not m.training for m in lora_dropout_modules(lora_model))
