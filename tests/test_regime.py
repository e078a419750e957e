"""The one training-regime decision: which regularisation a run trains with, and whether its
MC-dropout passes sample a dropout the adapter had; refused configs fail before any work."""

from __future__ import annotations

import json

import pytest

from activelora.config import Config, LoraSection, RegularizationConfig, StrategyConfig
from activelora.errors import ConfigError
from activelora.strategies import get_strategy
from activelora.strategies.regime import TrainingRegime, decide_regime, regime_of_adapter


def config(apply="star", dropout=0.1, **strategy) -> Config:
    return Config(regularization=RegularizationConfig(apply=apply), lora=LoraSection(lora_dropout=dropout),
                  strategy=StrategyConfig(**strategy))


def regime(name: str, cfg: Config) -> TrainingRegime:
    return decide_regime(cfg, get_strategy(name, cfg.strategy))


# (strategy, regularization.apply) -> (A-input dropout during training, B-L2 mode, MC passes)
TABLE = [
    ("random", "star", 0.0, "none", 1),
    ("entropy", "star", 0.0, "none", 1),
    ("random-hybrid", "star", 0.1, "decay", 1),
    ("star", "star", 0.1, "decay", 3),
    ("star-no-l2", "star", 0.1, "none", 3),
    ("star-no-mc", "star", 0.1, "decay", 1),
    ("star-paper", "star", 0.1, "decay", 3),
    # Strategies that sample K dropout passes train with that dropout, without L2 on B:
    ("subtract", "star", 0.1, "none", 3),
    ("bald", "star", 0.1, "none", 3),
    # vote's K samples are generated answers: no dropout is sampled, none is needed.
    ("vote", "star", 0.0, "none", 1),
    ("random", "all", 0.1, "decay", 1),
    ("entropy", "all", 0.1, "decay", 1),
    ("random-hybrid", "none", 0.0, "none", 1),
    ("star-no-mc", "none", 0.0, "none", 1),
    ("entropy", "none", 0.0, "none", 1),
]


@pytest.mark.parametrize("name, apply, a_dropout, b_mode, passes", TABLE)
def test_decision_table(name, apply, a_dropout, b_mode, passes):
    got = regime(name, config(apply))
    assert (got.a_dropout, got.b_l2_mode, got.mc_samples) == (a_dropout, b_mode, passes)
    assert got.mc_dropout_rate == a_dropout
    reg = got.regularization()
    assert reg.a_dropout == a_dropout and reg.b_l2_mode == b_mode
    assert reg.b_weight_decay == (0.5 if b_mode == "decay" else 0.0)
    assert got.why


@pytest.mark.parametrize("name", ["star", "subtract", "bald", "star-no-l2", "star-paper"])
def test_mc_dropout_without_trained_dropout_is_refused_up_front(name):
    with pytest.raises(ConfigError, match="strategy.mc_samples"):
        regime(name, config("none"))
    with pytest.raises(ConfigError, match="lora.lora_dropout"):
        regime(name, config("star", dropout=0.0))


def test_star_paper_pins_the_authors_b_decay():
    cfg = Config(regularization=RegularizationConfig(b_weight_decay=3.0, b_l2_mode="penalty"))
    assert regime("star", cfg).b_l2_mode == "penalty"
    paper = regime("star-paper", cfg)
    assert (paper.b_l2_mode, paper.b_weight_decay) == ("decay", 0.5)
    assert paper.regularization().b_weight_decay == 0.5


def test_train_command_regime():
    assert decide_regime(config("star")).hybrid
    assert decide_regime(config("star"), plain=True).a_dropout == 0.0
    assert decide_regime(config("none")).a_dropout == 0.0


def test_check_scoring_refuses_mc_passes_of_a_plain_adapter():
    plain = regime("entropy", config())
    plain.check_scoring(1, "here")
    with pytest.raises(ConfigError, match="here: 3 Monte-Carlo dropout passes"):
        plain.check_scoring(3, "here")
    regime("star", config()).check_scoring(3, "here")


def test_regime_round_trips_through_the_adapter_record(tmp_path):
    star = regime("star", config())
    (tmp_path / "adapter").mkdir()
    (tmp_path / "train.json").write_text(json.dumps({"steps": 3, "regularization": star.to_dict()}))
    assert regime_of_adapter(tmp_path / "adapter") == star
    assert regime_of_adapter(tmp_path / "elsewhere" / "adapter") is None
    assert regime_of_adapter(None) is None
    # A record written before the regime existed (training.Regularization's fields) still reads.
    (tmp_path / "train.json").write_text(json.dumps({"regularization": {"a_dropout": 0.0, "b_l2_mode": "none"}}))
    assert regime_of_adapter(tmp_path / "adapter").a_dropout == 0.0


# ----------------------------------------------------------------------------- through the CLI

from activelora.cli import main  # noqa: E402

