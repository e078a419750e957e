"""STAR's base term on the tuned model's answer (strategy.base_target=tuned): the base model
scores given token ids; the base cache is keyed by those ids; the loop wires both options."""

from __future__ import annotations

import json
import math

import pytest
import torch

from activelora.config import LoraSection
from activelora.data.example import Example
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


# ----------------------------------------------------------------------------- answer ends


def test_content_only_drops_exactly_the_end_marker(smol_tokenizer):
    from activelora.strategies.scored_answers import content_only

    tok = smol_tokenizer
    body = tok(" 3 + 4 = 7. The final answer is 7.", add_special_tokens=False)["input_ids"]
    text = tok.decode(body).strip()
    for tail in ([tok.eos_token_id], tok("\n", add_special_tokens=False)["input_ids"],
                 tok("\nQuestion:", add_special_tokens=False)["input_ids"]):
        ids = body + tail
        gen = Generation(text, ids, [-0.1] * len(ids))
        cut = content_only(tok, gen)
        assert cut.token_ids == body and cut.token_logprobs == [-0.1] * len(body) and cut.text == text
    empty = Generation("", [tok.eos_token_id], [-0.5])
    assert content_only(tok, empty).token_ids == [tok.eos_token_id]  # nothing to score otherwise


def test_eos_end_is_the_training_target_encoding(smol_tokenizer):
    from activelora.data.tasks import get_task
    from activelora.models.text import encode_target
    from activelora.strategies.scored_answers import rescored

    tok, task = smol_tokenizer, get_task("arith")
    example = Example("e", "q", "3 + 4 = 7. The final answer is 7.")
    newline_ended = tok(" 3 + 4 = 7. The final answer is 7.\n", add_special_tokens=False)["input_ids"]
    gen = Generation("3 + 4 = 7. The final answer is 7.", newline_ended, [-0.1] * len(newline_ended))
    assert rescored(tok, gen, "eos").token_ids == encode_target(tok, task.target(example))
    assert rescored(tok, gen, "generated").token_ids == newline_ended
    assert rescored(tok, gen, "content").token_ids == newline_ended[:-1]


# ----------------------------------------------------------------------------- through the loop

from activelora.cli import main  # noqa: E402

SMALL = [
    "--set", "loop.pool_limit=12", "--set", "loop.test_limit=3", "--set", "loop.probe_size=0",
    "--set", "loop.initial=4", "--set", "loop.query_size=3",
    "--set", "train.epochs=1", "--set", "train.batch_size=4",
    "--set", "eval.max_new_tokens=5", "--set", "score.max_new_tokens=5", "--set", "score.batch_size=8",
    "--set", "strategy.mc_samples=2", "--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]",
]


@pytest.mark.parametrize("target, end", [("tuned", "generated"), ("own", "content"), ("own", "eos")])
def test_loop_scores_the_base_term_on_the_chosen_answers(tmp_path, tiny_model_dir, target, end):
    from activelora.data.arith import generate_arith
    from activelora.data.tasks import get_task
    from activelora.models.loading import load_model
    from activelora.models.lora import load_adapter_weights
    from activelora.models.text import encode_target
    from activelora.strategies.scored_answers import content_only

    out = tmp_path / "exp"
    assert main(["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", *SMALL,
                 "--strategy", "star", "--rounds", "1", "--set", f"strategy.base_target={target}",
                 "--set", f"strategy.answer_end={end}", "--set", "strategy.base_normalize=false",  # summed, as below
                 "--set", "strategy.cold_start_rounds=0",  # round 0's pool scores are STAR's, not skipped
                 # One deterministic pass, plain training: this test is about the base term.
                 "--set", "strategy.mc_dropout=false", "--set", "regularization.apply=none"]) == 0
    run = out / "star" / "seed-0"
    saved = json.loads((run / "round-0" / "pool_scores.json").read_text())
    # Independently: reload round 0's adapter and score the base term on the chosen answers.
    model, tok = load_model(str(tiny_model_dir))
    model = attach_lora(model, LoraSection(r=2, lora_dropout=0.1, target_modules=["q_proj", "v_proj"]))
    load_adapter_weights(model, run / "round-0" / "adapter")
    model.eval()
    task = get_task("arith")
    by_id = {ex.id: ex for ex in generate_arith("train", 12)}
    examples = [by_id[i] for i in saved["ids"]]
    prompts = [encode_prompt(tok, task.prompt(ex)) for ex in examples]
    if target == "tuned":
        answers = plain(generate(model, tok, prompts, max_new_tokens=5, stop_strings=task.stop_strings))
    else:
        with adapter_disabled(model):
            own = generate(model, tok, prompts, max_new_tokens=5, stop_strings=task.stop_strings)
        answers = [content_only(tok, g) if end == "content" else
                   Generation(g.text, encode_target(tok, " " + g.text), []) for g in own]
    expected = score_pool(model, tok, task, examples, measure="entropy", max_new_tokens=5, progress=False,
                          base=True, cache=False, generations=answers)
    assert saved["base_scores"] == pytest.approx([s.score for s in expected], rel=1e-5, abs=1e-6)
    if target == "tuned":  # (the tiny base model never ends an answer in 5 tokens: no marker to drop)
        default = score_pool(model, tok, task, examples, measure="entropy", max_new_tokens=5, progress=False,
                             base=True, cache=False)
        assert [s.score for s in default] != pytest.approx(saved["base_scores"], rel=1e-6)
