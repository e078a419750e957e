"""Data-parallel LoRA training with the mathematics of one process.

With P processes, each micro-batch of ``train.batch_size`` rows (the single-process batch) is
cut into P contiguous slices, one per process (sizes differ by at most one): the per-device
batch is ``ceil(batch_size / P)`` and gradient accumulation is unchanged, so an optimiser
step still sees ``batch_size * grad_accum`` examples. Three things keep a step equal to the
single-process step up to float rounding:

* **Loss.** One process's micro-batch loss is the mean over its N target tokens. Across
  processes the mean is over all N = sum_p N_p tokens, and DDP *averages* gradients, so each
  process uses ``P * (sum of its token losses) / N``: the average over processes is then
  ``sum_p sum_p-tokens / N``, the single-process loss (transformers' ``num_items_in_batch``
  turns the loss into ``sum / N``).
* **Padding.** Every slice is padded to the whole micro-batch's longest row, so the tensors a
  process sees are rows of the single-process batch.
* **Dropout.** Every process draws the LoRA A-input masks of the *whole* micro-batch, from the
  same seeded generator in the same order, and keeps its own rows
  (:class:`RowSliceDropout`), so each row gets the mask it would get in one process. The
  draw costs a whole batch's masks per process; the forward and backward, 1/P of the batch.

A process whose slice is empty (a micro-batch with fewer rows than processes) runs one row
with weight 0: DDP needs every process in every backward. Other dropout in the base model
(attention dropout) is drawn per process; LLaMA-family checkpoints set it to 0.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from ..models.lora import ADAPTER, lora_layers
from ..models.text import IGNORE_INDEX, TrainingFeature


def row_slices(rows: int, processes: int) -> list[slice]:
    """Contiguous slices of ``range(rows)``, one per process, sizes differing by at most one."""
    base, extra = divmod(rows, processes)
    out, start = [], 0
    for p in range(processes):
        size = base + (1 if p < extra else 0)
        out.append(slice(start, start + size))
        start += size
    return out


class RowSliceDropout(nn.Module):
    """The LoRA dropout ``inner`` as drawn for the whole micro-batch (``total`` rows), applied
    to this process's ``rows``.

    ``inner`` is run on a tensor of ones of the whole batch's shape: its output is the
    multiplier (``1/(1-p)`` or 0 per entry), drawn exactly as the single-process forward
    draws it (same shape, same generator), whatever dropout implementation ``inner`` is.
    """

    def __init__(self, inner: nn.Module, rows: slice, total: int):
        super().__init__()
        self.inner = inner
        self.rows = rows
        self.total = total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.inner.training or getattr(self.inner, "p", 0) == 0:
            return x
        multiplier = self.inner(x.new_ones((self.total, *x.shape[1:])))[self.rows]
        if multiplier.shape[0] != x.shape[0]:  # an empty slice runs a stand-in row (weight 0)
            return x
        return x * multiplier


@contextlib.contextmanager
def row_slice_dropout(model, rows: slice, total: int) -> Iterator[None]:
    """Inside: each LoRA A-input dropout with p > 0 is wrapped in a :class:`RowSliceDropout`;
    on exit the modules that were there are back."""
    swapped: list[tuple[nn.ModuleDict, nn.Module]] = []
    try:
        for layer in lora_layers(model):
            holder = layer.lora_dropout
            original = holder[ADAPTER] if ADAPTER in holder else None
            if isinstance(original, nn.Dropout) and original.p > 0:
                holder[ADAPTER] = RowSliceDropout(original, rows, total)
                swapped.append((holder, original))
        yield
    finally:
        for holder, original in reversed(swapped):
            holder[ADAPTER] = original


def _collate_to(features: Sequence[TrainingFeature], width: int, pad_id: int, device) -> dict[str, torch.Tensor]:
    """Right-pad to ``width`` (the whole micro-batch's longest row)."""
    ids = [f.input_ids + [pad_id] * (width - len(f.input_ids)) for f in features]
    labels = [f.labels + [IGNORE_INDEX] * (width - len(f.labels)) for f in features]
    mask = [[1] * len(f.input_ids) + [0] * (width - len(f.input_ids)) for f in features]
    return {"input_ids": torch.tensor(ids, device=device), "attention_mask": torch.tensor(mask, device=device),
            "labels": torch.tensor(labels, device=device)}


def target_tokens(features: Sequence[TrainingFeature]) -> int:
    """Tokens the loss covers: labels that are not ignored, after the first position (the
    causal shift: position t predicts the label at t + 1)."""
    return sum(sum(1 for y in f.labels[1:] if y != IGNORE_INDEX) for f in features)


class MicroBatchShards:
    """This process's part of each micro-batch and its loss (see the module docstring)."""

    def __init__(self, rank: int, processes: int):
        self.rank = rank
        self.processes = processes

    @property
    def active(self) -> bool:
        return self.processes > 1

    def loss(self, model, features: Sequence[TrainingFeature], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss to back-propagate on this process, this process's token-loss sum / N).

        The second, summed over processes, is the single-process micro-batch loss (for the log).
        """
        rows = row_slices(len(features), self.processes)[self.rank]
        mine = list(features[rows])
        weight = 1.0
        if not mine:  # DDP needs every process in the backward: a stand-in row, weight 0
            mine, weight = [features[0]], 0.0
        width = max(len(f.input_ids) for f in features)
        batch = _collate_to(mine, width, pad_id, device)
        n_tokens = max(1, target_tokens(features))
        with row_slice_dropout(model, rows, len(features)):
            # num_items_in_batch: transformers' causal-LM loss is then sum / N, not a mean.
            part = model(**batch, num_items_in_batch=torch.tensor(n_tokens, device=device)).loss * weight
        return part * self.processes, part.detach()
