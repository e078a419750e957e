"""Issue 8: the scorer and the temperature fit against the pre-issue-8 code (tests/reference):
one-pass scores taken from generation, answers handed over from evaluate, the cached weight
fingerprint, and T fitted from one forward instead of sixteen."""

from __future__ import annotations

import math

import pytest
import torch

from activelora.config import LoraSection
from activelora.models.evaluation import evaluate
from activelora.models.lora import attach_lora, lora_b_parameters
from activelora.probes.temperature import fit_logit_temperature, gold_nll
from activelora.uncertainty import scorer as S
from activelora.uncertainty.scorer import OnePassValues, score_pool
from reference import legacy_scorer, legacy_temperature

TOL = dict(rel=1e-5, abs=1e-5)


def with_lora(model, dropout: float, seed: int = 0):
    model = attach_lora(model, LoraSection(r=4, lora_alpha=8, lora_dropout=dropout,
                                           target_modules=["q_proj", "v_proj", "up_proj"]), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


def both(model, tok, task, examples, **kw):
    kw.update(progress=False, cache=False)
    return score_pool(model, tok, task, examples, **kw), legacy_scorer.score_pool(model, tok, task, examples, **kw)


def assert_same(new, old, tol=TOL):
    assert [s.id for s in new] == [s.id for s in old]
    assert [s.answer for s in new] == [s.answer for s in old]
    assert [s.score for s in new] == pytest.approx([s.score for s in old], **tol)
    for n, o in zip(new, old):
        assert len(n.samples) == len(o.samples)
        assert list(n.samples) == pytest.approx(list(o.samples), **tol)


@pytest.mark.parametrize("measure", ["entropy", "pe", "lc"])
@pytest.mark.parametrize("base", [False, True], ids=["full", "base"])
def test_one_pass_scores_equal_the_legacy_teacher_forced_scores(make_tiny_llama, smol_tokenizer, fake_task,
                                                                fake_examples, measure, base):
    model = with_lora(make_tiny_llama(), 0.0)
    for normalize in (False, True):
        for temperature in (1.0, 1.7):
            new, old = both(model, smol_tokenizer, fake_task, fake_examples, measure=measure, base=base,
                            normalize=normalize, temperature=temperature, batch_size=2)
            assert_same(new, old)


@pytest.mark.parametrize("measure,k", [("entropy", 1), ("pe", 1), ("entropy", 3), ("pe", 2), ("bald", 3)])
@pytest.mark.parametrize("target", ["generated", "gold"])
def test_mc_and_gold_scores_equal_the_legacy_scores(make_tiny_llama, smol_tokenizer, fake_task, fake_examples,
                                                    measure, k, target):
    """K > 1 passes and gold targets keep the teacher-forced pass and give the legacy scores.

    With lora_dropout 0 the K passes are identical, so the masks do not enter: since commit
    21aac92 they are keyed by (seed, example id, pass) instead of drawn from one stream as
    the legacy code did (see tests/test_keyed_dropout.py), so sampled masks differ from it."""
    model = with_lora(make_tiny_llama(), 0.0)
    new, old = both(model, smol_tokenizer, fake_task, fake_examples, measure=measure, mc_samples=k,
                    target=target, seed=7, batch_size=3)
    assert_same(new, old)


def test_hidden_states_equal_the_legacy_ones(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = with_lora(make_tiny_llama(), 0.0)
    new, old = both(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", return_hidden=True)
    assert_same(new, old)
    for n, o in zip(new, old):
        torch.testing.assert_close(torch.from_numpy(n.hidden), torch.from_numpy(o.hidden), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("measure", ["entropy", "lc"])
def test_answers_from_evaluate_are_scored_without_generating_again(make_tiny_llama, smol_tokenizer, fake_task,
                                                                   fake_examples, measure, monkeypatch):
    fake_task = type("GoldTask", (type(fake_task),), {"gold": lambda self, ex: ex.answer})()  # evaluate reads it
    model = with_lora(make_tiny_llama(), 0.0)
    want = score_pool(model, smol_tokenizer, fake_task, fake_examples, measure=measure, cache=False, progress=False)
    with_values = evaluate(model, smol_tokenizer, fake_task, fake_examples, progress=False,
                           step_values=OnePassValues(measure)).generations
    plain = evaluate(model, smol_tokenizer, fake_task, fake_examples, progress=False).generations

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(S, "generate", no_generation)
    for gens in (with_values, plain):  # values reused; or one teacher-forced pass over the answers
        got = score_pool(model, smol_tokenizer, fake_task, fake_examples, measure=measure, cache=False,
                         progress=False, generations=gens)
        assert [s.answer for s in got] == [s.answer for s in want]
        assert [s.score for s in got] == pytest.approx([s.score for s in want], **TOL)
    calls = []
    monkeypatch.setattr(S, "_teacher_forced", lambda *a, **k: calls.append(1))
    score_pool(model, smol_tokenizer, fake_task, fake_examples, measure=measure, cache=False, progress=False,
               generations=with_values)
    assert not calls  # the recorded values made the forward unnecessary
    with pytest.raises(ValueError, match="generations"):
        score_pool(model, smol_tokenizer, fake_task, fake_examples, measure=measure, base=True,
                   generations=with_values)


# --------------------------------------------------------------------------- weight fingerprint


def test_the_cached_fingerprint_follows_every_kind_of_weight_change(make_tiny_llama):
    model = with_lora(make_tiny_llama(), 0.0)
    weight = model.get_base_model().model.layers[0].mlp.down_proj.weight

    def fresh():
        S._TENSOR_DIGESTS.clear()
        return S._weights_fingerprint(model)

    start = fresh()
    assert S._weights_fingerprint(model) == start  # cached, same answer
    seen = {start}
    with torch.no_grad():
        weight.add_(1e-3)  # autograd-visible in-place op: version counter
    assert S._weights_fingerprint(model) == fresh() not in seen
    seen.add(fresh())
    weight.data.mul_(1.001)  # through .data: no version bump; the sampled values change
    assert S._weights_fingerprint(model) == fresh() not in seen
    seen.add(fresh())
    weight.data = weight.data * 0.5  # a new tensor: data_ptr
    assert S._weights_fingerprint(model) == fresh() not in seen
    with torch.no_grad():  # a LoRA weight is not a base weight
        lora_b_parameters(model)[0].add_(1.0)
    assert S._weights_fingerprint(model) == fresh()


def test_generating_with_the_merged_adapter_keeps_the_base_cache_key(make_tiny_llama, smol_tokenizer, fake_task,
                                                                     fake_examples):
    model = with_lora(make_tiny_llama(), 0.0)
    before = S._weights_fingerprint(model)
    score_pool(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", cache=False, progress=False)
    S._TENSOR_DIGESTS.clear()
    assert S._weights_fingerprint(model) == before


# --------------------------------------------------------------------------- temperature


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_gold_nll_equals_the_legacy_one(make_tiny_llama, smol_tokenizer, fake_task, fake_examples, temperature):
    model = with_lora(make_tiny_llama(), 0.0)
    assert gold_nll(model, smol_tokenizer, fake_task, fake_examples, temperature) == pytest.approx(
        legacy_temperature.gold_nll(model, smol_tokenizer, fake_task, fake_examples, temperature), rel=1e-6)


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "lora"])
def test_fitted_temperature_equals_the_legacy_sixteen_pass_fit(make_tiny_llama, smol_tokenizer, fake_task,
                                                               fake_examples, wrapped):
    model = with_lora(make_tiny_llama(), 0.0) if wrapped else make_tiny_llama()
    for bounds in ((0.25, 4.0), (0.25, 8.0)):
        new = fit_logit_temperature(model, smol_tokenizer, fake_task, fake_examples, bounds=bounds)
        old = legacy_temperature.fit_logit_temperature(model, smol_tokenizer, fake_task, fake_examples,
                                                       bounds=bounds)
        assert math.log(new) == pytest.approx(math.log(old), abs=1e-4)


# --------------------------------------------------------------------------- embedded model


@pytest.mark.slow
def test_star_scoring_equals_the_legacy_scoring_on_the_embedded_model():
    from activelora.data import generate_arith, get_task
    from activelora.models.loading import load_model

    model, tok = load_model("smollm2-135m", dtype="float32")  # the equivalence is held to float32 tolerances
    model = with_lora(model, 0.1)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.mul_(0.01)
    task = get_task("arith")
    examples = generate_arith("train")[:4]
    tol = dict(rel=1e-4, abs=1e-4)  # 30 float32 layers; merged against unmerged weights
    new, old = both(model, tok, task, examples, measure="entropy")  # one pass: values from generation
    assert_same(new, old, tol)
    new, old = both(model, tok, task, examples, measure="entropy", base=True)
    assert_same(new, old, tol)
    assert gold_nll(model, tok, task, examples, 1.3) == pytest.approx(
        legacy_temperature.gold_nll(model, tok, task, examples, 1.3), rel=1e-5)


def test_a_wider_generation_batch_gives_the_same_scores(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    from activelora.errors import ConfigError

    model = with_lora(make_tiny_llama(), 0.0)
    narrow = score_pool(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", batch_size=1,
                        cache=False, progress=False)
    wide = score_pool(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", batch_size=1,
                      generation_batch_size=5, cache=False, progress=False)
    assert [s.answer for s in wide] == [s.answer for s in narrow]
    assert [s.score for s in wide] == pytest.approx([s.score for s in narrow], **TOL)
    with pytest.raises(ConfigError, match="generation batch size"):
        score_pool(model, smol_tokenizer, fake_task, fake_examples, generation_batch_size=0, progress=False)
