"""Sequence uncertainty measures: pure functions on logits, and the ``MEASURES`` registry.

Shapes: ``V`` vocabulary, ``T`` answer positions of one sequence, ``N`` answer positions
flattened over a batch, ``K`` Monte-Carlo passes. Logits at position ``t`` are the ones
that predict answer token ``y_t`` (i.e. taken one step to the left of it).

Softmaxes run in float32 (the ``V``-sized work); the per-position values are summed in
float64 (cheap: one number per position). Entropies are in nats.

Measures (the sequence-level forms of Malinin & Gales 2021, "Uncertainty Estimation in
Autoregressive Structured Prediction", as used for active learning by STAR, Zhang et al.
2024, arXiv 2403.01165):

- ``entropy`` (maximum entropy): ``sum_t H(p(. | y_<t, x))``.
- ``pe`` (predictive entropy as sequence NLL): ``-log p(y|x) = -sum_t log p(y_t | y_<t, x)``.
- ``lc`` (least confidence): ``1 - p(y|x) = -expm1(log p(y|x))``.
- ``bald`` (mutual information over K passes; Houlsby et al. 2011, Gal et al. 2017):
  ``sum_t [ H(mean_k p_k) - mean_k H(p_k) ]``.
- ``vote``: entropy of the empirical distribution of K extracted final answers.

With ``normalize`` each sum over positions becomes a mean over positions; for ``lc`` that
gives ``1 - exp(mean_t log p(y_t|...))`` (one minus the geometric-mean token probability).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import torch

from ..registry import Registry

# --------------------------------------------------------------------------- per position


def log_probs(logits: torch.Tensor) -> torch.Tensor:
    """``log softmax`` over the last axis in float32: (..., V) -> (..., V)."""
    return torch.log_softmax(logits.float(), dim=-1)


def _entropy_from_logp(logp: torch.Tensor) -> torch.Tensor:
    # (..., V) -> (...). A -inf logit (a banned token) has p = 0 and contributes 0, not nan.
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros((), dtype=logp.dtype, device=logp.device)).sum(-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Predictive entropy per position, ``H_t = -sum_v p_tv log p_tv``: (..., V) -> (...)."""
    return _entropy_from_logp(log_probs(logits))


