"""Scoring a pool without a loop: a model and examples in, one uncertainty per example out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

from ..data.example import Example
from ..errors import ConfigError, DataError

if TYPE_CHECKING:  # torch and transformers load only when something is scored
    from ..uncertainty.scorer import ScoredExample

ExampleLike = Union[Example, Mapping[str, Any], str]


def as_examples(examples: Sequence[ExampleLike]) -> list[Example]:
    """:class:`Example` objects from examples, ``{"id", "question"[, "answer"]}`` rows, or
    plain question strings (their ids are their positions, ``"0"``, ``"1"``, ...)."""
    out = []
    for i, item in enumerate(examples):
        if isinstance(item, Example):
            out.append(item)
        elif isinstance(item, str):
            out.append(Example(str(i), item, None))
        elif isinstance(item, Mapping):
            if not str(item.get("question") or "").strip():
                raise DataError(f"examples[{i}]: missing field 'question' (fields: {', '.join(map(str, item))})")
            answer = item.get("answer")
            out.append(Example(str(item.get("id", i)), str(item["question"]), None if answer is None else str(answer)))
        else:
            raise DataError(f"examples[{i}]: expected an Example, a mapping or a string, got {type(item).__name__}")
    ids = [ex.id for ex in out]
    if len(set(ids)) != len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"examples: id {twice!r} appears more than once")
    return out


def score_examples(examples: Sequence[ExampleLike], model: Any = "smollm2-135m", *, tokenizer: Any = None,
                   adapter: str | Path | None = None, task: str = "plain", measure: str = "entropy",
                   mc_samples: int = 1, target: str = "generated", normalize: bool = False, base: bool = False,
                   batch_size: int = 16, max_new_tokens: int | None = None, chat_template: bool = False,
                   seed: int = 0, dtype: str = "auto") -> list[ScoredExample]:
    """Each example's uncertainty under ``model``, in input order (what ``activelora score`` does).

    ``model``: a name the CLI takes (``smollm2-135m``, a Hugging Face id, a folder) or an
    already loaded causal LM, then with its ``tokenizer``. ``adapter``: a saved LoRA adapter
    folder to score with. The model answers each question greedily and its own answer is
    scored (``target="gold"`` scores the examples' answers instead). ``measure``: entropy,
    pe, lc, bald or vote (:data:`activelora.uncertainty.MEASURES`); ``mc_samples`` K >= 2
    averages K passes with the adapter's dropout on (bald and vote need it; so does
    ``adapter``). ``base``: the adapter switched off. An adapter whose ``train.json`` records
    another base model or ``chat_template`` than these arguments is refused
    (:mod:`activelora.models.prompt_format`). Nothing is written to disk.
    """
    from ..data.tasks import get_task
    from ..models.loading import load_model
    from ..models.lora import load_adapter
    from ..models.prompt_format import API_HINTS, check_prompt_format
    from ..strategies.regime import check_adapter_for_scoring
    from ..uncertainty.measures import get_measure
    from ..uncertainty.scorer import score_pool

    pool = as_examples(examples)
    the_task = get_task(task)
    get_measure(measure)  # an unknown name lists the valid ones
    if adapter is not None:  # before the model loads: the adapter's recorded prompt format must match
        check_prompt_format(adapter, model_name=str(model) if isinstance(model, (str, Path)) else None,
                            chat_template=chat_template, where="adapter", hints=API_HINTS)
    if isinstance(model, (str, Path)):
        model, tokenizer = load_model(str(model), dtype=dtype)
    elif tokenizer is None:
        raise ConfigError("score_examples: a loaded model needs its tokenizer (tokenizer=...)")
    if adapter is not None:
        model = load_adapter(model, adapter)
    dropout_passes = mc_samples > 1 and not get_measure(measure).needs_sampled_answers
    if dropout_passes and not base and adapter is None and not hasattr(model, "peft_config"):
        raise ConfigError(f"mc_samples={mc_samples}: Monte-Carlo dropout samples a LoRA adapter's dropout; "
                          "give adapter=FOLDER (or a model with an adapter attached)")
    if not base:
        check_adapter_for_scoring(model, adapter, mc_samples=mc_samples, measure=measure, where=f"adapter {adapter}")
    return score_pool(model, tokenizer, the_task, pool, measure=measure, target=target, mc_samples=mc_samples,
                      normalize=normalize, batch_size=batch_size, max_new_tokens=max_new_tokens,
                      chat_template=chat_template, base=base, cache=False, progress=False, seed=seed)
