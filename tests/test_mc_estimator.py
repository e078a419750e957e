"""Issue 15: the ``answer`` Monte-Carlo estimator (dropout at the answer positions only, over
one shared prompt cache) against the ``sequence`` one it can replace, against a float64
reference written out here, and its independence of the batch; plus its setting, and what
STAR computes per round."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from activelora.config import Config, LoraSection, StrategyConfig, build_config, parse_set
from activelora.errors import ConfigError
from activelora.models.keyed_dropout import keep_mask, keyed_dropout, pass_keys
from activelora.models.lora import (any_dropout_active, attach_lora, lora_b_parameters, lora_layers, mc_dropout,
                                    set_lora_dropout_rate)
from activelora.models.text import encode_prompt, encode_target
from activelora.multiprocess.distributed import example_seed
from activelora.strategies import get_strategy
from activelora.uncertainty import scorer as S
from activelora.uncertainty.answer_passes import answer_passes
from activelora.uncertainty.measures import get_measure
from activelora.uncertainty.scorer import score_pool

# float32 against float32 with the same weights: the two estimators differ only in kernel
# paths (a cached, masked attention against one causal pass), i.e. in rounding.
TOL = dict(rel=1e-5, abs=1e-5)
TARGETS = ["q_proj", "v_proj", "up_proj"]


def with_lora(model, dropout: float, seed: int = 0):
    model = attach_lora(model, LoraSection(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=TARGETS),
                        seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def scores(model, tok, task, examples, **kw):
    kw = {"progress": False, "cache": False, **kw}
    return score_pool(model, tok, task, examples, **kw)


# --------------------------------------------------------------------------- dropout off: one function


@pytest.mark.parametrize("measure", ["entropy", "pe", "bald"])
@pytest.mark.parametrize("target", ["generated", "gold"])
def test_without_dropout_the_answer_estimator_equals_the_sequence_one(make_tiny_llama, smol_tokenizer, fake_task,
                                                                      fake_examples, measure, target):
    model = with_lora(make_tiny_llama(), 0.0)
    for normalize in (False, True):
        common = dict(measure=measure, target=target, mc_samples=3, normalize=normalize, seed=5, batch_size=3,
                      return_hidden=True)
        new = scores(model, smol_tokenizer, fake_task, fake_examples, mc_estimator="answer", **common)
        old = scores(model, smol_tokenizer, fake_task, fake_examples, mc_estimator="sequence", **common)
        assert [s.answer for s in new] == [s.answer for s in old]
        assert [s.score for s in new] == pytest.approx([s.score for s in old], **TOL)
        for n, o in zip(new, old):
            assert list(n.samples) == pytest.approx(list(o.samples), **TOL)
            # Embeddings: the deterministic prompt pass against the mean over K identical passes.
            np.testing.assert_allclose(n.hidden, o.hidden, rtol=1e-5, atol=1e-5)
    assert not any_dropout_active(model)


@pytest.mark.parametrize("measure", ["entropy", "pe"])
def test_one_pass_of_the_answer_estimator_equals_the_sequence_pass(make_tiny_llama, smol_tokenizer, fake_task,
                                                                   fake_examples, measure):
    """K = 1 (which score_pool routes to the sequence pass): the two batch functions agree."""
    model = with_lora(make_tiny_llama(), 0.1)
    prompts = [encode_prompt(smol_tokenizer, fake_task.prompt(ex)) for ex in fake_examples]
    answers = [encode_target(smol_tokenizer, fake_task.target(ex)) for ex in fake_examples]
    budget = S._Budget.of(model, 256.0)
    spec = get_measure(measure)
    common = dict(measure=spec, k=1, normalize=False, pad_id=smol_tokenizer.pad_token_id, budget=budget,
                  want_hidden=True, temperature=1.3)
    model.eval()
    new, new_passes, new_hidden = answer_passes(model, prompts, answers, **common)
    old, old_passes, old_hidden = S._teacher_forced(model, prompts, answers, **common)
    assert new.tolist() == pytest.approx(old.tolist(), **TOL)
    assert new_passes[0].tolist() == pytest.approx(old_passes[0].tolist(), **TOL)
    np.testing.assert_allclose(new_hidden, old_hidden, rtol=1e-5, atol=1e-5)


def test_empty_answers_score_zero_beside_real_ones(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = with_lora(make_tiny_llama(), 0.0)
    prompts = [encode_prompt(smol_tokenizer, fake_task.prompt(ex)) for ex in fake_examples[:3]]
    answers = [encode_target(smol_tokenizer, " 42"), [], encode_target(smol_tokenizer, " seven and a half")]
    common = dict(measure=get_measure("entropy"), k=2, normalize=False, pad_id=smol_tokenizer.pad_token_id,
                  budget=S._Budget.of(model, 256.0), want_hidden=False)
    with mc_dropout(model):
        new, _, _ = answer_passes(model, prompts, answers, **common)
        old, _, _ = S._teacher_forced(model, prompts, answers, **common)
        nothing, _, _ = answer_passes(model, prompts[:1], [[]], **common)
    assert new.tolist() == pytest.approx(old.tolist(), **TOL)
    assert new[1] == 0.0 and nothing.tolist() == [0.0]


# --------------------------------------------------------------------------- dropout on


def _reference_answer_entropy(model64, prompt, answer, *, key: int, k: int, p: float) -> tuple[float, list[float]]:
    """Plain float64: for each pass q, one full forward of prompt + answer, no cache and no
    padding, with the A-input dropout of each LoRA layer applied at the answer positions only
    (the positions len(prompt) - 1 .. len(prompt) + len(answer) - 2, whose logits predict the
    answer), with the keyed mask of (key, q); then sum_t H(p_t) in numpy."""
    layers = list(lora_layers(model64))
    start, span = len(prompt) - 1, len(answer)
    ids = torch.tensor([list(prompt) + list(answer)])
    per_pass = []
    for q in range(k):
        row = pass_keys(torch.tensor([key], dtype=torch.int64), range(q, q + 1))
        handles = []
        for index, layer in enumerate(layers):
            def hook(module, args, index=index):
                (x,) = args
                keep = keep_mask(row, index, span, x.shape[-1], p)[0].to(x.dtype)  # (A, d)
                x = x.clone()
                x[0, start:start + span] = x[0, start:start + span] * keep / (1.0 - p)
                return (x,)
            handles.append(layer.lora_dropout["default"].register_forward_pre_hook(hook))
        try:
            with torch.no_grad():
                logits = model64(input_ids=ids).logits[0].numpy().astype(np.float64)
        finally:
            for h in handles:
                h.remove()
        z = logits[start:start + span]  # (A, V)
        z = z - z.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        per_pass.append(float(-(np.exp(logp) * logp).sum()))
    return float(np.mean(per_pass)), per_pass


def test_answer_estimator_against_a_float64_reference(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    p, k, seed = 0.3, 3, 11
    model = with_lora(make_tiny_llama(), p)
    got = scores(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", target="gold", mc_samples=k,
                 seed=seed, batch_size=5, mc_estimator="answer")
    model64 = with_lora(make_tiny_llama(), 0.0).double()  # same weights; dropout applied by the hooks
    for ex, s in zip(fake_examples, got):
        prompt = encode_prompt(smol_tokenizer, fake_task.prompt(ex))
        answer = encode_target(smol_tokenizer, fake_task.target(ex))
        want, want_passes = _reference_answer_entropy(model64, prompt, answer, key=example_seed(seed, ex.id, "mc"),
                                                      k=k, p=p)
        assert s.score == pytest.approx(want, rel=1e-4, abs=1e-5)
        assert list(s.samples) == pytest.approx(want_passes, rel=1e-4, abs=1e-5)


def test_the_passes_differ_and_drop_the_answer_positions_only(make_tiny_llama, smol_tokenizer, fake_task,
                                                             fake_examples):
    model = with_lora(make_tiny_llama(), 0.3)
    common = dict(measure="entropy", target="gold", mc_samples=4, seed=3)
    sampled = scores(model, smol_tokenizer, fake_task, fake_examples, mc_estimator="answer", **common)
    sequence = scores(model, smol_tokenizer, fake_task, fake_examples, mc_estimator="sequence", **common)
    set_lora_dropout_rate(model, 0.0)
    plain = scores(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", target="gold")
    for s, q, d in zip(sampled, sequence, plain):
        assert len(s.samples) == 4 and len(set(s.samples)) == 4  # four different masks
        assert s.score != pytest.approx(d.score, rel=1e-4)  # dropout did something
        assert s.samples != pytest.approx(q.samples, rel=1e-4)  # and not what the sequence estimator does
    assert not any_dropout_active(model)


def test_an_example_scores_the_same_alone_and_beside_longer_neighbours(make_tiny_llama, smol_tokenizer, fake_task,
                                                                       fake_examples):
    model = with_lora(make_tiny_llama(), 0.3)
    common = dict(measure="pe", target="gold", mc_samples=3, seed=9, mc_estimator="answer")
    together = {s.id: s for s in scores(model, smol_tokenizer, fake_task, fake_examples, batch_size=5, **common)}
    # A tiny memory budget splits the K passes into groups of one: another layout of the rows.
    grouped = {s.id: s for s in scores(model, smol_tokenizer, fake_task, fake_examples, batch_size=5,
                                       memory_budget_mb=1e-3, **common)}
    for ex in fake_examples:
        (alone,) = scores(model, smol_tokenizer, fake_task, [ex], batch_size=1, **common)
        for other in (together[ex.id], grouped[ex.id]):
            assert other.score == pytest.approx(alone.score, **TOL)
            assert list(other.samples) == pytest.approx(list(alone.samples), **TOL)
    # The seed keys the masks: another seed, other passes.
    (moved,) = scores(model, smol_tokenizer, fake_task, fake_examples[1:2], **{**common, "seed": 10})
    assert list(moved.samples) != pytest.approx(list(together["b"].samples), rel=1e-4)


def test_keyed_masks_are_required_inside_the_answer_pass(make_tiny_llama, smol_tokenizer, fake_task,
                                                        fake_examples):
    """The prompt pass samples no dropout (its rows carry no keys) and the answer pass does."""
    model = with_lora(make_tiny_llama(), 0.3)
    prompts = [encode_prompt(smol_tokenizer, fake_task.prompt(ex)) for ex in fake_examples[:2]]
    answers = [encode_target(smol_tokenizer, fake_task.target(ex)) for ex in fake_examples[:2]]
    common = dict(measure=get_measure("entropy"), k=2, normalize=False, pad_id=smol_tokenizer.pad_token_id,
                  budget=S._Budget.of(model, 256.0), want_hidden=False)
    with mc_dropout(model), keyed_dropout(model) as row_keys:
        with pytest.raises(RuntimeError, match="row key"):  # no keys given: the answer pass refuses
            answer_passes(model, prompts, answers, **common)
        answer_passes(model, prompts, answers, row_keys=row_keys, example_keys=[1, 2], **common)
        assert all(m.training for m in (layer.lora_dropout["default"] for layer in lora_layers(model)))


# --------------------------------------------------------------------------- the setting


def test_the_setting_is_validated_recorded_and_pinned_by_star_paper():
    with pytest.raises(ConfigError, match=r"^strategy\.mc_estimator: must be one of answer, sequence, got 'fast'$"):
        StrategyConfig(mc_estimator="fast")
    with pytest.raises(ConfigError, match=r"strategy\.mc_estimator"):  # from a YAML file or --set
        build_config(overrides=parse_set(["strategy.mc_estimator=fast"]))
    config = build_config(overrides=parse_set(["strategy.mc_estimator=sequence"]))
    assert config.to_dict()["strategy"]["mc_estimator"] == "sequence"
    for value in ("answer", "sequence"):
        cfg = dataclasses.replace(Config().strategy, mc_estimator=value)
        assert get_strategy("star", cfg).needs().mc_estimator == value
        assert get_strategy("bald", cfg).needs().mc_estimator == value
        assert get_strategy("star-paper", cfg).needs().mc_estimator == "sequence"  # the paper's passes
    with pytest.raises(ConfigError, match="mc_estimator"):
        score_pool(None, None, None, [], mc_estimator="fast")


def test_the_estimator_keys_the_score_cache_only_where_it_matters(make_tiny_llama, smol_tokenizer, fake_task):
    model = with_lora(make_tiny_llama(), 0.1)
    spec = get_measure("entropy")

    def key(k, estimator):
        return S._cache_key(model, smol_tokenizer, fake_task, measure=spec, target="gold", mc_samples=k,
                            normalize=False, max_new_tokens=6, chat_template=False, seed=0, temperature=1.0,
                            mc_estimator=estimator)

    assert key(1, "answer") == key(1, "sequence")  # one pass: the same scores, the same entries
    assert key(3, "answer") != key(3, "sequence")
    assert "mc_estimator" not in key(3, "sequence")  # entries written before issue 15 stay valid


# --------------------------------------------------------------------------- what a STAR round computes


@pytest.mark.parametrize("strategy, generations, forwards", [
    # base_target=tuned (star's default): one greedy decoding (the tuned model's), scored by
    # both terms; the base model generates nothing.
    ("star", [False], [("answer", 3, False), ("sequence", 1, True)]),
    # star-paper: the base term scores the base model's own answer, so it generates it, and
    # takes its one-pass entropy from the logits of that decoding (no teacher-forced pass).
    ("star-paper", [False, True], [("sequence", 3, False)]),
])
def test_a_star_round_computes_only_what_its_terms_read(make_tiny_llama, smol_tokenizer, fake_task, fake_examples,
                                                        monkeypatch, strategy, generations, forwards):
    import activelora.models.generation as G
    from activelora.run.pool_scoring import PoolScorer
    from activelora.strategies.regime import decide_regime

    config = build_config(overrides=parse_set(["strategy.mc_estimator=answer", "lora.r=4",
                                               f"lora.target_modules={TARGETS}"]))
    model = with_lora(make_tiny_llama(), config.lora.lora_dropout)
    chosen = get_strategy(strategy, config.strategy)
    scorer = PoolScorer(model, smol_tokenizer, fake_task, config, chosen.needs(), decide_regime(config, chosen),
                        seed=0, strategy_name=strategy, progress=False)

    def adapter_off() -> bool:
        return any(getattr(layer, "disable_adapters", False) for layer in lora_layers(model))

    generated, forwarded = [], []

    def spy_generate(real):
        def generate(*args, **kwargs):
            generated.append(adapter_off())
            return real(*args, **kwargs)
        return generate

    def spy_forward(name, real):
        def forward(*args, **kwargs):
            forwarded.append((name, kwargs["k"], adapter_off()))
            return real(*args, **kwargs)
        return forward

    monkeypatch.setattr(G, "generate", spy_generate(G.generate))
    monkeypatch.setattr(S, "generate", spy_generate(S.generate))
    monkeypatch.setattr(S, "answer_passes", spy_forward("answer", S.answer_passes))
    monkeypatch.setattr(S, "_teacher_forced", spy_forward("sequence", S._teacher_forced))
    out = scorer.strategy_inputs(fake_examples, r=0)
    assert sorted(out) == ["base_scores", "full_samples", "full_scores"]
    assert generated == generations
    assert sorted(set(forwarded)) == sorted(forwards)  # one forward kind per term (in batches)
