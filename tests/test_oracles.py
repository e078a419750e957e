"""The headroom oracles (oracle-loss, oracle-balanced, oracle-easy): their selection rules
against plain-Python references on random inputs, the gold loss against a float64 forward,
the fence that keeps gold answers and meta away from label-free strategies, and a loop run."""

from __future__ import annotations

import copy
import json
from collections import Counter

import numpy as np
import pytest
import torch

from activelora.cli import main
from activelora.config import Config, LoraSection, StrategyConfig
from activelora.data import generate_arith
from activelora.data.example import Example
from activelora.errors import ConfigError
from activelora.models.lora import attach_lora, lora_b_parameters
from activelora.models.text import encode_prompt, encode_target
from activelora.run.pool_scoring import PoolScorer
from activelora.strategies import STRATEGIES, PoolView, Strategy, get_strategy
from activelora.strategies.base import Needs
from activelora.strategies.regime import decide_regime

CFG = StrategyConfig()
ORACLES = ("oracle-loss", "oracle-balanced", "oracle-easy")


def view(n: int, seed: int, **fields) -> PoolView:
    return PoolView(ids=[f"ex-{i:04d}" for i in range(n)], rng=np.random.default_rng(seed), **fields)


def water_fill(sizes: dict, n: int) -> tuple[dict, dict]:
    """Plain round-robin bounds: with level L the largest where sum(min(s, L)) <= n, every group
    takes min(s, L) and some groups one more (those with s > L), n in all."""
    level = 0
    while sum(min(s, level + 1) for s in sizes.values()) <= n and level < max(sizes.values()):
        level += 1
    low = {g: min(s, level) for g, s in sizes.items()}
    high = {g: min(s, level + 1) for g, s in sizes.items()}
    return low, high


# --------------------------------------------------------------------------- the fence


def test_only_oracle_named_strategies_read_gold():
    for name in STRATEGIES.names():
        strategy = get_strategy(name, CFG)
        reads = strategy.needs().reads_gold
        assert reads == strategy.oracle == name.startswith("oracle-"), name
    assert set(ORACLES) <= set(STRATEGIES.names())
    for name in ORACLES:
        assert "ORACLE" in type(get_strategy(name, CFG)).__doc__ and "headroom" in type(get_strategy(name, CFG)).__doc__


def test_a_label_free_strategy_reading_gold_is_refused(monkeypatch):
    class Sneaky(Strategy):
        name = "sneaky"

        def needs(self) -> Needs:
            return Needs(gold_meta=True)

    monkeypatch.setitem(STRATEGIES._items, "sneaky", Sneaky)
    with pytest.raises(ValueError, match="oracle"):
        get_strategy("sneaky", CFG)


def test_meta_handed_to_a_label_free_strategy_is_refused():
    pool = view(5, 0, full_scores=np.arange(5.0), meta=[{"steps": 1}] * 5)
    with pytest.raises(ValueError, match="label-free"):
        get_strategy("entropy", CFG).select(pool, 2)
    with pytest.raises(ValueError, match="meta has 3 entries"):
        view(5, 0, meta=[{}] * 3)


def test_needs_gold_answers_needs_full_scores():
    with pytest.raises(ValueError, match="full_scores"):
        Needs(gold_answers=True)


def test_a_campaign_refuses_an_oracle(tmp_path):
    from activelora.campaign.workflow import init_campaign

    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"id": "a", "question": "q"}) + "\n")
    with pytest.raises(ConfigError, match="oracle reads gold answers"):
        init_campaign(tmp_path / "c", pool_file=str(pool), config=Config(), strategy="oracle-easy")


# --------------------------------------------------------------------------- selection rules


@pytest.mark.parametrize("seed", range(8))
def test_oracle_loss_takes_the_highest_gold_losses(seed):
    rng = np.random.default_rng(100 + seed)
    n_pool, n = int(rng.integers(5, 60)), None
    n = int(rng.integers(1, n_pool + 1))
    losses = rng.gamma(2.0, 1.5, n_pool)  # distinct with probability 1
    got = get_strategy("oracle-loss", CFG).select(view(n_pool, seed, full_scores=losses), n)
    reference = sorted(range(n_pool), key=lambda i: -float(losses[i]))[:n]
    assert got.ids == [f"ex-{i:04d}" for i in reference]
    assert got.scores == [float(losses[i]) for i in reference]


@pytest.mark.parametrize("seed", range(10))
def test_oracle_easy_takes_the_fewest_steps_first(seed):
    rng = np.random.default_rng(200 + seed)
    n_pool = int(rng.integers(5, 80))
    n = int(rng.integers(1, n_pool + 1))
    steps = [int(s) for s in rng.integers(1, 5, n_pool)]
    pool = view(n_pool, seed, meta=[{"steps": s, "family": "x"} for s in steps])
    got = get_strategy("oracle-easy", CFG).select(pool, n)
    chosen = [int(i.split("-")[1]) for i in got.ids]
    chosen_steps = [steps[i] for i in chosen]
    assert chosen_steps == sorted(chosen_steps)  # best first = easiest first
    # The chosen set, as a multiset of steps, is the n smallest.
    assert Counter(chosen_steps) == Counter(sorted(steps)[:n])
    again = get_strategy("oracle-easy", CFG).select(view(n_pool, seed, meta=pool.meta), n)
    assert again.ids == got.ids  # seeded


