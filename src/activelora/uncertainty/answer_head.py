"""The last step of every teacher-forced pass: the hidden states that predict the answer
tokens, through the LM head, to per-position values of a measure, to one score per answer.

Shared by the full-sequence estimator (:mod:`activelora.uncertainty.scorer`) and the
answer-positions estimator (:mod:`activelora.uncertainty.answer_passes`), and kept apart from
both so neither imports the other.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .measures import Measure, reduce_positions


def answer_scores(hid: torch.Tensor, targets: torch.Tensor, lengths: Sequence[int], project, *, measure: Measure,
                  k: int, normalize: bool, budget, temperature: float = 1.0):
    """Scores from the hidden states that predict the answer tokens: (scores (B,), per-pass (K, B) or None).

    ``hid`` (K, N, H): pass k's hidden state left of each of the N answer tokens ``targets``
    (N,), the B answers of ``lengths`` one after another. Only these N positions go through
    the ``V``-wide head, in chunks that fit ``budget`` (a :class:`~activelora.uncertainty.scorer._Budget`:
    ``positions_per_chunk(k)`` positions of K passes at a time)."""
    step = budget.positions_per_chunk(k)
    values = []
    for s in range(0, hid.shape[1], step):
        logits = project(hid[:, s:s + step])  # (K, n, V)
        if temperature != 1.0:  # temperature scaling: softmax(z / T) (Guo et al. 2017)
            logits = logits / temperature
        values.append(measure.position_values(logits, targets[s:s + step]).double())
    per_position = torch.cat(values, -1) if values else torch.zeros((() if measure.joint else (k,)) + (0,),
                                                                    dtype=torch.float64, device=hid.device)
    reduced = measure.finish(reduce_positions(per_position, lengths, normalize))
    if measure.joint:  # (B,)
        return reduced.cpu(), None
    return reduced.mean(0).cpu(), reduced.cpu()  # (K, B) -> (B,)
