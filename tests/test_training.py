"""LoRA training with the hybrid regularisation, on a tiny LLaMA (no downloads)."""

from __future__ import annotations

import math

import pytest
import torch

from activelora.config import Config, LoraSection, TrainConfig
from activelora.data.example import Example
from activelora.models.lora import (
    attach_lora,
    lora_a_parameters,
    lora_b_parameters,
    lora_dropout_modules,
)
from activelora.models.text import IGNORE_INDEX, build_feature
from activelora.run import training
from activelora.run.training import Regularization, b_l2_penalty, make_optimizer, train_lora


@pytest.fixture()
def tiny_tokenizer(smol_tokenizer):
    return smol_tokenizer


@pytest.fixture()
def tiny_model_factory(make_tiny_llama):
    return make_tiny_llama


class EchoTask:
    """Stand-in task: prompt is the question, target the answer (like the `plain` task)."""

    name = "echo"
    max_new_tokens = 8
    stop_strings = ()

    def prompt(self, ex):
        return ex.question

    def target(self, ex):
        return " " + ex.answer


@pytest.fixture()
def lora_model(tiny_model_factory):
    model = tiny_model_factory()
    return attach_lora(model, LoraSection(r=4, lora_alpha=8, lora_dropout=0.2, target_modules=["q_proj", "v_proj"]))


EXAMPLES = [Example(f"e{i}", f"Question: {i} plus {i}?", f"{2 * i}") for i in range(6)]


def _set_b(model, value: float) -> None:
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.fill_(value)


def test_build_feature_masks_prompt_and_keeps_target_when_truncating():
    feature = build_feature(list(range(10)), [100, 101, 2], max_length=8)
    assert feature.input_ids == [5, 6, 7, 8, 9, 100, 101, 2]
    assert feature.labels == [IGNORE_INDEX] * 5 + [100, 101, 2]


def test_penalty_reaches_loss_and_gradient_of_b(lora_model):
    _set_b(lora_model, 0.05)
    coef = 0.3
    expected = sum(float((p.detach().double() ** 2).sum()) for p in lora_b_parameters(lora_model))
    penalty = b_l2_penalty(lora_model)
    assert math.isclose(penalty.detach().item(), expected, rel_tol=1e-5)
    (coef * penalty).backward()
    for p in lora_b_parameters(lora_model):
        # d/dB coef*||B||^2 = 2*coef*B
        torch.testing.assert_close(p.grad, 2 * coef * p.detach(), rtol=1e-5, atol=1e-7)
    for p in lora_a_parameters(lora_model):
        assert p.grad is None


