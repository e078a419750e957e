"""``learning-zone``: more labels for the clusters the model answers right about half the time.

``accuracy-weighted`` gives the most labels to the clusters whose new labels the model answered
wrong. On ``mix`` that rule kept buying two skills the 135M model does not learn within 192
labels (chain and sort): a cluster answered wrong every time looks like the best buy, round
after round (docs/results.md, issue 16, eighteenth session). Held-out accuracy cannot tell a
skill not learnt *yet* from one that will not be learnt, but the *shape* of the weight can stop
betting on the latter. This rule weights a cluster by the spread of its held-out answers,

    w_c = p̂_c · (1 − p̂_c) + ε

with ``p̂_c`` and ``ε`` as in :mod:`~activelora.strategies.accuracy_weighted` (the smoothed
held-out accuracy over the last ``strategy.feedback_window`` rounds, and
``strategy.feedback_explore``). It is largest at ``p̂ = 1/2`` and falls towards both ends, so a
cluster the model has solved and a cluster it keeps failing both fall back to the exploration
floor, while clusters of middling accuracy, the ones it is learning, get most of the batch. It
is the binomial variance of a cluster's answers: the goals of intermediate difficulty of
Florensa et al. (ICML 2018, "Automatic Goal Generation for Reinforcement Learning Agents"),
and the "zone of proximal development" of curriculum learning. A cluster with no feedback yet
has ``p̂ = 1/2`` and the largest weight, so new modes are tried first.

Everything else (the clustering, the feedback, the split and the typical picks within each
cluster) is ``accuracy-weighted``'s, so the two differ only in this weight. In the simulation
of issue 16 (``benchmarks/allocation_rules.py``, rule ``learning-zone``) it saved 10% of
random's labels on 8 clusters and 16% on 16 (docs/results.md, issue 16, seventeenth session).
Measured on ``mix`` over five paired seeds with 16 clusters, its mean curve reaches random's
final accuracy with 19% fewer labels, and it cannot be told from random: ΔAULC +0.018
[−0.006, +0.042]. It bought fewer labels of the skills not learnt than ``accuracy-weighted``,
but gave them to nearly solved skills rather than to those being learnt, which are answered
wrong at first and so weigh little (docs/results.md, issue 16, nineteenth session).
"""

from __future__ import annotations

import numpy as np

from .accuracy_weighted import AccuracyWeightedStrategy
from .base import register


@register
class LearningZoneStrategy(AccuracyWeightedStrategy):
    """Held-out accuracy weighting that favours middling clusters: see
    :mod:`~activelora.strategies.learning_zone`."""

    name = "learning-zone"

    def cluster_weight(self, accuracy: np.ndarray) -> np.ndarray:
        """``w_c = p̂_c (1 − p̂_c) + ε``."""
        return accuracy * (1.0 - accuracy) + self.cfg.feedback_explore
