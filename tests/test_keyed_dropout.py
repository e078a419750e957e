"""Keyed dropout: masks as a function of (row key, module, position, feature) only."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from activelora.models.keyed_dropout import KeyedDropout, RowKeys, keep_mask, keyed_dropout

M64, M32 = (1 << 64) - 1, (1 << 32) - 1


def _splitmix64(x: int) -> int:
    x &= M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _fmix32(x: int) -> int:
    x &= M32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & M32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & M32
    return x ^ (x >> 16)


def reference_keep(key: int, module: int, length: int, width: int, p: float) -> list[list[bool]]:
    """The docstring's formula with Python's unbounded integers, one entry at a time."""
    salt = _splitmix64(key + 0x9E3779B97F4A7C15 * (module + 1)) >> 32
    threshold = int(round(p * 65536))
    out = []
    for t in range(length):
        row = []
        for j in range(width):
            i = t * width + j
            h = _fmix32(((i // 2) * 0x9E3779B9) ^ salt)
            half = (h >> (16 * (i % 2))) & 0xFFFF
            row.append(half >= threshold)
        out.append(row)
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def test_keep_mask_matches_an_integer_reference_on_random_keys():
    rng = random.Random(0)
    keys = [rng.getrandbits(63) for _ in range(3)] + [0, (1 << 63) - 1]
    for module in (0, 5):
        for length, width in ((3, 5), (4, 7), (1, 1)):  # odd L*d: the last hash is half used
            got = keep_mask(torch.tensor([_signed64(k) for k in keys]), module, length, width, 0.3)
            for r, key in enumerate(keys):
                assert got[r].tolist() == reference_keep(key, module, length, width, 0.3)


def test_a_row_mask_does_not_depend_on_its_batch_or_padding():
    keys = torch.tensor([11, 22, 33, 44])
    batch = keep_mask(keys, 2, 9, 16, 0.2)
    alone = keep_mask(keys[2:3], 2, 4, 16, 0.2)  # shorter: as if padded less
    assert torch.equal(batch[2:3, :4], alone)
    reordered = keep_mask(keys.flip(0), 2, 9, 16, 0.2)
    assert torch.equal(reordered.flip(0), batch)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_drop_rate_and_independence(p):
    masks = keep_mask(torch.arange(64), 0, 32, 64, p).float()  # 131072 entries
    n = masks.numel()
    rate = 1 - masks.mean().item()
    assert abs(rate - p) < 5 * (p * (1 - p) / n) ** 0.5
    # Rows, modules and neighbouring features are uncorrelated (|r| within ~5 standard errors).
    other_module = keep_mask(torch.arange(64), 1, 32, 64, p).float()
    for a, b in ((masks[0::2], masks[1::2]), (masks, other_module), (masks[..., 0::2], masks[..., 1::2])):
        r = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
        assert abs(r) < 5 / a.numel() ** 0.5


def test_keyed_dropout_module_scales_and_needs_keys():
    keys = RowKeys()
    module = KeyedDropout(0.25, 0, keys).train()
    x = torch.ones(2, 3, 8)
    with pytest.raises(RuntimeError, match="row key"):
        module(x)
    keys.set([5, 6])
    y = module(x)
    kept = keep_mask(torch.tensor([5, 6]), 0, 3, 8, 0.25)
    assert torch.allclose(y, kept.float() / 0.75)
    assert torch.equal(module.eval()(x), x)


def test_keyed_dropout_swaps_lora_dropout_and_restores_it(make_tiny_llama):
    from activelora.config import LoraSection
    from activelora.models.lora import attach_lora, lora_dropout_modules, mc_dropout

    model = attach_lora(make_tiny_llama(), LoraSection(r=2, lora_dropout=0.3, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # non-zero B, so the LoRA branch (and its dropout) shows in the output
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    originals = lora_dropout_modules(model)
    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
    with keyed_dropout(model) as keys, mc_dropout(model):
        assert all(isinstance(m, KeyedDropout) and m.training for m in lora_dropout_modules(model))
        keys.set([1, 2])
        both = model(input_ids=ids).logits
        keys.set([2])
        second_alone = model(input_ids=ids[1:]).logits
        keys.set([3, 2])
        other_key = model(input_ids=ids).logits
    assert torch.allclose(both[1], second_alone[0], atol=1e-5)
    assert torch.allclose(other_key[1], both[1], atol=1e-5) and not torch.allclose(other_key[0], both[0])
    assert lora_dropout_modules(model) == originals
    assert all(isinstance(m, nn.Dropout) and not m.training for m in originals)


def test_mc_scores_of_an_example_do_not_depend_on_batch_chunk_or_shard(make_tiny_llama, smol_tokenizer,
                                                                       fake_task, fake_examples):
    """The property that lets a pool be split across processes: K dropout passes give an
    example the same per-pass scores whatever else is scored with it."""
    from activelora.config import LoraSection
    from activelora.models.lora import attach_lora
    from activelora.uncertainty import score_pool

    model = attach_lora(make_tiny_llama(), LoraSection(r=2, lora_dropout=0.5, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    kw = dict(measure="entropy", mc_samples=3, target="gold", seed=11, cache=False, progress=False)
    whole = score_pool(model, smol_tokenizer, fake_task, fake_examples, batch_size=5, **kw)
    small = score_pool(model, smol_tokenizer, fake_task, fake_examples, batch_size=2, chunk_size=3, **kw)
    halves = (score_pool(model, smol_tokenizer, fake_task, fake_examples[::2], batch_size=5, **kw)
              + score_pool(model, smol_tokenizer, fake_task, fake_examples[1::2], batch_size=5, **kw))
    by_id = {r.id: r.samples for r in halves}
    for a, b in zip(whole, small):
        assert len(set(a.samples)) > 1  # the passes do differ
        np.testing.assert_allclose(a.samples, b.samples, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.samples, by_id[a.id], rtol=1e-5, atol=1e-6)
    other_seed = score_pool(model, smol_tokenizer, fake_task, fake_examples, batch_size=5, **{**kw, "seed": 12})
    assert not np.allclose([r.samples for r in other_seed], [r.samples for r in whole])


requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@requires_gpu
def test_masks_on_a_gpu_equal_the_cpu_masks():
    keys = torch.tensor([3, -5, 2**62, 17])
    assert torch.equal(keep_mask(keys.cuda(), 4, 33, 65, 0.1).cpu(), keep_mask(keys, 4, 33, 65, 0.1))


@requires_gpu
def test_bf16_mc_scores_on_a_gpu_do_not_depend_on_the_batch(make_tiny_llama, smol_tokenizer, fake_task,
                                                             fake_examples):
    from activelora.config import LoraSection
    from activelora.models.lora import attach_lora
    from activelora.uncertainty import score_pool

    model = attach_lora(make_tiny_llama(), LoraSection(r=2, lora_dropout=0.5, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model = model.to("cuda", torch.bfloat16)
    kw = dict(measure="entropy", mc_samples=3, target="gold", seed=11, cache=False, progress=False)
    whole = score_pool(model, smol_tokenizer, fake_task, fake_examples, batch_size=5, **kw)
    halves = (score_pool(model, smol_tokenizer, fake_task, fake_examples[::2], batch_size=1, **kw)
              + score_pool(model, smol_tokenizer, fake_task, fake_examples[1::2], batch_size=1, **kw))
    by_id = {r.id: r.samples for r in halves}
    for a in whole:  # bf16 matmuls of other shapes round differently: a bf16 tolerance
        np.testing.assert_allclose(a.samples, by_id[a.id], rtol=5e-2, atol=5e-2)
