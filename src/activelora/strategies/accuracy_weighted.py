"""``accuracy-weighted``: more labels for the clusters whose new labels the model got wrong.

``cluster-weighted`` splits a batch by the tuned model's *confidence* per cluster, and LoRA
models are over-confident (STAR's second cause). This rule splits it by a signal that needs no
calibration: **held-out accuracy**. When a batch is selected, the model of that moment answers
each chosen example (a campaign shows these answers as suggestions); once the labels are
given, each answer is checked against its label. The examples were not trained on when they
were answered, so per cluster this is an unbiased sample of how the model does there
(within a cluster the picks do not depend on the answers). It costs one greedy answer per
bought label, not a pass over the pool. The initial random labels are answered by the base
model, since no adapter exists yet.

The simulation of issue 16 (``benchmarks/allocation_rules.py``, the rule ``inverse-accuracy``)
predicted this rule to save 16-17% of the labels on ``mix``. Measured over five paired seeds it
saves about 13% on the mean curve and cannot be told from random or from ``cluster-weighted``:
held-out accuracy cannot tell a skill not learnt *yet* from one not learnt within the budget,
and keeps buying the latter (docs/results.md, issue 16, eighteenth session).

The rule, for query t:

1. Cluster the unlabelled pool and the labelled examples together into
   ``C = strategy.weighted_clusters`` clusters by k-means over the base model's prompt
   embeddings (:func:`~activelora.strategies.remedies.kmeans`, seeded from the run's rng), so
   that every labelled example with feedback falls in a cluster of the pool.
2. Feedback: the labelled examples bought in the last ``W = strategy.feedback_window`` rounds
   that have any (an example with no answer or no label counts in none).
   In cluster c, ``k_c`` of them were answered and ``y_c`` of those right. Its smoothed
   held-out accuracy, with ``a = strategy.feedback_prior`` pseudo-answers half of them right, is

       p̂_c = (y_c + a/2) / (k_c + a)

   which is 1/2 for a cluster with no feedback yet.
3. Weight ``w_c = 1 − p̂_c + ε``, ``ε = strategy.feedback_explore`` (every cluster stays in play:
   a cluster that looks solved from three answers may not be). The batch is split ``q_c ∝ w_c``
   over the clusters' unlabelled members by :func:`~activelora.strategies.cluster_weighted.allocate`.
   Cluster sizes do not enter, as in ``cluster-weighted``: a rare mode the model gets wrong is
   worth as many labels as a common one.
4. Within a cluster, its ``q_c`` picks are TypiClust's on its unlabelled members
   (:func:`~activelora.strategies.cluster_weighted.typical_picks_by_quota`), as in
   ``cluster-weighted``, so that the two differ only in the signal that splits the batch.

Each selected id's recorded score is its cluster's weight; ``info["accuracy_weighted"]`` lists
each cluster's size, answered, right, p̂ and quota. ``W = 2``, ``a = 1``, ``ε = 0.05`` are the
simulation's defaults, not tuned on any test set; the simulation found the saving insensitive
to them (docs/results.md, issue 16, seventeenth session). It trains plain LoRA, as ``random``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Needs, PoolView, Selection, register
from .batch import BatchStrategy, child_rng, id_order
from .cluster_weighted import allocate, typical_picks_by_quota
from .remedies import kmeans


def feedback_counts(labels: np.ndarray, correct: np.ndarray, rounds: np.ndarray, window: int,
                    clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """``(y, k)`` per cluster (C,): right and answered answers among the labelled examples of the
    last ``window`` rounds that have feedback. ``labels`` (m,) the labelled examples' clusters,
    ``correct`` (m,) 1 / 0 / NaN, ``rounds`` (m,) the round that bought each."""
    answered = ~np.isnan(correct)
    with_feedback = np.unique(rounds[answered])
    recent = answered & np.isin(rounds, with_feedback[-window:])
    k = np.bincount(labels[recent], minlength=clusters).astype(np.float64)
    y = np.bincount(labels[recent], weights=correct[recent], minlength=clusters)
    return y, k


def smoothed_accuracy(right: np.ndarray, answered: np.ndarray, prior: float) -> np.ndarray:
    """``p̂_c = (y_c + a/2) / (k_c + a)``: step 2 of the rule."""
    return (right + prior / 2.0) / (answered + prior)


@register
class AccuracyWeightedStrategy(BatchStrategy):
    """Held-out accuracy weighting across embedding clusters: see
    :mod:`~activelora.strategies.accuracy_weighted`. Scores nothing on the pool: it reads the
    prompt embeddings and the answers given when the labelled examples were selected."""

    name = "accuracy-weighted"

    def needs(self) -> Needs:
        return Needs(hidden_states=True, labelled_embeddings=True, selection_feedback=True, b_l2=self.cfg.b_l2)

    def cluster_weight(self, accuracy: np.ndarray) -> np.ndarray:
        """Step 3's ``w_c = 1 − p̂_c + ε``: the clusters answered wrong most often first."""
        return 1.0 - accuracy + self.cfg.feedback_explore

    def choose(self, pool: PoolView, n: int) -> Selection:
        unlabelled, labelled = self.embedding_sets(pool)
        correct = np.asarray(pool.require("labelled_correct", self.name), dtype=np.float64)
        rounds = np.asarray(pool.require("labelled_rounds", self.name), dtype=np.int64)
        k = min(self.cfg.weighted_clusters, len(unlabelled) + len(labelled))
        labels = kmeans(np.vstack([unlabelled, labelled]), k, child_rng(pool))
        pool_labels, labelled_labels = labels[:len(unlabelled)], labels[len(unlabelled):]
        right, answered = feedback_counts(labelled_labels, correct, rounds, self.cfg.feedback_window, k)
        accuracy = smoothed_accuracy(right, answered, self.cfg.feedback_prior)
        weight = self.cluster_weight(accuracy)
        sizes = np.bincount(pool_labels, minlength=k)
        quota = allocate(weight, sizes, n)
        picks, scores = typical_picks_by_quota(unlabelled, pool_labels, weight, quota, child_rng(pool),
                                               id_order(pool.ids))
        info: dict[str, Any] = {"clusters": [
            {"size": int(sizes[c]), "answered": int(answered[c]), "right": int(right[c]),
             "accuracy": float(accuracy[c]), "quota": int(quota[c])} for c in range(k)]}
        return Selection(ids=[pool.ids[i] for i in picks], scores=[float(s) for s in scores],
                         info={"accuracy_weighted": info})
