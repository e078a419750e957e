"""The batched pool scorer on a tiny LLaMA: exactness, padding, MC dropout, base scores, cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from activelora.config import LoraSection
from activelora.errors import ConfigError, DataError, UnknownNameError
from activelora.models.generation import generate
from activelora.models.lora import any_dropout_active, attach_lora, lora_b_parameters
from activelora.models.text import encode_prompt, encode_target
from activelora.uncertainty import measures as M
from activelora.uncertainty.scorer import merge_scores, score_pool

TOL = dict(rtol=1e-5, atol=1e-5)


def with_lora(model, dropout: float, seed: int = 0):
    """Attach LoRA and give B non-zero values so the adapter changes the outputs."""
    model = attach_lora(model, LoraSection(r=4, lora_alpha=8, lora_dropout=dropout,
                                           target_modules=["q_proj", "v_proj", "up_proj"]), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


def score(model, tok, task, examples, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("cache", False)
    return score_pool(model, tok, task, examples, **kw)


def reference_scores(model, tok, task, examples, measure, target, normalize=False):
    """One unpadded full forward per example, ``model(...).logits``, then the measure."""
    prompts = [encode_prompt(tok, task.prompt(ex)) for ex in examples]
    if target == "gold":
        answers = [encode_target(tok, task.target(ex)) for ex in examples]
    else:
        answers = [g.token_ids for g in generate(model, tok, prompts, max_new_tokens=task.max_new_tokens)]
    out = []
    with torch.no_grad():
        for p, a in zip(prompts, answers):
            logits = model(input_ids=torch.tensor([p + a])).logits[0, len(p) - 1:len(p) + len(a) - 1]
            y = torch.tensor(a)
            fn = {"entropy": lambda: M.entropy(logits, normalize), "pe": lambda: M.pe(logits, y, normalize),
                  "lc": lambda: M.lc(logits, y, normalize)}[measure]
            out.append(fn().item())
    return out


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "peft"])
@pytest.mark.parametrize("target", ["gold", "generated"])
def test_answer_position_projection_equals_full_logits(make_tiny_llama, smol_tokenizer, fake_task,
                                                       fake_examples, wrapped, target):
    model = with_lora(make_tiny_llama(), 0.0) if wrapped else make_tiny_llama()
    for measure in ("entropy", "pe", "lc"):
        for normalize in (False, True):
            got = [r.score for r in score(model, smol_tokenizer, fake_task, fake_examples, measure=measure,
                                          target=target, normalize=normalize, batch_size=3)]
            want = reference_scores(model, smol_tokenizer, fake_task, fake_examples, measure, target, normalize)
            np.testing.assert_allclose(got, want, **TOL, err_msg=f"{measure} normalize={normalize}")


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_padding_invariance(make_tiny_llama, smol_tokenizer, fake_task, fake_examples, attention):
    model = make_tiny_llama()
    model.set_attn_implementation(attention)  # eager builds its causal mask itself: check both
    assert model.config._attn_implementation == attention
    model = with_lora(model, 0.0)
    short = fake_examples[0]
    longer = [ex for ex in fake_examples if len(ex.question) > len(short.question)]
    for target in ("gold", "generated"):
        alone = score(model, smol_tokenizer, fake_task, [short], target=target)[0]
        batched = score(model, smol_tokenizer, fake_task, [short] + longer, target=target, batch_size=16)[0]
        assert alone.answer == batched.answer
        assert alone.score == pytest.approx(batched.score, rel=1e-5, abs=1e-5)


def test_gold_and_generated_targets(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = make_tiny_llama()
    gold = score(model, smol_tokenizer, fake_task, fake_examples, target="gold", measure="pe")
    gen = score(model, smol_tokenizer, fake_task, fake_examples, target="generated", measure="pe")
    prompts = [encode_prompt(smol_tokenizer, fake_task.prompt(ex)) for ex in fake_examples]
    greedy = generate(model, smol_tokenizer, prompts, max_new_tokens=fake_task.max_new_tokens)
    assert [r.answer for r in gold] == [ex.answer for ex in fake_examples]
    assert [r.answer for r in gen] == [g.text for g in greedy]
    # The greedy answer's NLL is the sum of its own token log-probs from generation.
    np.testing.assert_allclose([r.score for r in gen], [-g.logprob for g in greedy], rtol=1e-4, atol=1e-4)
    assert [r.score for r in gold] != pytest.approx([r.score for r in gen])
    unlabelled = [type(fake_examples[0])("u", "No label?", None)]
    assert score(model, smol_tokenizer, fake_task, unlabelled)[0].answer is not None  # label-free
    with pytest.raises(DataError, match="'u' has no gold answer"):
        score(model, smol_tokenizer, fake_task, unlabelled, target="gold")


def test_memory_budget_groups_and_chunks_give_the_same_scores(make_tiny_llama, smol_tokenizer, fake_task,
                                                              fake_examples):
    model = with_lora(make_tiny_llama(), 0.0)
    kw = dict(measure="bald", mc_samples=3, target="gold")
    roomy = score(model, smol_tokenizer, fake_task, fake_examples, **kw)
    tight = score(model, smol_tokenizer, fake_task, fake_examples, memory_budget_mb=1e-3, **kw)
    np.testing.assert_allclose([r.score for r in tight], [r.score for r in roomy], **TOL)
    kw["measure"] = "entropy"
    roomy = score(model, smol_tokenizer, fake_task, fake_examples, **kw)
    tight = score(model, smol_tokenizer, fake_task, fake_examples, memory_budget_mb=1e-3, chunk_size=2, **kw)
    np.testing.assert_allclose([r.samples for r in tight], [r.samples for r in roomy], **TOL)


# --------------------------------------------------------------------------- MC dropout


def test_mc_passes_differ_with_lora_dropout(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = with_lora(make_tiny_llama(), 0.5)
    results = score(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", mc_samples=4)
    for r in results:
        assert len(r.samples) == 4
        assert len(set(r.samples)) > 1, r.id
        assert r.score == pytest.approx(np.mean(r.samples))
    bald = score(model, smol_tokenizer, fake_task, fake_examples, measure="bald", mc_samples=4)
    assert all(r.score > 1e-4 and r.samples == () for r in bald)
    assert not any_dropout_active(model)


def test_mc_passes_identical_without_lora_dropout(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = with_lora(make_tiny_llama(), 0.0)
    results = score(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", mc_samples=3)
    for r in results:
        np.testing.assert_allclose(r.samples, [r.samples[0]] * 3, rtol=1e-6)
    bald = score(model, smol_tokenizer, fake_task, fake_examples, measure="bald", mc_samples=3)
    assert all(r.score == pytest.approx(0.0, abs=1e-5) for r in bald)


def test_the_tiny_model_would_show_other_dropout(make_tiny_llama, smol_tokenizer):
    # Control for the test above: the model's attention dropout is live in train mode, so
    # identical passes prove that only the LoRA dropout was switched on.
    model = make_tiny_llama().train()
    ids = torch.tensor([smol_tokenizer("a few words to attend over")["input_ids"]])
    with torch.no_grad():
        assert not torch.allclose(model(input_ids=ids).logits, model(input_ids=ids).logits)


def test_after_mc_scoring_everything_is_deterministic(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = with_lora(make_tiny_llama(), 0.5)
    before = score(model, smol_tokenizer, fake_task, fake_examples, measure="pe")
    score(model, smol_tokenizer, fake_task, fake_examples, measure="pe", mc_samples=5)
    assert not any(m.training for m in model.modules())
    assert not any_dropout_active(model)
    after_1 = score(model, smol_tokenizer, fake_task, fake_examples, measure="pe")
    after_2 = score(model, smol_tokenizer, fake_task, fake_examples, measure="pe")
    assert [r.score for r in after_1] == [r.score for r in after_2] == [r.score for r in before]
    assert [r.answer for r in after_1] == [r.answer for r in before]


def test_mc_scoring_is_seeded_and_leaves_the_global_rng_alone(make_tiny_llama, smol_tokenizer, fake_task,
                                                              fake_examples):
    model = with_lora(make_tiny_llama(), 0.5)
    state = torch.get_rng_state()
    a = score(model, smol_tokenizer, fake_task, fake_examples, mc_samples=3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = score(model, smol_tokenizer, fake_task, fake_examples, mc_samples=3, seed=7)
    c = score(model, smol_tokenizer, fake_task, fake_examples, mc_samples=3, seed=8)
    assert [r.samples for r in a] == [r.samples for r in b]
    assert [r.samples for r in a] != [r.samples for r in c]


# --------------------------------------------------------------------------- base model and cache


@pytest.mark.parametrize("target", ["gold", "generated"])
def test_base_scores_equal_a_fresh_base_model(make_tiny_llama, smol_tokenizer, fake_task, fake_examples, target):
    adapted = with_lora(make_tiny_llama(), 0.3)
    fresh = make_tiny_llama()
    base = score(adapted, smol_tokenizer, fake_task, fake_examples, base=True, target=target, measure="entropy")
    plain = score(fresh, smol_tokenizer, fake_task, fake_examples, target=target, measure="entropy")
    np.testing.assert_allclose([r.score for r in base], [r.score for r in plain], **TOL)
    assert [r.answer for r in base] == [r.answer for r in plain]
    full = score(adapted, smol_tokenizer, fake_task, fake_examples, target=target, measure="entropy")
    assert not np.allclose([r.score for r in full], [r.score for r in plain], **TOL)  # the adapter matters
    assert not any(m.training for m in adapted.modules())


def test_base_cache_hit_returns_same_values_without_recomputing(make_tiny_llama, smol_tokenizer, fake_task,
                                                                fake_examples, tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path))
    model = with_lora(make_tiny_llama(), 0.1)
    calls = []
    model.get_base_model().model.register_forward_hook(lambda *a: calls.append(1))
    first = score(model, smol_tokenizer, fake_task, fake_examples, base=True, cache=True)
    assert calls and len(list((tmp_path / "scores").glob("*.json"))) == 1
    calls.clear()
    again = score(model, smol_tokenizer, fake_task, fake_examples, base=True, cache=True)
    subset = score(model, smol_tokenizer, fake_task, fake_examples[1:3], base=True, cache=True)
    assert not calls
    assert [(r.id, r.score, r.answer) for r in again] == [(r.id, r.score, r.answer) for r in first]
    assert [r.score for r in subset] == [r.score for r in first[1:3]]
    other = score(model, smol_tokenizer, fake_task, fake_examples, base=True, cache=True, measure="pe")
    assert calls and [r.score for r in other] != [r.score for r in first]
    stored = json.loads(next((tmp_path / "scores").glob("*.json")).read_text())
    assert stored["key"]["measure"] in ("entropy", "pe") and stored["key"]["target"] == "generated"


# --------------------------------------------------------------------------- vote, hidden, shards, errors


def test_vote_scores_sampled_answers(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = make_tiny_llama()
    a = score(model, smol_tokenizer, fake_task, fake_examples, measure="vote", mc_samples=4, seed=3)
    b = score(model, smol_tokenizer, fake_task, fake_examples, measure="vote", mc_samples=4, seed=3)
    for r in a:
        assert len(r.votes) == 4
        assert r.score == pytest.approx(M.vote(list(r.votes)))
    assert [r.votes for r in a] == [r.votes for r in b]
    # A random tiny model samples different words: the votes must not all agree.
    assert any(r.score > 0 for r in a)


def test_return_hidden_is_the_mean_prompt_state(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = with_lora(make_tiny_llama(), 0.0)
    for measure, k in (("entropy", 1), ("vote", 2)):
        results = score(model, smol_tokenizer, fake_task, fake_examples, measure=measure, mc_samples=k,
                        return_hidden=True)
        for ex, r in zip(fake_examples, results):
            ids = torch.tensor([encode_prompt(smol_tokenizer, fake_task.prompt(ex))])
            with torch.no_grad():
                want = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].mean(0)
            assert r.hidden.shape == (32,) and r.hidden.dtype == np.float32
            np.testing.assert_allclose(r.hidden, want.numpy(), **TOL)


def test_shards_merge_by_id(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = make_tiny_llama()
    whole = score(model, smol_tokenizer, fake_task, fake_examples, target="gold")
    parts = [score(model, smol_tokenizer, fake_task, fake_examples[i::2], target="gold") for i in range(2)]
    merged = {r.id: r.score for r in merge_scores(*parts)}
    assert merged == pytest.approx({r.id: r.score for r in whole}, rel=1e-5)
    with pytest.raises(DataError, match="two shards"):
        merge_scores(parts[0], parts[0])


def test_user_mistakes_raise_clear_errors(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = make_tiny_llama()
    with pytest.raises(UnknownNameError, match="valid: bald, entropy"):
        score(model, smol_tokenizer, fake_task, fake_examples, measure="maxent")
    with pytest.raises(ConfigError, match="needs --mc-samples >= 2"):
        score(model, smol_tokenizer, fake_task, fake_examples, measure="bald")
    with pytest.raises(ConfigError, match="target"):
        score(model, smol_tokenizer, fake_task, fake_examples, target="oracle")
    with pytest.raises(DataError, match="duplicate example id 'a'"):
        score(model, smol_tokenizer, fake_task, fake_examples + fake_examples[:1])
    assert score(model, smol_tokenizer, fake_task, []) == []


# --------------------------------------------------------------------------- command line


def test_score_help_and_bad_flags(capsys):
    from activelora.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["score", "--help"])
    assert exc.value.code == 0
    assert "--mc-samples" in capsys.readouterr().out
    assert main(["score", "--data", "/nonexistent/file.jsonl", "--out", "x.jsonl"]) == 2
    assert "error" in capsys.readouterr().err


GSM8K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "GSM8K" / "train.jsonl"


@pytest.mark.slow
@pytest.mark.needs_shared
@pytest.mark.skipif(not GSM8K.is_file(), reason="../shared/datasets/GSM8K absent")
def test_score_command_runs_every_measure_on_the_embedded_model(tmp_path, monkeypatch):
    from activelora.cli import main

    monkeypatch.setenv("ACTIVELORA_CACHE", os.environ.get("ACTIVELORA_CACHE", str(Path.home() / ".cache" / "activelora")))
    data = tmp_path / "gsm8k" / "train.jsonl"
    data.parent.mkdir()
    data.write_text("".join(GSM8K.read_text().splitlines(keepends=True)[:4]))
    # An adapter with live A-input dropout and non-zero B, so MC passes and --base matter.
    from activelora.models.loading import load_model
    from activelora.models.lora import save_adapter

    model, _ = load_model("smollm2-135m")
    save_adapter(with_lora(model, 0.3), tmp_path / "adapter")
    adapter = ["--adapter", str(tmp_path / "adapter")]
    runs = [("entropy", []), ("pe", ["--normalize"]), ("lc", ["--target", "gold"]),
            ("bald", ["--mc-samples", "2", *adapter]), ("vote", ["--mc-samples", "2"]),
            ("entropy", ["--mc-samples", "2", *adapter]), ("entropy", ["--base", "--no-cache", *adapter])]
    results = {}
    for measure, extra in runs:
        out = tmp_path / f"{measure}{len(extra)}.jsonl"
        argv = ["score", "--data", str(data), "--task", "gsm8k", "--measure", measure, "--max-new-tokens", "16",
                "--batch-size", "4", "--out", str(out), *extra]
        assert main(argv) == 0, argv
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 4 and {"id", "score", "samples", "answer", "target"} <= set(rows[0])
        assert all(np.isfinite(r["score"]) and r["score"] >= 0 for r in rows)
        results[(measure, *extra)] = rows
    assert all(r["score"] > 1e-4 for r in results[("bald", "--mc-samples", "2", *adapter)])
    assert all(len(set(r["samples"])) == 2 for r in results[("entropy", "--mc-samples", "2", *adapter)])
    assert all(r["target"] == "gold" for r in results[("lc", "--target", "gold")])
    assert all(len(r["votes"]) == 2 for r in results[("vote", "--mc-samples", "2")])
    # --base on the adapter reproduces the plain model's scores.
    base = [r["score"] for r in results[("entropy", "--base", "--no-cache", *adapter)]]
    assert base == pytest.approx([r["score"] for r in results[("entropy",)]], rel=1e-4)
