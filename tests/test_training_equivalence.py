"""Issue 8's faster training against the code it replaced (tests/reference/legacy_training.py).

With the A-input dropout off and length grouping off, the new step (decoder once, LM head at
target positions only, no attention mask) gives the old step's loss and gradients, and a
few optimiser steps give the same adapter, to float32 tolerance. Length grouping keeps every
example exactly once per epoch.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from activelora.config import LoraSection, TrainConfig
from activelora.data.example import Example
from activelora.models.lora import attach_lora, lora_a_parameters, lora_b_parameters
from activelora.run.training import (
    GROUP_WINDOW_BATCHES,
    Regularization,
    _batches,
    _collate,
    build_features,
    target_token_loss,
    train_lora,
)
from reference import legacy_training


class EchoTask:
    name = "echo"
    max_new_tokens = 8
    stop_strings = ()

    def prompt(self, ex):
        return ex.question

    def target(self, ex):
        return " " + ex.answer


# Prompts and targets of different lengths, so batches are padded.
EXAMPLES = [
    Example("a", "What is 2 plus 3?", "5"),
    Example("b", "Tom has 12 apples and gives away 4. How many are left?", "He has 12 - 4 = 8 left. 8"),
    Example("c", "Hi?", "yes"),
    Example("d", "A train goes 60 km in an hour; how far in three hours?", "180 km"),
    Example("e", "Name a colour.", "blue"),
    Example("f", "Is seven odd?", "yes, seven is odd"),
]


def _quiet_model(make_tiny_llama):
    """The tiny LLaMA without its attention dropout (on purpose non-zero in the fixture)."""
    model = make_tiny_llama()
    model.config.attention_dropout = 0.0
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.0
    return model


def _lora(make_tiny_llama, seed=3):
    model = attach_lora(_quiet_model(make_tiny_llama),
                        LoraSection(r=4, lora_alpha=8, lora_dropout=0.0,
                                    target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"]),
                        seed=seed)
    with torch.no_grad():  # B = 0 at init would make every A gradient zero
        for p in lora_b_parameters(model):
            p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(seed))
    return model


def _trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def test_loss_and_gradients_equal_the_full_logits_loss(make_tiny_llama, smol_tokenizer):
    model = _lora(make_tiny_llama)
    features = build_features(smol_tokenizer, EchoTask(), EXAMPLES, max_length=64)
    batch = _collate(features, smol_tokenizer.pad_token_id, "cpu")
    assert len(set(batch["attention_mask"].sum(1).tolist())) > 1  # really padded
    model.train()
    old = model(**batch).loss  # the pre-issue-8 loss: full logits, attention mask
    old_grads = torch.autograd.grad(old, _trainable(model))
    new = target_token_loss(model, batch)
    new_grads = torch.autograd.grad(new, _trainable(model))
    torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-6)
    for n, o in zip(new_grads, old_grads):
        assert o.abs().max() > 0
        torch.testing.assert_close(n, o, rtol=1e-4, atol=1e-5 * float(o.abs().max()))


def test_loss_applies_the_final_logit_softcap():
    """Gemma-2 caps its logits (c * tanh(z / c)); the head-only loss must too."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                          final_logit_softcapping=2.0, pad_token_id=0)
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(config).train()
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 1.0)  # logits well beyond the cap
    ids = torch.randint(1, 97, (3, 9))
    labels = ids.clone()
    labels[:, :4] = -100
    labels[2, 7:] = -100
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    expected = model(**batch).loss
    got = target_token_loss(model, batch)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    config.final_logit_softcapping = None
    assert not torch.allclose(target_token_loss(model, batch), expected)