def test_oracle_easy_breaks_ties_uniformly_at_random():
    # 4 one-step examples and 6 two-step ones; 6 picks: all four one-step, then 2 of the 6.
    steps = [2, 1, 2, 2, 1, 2, 1, 2, 2, 1]
    counts = Counter()
    trials = 600
    for seed in range(trials):
        got = get_strategy("oracle-easy", CFG).select(view(10, seed, meta=[{"steps": s} for s in steps]), 6)
        chosen = {int(i.split("-")[1]) for i in got.ids}
        assert {i for i, s in enumerate(steps) if s == 1} <= chosen
        counts.update(i for i in chosen if steps[i] == 2)
    # Each two-step example is picked with probability 2/6; binomial sd = sqrt(600·1/3·2/3) ~ 11.5.
    for i, s in enumerate(steps):
        if s == 2:
            assert abs(counts[i] - trials / 3) < 4.5 * 11.55, (i, counts[i])


@pytest.mark.parametrize("seed", range(12))
def test_oracle_balanced_is_a_round_robin_over_groups(seed):
    rng = np.random.default_rng(300 + seed)
    n_groups = int(rng.integers(1, 7))
    sizes_list = [int(s) for s in rng.integers(1, 15, n_groups)]
    skills = [f"skill{g}" for g, s in enumerate(sizes_list) for _ in range(s)]
    order = rng.permutation(len(skills))
    skills = [skills[i] for i in order]
    n = int(rng.integers(1, len(skills) + 1))
    pool = view(len(skills), seed, meta=[{"skill": s, "steps": 1} for s in skills])
    got = get_strategy("oracle-balanced", CFG).select(pool, n)
    assert got.info["balanced_by"] == "skill"
    picked = [skills[int(i.split("-")[1])] for i in got.ids]
    sizes = Counter(skills)
    # Every prefix of the batch (best first) is itself a round-robin fill.
    for m in range(1, n + 1):
        low, high = water_fill(sizes, m)
        counts = Counter(picked[:m])
        assert all(low[g] <= counts[g] <= high[g] for g in sizes), (m, counts, low, high)
    assert len(set(got.ids)) == n


def test_oracle_balanced_uses_steps_on_arith_and_fails_clearly_without_meta():
    pool_rows = generate_arith("train", 60)
    pool = view(60, 0, meta=[e.meta for e in pool_rows])
    got = get_strategy("oracle-balanced", CFG).select(pool, 16)
    assert got.info["balanced_by"] == "steps"
    counts = Counter(pool_rows[int(i.split("-")[1])].meta["steps"] for i in got.ids)
    low, high = water_fill(Counter(e.meta["steps"] for e in pool_rows), 16)
    assert all(low[g] <= counts[g] <= high[g] for g in low)
    with pytest.raises(ConfigError, match="needs a meta field skill or steps"):
        get_strategy("oracle-balanced", CFG).select(view(4, 0, meta=[{"where": "f:1"}] * 4), 2)
    with pytest.raises(ConfigError, match="steps or level"):
        get_strategy("oracle-easy", CFG).select(view(4, 0, meta=[{"skill": "a"}] * 4), 2)


# --------------------------------------------------------------------------- the gold loss


def test_gold_loss_is_the_mean_gold_nll_under_the_adapter(make_tiny_llama, smol_tokenizer, fake_task, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    model = attach_lora(make_tiny_llama(), LoraSection(r=2, lora_dropout=0.1, target_modules=["q_proj", "v_proj"]),
                        seed=0)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    model.eval()
    examples = [Example(f"g{i}", f"what is {i} plus {i}", str(2 * i) + " apples" * (i % 3)) for i in range(7)]
    config = Config()
    strategy = get_strategy("oracle-loss", config.strategy)
    scorer = PoolScorer(model, smol_tokenizer, fake_task, config, strategy.needs(), decide_regime(config, strategy),
                        seed=0, strategy_name="oracle-loss", progress=False)
    got = scorer.strategy_inputs(examples, r=0)["full_scores"]
    reference_model = copy.deepcopy(model).double()
    for ex, score in zip(examples, got):
        prompt = encode_prompt(smol_tokenizer, fake_task.prompt(ex))
        target = encode_target(smol_tokenizer, fake_task.target(ex))
        with torch.no_grad():
            logits = reference_model(input_ids=torch.tensor([prompt + target])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        nll = [-float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(target)]
        assert score == pytest.approx(sum(nll) / len(nll), rel=1e-4, abs=1e-6)


# --------------------------------------------------------------------------- in a run


def test_oracles_run_in_the_loop(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "exp"
    args = ["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", "--rounds", "1",
            "--set", "loop.pool_limit=30", "--set", "loop.test_limit=4", "--set", "loop.probe_size=0",
            "--set", "loop.initial=4", "--set", "loop.query_size=6", "--set", "train.epochs=1",
            "--set", "train.batch_size=4", "--set", "eval.max_new_tokens=4", "--set", "score.max_new_tokens=4",
            "--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]"]
    for name in ORACLES:
        args += ["--strategy", name]
    assert main(args) == 0
    pool = {e.id: e for e in generate_arith("train", 30)}
    for name in ORACLES:
        state = json.loads((out / name / "seed-0" / "state.json").read_text())
        first, batch = state["rounds"][0]["ids"], state["rounds"][1]["ids"]
        assert len(batch) == 6 and not set(first) & set(batch)
        rest = [i for i in pool if i not in first]
        if name == "oracle-easy":
            assert sorted(pool[i].meta["steps"] for i in batch) == sorted(pool[i].meta["steps"] for i in rest)[:6]
        if name == "oracle-loss":
            scores = json.loads((out / name / "seed-0" / "round-0" / "pool_scores.json").read_text())
            by_id = dict(zip(scores["ids"], scores["full_scores"]))
            assert batch == sorted(rest, key=lambda i: -by_id[i])[:6]
