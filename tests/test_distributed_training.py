"""Data-parallel training steps equal one process's, checked in float64 without a launcher:
each "process" is run in turn and the gradients averaged, as DDP's all-reduce does."""

from __future__ import annotations

import pytest
import torch

from activelora.config import LoraSection
from activelora.data.example import Example
from activelora.multiprocess.data_parallel import MicroBatchShards, row_slices, target_tokens
from activelora.models.lora import attach_lora, lora_dropout_modules, lora_input_dropout
from activelora.run.training import _collate, build_features


def test_row_slices_cover_every_row_once_and_balance():
    for rows in range(0, 9):
        for processes in (1, 2, 3):
            slices = row_slices(rows, processes)
            covered = [i for s in slices for i in range(rows)[s]]
            sizes = [s.stop - s.start for s in slices]
            assert covered == list(range(rows)) and max(sizes) - min(sizes) <= 1


def _model(make_tiny_llama, dropout):
    model = attach_lora(make_tiny_llama(), LoraSection(r=2, lora_dropout=dropout,
                                                       target_modules=["q_proj", "v_proj", "up_proj"])).double()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(3)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    # The base model's own (attention) dropout stays off; only the LoRA A-input dropout samples.
    model.eval()
    for module in lora_dropout_modules(model):
        module.train()
    return model


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("rows,processes,dropout", [(5, 2, 0.0), (5, 2, 0.3), (4, 3, 0.3), (2, 3, 0.3)])
def test_sharded_micro_batch_gives_the_single_process_gradient(make_tiny_llama, smol_tokenizer, fake_task,
                                                               fake_examples, rows, processes, dropout):
    examples = (fake_examples * 2)[:rows]
    examples = [Example(f"{e.id}{i}", e.question, e.answer) for i, e in enumerate(examples)]
    features = build_features(smol_tokenizer, fake_task, examples, max_length=128)
    pad = smol_tokenizer.pad_token_id

    model = _model(make_tiny_llama, dropout)
    torch.manual_seed(7)
    with lora_input_dropout(model):
        single_loss = model(**_collate(features, pad, "cpu")).loss
        single_loss.backward()
    single = _grads(model)

    model.zero_grad(set_to_none=True)
    total = {n: torch.zeros_like(g) for n, g in single.items()}
    logged = 0.0
    for rank in range(processes):
        torch.manual_seed(7)  # every process's generator is in the same state
        with lora_input_dropout(model):
            loss, part = MicroBatchShards(rank, processes).loss(model, features, pad, "cpu")
            loss.backward()
        logged += float(part)
        for n, g in _grads(model).items():
            total[n] += g / processes  # DDP's average over processes
        model.zero_grad(set_to_none=True)
    # transformers computes the loss in float32 (it upcasts the logits to float, which
    # here means down from float64), hence a float32 tolerance.
    assert logged == pytest.approx(float(single_loss.detach()), rel=1e-6)
    for n, g in single.items():
        torch.testing.assert_close(total[n], g, rtol=1e-5, atol=1e-7, msg=n)


def test_target_tokens_counts_the_shifted_labels(smol_tokenizer, fake_task, fake_examples):
    features = build_features(smol_tokenizer, fake_task, fake_examples, max_length=128)
    batch = _collate(features, smol_tokenizer.pad_token_id, "cpu")
    assert target_tokens(features) == int((batch["labels"][:, 1:] != -100).sum())