def test_penalty_mode_changes_training_against_none(tiny_model_factory, tiny_tokenizer):
    lora = LoraSection(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    train = TrainConfig(epochs=2, batch_size=3, learning_rate=1e-2, warmup_ratio=0.0, seed=1)
    norms = {}
    for mode, coef in (("none", 0.0), ("penalty", 5.0)):
        model = attach_lora(tiny_model_factory(), lora, seed=1)
        reg = Regularization(a_dropout=0.0, b_l2_mode=mode, b_l2_penalty=coef)
        train_lora(model, tiny_tokenizer, EchoTask(), EXAMPLES, train, reg, progress=False)
        norms[mode] = b_l2_penalty(model).item()
    assert norms["penalty"] < norms["none"]


def test_decay_group_touches_b_only(lora_model):
    reg = Regularization(a_dropout=0.0, b_l2_mode="decay", b_weight_decay=0.5)
    optimizer = make_optimizer(lora_model, TrainConfig(weight_decay=0.0, learning_rate=0.1), reg)
    b_ids = {id(p) for p in lora_b_parameters(lora_model)}
    a_ids = {id(p) for p in lora_a_parameters(lora_model)}
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        if group["weight_decay"] > 0:
            assert ids == b_ids
        else:
            assert ids.isdisjoint(b_ids) and a_ids <= ids
    # One step with zero gradients: AdamW's decoupled decay shrinks B by lr*wd, leaves A.
    _set_b(lora_model, 1.0)
    a_before = [p.detach().clone() for p in lora_a_parameters(lora_model)]
    for p in lora_a_parameters(lora_model) + lora_b_parameters(lora_model):
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for p in lora_b_parameters(lora_model):
        torch.testing.assert_close(p.detach(), torch.full_like(p, 1.0 - 0.1 * 0.5))
    for before, p in zip(a_before, lora_a_parameters(lora_model)):
        torch.testing.assert_close(p.detach(), before)


def test_dropout_sits_on_the_input_of_a(lora_model):
    modules = lora_dropout_modules(lora_model)
    assert modules and all(isinstance(m, torch.nn.Dropout) and m.p == 0.2 for m in modules)
    _set_b(lora_model, 0.1)
    layer = next(m for m in lora_model.modules() if hasattr(m, "lora_A"))
    x = torch.randn(1, 4, layer.in_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = layer.base_layer(x)
        # The layer's own forward in train mode: the LoRA branch varies between calls, the
        # frozen base path does not, so the dropout sits inside the adapter branch.
        layer.train()
        first, second = layer(x), layer(x)
        assert not torch.equal(first, second)
        # Dropout acts on A's input: with the dropout module replaced by identity, the branch
        # is exactly B(A(x)) * scaling.
        dropout = layer.lora_dropout["default"]
        layer.lora_dropout["default"] = torch.nn.Identity()
        scaling = layer.scaling["default"]
        expected = base + layer.lora_B["default"](layer.lora_A["default"](x)) * scaling
        torch.testing.assert_close(layer(x), expected)
        layer.lora_dropout["default"] = dropout
        layer.eval()
        torch.testing.assert_close(layer(x), expected)


def test_training_lowers_loss_and_counts_steps(tiny_model_factory, tiny_tokenizer):
    model = attach_lora(tiny_model_factory(), LoraSection(r=8, lora_alpha=16, lora_dropout=0.0,
                                                          target_modules=["q_proj", "v_proj", "o_proj"]))
    train = TrainConfig(epochs=6, batch_size=2, learning_rate=2e-2, warmup_ratio=0.0, grad_accum=1)
    result = train_lora(model, tiny_tokenizer, EchoTask(), EXAMPLES, train, Regularization.plain(), progress=False)
    assert result.steps == 18 and len(result.losses) == 18
    assert sum(result.losses[-3:]) < sum(result.losses[:3])
    assert not model.training


def test_grad_accum_sizes_schedule_from_optimizer_steps(tiny_model_factory, tiny_tokenizer):
    model = attach_lora(tiny_model_factory(), LoraSection(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["q_proj"]))
    train = TrainConfig(epochs=1, batch_size=2, grad_accum=3, learning_rate=1e-3)
    result = train_lora(model, tiny_tokenizer, EchoTask(), EXAMPLES, train, Regularization.plain(), progress=False)
    assert result.steps == 1 and len(result.losses) == 1


def _capture_optimizer(monkeypatch):
    made = []

    def spy(*args, **kwargs):
        made.append(training_make(*args, **kwargs))
        return made[-1]

    training_make = training.make_optimizer
    monkeypatch.setattr(training, "make_optimizer", spy)
    return made


def test_partial_accumulation_group_still_takes_an_optimizer_step(tiny_model_factory, tiny_tokenizer, monkeypatch):
    made = _capture_optimizer(monkeypatch)
    model = attach_lora(tiny_model_factory(), LoraSection(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["q_proj"]))
    # 6 examples, batch 2 -> 3 micro-batches; accumulation 2 -> groups of 2 and 1.
    train = TrainConfig(epochs=1, batch_size=2, grad_accum=2, learning_rate=1e-3, warmup_ratio=0.0)
    result = train_lora(model, tiny_tokenizer, EchoTask(), EXAMPLES, train, Regularization.plain(), progress=False)
    assert result.steps == 2 and len(result.losses) == 2
    (optimizer,) = made
    # AdamW counts its own steps per parameter: the last, partial group was applied.
    assert {int(optimizer.state[p]["step"]) for g in optimizer.param_groups for p in g["params"]} == {2}


def test_accumulated_micro_batches_equal_one_large_batch(tiny_model_factory, tiny_tokenizer, monkeypatch):
    """Three micro-batches of one example, accumulated, reach the optimiser with the gradient
    of one batch of three (equal target lengths, so the mean of the per-batch token means is
    the token mean)."""
    lora = LoraSection(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    same_length = EXAMPLES[1:4]
    lengths = {len(tiny_tokenizer(" " + ex.answer)["input_ids"]) for ex in same_length}
    assert len(lengths) == 1
    seen = []  # per optimiser step: the gradients it was given
    original = training.make_optimizer

    def hooked(*args, **kwargs):
        optimizer = original(*args, **kwargs)
        optimizer.register_step_pre_hook(
            lambda opt, a, k: seen.append([p.grad.detach().clone() for g in opt.param_groups for p in g["params"]]))
        return optimizer

    monkeypatch.setattr(training, "make_optimizer", hooked)
    grads = []
    for batch_size, accum in ((3, 1), (1, 3)):
        base = tiny_model_factory()
        for module in base.modules():  # the tiny model's attention dropout would add noise
            if hasattr(module, "attention_dropout"):
                module.attention_dropout = 0.0
        model = attach_lora(base, lora, seed=3)
        _set_b(model, 0.01)
        seen.clear()
        train = TrainConfig(epochs=1, batch_size=batch_size, grad_accum=accum, learning_rate=1e-2,
                            warmup_ratio=0.0, max_grad_norm=0.0)
        result = train_lora(model, tiny_tokenizer, EchoTask(), same_length, train, Regularization.plain(),
                            progress=False)
        assert result.steps == 1 and len(seen) == 1
        grads.append(seen[0])
    for big, accumulated in zip(*grads):
        assert big.abs().max() > 0
        # float32 kernels round differently for one row and for three (about 2e-5 of the
        # largest entry on this peaked tiny model); a missed batch or a wrong 1/3 is O(1).
        torch.testing.assert_close(accumulated, big, rtol=1e-4, atol=1e-4 * float(big.abs().max()))