SMALL = [
    "--set", "loop.pool_limit=16", "--set", "loop.test_limit=4", "--set", "loop.probe_size=0",
    "--set", "loop.initial=4", "--set", "loop.query_size=3",
    "--set", "train.epochs=1", "--set", "train.batch_size=4",
    "--set", "eval.max_new_tokens=5", "--set", "score.max_new_tokens=5", "--set", "score.batch_size=8",
    "--set", "strategy.mc_samples=2", "--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]",
]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def _run(out, model, *extra):
    return main(["run", "--output", str(out), "--model", str(model), "--quiet", *SMALL, *extra])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_star_with_bald_runs_its_base_term_on_entropy(tmp_path, tiny_model_dir):
    # Once a late failure (issue 9 d): the base model has no dropout, so BALD cannot score it.
    out = tmp_path / "exp"
    assert _run(out, tiny_model_dir, "--strategy", "star", "--set", "strategy.measure=bald", "--rounds", "1",
                "--set", "strategy.cold_start_rounds=0") == 0  # round 0 scores the pool
    run = out / "star" / "seed-0"
    scores = json.loads((run / "round-0" / "pool_scores.json").read_text())
    assert len(scores["base_scores"]) == len(scores["full_scores"]) == 12
    assert all(len(s) == 0 for s in scores["full_samples"])  # bald is joint over the passes: no per-pass values
    train = json.loads((run / "round-0" / "train.json").read_text())
    assert train["regularization"]["a_dropout"] == 0.1 and train["regularization"]["mc_samples"] == 2
    assert len(json.loads((run / "state.json").read_text())["rounds"]) == 2


@pytest.mark.parametrize("extra, named", [
    (["--strategy", "subtract", "--set", "regularization.apply=none"], "strategy.mc_samples"),
    (["--strategy", "star", "--set", "strategy.measure=bald", "--set", "strategy.mc_samples=1"],
     "strategy.mc_samples"),
    (["--strategy", "bald", "--set", "lora.lora_dropout=0.0"], "lora.lora_dropout"),
])
def test_impossible_mc_configs_fail_before_any_training(tmp_path, tiny_model_dir, capsys, extra, named):
    out = tmp_path / "exp"
    # random is listed first: it would train (and leave an adapter) if the check came late.
    assert _run(out, tiny_model_dir, "--strategy", "random", *extra, "--rounds", "1") == 2
    assert named in _one_line(capsys)
    assert not list(out.glob("*/seed-0/round-0/adapter"))


def test_probe_refuses_mc_dropout_of_a_plain_adapter(tmp_path, plain_adapter, capsys):
    common, _ = plain_adapter
    record = json.loads((tmp_path / "t" / "train.json").read_text())["regularization"]
    assert record["a_dropout"] == 0.0 and "plain" in record["why"]
    capsys.readouterr()
    adapter = str(tmp_path / "t" / "adapter")
    for command in (["probe", "--measure", "bald"], ["score", "--measure", "bald"]):
        out = tmp_path / command[0]
        assert main([*command, *common, "--adapter", adapter, "--mc-samples", "2",
                     "--out", str(out if command[0] == "probe" else out.with_suffix(".jsonl"))]) == 2
        err = _one_line(capsys)
        assert "trained without" in err and adapter in err


def test_random_hybrid_is_random_trained_with_the_hybrid_regularisation(tmp_path, tiny_model_dir):
    out = tmp_path / "exp"
    assert _run(out, tiny_model_dir, "--strategy", "random", "--strategy", "random-hybrid", "--rounds", "2") == 0
    plain, hybrid = out / "random" / "seed-0", out / "random-hybrid" / "seed-0"
    picks = [[r["ids"] for r in json.loads((d / "state.json").read_text())["rounds"]] for d in (plain, hybrid)]
    assert picks[0] == picks[1] and len(picks[0]) == 3  # the same labels every round: paired
    regs = [json.loads((d / "round-2" / "train.json").read_text())["regularization"] for d in (plain, hybrid)]
    assert (regs[0]["a_dropout"], regs[0]["b_l2_mode"]) == (0.0, "none")
    assert (regs[1]["a_dropout"], regs[1]["b_l2_mode"]) == (0.1, "decay")

    # Batch composition per round, against an independent count over the generated pool.
    from activelora.data.arith import generate_arith
    from activelora.atomic_files import read_jsonl

    meta = {ex.id: ex.meta for ex in generate_arith("train", 40)}
    rows = read_jsonl(plain / "metrics.jsonl")
    taken: set[str] = set()
    assert json.loads((plain / "config.json").read_text())["run"]["data"]["pool"] == 16
    pool = list(meta)[:16]  # probe_size=0: the pool is the first 16 training problems
    for row, ids in zip(rows, picks[0]):
        rest = [i for i in pool if i not in taken]
        assert row["batch_n"] == len(ids)
        for steps in {meta[i]["steps"] for i in pool}:
            key = f"share_steps={steps}"
            assert row[f"batch_{key}"] == pytest.approx(sum(meta[i]["steps"] == steps for i in ids) / len(ids))
            assert row[f"pool_{key}"] == pytest.approx(sum(meta[i]["steps"] == steps for i in rest) / len(rest))
        assert row["batch_answer_tokens"] > 0
        taken |= set(ids)
    assert (out / "composition.png").read_bytes()[:4] == b"\x89PNG"
