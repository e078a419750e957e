"""STAR's base term on the tuned model's answer (strategy.base_target=tuned): the base model
scores given token ids; the base cache is keyed by those ids; the loop wires both options."""

from __future__ import annotations

import json
import math

import pytest
import torch

from activelora.config import LoraSection
from activelora.models.generation import Generation, generate
from activelora.models.lora import adapter_disabled, attach_lora, lora_b_parameters
from activelora.models.text import encode_prompt
from activelora.uncertainty.scorer import score_pool


def tuned_tiny(make_tiny_llama):
    model = attach_lora(make_tiny_llama(), LoraSection(r=4, lora_alpha=8, lora_dropout=0.1,
                                                       target_modules=["q_proj", "v_proj", "up_proj"]), seed=0)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


def plain(gens):
    """The same answers without the values recorded while generating them."""
    return [Generation(g.text, list(g.token_ids), list(g.token_logprobs)) for g in gens]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def test_base_model_scores_the_tuned_answer_against_float64(make_tiny_llama, smol_tokenizer, fake_task,
                                                            fake_examples):
    model = tuned_tiny(make_tiny_llama)
    prompts = [encode_prompt(smol_tokenizer, fake_task.prompt(ex)) for ex in fake_examples]
    tuned = generate(model, smol_tokenizer, prompts, max_new_tokens=6)
    with adapter_disabled(model):
        own = generate(model, smol_tokenizer, prompts, max_new_tokens=6)
    assert [g.token_ids for g in tuned] != [g.token_ids for g in own]  # the adapter changed the answers
    common = dict(measure="pe", max_new_tokens=6, progress=False, base=True, cache=True)
    got = score_pool(model, smol_tokenizer, fake_task, fake_examples, generations=plain(tuned), **common)
    reference_model = make_tiny_llama().double()
    for prompt, g, s in zip(prompts, tuned, got):
        ids = torch.tensor([prompt + list(g.token_ids)])
        with torch.no_grad():
            logp = torch.log_softmax(reference_model(input_ids=ids).logits[0].double(), -1)
        nll = -sum(float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(g.token_ids))
        assert s.score == pytest.approx(nll, rel=1e-4, abs=1e-6)
    # The cache is keyed by the answer: other answers of the same examples are not served from it.
    own_scored = score_pool(model, smol_tokenizer, fake_task, fake_examples, generations=plain(own), **common)
    fresh = score_pool(model, smol_tokenizer, fake_task, fake_examples, measure="pe", max_new_tokens=6,
                       progress=False, base=True, cache=False)
    assert [s.score for s in own_scored] == pytest.approx([s.score for s in fresh], rel=1e-5)
    assert [s.score for s in own_scored] != pytest.approx([s.score for s in got], rel=1e-3)
    again = score_pool(model, smol_tokenizer, fake_task, fake_examples, generations=plain(tuned), **common)
    assert [s.score for s in again] == [s.score for s in got]
    # Values recorded by another model must not be reused for the base model.
    with pytest.raises(ValueError, match="with base, without recorded values"):
        bad = [Generation(g.text, g.token_ids, g.token_logprobs, (0.0,) * len(g.token_ids), object())
               for g in tuned]
        score_pool(model, smol_tokenizer, fake_task, fake_examples, generations=bad, **common)
    assert math.isfinite(sum(s.score for s in got))