def token_logprob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p(y_t | y_<t, x)`` per position: logits (..., V), targets (...) -> (...)."""
    return log_probs(logits).gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)


def token_mutual_information(logits: torch.Tensor) -> torch.Tensor:
    """BALD per position over K passes: (K, ..., V) -> (...).

    ``I_t = H(mean_k p_kt) - mean_k H(p_kt)`` (Houlsby et al. 2011, "Bayesian Active Learning
    for Classification and Preference Learning"; Gal et al. 2017, "Deep Bayesian Active
    Learning with Image Data"), evaluated as the equal ``mean_k KL(p_kt || mean_j p_jt)``:
    the difference of two entropies near ``log V`` cancels badly in float32, the KL form
    does not. The mean distribution is formed in log space,
    ``log mean_k p_k = logsumexp_k(log p_k) - log K``. Clamped at 0 (only rounding can make
    it negative).
    """
    logp = log_probs(logits)  # (K, ..., V)
    k = logp.shape[0]
    mean_logp = torch.logsumexp(logp, dim=0) - math.log(k)  # (..., V)
    p = logp.exp()
    terms = torch.where(p > 0, p * (logp - mean_logp), torch.zeros((), dtype=p.dtype, device=p.device))
    return terms.sum(-1).mean(0).clamp_min(0.0)


# --------------------------------------------------------------------------- per sequence


def reduce_positions(values: torch.Tensor, lengths: Sequence[int], normalize: bool = False) -> torch.Tensor:
    """Per-sequence sum (or mean) of per-position values, in float64.

    ``values`` (..., N) holds the positions of consecutive sequences of the given
    ``lengths`` (sum = N) -> (..., B). An empty sequence scores 0.
    """
    values = values.double()
    lengths_t = torch.as_tensor(list(lengths), dtype=torch.long, device=values.device)
    segment = torch.repeat_interleave(torch.arange(len(lengths_t), device=values.device), lengths_t)
    out = torch.zeros(values.shape[:-1] + (len(lengths_t),), dtype=torch.float64, device=values.device)
    out.index_add_(-1, segment, values)
    if normalize:
        out = out / lengths_t.clamp_min(1).to(out.dtype)
    return out


def entropy(logits: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Maximum entropy: ``sum_t H(p_t)`` (or the mean over t): (..., T, V) -> (...)."""
    h = token_entropy(logits).double()
    return h.mean(-1) if normalize else h.sum(-1)


def pe(logits: torch.Tensor, targets: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Predictive entropy as sequence NLL: ``-sum_t log p(y_t|y_<t,x)``: (..., T, V), (..., T) -> (...)."""
    nll = -token_logprob(logits, targets).double()
    return nll.mean(-1) if normalize else nll.sum(-1)


def lc(logits: torch.Tensor, targets: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Least confidence: ``1 - p(y|x) = -expm1(log p(y|x))``: (..., T, V), (..., T) -> (...).

    ``expm1`` keeps the small values of a confident answer exact (``1 - exp`` would round
    them to 0). With ``normalize``: ``1 - exp(mean_t log p_t)``.
    """
    return -torch.expm1(-pe(logits, targets, normalize))


def bald(logits: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """BALD: ``sum_t [H(mean_k p_kt) - mean_k H(p_kt)]``: (K, ..., T, V) -> (...)."""
    mi = token_mutual_information(logits).double()
    return mi.mean(-1) if normalize else mi.sum(-1)


def vote(answers: Sequence[Hashable]) -> float:
    """Entropy (nats) of the empirical distribution of K extracted final answers.

    ``-sum_a c_a/K log(c_a/K)`` where ``c_a`` counts answer ``a``. ``None`` (no answer
    could be extracted) counts as one answer of its own. 0 when all K agree; ``log K``
    when all differ. (Self-consistency disagreement, cf. Wang et al. 2023.)
    """
    if not answers:
        return 0.0
    k = len(answers)
    return float(-sum((c / k) * math.log(c / k) for c in Counter(answers).values()))


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Measure:
    """What a measure computes and what the scorer must provide for it.

    ``needs_logits``: full-vocabulary logits at the answer positions (else only the log p
    of the answer tokens). ``needs_targets``: the scored answer ids. ``joint``: the score is
    defined over all K passes together (no per-pass values). ``needs_sampled_answers``: K
    sampled answers instead of a teacher-forced pass. ``min_samples``: least K that gives
    a non-trivial value.
    """

    name: str
    description: str
    needs_logits: bool = True
    needs_targets: bool = False
    joint: bool = False
    needs_sampled_answers: bool = False
    min_samples: int = 1
    # Per-position value: logits (K, N, V), targets (N,) -> (K, N), or (N,) when joint.
    position_values: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # Applied to the per-sequence sum/mean (lc maps the NLL to 1 - p).
    finish: Callable[[torch.Tensor], torch.Tensor] = lambda x: x

    @property
    def mc(self) -> bool:
        """True when the measure needs K >= 2 stochastic passes or samples."""
        return self.min_samples > 1


MEASURES: Registry[Measure] = Registry("measure")

MEASURES.add("entropy", Measure(
    "entropy", "sum over answer positions of the full-vocabulary predictive entropy",
    position_values=lambda logits, targets: token_entropy(logits),
))
MEASURES.add("pe", Measure(
    "pe", "-log p(y|x): negative log-likelihood of the answer",
    needs_targets=True,
    position_values=lambda logits, targets: -token_logprob(logits, targets.expand(logits.shape[:-1])),
))
MEASURES.add("lc", Measure(
    "lc", "1 - p(y|x), computed as -expm1(log p(y|x))",
    needs_targets=True,
    position_values=lambda logits, targets: -token_logprob(logits, targets.expand(logits.shape[:-1])),
    finish=lambda nll: -torch.expm1(-nll),
))
MEASURES.add("bald", Measure(
    "bald", "mutual information over K MC-dropout passes (needs --mc-samples >= 2)",
    joint=True, min_samples=2,
    position_values=lambda logits, targets: token_mutual_information(logits),
))
MEASURES.add("vote", Measure(
    "vote", "entropy of K sampled final answers (needs --mc-samples >= 2)",
    needs_logits=False, needs_sampled_answers=True, min_samples=2,
))


def get_measure(name: str) -> Measure:
    """The measure called ``name``; an unknown name lists the valid ones."""
    return MEASURES.get(name)