@pytest.mark.parametrize("reg", [
    Regularization.plain(),
    Regularization(a_dropout=0.0, b_l2_mode="decay", b_weight_decay=0.5),
    Regularization(a_dropout=0.0, b_l2_mode="penalty", b_l2_penalty=0.1),
], ids=["plain", "decay", "penalty"])
def test_training_equals_the_legacy_loop_without_dropout_or_grouping(make_tiny_llama, smol_tokenizer, reg):
    train = TrainConfig(epochs=2, batch_size=4, learning_rate=5e-3, warmup_ratio=0.25, seed=7,
                        group_by_length=False)
    runs = {}
    for name, trainer in (("legacy", legacy_training.train_lora), ("new", train_lora)):
        model = _lora(make_tiny_llama)
        result = trainer(model, smol_tokenizer, EchoTask(), EXAMPLES, train, reg, progress=False)
        runs[name] = (result.losses, [p.detach().clone() for p in lora_a_parameters(model) + lora_b_parameters(model)])
    (old_losses, old_weights), (new_losses, new_weights) = runs["legacy"], runs["new"]
    assert len(new_losses) == len(old_losses) == 4
    torch.testing.assert_close(torch.tensor(new_losses), torch.tensor(old_losses), rtol=1e-5, atol=1e-6)
    start = [p.detach() for p in lora_a_parameters(_lora(make_tiny_llama))]
    assert any(not torch.allclose(w, s) for w, s in zip(old_weights, start))  # training moved A
    for n, o in zip(new_weights, old_weights):
        torch.testing.assert_close(n, o, rtol=1e-4, atol=1e-6)


def test_grouping_off_gives_the_legacy_batches():
    for n, size, epochs, seed in ((13, 4, 2.0, 0), (32, 8, 1.5, 3), (5, 8, 3.0, 1)):
        assert _batches(n, size, epochs, seed) == legacy_training._batches(n, size, epochs, seed)


