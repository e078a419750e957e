"""The loop's per-example steps, split across the processes of a launch by stable id.

:func:`evaluate_sharded` and :func:`score_sharded` take the arguments of
:func:`activelora.models.evaluation.evaluate` and :func:`activelora.uncertainty.score_pool`. Each
process runs the plain function on its share (:func:`activelora.multiprocess.distributed.my_share`), and
every process gets every result back in the input order. In a single process they are the
plain functions.

Why the results do not depend on the split: greedy answers and teacher-forced scores are
per-example functions of the model (up to float rounding: a batch of other shapes may sum
in another order), and the MC-dropout masks are keyed by (seed, example id, pass)
(:mod:`activelora.models.keyed_dropout`), not drawn from one stream for the whole pool.
The exception is ``vote``, whose sampled answers come from one random stream per process:
with several processes its votes differ from a single process's (it stays a valid sample).
"""

from __future__ import annotations

from typing import Sequence

from ..data.example import Example
from ..multiprocess.distributed import map_sharded
from ..models.evaluation import EvalResult, evaluate


def evaluate_sharded(model, tokenizer, task, examples: Sequence[Example], **kwargs) -> EvalResult:
    """:func:`activelora.models.evaluation.evaluate`, each process on its share; the whole result on all."""

    def share_results(share: list[Example]) -> list:
        result = evaluate(model, tokenizer, task, share, **kwargs)
        generations = result.generations or [None] * len(share)
        return list(zip(result.predictions, generations))

    if not examples:
        raise ValueError("evaluate: no examples")
    pairs = map_sharded(share_results, list(examples), what=f"evaluate {len(examples)} examples")
    predictions = [p for p, _ in pairs]
    generations = [g for _, g in pairs]
    return EvalResult(accuracy=sum(p.correct for p in predictions) / len(predictions), n=len(predictions),
                      predictions=predictions, generations=[] if None in generations else generations)


def score_sharded(model, tokenizer, task, examples: Sequence[Example], *, generations=None, **kwargs) -> list:
    """:func:`activelora.uncertainty.score_pool`, each process on its share; all scores on all.

    ``generations`` (answers to score, aligned with ``examples``) is split with them.
    """
    from ..uncertainty import score_pool

    examples = list(examples)
    given = None if generations is None else dict(zip((ex.id for ex in examples), generations))

    def share_scores(share: list[Example]) -> list:
        if not share:
            return []
        extra = {} if given is None else {"generations": [given[ex.id] for ex in share]}
        return score_pool(model, tokenizer, task, share, **extra, **kwargs)

    return map_sharded(share_scores, examples, what=f"score {len(examples)} examples")
