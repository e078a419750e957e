"""Post-hoc temperature scaling of a causal LM's token distributions.

One scalar T > 0 divides every logit, ``p_T(y_t | ...) = softmax(z_t / T)[y_t]``, fitted on a
held-out labelled split by minimising the negative log-likelihood of the gold answers,
``T* = argmin_T  sum_i -log p_T(y_i | x_i)`` (Guo et al. 2017, "On Calibration of Modern
Neural Networks", applied per token). Greedy answers do not change with T; their
probabilities, and so every uncertainty used for selection, do.

The logits ``z_t`` do not depend on T, so the model runs once: :class:`GoldLogits` keeps the
gold-answer logits of the split and evaluates the NLL at any T from them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..data.example import Example
from ..errors import DataError

GOLDEN = (math.sqrt(5) - 1) / 2


class GoldLogits:
    """The logits at every gold-answer position of ``examples`` (one forward), and the NLL
    ``sum_t -log softmax(z_t / T)[y_t]`` at any T from them (log-softmax in float32, as
    the scorer computes it, summed in float64)."""

    def __init__(self, model, tokenizer, task, examples: Sequence[Example], *, batch_size: int = 16,
                 chat_template: bool = False):
        from ..uncertainty.scorer import gold_answer_logits

        missing = [ex.id for ex in examples if ex.answer is None]
        if missing:
            raise DataError(f"example {missing[0]!r} has no gold answer; temperature fitting needs labels")
        self.chunks, self.targets = gold_answer_logits(model, tokenizer, task, list(examples),
                                                       batch_size=batch_size, chat_template=chat_template)

    def nll(self, temperature: float) -> float:
        total, start = 0.0, 0
        with torch.no_grad():
            for logits in self.chunks:
                y = self.targets[start:start + logits.shape[0], None]
                start += logits.shape[0]
                logp = torch.log_softmax(logits / temperature, dim=-1).gather(-1, y)
                total -= float(logp.double().sum())
        return total


def gold_nll(model, tokenizer, task, examples: Sequence[Example], temperature: float, *,
             batch_size: int = 16, chat_template: bool = False) -> float:
    """sum_i -log p_T(gold answer_i | prompt_i) over ``examples``."""
    return GoldLogits(model, tokenizer, task, examples, batch_size=batch_size,
                      chat_template=chat_template).nll(temperature)


def golden_section_log_t(loss, bounds: tuple[float, float], iterations: int) -> float:
    """The T minimising ``loss(log T)`` by golden-section search on log T within ``bounds``."""
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    a, b = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(iterations):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - GOLDEN * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + GOLDEN * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)


def fit_logit_temperature(model, tokenizer, task, examples: Sequence[Example], *,
                          bounds: tuple[float, float] = (0.25, 4.0), iterations: int = 14,
                          batch_size: int = 16, chat_template: bool = False) -> float:
    """T minimising the gold NLL on ``examples``: golden-section search on log T.

    The NLL is convex in 1/T for a fixed set of logits (a log-sum-exp minus a linear term),
    so it is unimodal in log T and golden-section search converges to the minimum; 14
    iterations narrow ``bounds`` by a factor ~800 in log space. The 16 evaluations reuse
    one forward's logits.
    """
    gold = GoldLogits(model, tokenizer, task, examples, batch_size=batch_size, chat_template=chat_template)
    return golden_section_log_t(lambda log_t: gold.nll(math.exp(log_t)), bounds, iterations)
