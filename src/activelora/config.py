"""Experiment configuration: defaults, then an optional YAML file, then flags.

Each section is a dataclass that validates itself in ``__post_init__`` and names the field
and the value it got. Unknown keys fail with their name and the nearest valid one.
peft's LoRA settings live in one nested section (``lora``) that is passed to
``peft.LoraConfig`` as it is.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError, UnknownNameError

DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# How K >= 2 Monte-Carlo dropout passes are run (uncertainty/answer_passes.py): "answer" =
# dropout at the answer positions only, over one shared prompt cache; "sequence" = dropout
# over the whole prompt + answer in every pass (the estimator before issue 15).
MC_ESTIMATORS = ("answer", "sequence")


# Settings added after runs were first saved, with the value that reproduces what the code
# before them did. A saved run's config that lacks one is read as holding this value, so it
# resumes when today's config asks for the same behaviour (run/rundir.py), and the message
# names the setting when it does not (e.g. an older `star` run and today's default estimator).
SETTINGS_ADDED_LATER: dict[str, Any] = {
    "strategy.mc_estimator": "sequence",
    "strategy.probcover_share": 0.02,  # read only by probcover, which older runs cannot use
    "strategy.probcover_delta": None,
    "strategy.weighted_clusters": 8,
    "strategy.adaptive_stability": 0.8,
    "strategy.feedback_window": 2,  # read only by accuracy-weighted and learning-zone: older runs cannot use them
    "strategy.feedback_prior": 1.0,
    "strategy.feedback_explore": 0.05,
    "strategy.random_share": 0.0,  # no mixed batch: what every run before it did
}


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{where}: {message}")


def _check_measure(name: str, where: str) -> None:
    """``name`` must be a registered uncertainty measure; the error lists the valid ones."""
    from .uncertainty.measures import get_measure  # lazily: uncertainty imports this module

    try:
        get_measure(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass
class ModelConfig:
    name: str = "smollm2-135m"  # the embedded default, a Hugging Face id, or a local folder
    trust_remote_code: bool = False  # only when the user asks
    # auto: bfloat16 where the hardware multiplies it natively (a bf16 GPU, a CPU with AVX-512
    # BF16 or AMX), float32 elsewhere (models/precision.py); build_config resolves it, so a
    # run's config.json records what it computed in. The default stays float32: on 200 arith
    # pool problems bf16 changed 73 greedy answers and ranked the pool with Spearman 0.79-0.96
    # against float32, below issue 15's bar of 0.98 (docs/results.md, "Issue 15").
    dtype: str = "float32"  # float32 | bfloat16 | auto
    chat_template: bool = False  # wrap prompts in the tokenizer's chat template

    def __post_init__(self) -> None:
        _check(self.dtype in ("auto", "float32", "bfloat16"), "model.dtype",
               f"must be auto, float32 or bfloat16, got {self.dtype!r}")


@dataclass
class LoraSection:
    """Passed to ``peft.LoraConfig`` unchanged. ``lora_dropout`` is STAR's dropout on the
    input of the A matrices; it is also what Monte-Carlo dropout samples at scoring time."""

    r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))

    def __post_init__(self) -> None:
        _check(isinstance(self.r, int) and self.r > 0, "lora.r", f"must be a positive integer, got {self.r!r}")
        _check(0.0 <= self.lora_dropout < 1.0, "lora.lora_dropout",
               f"must be in [0, 1), got {self.lora_dropout!r}")
        _check(bool(self.target_modules), "lora.target_modules", "must name at least one module")


@dataclass
class RegularizationConfig:
    """STAR's hybrid regularisation (Zhang et al. 2024, Sec. 3.3).

    ``b_l2_mode``: ``decay`` = decoupled weight decay on a parameter group holding only the
    B matrices (the authors' code: 0.5 on B, 0 on A); ``penalty`` = ``b_l2_penalty * sum ||B||^2``
    added to the loss; ``none`` = off. The A-input dropout is ``lora.lora_dropout``.
    ``apply``: which runs train with it: ``star`` (strategies that declare it), ``all`` or ``none``.
    """

    apply: str = "star"
    b_l2_mode: str = "decay"
    b_weight_decay: float = 0.5
    b_l2_penalty: float = 1e-3

    def __post_init__(self) -> None:
        _check(self.apply in ("star", "all", "none"), "regularization.apply",
               f"must be star, all or none, got {self.apply!r}")
        _check(self.b_l2_mode in ("decay", "penalty", "none"), "regularization.b_l2_mode",
               f"must be decay, penalty or none, got {self.b_l2_mode!r}")
        _check(self.b_weight_decay >= 0, "regularization.b_weight_decay", "must be >= 0")
        _check(self.b_l2_penalty >= 0, "regularization.b_l2_penalty", "must be >= 0")


@dataclass
class TrainConfig:
    epochs: float = 2.0
    learning_rate: float = 5e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0  # on A (and B when b_l2_mode is not decay)
    seed: int = 0
    gradient_checkpointing: bool = False
    bf16: bool = False
    max_length: int = 256
    # Batch shuffled examples with neighbours of similar length (less padding, same number of
    # steps); false = consecutive slices of the shuffled order, as before issue 8.
    group_by_length: bool = True

    def __post_init__(self) -> None:
        _check(self.epochs > 0, "train.epochs", f"must be > 0, got {self.epochs!r}")
        _check(self.learning_rate > 0, "train.learning_rate", f"must be > 0, got {self.learning_rate!r}")
        _check(self.batch_size > 0, "train.batch_size", f"must be > 0, got {self.batch_size!r}")
        _check(self.grad_accum > 0, "train.grad_accum", f"must be > 0, got {self.grad_accum!r}")
        _check(0 <= self.warmup_ratio < 1, "train.warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio!r}")
        _check(self.max_length > 8, "train.max_length", f"must be > 8, got {self.max_length!r}")


@dataclass
class DataConfig:
    source: str = "arith"  # arith | a .jsonl/.json/.csv file or folder | a Hugging Face dataset name
    task: str | None = None  # None: inferred from the source
    train_split: str = "train"
    test_split: str = "test"
    limit: int | None = None  # rows of the train split (the pool)
    test_limit: int | None = None
    question_field: str = "question"
    answer_field: str = "answer"
    id_field: str = "id"
    seed: int = 0  # for the arith generator

    def __post_init__(self) -> None:
        for name in ("limit", "test_limit"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, int) and value > 0), f"data.{name}",
                   f"must be a positive integer, got {value!r}")


@dataclass
class EvalConfig:
    # 64: on 2 CPU threads greedy evaluation of 80 arith problems ran 1.2x faster than at 32
    # (benchmarks/bench_generation_scoring.py, docs/results.md); answers are the same.
    batch_size: int = 64
    max_new_tokens: int | None = None  # None: the task's own

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, "eval.batch_size", f"must be > 0, got {self.batch_size!r}")


@dataclass
class ScoreConfig:
    measure: str = "entropy"  # entropy | pe | lc | bald | vote
    target: str = "generated"  # generated | gold (gold needs labels: simulation only)
    mc_samples: int = 1
    normalize: bool = False  # mean per token instead of sum
    batch_size: int = 16
    max_new_tokens: int | None = None
    # Post-hoc temperature scaling in the loop: each round fits T on the labelled probe set
    # and scores the pool with softmax(logits / T); needs loop.probe_size > 0.
    temperature_scaling: bool = False

    def __post_init__(self) -> None:
        _check(self.target in ("generated", "gold"), "score.target",
               f"must be generated or gold, got {self.target!r}")
        _check(self.mc_samples >= 1, "score.mc_samples", f"must be >= 1, got {self.mc_samples!r}")
        _check(self.batch_size > 0, "score.batch_size", f"must be > 0, got {self.batch_size!r}")
        _check_measure(self.measure, "score.measure")


@dataclass
class StrategyConfig:
    measure: str = "entropy"  # the uncertainty measure inside uncertainty strategies and STAR
    mc_samples: int = 3  # STAR's K
    schedule: str = "linear"  # linear | cosine | exponential | constant
    schedule_step: float = 0.1  # linear: lambda_t = 1 - step*(t+1)
    schedule_rate: float = 0.5  # exponential: lambda_t = rate**(t+1)
    schedule_rounds: int = 10  # cosine: rounds to fall from 1 to 0
    constant_lambda: float = 0.5
    dynamic: bool = True  # ablation: False = lambda_t fixed at constant_lambda
    mc_dropout: bool = True  # ablation: False = one deterministic pass
    mc_estimator: str = "sequence"  # answer | sequence (MC_ESTIMATORS): how the K dropout passes run
    b_l2: bool = True  # ablation: False = no L2 on B when training
    diversity_factor: float = 0.0  # > 1: take top factor*n, then k-center greedy to n
    # Length: None = score.normalize; True = mean per answer token, False = sum (full term).
    normalize: bool | None = None
    # STAR/subtract base term, scored by default on the tuned model's answer (the same token
    # sequence under both models) and averaged per token. The evidence (docs/results.md,
    # "selection diagnostics", 128 arith candidates): on its own answer the base term ranks by
    # the length of that answer (Spearman +0.91 summed, -0.81 averaged), whatever the problem;
    # on the tuned answer, averaged, it is nearly independent of the steps (+0.07) while summed
    # it copies the full term. own = the base model's own greedy answer (the paper's choice,
    # kept by star-paper). base_normalize None = as the full term.
    base_normalize: bool | None = True
    base_target: str = "tuned"
    # How a scored answer ends (strategies/scored_answers.py): generated = with the token that
    # ended it (EOS or a stop string), content = without that end marker, eos = the text
    # re-encoded as a training target, closed with EOS; for every term.
    answer_end: str = "generated"
    # Remedies against outliers and length (strategies/remedies.py), off by default but for star's cold start:
    # The first r query rounds select at random; null = the strategy's own default
    # (Strategy.default_cold_start_rounds: 2 for star and its ablations, 0 for every other).
    cold_start_rounds: int | None = None
    skip_top: float = 0.0  # drop the top q fraction of the ranking (the extreme tail)
    target_quantile: float | None = None  # prefer scores nearest this pool quantile (0.5: middle)
    strata: int = 0  # > 1: k-means strata over prompt embeddings, labels split by stratum size
    # In [0, 1): that share of each scored batch drawn as random draws it; null = the strategy's
    # own default (Strategy.default_random_share: 0.5 for star and its ablations, 0 for every other).
    random_share: float | None = None
    # Low-budget strategies (strategies/probcover.py, cluster_weighted.py, adaptive.py):
    probcover_share: float = 0.02  # probcover: delta = median distance to the k-th neighbour, k = share*(N-1)
    probcover_delta: float | None = None  # probcover: a fixed ball radius instead (null: from the share)
    # cluster-weighted, accuracy-weighted, learning-zone: k-means clusters standing in for task labels
    weighted_clusters: int = 8
    adaptive_stability: float = 0.8  # adaptive: STAR once round-to-round Spearman of the uncertainty >= this
    # accuracy-weighted and learning-zone (strategies/accuracy_weighted.py, learning_zone.py): a
    # cluster's held-out accuracy from the last `feedback_window` rounds of answers checked against
    # their labels, smoothed by `feedback_prior` pseudo-answers (half right); every cluster keeps
    # weight `feedback_explore`.
    feedback_window: int = 2
    feedback_prior: float = 1.0
    feedback_explore: float = 0.05

    def __post_init__(self) -> None:
        _check_measure(self.measure, "strategy.measure")
        _check(self.base_target in ("own", "tuned"), "strategy.base_target",
               f"must be own or tuned, got {self.base_target!r}")
        _check(self.answer_end in ("generated", "content", "eos"), "strategy.answer_end",
               f"must be generated, content or eos, got {self.answer_end!r}")
        _check(self.cold_start_rounds is None or (isinstance(self.cold_start_rounds, int)
               and not isinstance(self.cold_start_rounds, bool) and self.cold_start_rounds >= 0),
               "strategy.cold_start_rounds",
               f"must be an integer >= 0 or null (the strategy's default), got {self.cold_start_rounds!r}")
        _check(0.0 <= self.skip_top < 1.0, "strategy.skip_top", f"must be in [0, 1), got {self.skip_top!r}")
        _check(self.target_quantile is None or 0.0 <= self.target_quantile <= 1.0, "strategy.target_quantile",
               f"must be in [0, 1] or null, got {self.target_quantile!r}")
        _check(self.random_share is None or (isinstance(self.random_share, (int, float))
                                              and not isinstance(self.random_share, bool)
                                              and 0.0 <= self.random_share < 1.0), "strategy.random_share",
               f"must be in [0, 1) (1 would be the random strategy) or null, got {self.random_share!r}")
        _check(isinstance(self.strata, int) and (self.strata == 0 or self.strata > 1), "strategy.strata",
               f"must be 0 (off) or an integer > 1, got {self.strata!r}")
        _check(not (self.strata and self.diversity_factor), "strategy.strata",
               "stratification and the diversity step (strategy.diversity_factor) are alternatives; set one")
        _check(self.mc_samples >= 1, "strategy.mc_samples", f"must be >= 1, got {self.mc_samples!r}")
        _check(0.0 < self.probcover_share < 1.0, "strategy.probcover_share",
               f"must be in (0, 1), got {self.probcover_share!r}")
        _check(self.probcover_delta is None or self.probcover_delta > 0, "strategy.probcover_delta",
               f"must be > 0 or null, got {self.probcover_delta!r}")
        _check(isinstance(self.weighted_clusters, int) and not isinstance(self.weighted_clusters, bool)
               and self.weighted_clusters >= 1, "strategy.weighted_clusters",
               f"must be an integer >= 1, got {self.weighted_clusters!r}")
        _check(isinstance(self.feedback_window, int) and not isinstance(self.feedback_window, bool)
               and self.feedback_window >= 1, "strategy.feedback_window",
               f"must be an integer >= 1 (rounds), got {self.feedback_window!r}")
        _check(self.feedback_prior > 0, "strategy.feedback_prior", f"must be > 0, got {self.feedback_prior!r}")
        _check(self.feedback_explore >= 0, "strategy.feedback_explore",
               f"must be >= 0, got {self.feedback_explore!r}")
        _check(-1.0 <= self.adaptive_stability <= 1.0, "strategy.adaptive_stability",
               f"must be in [-1, 1] (a Spearman correlation), got {self.adaptive_stability!r}")
        _check(self.mc_estimator in MC_ESTIMATORS, "strategy.mc_estimator",
               f"must be one of {', '.join(MC_ESTIMATORS)}, got {self.mc_estimator!r}")
        _check(self.schedule_step > 0, "strategy.schedule_step", "must be > 0")
        _check(0 < self.schedule_rate < 1, "strategy.schedule_rate", "must be in (0, 1)")
        _check(0 <= self.constant_lambda <= 1, "strategy.constant_lambda", "must be in [0, 1]")
        _check(self.diversity_factor == 0 or self.diversity_factor > 1, "strategy.diversity_factor",
               f"must be 0 (off) or > 1, got {self.diversity_factor!r}")


@dataclass
class LoopConfig:
    strategies: list[str] = field(default_factory=lambda: ["random", "star"])
    seeds: list[int] = field(default_factory=lambda: [0])
    # The defaults are the embedded demo: about 11 minutes on 2 CPU cores for random + star
    # (measured: docs/results.md); 32 -> 96 labels is where arith accuracy starts to climb.
    initial: int = 32  # initial labelled set (round 0), random and seeded
    query_size: int = 32  # labels bought per round
    rounds: int = 2  # query rounds after the initial set
    budget: int | None = None  # total labels; stops early when spent
    target_accuracy: float | None = None  # stop once reached
    warm_start: bool = False  # False: a fresh adapter every round (the paper)
    pool_limit: int | None = 160  # unlabelled pool size (None: the whole train split)
    test_limit: int | None = 80
    probe_size: int = 16  # held-out labelled probe for the uncertainty-gap metrics (0: off)

    def __post_init__(self) -> None:
        _check(bool(self.strategies), "loop.strategies", "must name at least one strategy")
        _check(bool(self.seeds), "loop.seeds", "must name at least one seed")
        _check(self.initial > 0, "loop.initial", f"must be > 0, got {self.initial!r}")
        _check(self.query_size > 0, "loop.query_size", f"must be > 0, got {self.query_size!r}")
        _check(self.rounds >= 0, "loop.rounds", f"must be >= 0, got {self.rounds!r}")
        _check(self.probe_size >= 0, "loop.probe_size", f"must be >= 0, got {self.probe_size!r}")
        for name in ("budget", "pool_limit", "test_limit"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0),
                   f"loop.{name}", f"must be a positive integer or null, got {value!r}")
        _check(self.target_accuracy is None or (isinstance(self.target_accuracy, (int, float))
                                                and 0 <= self.target_accuracy <= 1),
               "loop.target_accuracy", f"must be in [0, 1] or null, got {self.target_accuracy!r}")




@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSection = field(default_factory=LoraSection)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        _check(not (self.score.temperature_scaling and self.loop.probe_size == 0), "score.temperature_scaling",
               "needs a held-out labelled probe set to fit on: set loop.probe_size > 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- building


def _nearest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    return f" (nearest valid: {close[0]!r})" if close else f" (valid: {', '.join(valid)})"


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check a YAML/flag value against a field's type annotation and return it converted.

    Driven by the annotation only: ``X | None`` allows null, ``list[X]`` checks every
    element against ``X``. Ints are accepted for floats, and so is a string that reads as a
    number (YAML takes ``1e-3`` for a string); numbers are accepted for strings.
    """
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        if value is None:
            _check(len(inner) < len(args), where, "may not be null")
            return None
        return _coerce(value, inner[0], where) if len(inner) == 1 else value
    _check(value is not None, where, "may not be null")
    if origin is list:
        _check(isinstance(value, list), where, f"must be a list, got {value!r}")
        item = args[0] if args else Any
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        _check(isinstance(value, bool), where, f"must be true or false, got {value!r}")
        return value
    if annotation is int:
        _check(isinstance(value, int) and not isinstance(value, bool), where,
               f"must be an integer, got {value!r}")
        return value
    if annotation is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        _check(number is not None, where, f"must be a number, got {value!r}")
        _check(math.isfinite(number), where, f"must be a finite number, got {value!r}")
        return number
    if annotation is str:
        _check(isinstance(value, (str, int, float)) and not isinstance(value, bool), where,
               f"must be a string, got {value!r}")
        return str(value)
    return value


def _apply_section(section: Any, values: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(type(section))
    valid = [f.name for f in dataclasses.fields(section)]
    updates = {}
    for key, value in values.items():
        where = f"{prefix}.{key}"
        if key not in valid:
            raise ConfigError(f"unknown config key {where!r}{_nearest(key, valid)}")
        updates[key] = _coerce(value, hints[key], where)
    try:
        return dataclasses.replace(section, **updates)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise ConfigError(f"{prefix}: {exc}") from None


def merge(config: Config, overrides: dict[str, Any], source: str = "config") -> Config:
    """Return ``config`` with the nested ``overrides`` applied, validating every key."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: must be a mapping of sections, got {type(overrides).__name__}")
    sections = [f.name for f in dataclasses.fields(config)]
    result = config
    for name, values in overrides.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown config section {name!r}{_nearest(str(name), sections)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {name!r} must be a mapping, got {values!r}")
        try:
            updated = _apply_section(getattr(result, name), values, name)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        result = dataclasses.replace(result, **{name: updated})
    return result


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections, got {type(data).__name__}")
    return data


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", "lora.r=8"]`` -> ``{"train": {"epochs": 3}, "lora": {"r": 8}}``.

    Values are parsed as YAML scalars/lists, so ``3`` is an int and ``[a, b]`` a list.
    """
    result: dict[str, dict[str, Any]] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.epochs=3")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: cannot parse the value {raw!r}") from None
        result.setdefault(section, {})[name] = value
    return result


def without_run_record(data: dict[str, Any]) -> dict[str, Any]:
    """A run folder's ``config.json`` is the run's settings plus a ``run`` section naming the
    run (strategy, seed, data). Passed as ``--config``, it should give the settings the run
    trained with (the prompt format, the LoRA shape), so that ``evaluate``, ``score`` and
    ``probe`` can look at its adapters without repeating them by hand: the record is left
    out. Any other ``run`` section is still an unknown section."""
    record = data.get("run")
    if isinstance(record, dict) and {"strategy", "seed"} <= set(record):
        return {name: values for name, values in data.items() if name != "run"}
    return data


def build_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then ``config_file`` (YAML, or a run folder's ``config.json``), then
    ``overrides`` (from flags)."""
    config = Config()
    if config_file is not None:
        config = merge(config, without_run_record(load_yaml(config_file)), source=str(config_file))
    if overrides:
        config = merge(config, overrides, source="flags")
    return resolve_auto(config)


def resolve_auto(config: Config) -> Config:
    """``config`` with ``model.dtype=auto`` replaced by what it means on this machine."""
    if config.model.dtype != "auto":
        return config
    from .models.precision import auto_dtype  # lazily: torch is heavy, config is not

    return dataclasses.replace(config, model=dataclasses.replace(config.model, dtype=auto_dtype()))


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (e.g. from a run directory)."""
    return merge(Config(), data, source="saved config")
