"""Issue 8: the leaner greedy generation against the pre-issue-8 code (tests/reference), the
logarithmic stop-string trimming against the quadratic one, and the merged-adapter context."""

from __future__ import annotations

import random

import pytest
import torch

from activelora.config import LoraSection
from activelora.models.generation import answer_length, generate
from activelora.models.lora import (adapter_disabled, attach_lora, lora_b_parameters, lora_layers,
                                    merged_adapter, mc_dropout)
from activelora.models.text import encode_prompt
from activelora.uncertainty import measures as M
from reference import legacy_generation as legacy

LOGP_TOL = dict(rel=1e-5, abs=1e-5)


def with_lora(model, dropout: float = 0.0, seed: int = 0):
    """LoRA with non-zero B, so the adapter (and merging it) changes the outputs."""
    model = attach_lora(model, LoraSection(r=4, lora_alpha=8, lora_dropout=dropout,
                                           target_modules=["q_proj", "v_proj", "up_proj", "o_proj"]), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


def prompts_of(tok, task, examples):
    return [encode_prompt(tok, task.prompt(ex)) for ex in examples]


def assert_same_generations(new, old, tol=LOGP_TOL):
    assert len(new) == len(old)
    for n, o in zip(new, old):
        assert n.token_ids == o.token_ids
        assert n.text == o.text
        assert n.token_logprobs == pytest.approx(o.token_logprobs, **tol)
        assert n.logprob == pytest.approx(o.logprob, abs=tol["abs"] * max(1, len(n.token_ids)))


# The tiny model writes near-random tokens: single characters are stop strings it hits
# mid-answer, so trimming is exercised; "zzzz" it never writes.
STOPS = [(), ("\n",), ("e", "a"), ("zzzz",), (" t", "o")]


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "lora"])
@pytest.mark.parametrize("stops", STOPS, ids=repr)
def test_generate_equals_the_legacy_generate(make_tiny_llama, smol_tokenizer, fake_task, fake_examples,
                                             wrapped, stops):
    model = with_lora(make_tiny_llama()) if wrapped else make_tiny_llama()
    prompts = prompts_of(smol_tokenizer, fake_task, fake_examples)
    for batch_size in (2, 5):
        kw = dict(max_new_tokens=12, stop_strings=stops, batch_size=batch_size)
        assert_same_generations(generate(model, smol_tokenizer, prompts, **kw),
                                legacy.generate(model, smol_tokenizer, prompts, **kw))


def test_stop_strings_actually_cut_answers(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    """Guards the test above: with stop strings the answers are shorter than without."""
    model = make_tiny_llama()
    prompts = prompts_of(smol_tokenizer, fake_task, fake_examples)
    free = generate(model, smol_tokenizer, prompts, max_new_tokens=12)
    cut = generate(model, smol_tokenizer, prompts, max_new_tokens=12, stop_strings=("e", "a"))
    assert sum(len(g.token_ids) for g in cut) < sum(len(g.token_ids) for g in free)


def test_step_values_are_the_teacher_forced_values(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    """Entropy recorded while generating equals the entropy of a full forward over prompt+answer."""
    model = with_lora(make_tiny_llama())
    prompts = prompts_of(smol_tokenizer, fake_task, fake_examples)
    gens = generate(model, smol_tokenizer, prompts, max_new_tokens=10, batch_size=3,
                    step_values=lambda logits, ids: M.token_entropy(logits))
    with torch.no_grad():
        for p, g in zip(prompts, gens):
            assert len(g.step_values) == len(g.token_ids) > 0
            logits = model(input_ids=torch.tensor([p + g.token_ids])).logits[0, len(p) - 1:-1]
            want = M.token_entropy(logits.double()).tolist()
            assert list(g.step_values) == pytest.approx(want, rel=1e-4, abs=1e-4)
            logp = torch.log_softmax(logits.double(), -1).gather(-1, torch.tensor(g.token_ids)[:, None])
            assert g.token_logprobs == pytest.approx(logp.squeeze(-1).tolist(), rel=1e-4, abs=1e-4)


# --------------------------------------------------------------------------- stop-string trimming


@pytest.mark.parametrize("seed", range(4))
def test_answer_length_equals_the_prefix_scan(smol_tokenizer, seed):
    """Random id rows (with the ids of common stop strings mixed in) against the legacy scan."""
    rng = random.Random(seed)
    tok = smol_tokenizer
    pieces = [tok.encode(s, add_special_tokens=False) for s in ("\n", "\n\n", ".", " The", "Question:", "ab")]
    stop_sets = [("\n",), ("\n", "\nQuestion:", "\n\n"), (".",), ("Question",), ("b",), ()]
    for _ in range(60):
        row: list[int] = []
        while len(row) < rng.randint(1, 40):
            row += rng.choice(pieces) if rng.random() < 0.3 else [rng.randrange(len(tok))]
        if rng.random() < 0.3:
            row.insert(rng.randrange(len(row) + 1), tok.eos_token_id)
        for stops in stop_sets:
            assert answer_length(tok, row, stops) == legacy.answer_length(tok, row, stops), (row, stops)


# --------------------------------------------------------------------------- merged adapter


def base_state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}


def test_merged_adapter_restores_the_base_weights_bit_exactly(make_tiny_llama):
    model = with_lora(make_tiny_llama())
    before = base_state(model)
    x = torch.tensor([[5, 17, 300, 42, 7, 99]])
    with torch.no_grad():
        unmerged = model(input_ids=x).logits
        for _ in range(3):  # repeated rounds must not drift
            with merged_adapter(model):
                assert all(layer.merged for layer in lora_layers(model))
                merged = model(input_ids=x).logits
                changed = [n for n, p in model.named_parameters() if "lora_" not in n and not torch.equal(p, before[n])]
                assert changed  # the weights really were merged
            torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
    after = base_state(model)
    assert all(torch.equal(after[n], before[n]) for n in before)
    assert not any(layer.merged for layer in lora_layers(model))
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, unmerged)


