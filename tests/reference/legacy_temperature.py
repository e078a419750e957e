# FROZEN TEST ORACLE: the pre-issue-8 src/activelora/probes/temperature.py, kept verbatim (imports made absolute)
# from commit a0338fe so the faster code can be tested against it and timed beside it.
# Do not edit or import it from the library.
"""Post-hoc temperature scaling of a causal LM's token distributions.

One scalar T > 0 divides every logit, ``p_T(y_t | ...) = softmax(z_t / T)[y_t]``, fitted on a
held-out labelled split by minimising the negative log-likelihood of the gold answers,
``T* = argmin_T  sum_i -log p_T(y_i | x_i)`` (Guo et al. 2017, "On Calibration of Modern
Neural Networks", applied per token). Greedy answers do not change with T; their
probabilities, and so every uncertainty used for selection, do.
"""

from __future__ import annotations

import math
from typing import Sequence

from activelora.data.example import Example

GOLDEN = (math.sqrt(5) - 1) / 2


def gold_nll(model, tokenizer, task, examples: Sequence[Example], temperature: float, *,
             batch_size: int = 16, chat_template: bool = False) -> float:
    """sum_i -log p_T(gold answer_i | prompt_i) over ``examples``."""
    from reference.legacy_scorer import score_pool

    scored = score_pool(model, tokenizer, task, list(examples), measure="pe", target="gold",
                        batch_size=batch_size, chat_template=chat_template, cache=False,
                        progress=False, temperature=temperature)
    return float(sum(s.score for s in scored))


def fit_logit_temperature(model, tokenizer, task, examples: Sequence[Example], *,
                          bounds: tuple[float, float] = (0.25, 4.0), iterations: int = 14,
                          batch_size: int = 16, chat_template: bool = False) -> float:
    """T minimising the gold NLL on ``examples``: golden-section search on log T.

    The NLL is convex in 1/T for a fixed set of logits (a log-sum-exp minus a linear term),
    so it is unimodal in log T and golden-section search converges to the minimum; 14
    iterations narrow ``bounds`` by a factor ~800 in log space.
    """
    lo, hi = math.log(bounds[0]), math.log(bounds[1])

    def loss(log_t: float) -> float:
        return gold_nll(model, tokenizer, task, examples, math.exp(log_t),
                        batch_size=batch_size, chat_template=chat_template)

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
