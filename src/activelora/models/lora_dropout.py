"""STAR's dropout on the input of the LoRA A matrices, drawn cheaply.

For the input ``x`` of one LoRA module (shape ``(..., d)``), each entry is kept or dropped
independently of every other entry, module and forward pass (inverted dropout, Srivastava
et al., JMLR 2014)::

    s    ~ Uniform{-2^15, ..., 2^15 - 1}          (16 random bits read as a signed integer)
    drop = 1{ s < round(p * 2^16) - 2^15 }       so P(drop) = round(p * 2^16) / 2^16  (p to 7.6e-6)
    out  = x * (1 - drop) / (1 - p)

This is the distribution of :mod:`activelora.models.keyed_dropout` (the Monte-Carlo scoring
masks, keyed by example instead of drawn from a stream): the same 16-bit threshold, the same
1/(1-p) scale, independent masks per module. So what training regularises with and what
scoring samples are one dropout.

Why not ``torch.nn.Dropout``: on the CPU it draws a float32 Bernoulli per entry, divides
that float mask by 1-p and multiplies, and keeps the float mask for the backward pass. With
LoRA on all seven projections of SmolLM2-135M that is 30 x 7 masks per forward, and it made
a training step 35% slower; the Bernoulli draw alone is about 80% of the dropout's cost
(2.7 ms of 3.4 ms for a batch of 8 x 100 tokens x 576, one thread). Here one 64-bit draw of
the generator gives four entries (``random_`` over the full int64 range, viewed as int16),
and the multiplier takes two passes over floats: about 0.5 ms in all. Masks come from
torch's default generator on the input's device, so ``torch.manual_seed`` makes them
reproducible and activation checkpointing (which restores that generator's state)
recomputes the same masks.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_LEVELS = 1 << 16  # 16-bit uniform draws


def drop_threshold(p: float) -> int:
    """``round(p * 2^16)``: how many of the 2^16 values of a 16-bit draw mean "drop"."""
    return int(round(p * _LEVELS))


def keep_multiplier(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None) -> torch.Tensor:
    """The inverted-dropout multiplier of ``shape``: ``1/(1-p)`` where kept, 0 where dropped."""
    n = math.prod(shape)
    # random_ from the int64 minimum with no upper bound samples all 2^64 values uniformly,
    # so each of the four 16-bit quarters of a draw is uniform and independent of the others.
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), None, generator=generator)
    quarters = words.view(torch.int16)[:n].view(shape)  # s, uniform on {-2^15, ..., 2^15 - 1}
    # In float32 (exact for 16-bit integers): a compare and a scale on floats run vectorised,
    # about 5x faster than comparing the int16 tensor into a bool one and converting that.
    keep = quarters.to(torch.float32).ge_(drop_threshold(p) - _LEVELS // 2)
    return keep.to(dtype).mul_(1.0 / (1.0 - p))  # the scale rounded in the input's dtype, as nn.Dropout


class LoraInputDropout(nn.Dropout):
    """Inverted dropout with the masks of :func:`keep_multiplier` (an ``nn.Dropout``, so
    ``p`` and train/eval work as for any dropout)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * keep_multiplier(x.shape, self.p, x.device, x.dtype)