def test_merged_adapter_restores_after_an_error(make_tiny_llama):
    model = with_lora(make_tiny_llama())
    before = base_state(model)
    with pytest.raises(RuntimeError, match="boom"):
        with merged_adapter(model):
            raise RuntimeError("boom")
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if "lora_" not in n)
    assert not any(layer.merged for layer in lora_layers(model))


def test_nothing_is_merged_while_dropout_samples_or_the_adapter_is_off(make_tiny_llama):
    model = with_lora(make_tiny_llama(), dropout=0.3)
    with mc_dropout(model, active=True), merged_adapter(model):
        assert not any(layer.merged for layer in lora_layers(model))
    with adapter_disabled(model), merged_adapter(model):
        assert not any(layer.merged for layer in lora_layers(model))
    with merged_adapter(model):  # eval mode: dropout off, so merging is exact
        assert all(layer.merged for layer in lora_layers(model))


def test_generate_leaves_the_base_weights_untouched(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = with_lora(make_tiny_llama())
    before = base_state(model)
    generate(model, smol_tokenizer, prompts_of(smol_tokenizer, fake_task, fake_examples), max_new_tokens=4)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if "lora_" not in n)


# --------------------------------------------------------------------------- embedded model


@pytest.mark.slow
def test_generate_equals_the_legacy_generate_on_the_embedded_model():
    from activelora.data import generate_arith, get_task
    from activelora.models.loading import load_model

    model, tok = load_model("smollm2-135m", dtype="float32")  # the equivalence is held to float32 tolerances
    model = with_lora(model)
    with torch.no_grad():  # a small adapter: answers stay sensible, but differ from the base model's
        for p in lora_b_parameters(model):
            p.mul_(0.01)
    task = get_task("arith")
    examples = generate_arith("test")[:6]
    prompts = prompts_of(tok, task, examples)
    kw = dict(max_new_tokens=task.max_new_tokens, stop_strings=task.stop_strings, batch_size=3)
    new, old = generate(model, tok, prompts, **kw), legacy.generate(model, tok, prompts, **kw)
    # 30 layers in float32, merged (W + BA) against unmerged (Wx + B(Ax)): rounding ~1e-5.
    assert_same_generations(new, old, tol=dict(rel=1e-4, abs=1e-4))
    assert sum(len(g.token_ids) for g in new) > 3 * len(new)  # real answers, not just a stop


def test_a_generation_config_with_logits_processors_goes_through_generate(make_tiny_llama, smol_tokenizer,
                                                                          fake_task, fake_examples):
    """A repetition penalty is a logits processor generate() adds: the row-dropping loop does
    not apply it, so such a model is decoded by generate() itself, and gets the same tokens as
    the legacy generate with the same config."""
    from activelora.models import generation

    model = with_lora(make_tiny_llama())
    assert generation._plain_greedy(model)
    model.generation_config.repetition_penalty = 1.3
    assert not generation._plain_greedy(model)
    prompts = prompts_of(smol_tokenizer, fake_task, fake_examples)
    kw = dict(max_new_tokens=10, stop_strings=("e",), batch_size=3)
    new, old = generate(model, smol_tokenizer, prompts, **kw), legacy.generate(model, smol_tokenizer, prompts, **kw)
    assert_same_generations(new, old)
    model.generation_config.repetition_penalty = 1.0
    plain = generate(model, smol_tokenizer, prompts, **kw)
    assert [g.token_ids for g in plain] != [g.token_ids for g in new]  # the penalty changed something
