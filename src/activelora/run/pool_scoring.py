"""What a strategy reads from the unlabelled pool, computed one way for the simulated loop
(:class:`activelora.run.loop.ActiveLearningRun`) and for a person's campaign
(:mod:`activelora.campaign.round`).

:meth:`PoolScorer.strategy_inputs` computes exactly what the strategy's
:class:`~activelora.strategies.Needs` asks for:

* ``full_scores``: the tuned model's uncertainty, from ``needs.mc_samples`` passes that sample
  only the A-input dropout the adapter trained with (:func:`~activelora.strategies.regime.decide_regime`
  decides it; one pass = deterministic); for an oracle with ``needs.gold_answers``, on the gold
  answers (teacher-forced) instead of the model's own;
* ``base_scores``: the base model's (adapter off), one pass, on its own greedy answer
  (``base_target=own``, cached on disk across rounds) or on the tuned model's answer
  (``base_target=tuned``: the same token sequence under both models, the closest label-free
  analogue of STAR scoring both models on one gold answer);
* ``embeddings``: mean-pooled hidden states, for the diversity and stratification steps;
  with ``needs.labelled_embeddings`` (typiclust, probcover, cluster-weighted, adaptive) the
  base model's prompt-only pass instead, for the pool and the labelled examples alike.

Under a multi-process launch every pass runs on this process's shard of the examples and
the results are gathered (:mod:`activelora.run.sharded`); a single process takes none of that path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..config import Config
from ..data.example import Example
from ..multiprocess.distributed import map_sharded
from ..models.lora import set_lora_dropout_rate
from .sharded import score_sharded
from ..strategies import Needs
from ..strategies.regime import TrainingRegime


def run_seed(seed: int, r: int, salt: int = 0) -> int:
    """A distinct, reproducible torch seed per (run seed, round, purpose)."""
    return (seed * 1_000_003 + r * 1_009 + salt) % (2**31)


@dataclass
class PoolScorer:
    """Scores examples for one run (or campaign) with one strategy's needs and regime."""

    model: Any
    tokenizer: Any
    task: Any
    config: Config
    needs: Needs
    regime: TrainingRegime
    seed: int
    strategy_name: str
    progress: bool = True

    def score(self, examples: Sequence[Example], *, base: bool, mc_samples: int, r: int, hidden: bool = False,
              label: str = "score", temperature: float = 1.0, measure: str | None = None,
              normalize: bool | None = None, generations=None, target: str = "generated"):
        """One scorer call: the tuned model (``mc_samples`` passes) or the base model (one).
        ``target="gold"`` scores the gold answers (an oracle's ``Needs.gold_answers`` only)."""
        from ..uncertainty.measures import get_measure

        measure = measure or self.needs.measure or self.config.strategy.measure
        # MC passes sample the dropout the adapter trained with (decide_regime), never another;
        # vote's K samples are generated answers and sample no dropout.
        passes = 1 if base or get_measure(measure).needs_sampled_answers else mc_samples
        self.regime.check_scoring(passes, f"strategy {self.strategy_name!r}")
        set_lora_dropout_rate(self.model, self.regime.mc_dropout_rate)
        torch.manual_seed(run_seed(self.seed, r, salt=3 if not base else 4))
        sc = self.config.score
        return score_sharded(  # each process of a launch scores its share (activelora.run.sharded)
            self.model, self.tokenizer, self.task, list(examples),
            measure=measure, target=target, temperature=temperature, mc_samples=mc_samples,
            normalize=sc.normalize if normalize is None else normalize, batch_size=sc.batch_size,
            max_new_tokens=sc.max_new_tokens, chat_template=self.config.model.chat_template,
            base=base, cache=base, progress=f"round {r} {label}" if self.progress else False,
            # The base model's scores are a fixed function of the example: one seed for all
            # rounds keeps its on-disk cache hitting.
            seed=0 if base else run_seed(self.seed, r, salt=5), return_hidden=hidden,
            generations=generations, mc_estimator=self.needs.mc_estimator,
            # Greedy answers are decoded in the evaluation's (wider) batches.
            generation_batch_size=max(sc.batch_size, self.config.eval.batch_size),
        )

    def strategy_inputs(self, examples: Sequence[Example], r: int, *, temperature: float = 1.0,
                        labelled: Sequence[Example] = ()) -> dict[str, list]:
        """``full_scores`` (with ``full_samples``), ``base_scores`` and ``embeddings`` as the
        needs ask, as lists in the order of ``examples``; with ``needs.labelled_embeddings``
        also ``labelled_embeddings`` for ``labelled`` (the examples selected so far), both
        from the base model's prompt pass (:mod:`~activelora.uncertainty.embeddings`)."""
        from ..uncertainty.measures import get_measure

        needs = self.needs
        out: dict[str, list] = {}
        if needs.labelled_embeddings:
            out["embeddings"] = self.prompt_embeddings(examples, f"round {r} embed pool")
            out["labelled_embeddings"] = self.prompt_embeddings(labelled, f"round {r} embed labelled")
        tuned, own = self.scored_answers(examples, r)
        if needs.full_scores:
            sampled = get_measure(needs.measure).needs_sampled_answers  # vote scores its own samples
            hidden = needs.hidden_states and "embeddings" not in out
            scored = self.score(examples, base=False, mc_samples=needs.mc_samples, r=r, hidden=hidden,
                                label="score pool", temperature=temperature, normalize=needs.normalize,
                                generations=None if sampled or needs.gold_answers else tuned,
                                target="gold" if needs.gold_answers else "generated")
            out["full_scores"] = [s.score for s in scored]
            out["full_samples"] = [s.samples for s in scored]
            if hidden:
                out["embeddings"] = [list(map(float, s.hidden)) for s in scored]
        if needs.base_scores:
            base = self.score(examples, base=True, mc_samples=1, r=r, label="score base",
                              measure=needs.resolved_base_measure(), normalize=needs.base_normalize,
                              generations=tuned if needs.base_target == "tuned" else own)
            out["base_scores"] = [s.score for s in base]
        if needs.hidden_states and "embeddings" not in out:
            scored = self.score(examples, base=False, mc_samples=1, r=r, hidden=True, label="embed pool")
            out["embeddings"] = [list(map(float, s.hidden)) for s in scored]
        return out

    def prompt_embeddings(self, examples: Sequence[Example], label: str) -> list[list[float]]:
        """The base model's mean-pooled prompt hidden states of ``examples`` (this process's
        share under a launch, then gathered), as lists."""
        from ..uncertainty.embeddings import prompt_embeddings

        def share_embeddings(share: list[Example]) -> list[list[float]]:
            rows = prompt_embeddings(self.model, self.tokenizer, self.task, share,
                                     batch_size=self.config.score.batch_size,
                                     chat_template=self.config.model.chat_template,
                                     progress=label if self.progress else False)
            return [list(map(float, row)) for row in rows]

        return map_sharded(share_embeddings, list(examples), what=label)

    def scored_answers(self, examples: Sequence[Example], r: int) -> tuple[list | None, list | None]:
        """``(tuned, own)``: the answers the two terms score when the strategy's settings need
        them given (:mod:`~activelora.strategies.scored_answers`); None = the scorer generates
        each model's own greedy answer with its end marker.

        ``tuned``: the tuned model's greedy answers, wanted for ``base_target=tuned`` (both
        terms then score these ids) or an ``answer_end`` other than ``generated``. ``own``:
        the base model's greedy answers, wanted only for such an end with ``base_target=own``.
        """
        from ..models.generation import generate
        from ..models.lora import adapter_disabled
        from ..models.text import encode_prompt
        from ..strategies.scored_answers import rescored

        needs = self.needs
        content = needs.answer_end != "generated"  # content or eos: every answer re-ended
        want_tuned = needs.base_scores and needs.base_target == "tuned" or (content and needs.full_scores)
        want_own = needs.base_scores and needs.base_target == "own" and content
        if not (want_tuned or want_own):
            return None, None
        task, sc = self.task, self.config.score

        def answers(label: str) -> list:
            def share_answers(share: list[Example]) -> list:  # under a launch: this process's share
                prompts = [encode_prompt(self.tokenizer, task.prompt(ex), self.config.model.chat_template)
                           for ex in share]
                gens = generate(self.model, self.tokenizer, prompts,
                                max_new_tokens=sc.max_new_tokens or task.max_new_tokens,
                                stop_strings=task.stop_strings,
                                batch_size=max(sc.batch_size, self.config.eval.batch_size),
                                progress=f"round {r} {label}" if self.progress else False)
                return [rescored(self.tokenizer, g, needs.answer_end) for g in gens]

            return map_sharded(share_answers, list(examples), what=f"round {r} {label}")

        self.model.eval()  # greedy answers: no dropout
        tuned = answers("answers") if want_tuned else None
        own = None
        if want_own:
            with adapter_disabled(self.model):
                own = answers("base answers")
        return tuned, own