@pytest.mark.parametrize("n,size", [(37, 4), (96, 8), (5, 8), (64, 8)])
def test_grouping_keeps_every_example_once_per_epoch(n, size):
    rng = random.Random(n)
    lengths = [rng.randint(20, 110) for _ in range(n)]
    per_epoch = -(-n // size)
    batches = _batches(n, size, 3.0, seed=11, lengths=lengths)
    assert len(batches) == 3 * per_epoch  # as many steps as without grouping
    for e in range(3):
        epoch = batches[e * per_epoch:(e + 1) * per_epoch]
        assert sorted(i for b in epoch for i in b) == list(range(n))
        assert sorted(len(b) for b in epoch)[1:] == [size] * (per_epoch - 1)


def test_grouping_removes_padding_and_stays_random():
    # Half the rows are short, half long: random batches mix them, grouped ones hardly.
    size = 4
    window = GROUP_WINDOW_BATCHES * size
    lengths = [10 if i % 2 else 100 for i in range(4 * window)]
    n = len(lengths)

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = _batches(n, size, 1.0, seed=2, lengths=lengths)
    plain = _batches(n, size, 1.0, seed=2)
    assert padded(grouped) < padded(plain)
    # A window of the shuffled order sorted longest first mixes short and long rows in at
    # most one batch (where its long rows end).
    mixed = [len(set(lengths[i] for i in b)) > 1 for b in grouped]
    assert sum(mixed) <= n // window
    # Different seeds give different batches: grouping is not a fixed order.
    assert _batches(n, size, 1.0, seed=3, lengths=lengths) != grouped


def test_training_with_grouping_runs_and_learns(make_tiny_llama, smol_tokenizer):
    model = _lora(make_tiny_llama)
    train = TrainConfig(epochs=6, batch_size=2, learning_rate=2e-2, warmup_ratio=0.0, seed=1)
    assert train.group_by_length
    result = train_lora(model, smol_tokenizer, EchoTask(), EXAMPLES, train, Regularization.plain(), progress=False)
    assert result.steps == 18
    assert sum(result.losses[-3:]) < sum(result.losses[:3])


@pytest.mark.slow
def test_embedded_model_step_and_training_equal_legacy():
    """SmolLM2-135M: one batch's loss and gradients, then two optimiser steps, as before."""
    from activelora.config import Config
    from activelora.data.arith import generate_arith
    from activelora.data.tasks import get_task
    from activelora.models.loading import load_model

    task = get_task("arith")
    examples = generate_arith("train", seed=0)[:8]
    base, tokenizer = load_model(dtype="float32")  # the equivalence is held to float32 tolerances
    lora = dataclasses.replace(Config().lora, lora_dropout=0.0)  # the comparison is without dropout
    model = attach_lora(base, lora, seed=0)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(0))
    start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    features = build_features(tokenizer, task, examples[:4], max_length=256)
    batch = _collate(features, tokenizer.pad_token_id, "cpu")
    model.train()
    params = _trainable(model)
    old = model(**batch).loss
    old_grads = torch.autograd.grad(old, params)
    new = target_token_loss(model, batch)
    new_grads = torch.autograd.grad(new, params)
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)
    for n, o in zip(new_grads, old_grads):
        torch.testing.assert_close(n, o, rtol=1e-3, atol=1e-4 * float(o.abs().max()))
    model.eval()

    train = TrainConfig(epochs=1, batch_size=4, learning_rate=5e-4, seed=0, group_by_length=False)
    weights = []
    for trainer in (legacy_training.train_lora, train_lora):
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in start:
                    p.copy_(start[n])
        result = trainer(model, tokenizer, task, examples, train, Regularization.plain(), progress=False)
        assert result.steps == 2
        weights.append((result.losses, [p.detach().clone() for p in params]))
    (old_losses, old_w), (new_losses, new_w) = weights
    torch.testing.assert_close(torch.tensor(new_losses), torch.tensor(old_losses), rtol=1e-5, atol=1e-5)
    assert any(not torch.equal(o, s) for o, s in zip(old_w, start.values()))  # the steps moved weights
    # AdamW moves each weight by about lr * g / sqrt(v), nearly lr * sign(g): for a gradient
    # near zero, float32 rounding of g can change that step by a good part of lr (seen: one
    # entry in 9216 off by 0.4% to 3% of lr, a different one each run). So: all but 0.1% of
    # the entries agree to float tolerance, and none is off by more than one step.
    for n, o in zip(new_w, old_w):
        off = (n - o).abs() > 1e-6 + 1e-4 * o.abs()
        assert float(off.double().mean()) < 1e-3
        assert float((n - o).abs().max()) <= 2 * train.learning_rate


@pytest.fixture()
def fresh_accelerate_state():
    """accelerate keeps one process-wide state and refuses a second mixed-precision setting;
    reset it around a bf16 test so the tests after it get their own (accelerate's tests do so)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def test_bf16_training_matches_the_legacy_loop(make_tiny_llama, smol_tokenizer, fresh_accelerate_state):
    """Under accelerate's bf16 autocast the head-only loss runs in the same autocast context
    as the legacy model forward did (accelerate wraps only the model's own forward)."""
    from accelerate.state import AcceleratorState

    train = TrainConfig(epochs=1, batch_size=3, learning_rate=5e-3, warmup_ratio=0.0, seed=2,
                        bf16=True, group_by_length=False)
    losses = []
    for trainer in (legacy_training.train_lora, train_lora):
        model = _lora(make_tiny_llama)
        losses.append(trainer(model, smol_tokenizer, EchoTask(), EXAMPLES, train, Regularization.plain(),
                              progress=False).losses)
    AcceleratorState._reset_state(True)
    fp32 = train_lora(_lora(make_tiny_llama), smol_tokenizer, EchoTask(), EXAMPLES,
                      TrainConfig(epochs=1, batch_size=3, learning_rate=5e-3, warmup_ratio=0.0, seed=2,
                                  group_by_length=False), Regularization.plain(), progress=False).losses
    torch.testing.assert_close(torch.tensor(losses[1]), torch.tensor(losses[0]), rtol=2e-3, atol=2e-3)
    assert losses[1] != fp32  # bf16 really ran
