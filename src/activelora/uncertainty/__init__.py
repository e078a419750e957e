"""Sequence uncertainty: measures (found by name in ``MEASURES``) and the batched pool scorer."""

from .measures import MEASURES, Measure, get_measure
from .scorer import ScoredExample, merge_scores, score_pool

__all__ = ["MEASURES", "Measure", "ScoredExample", "get_measure", "merge_scores", "score_pool"]
