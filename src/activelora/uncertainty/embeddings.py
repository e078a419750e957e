"""Prompt embeddings of the base model: the representation the low-budget strategies cluster.

``e(x) = (1/|p|) Σ_{t ∈ p} h_L(x)_t``: the mean over the prompt's tokens ``p`` of the last
layer's hidden state, with the adapter disabled (the base model) and dropout off. The base
model's representation is fixed before any label, as TypiClust's and ProbCover's
self-supervised embeddings are (Hacohen et al. 2022; Yehuda et al. 2022), so the labelled and
unlabelled points sit in one space that does not move between rounds. Only the prompt is run
(no answer is generated), in batches of similar length, so memory is one batch's activations
plus the (N, H) result.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.example import Example
from ..errors import DataError
from ..models.heads import backbone_and_head
from ..models.lora import adapter_disabled
from ..models.text import encode_prompt, pad_right


@torch.no_grad()
def prompt_embeddings(model, tokenizer, task, examples: Sequence[Example], *, batch_size: int = 16,
                      chat_template: bool = False, progress: bool | str = False) -> np.ndarray:
    """The base model's mean-pooled prompt hidden states, (N, H) float32, in input order."""
    examples = list(examples)
    prompts = [encode_prompt(tokenizer, task.prompt(ex), chat_template) for ex in examples]
    for ex, p in zip(examples, prompts):
        if not p:
            raise DataError(f"example {ex.id!r}: the prompt encodes to no tokens")
    if not examples:
        width = int(getattr(getattr(model, "config", None), "hidden_size", 0) or 0)
        return np.zeros((0, width), dtype=np.float32)
    backbone, _ = backbone_and_head(model)
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))  # little padding per batch
    out: np.ndarray | None = None
    model.eval()
    with adapter_disabled(model), tqdm(total=len(order), desc=progress if isinstance(progress, str) else "embed",
                                       unit="ex", disable=not progress, leave=False) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            ids, mask = pad_right([prompts[i] for i in idx], tokenizer.pad_token_id)
            # Right padding: positions before the padding never attend to it (causal).
            hidden = backbone(input_ids=torch.tensor(ids, device=device), use_cache=False).last_hidden_state.float()
            m = torch.tensor(mask, device=device, dtype=torch.float32)[:, :, None]
            pooled = ((hidden * m).sum(1) / m.sum(1)).cpu().numpy()  # (B, H)
            if out is None:
                out = np.empty((len(examples), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
            bar.update(len(idx))
    return out
