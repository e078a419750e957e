"""Monte-Carlo dropout at the answer positions only, over one shared prompt cache.

The ``sequence`` estimator (:func:`activelora.uncertainty.scorer._teacher_forced`) runs
each of the K dropout passes over the whole ``prompt + answer``: K·(P + A) tokens per
example. The ``answer`` estimator here runs

1. ONE deterministic pass over the prompt (the LoRA A-input dropout paused), keeping the
   keys and values of every layer (the KV cache), then
2. the cache repeated K times along the batch (as many passes at once as the memory budget
   allows) and ONE forward over the A answer positions of all those passes, with the
   dropout sampling there only:

P + K·A tokens. On ``arith`` (P ≈ 33, A ≈ 32 tokens, K = 3) that is 129 instead of 195.

What it estimates: for a per-pass measure ``u``, ``mean_k u(answer | prompt, m_k)`` where
the dropout mask ``m_k`` covers the answer positions and the prompt's hidden states are
their deterministic values (the ``sequence`` estimator draws masks on the prompt too).
With dropout off (K = 1 or ``lora_dropout`` = 0) the two are the same function and agree
to float rounding (tests/test_mc_estimator.py). The evidence that they rank a pool alike is
``benchmarks/compare_estimators.py``.

The "answer positions" are the positions whose logits predict the answer tokens: the last
prompt token and the first A - 1 answer tokens. So the last prompt token is fed again in the
answer pass (with dropout) and its cached deterministic copy is masked out.

Padding. The prompt pass right-pads with no attention mask (causal: a row never attends to
the pads after it), as the ``sequence`` estimator does. In the answer pass the inputs are
right-padded, the positions explicit (``len(prompt) - 1 + t``) and a 2-D attention mask
over ``[cache | new tokens]`` shows each row its own prompt (columns ``< len(prompt) - 1``)
and hides the rest of the cache (its last prompt token, the prompt pads). A row's t-th answer
position is at index t of the answer pass whatever its neighbours, so the keyed dropout
masks (:mod:`activelora.models.keyed_dropout`, keyed by seed, example id and pass) do not
depend on the batch, chunk or process shard.
"""

from __future__ import annotations

import copy
import inspect
from typing import Sequence

import numpy as np
import torch

from ..models.heads import backbone_and_head, unwrap
from ..models.keyed_dropout import RowKeys, pass_keys
from ..models.lora import lora_dropout_paused
from ..models.text import pad_right
from .answer_head import answer_scores
from .measures import Measure


def _cache_keyword(backbone) -> str:
    """The forward's keyword for the KV cache: ``cache`` in recent transformers, formerly
    ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"


def _new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=unwrap(model).config)


def repeated_cache(cache, times: int):
    """A copy of ``cache`` with each row repeated ``times`` times in a row (row ``b`` becomes
    rows ``b*times .. b*times + times - 1``); ``cache`` itself is left as it is, so it can be
    expanded again for the next group of passes (a forward appends to the cache it is given)."""
    expanded = copy.deepcopy(cache)
    expanded.batch_repeat_interleave(times)
    return expanded


@torch.no_grad()
def answer_passes(model, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]], *, measure: Measure,
                  k: int, normalize: bool, pad_id: int, budget, want_hidden: bool, temperature: float = 1.0,
                  row_keys: RowKeys | None = None, example_keys: Sequence[int] = ()):
    """Score one batch with the ``answer`` estimator; the contract of ``_teacher_forced``:
    (scores (B,), per-pass (K, B) or None, hidden (B, H) or None).

    Call it inside :func:`activelora.models.lora.mc_dropout` and, for keyed masks,
    :func:`activelora.models.keyed_dropout.keyed_dropout` (``row_keys``; example b's mask in
    pass q is keyed by ``(example_keys[b], q)``). ``hidden`` is the mean last hidden state
    over the prompt tokens from the deterministic prompt pass."""
    backbone, project = backbone_and_head(model)
    device = next(model.parameters()).device
    rows_b = len(prompts)
    prompt_lengths = [len(p) for p in prompts]
    answer_lengths = [len(a) for a in answers]

    # 1. The prompt, once, deterministically: its KV cache (and hidden states for embeddings).
    cache = _new_cache(model)
    ids, mask = pad_right([list(p) for p in prompts], pad_id)  # right padding: causal, no mask needed
    with lora_dropout_paused(model):
        out = backbone(input_ids=torch.tensor(ids, device=device), use_cache=True,
                       **{_cache_keyword(backbone): cache})
    hidden = None
    if want_hidden:
        m = torch.tensor(mask, device=device, dtype=torch.float32)[:, :, None]  # (B, P, 1)
        hidden = ((out.last_hidden_state.float() * m).sum(1) / m.sum(1)).cpu().numpy().astype(np.float32)
    del out
    width = len(ids[0])  # P: cached positions per row

    # 2. The answer positions: the last prompt token, then all answer tokens but the last.
    span = max(answer_lengths)
    if span == 0:  # nothing to score: every answer is empty
        hid = torch.zeros((k, 0, budget.hidden), device=device)
    else:
        inputs = [[p[-1]] + list(a[:-1]) for p, a in zip(prompts, answers)]
        new_ids, _ = pad_right(inputs, pad_id)
        input_ids = torch.tensor(new_ids, device=device)  # (B, A)
        positions = torch.tensor([[n - 1 + t for t in range(span)] for n in prompt_lengths], device=device)
        seen = torch.tensor([[1] * (n - 1) + [0] * (width - n + 1) for n in prompt_lengths], device=device)
        attention = torch.cat([seen, torch.ones_like(input_ids)], dim=1)  # (B, P + A)
        rows_t = torch.tensor([b for b, n in enumerate(answer_lengths) for _ in range(n)], device=device)
        cols_t = torch.tensor([t for n in answer_lengths for t in range(n)], device=device)
        group = budget.cached_passes_per_forward(k, rows_b, span, width + span)
        keys = torch.tensor(list(example_keys), dtype=torch.int64) if row_keys is not None else None
        parts = []
        for start in range(0, k, group):
            g = min(group, k - start)
            if keys is not None:
                # pass_keys is pass-major (row q*B + b); the repeated cache is example-major (b*g + q).
                row_keys.set(pass_keys(keys, range(start, start + g)).view(g, rows_b).t().reshape(-1), device)
            out = backbone(input_ids=input_ids.repeat_interleave(g, 0),
                           position_ids=positions.repeat_interleave(g, 0),
                           attention_mask=attention.repeat_interleave(g, 0), use_cache=True,
                           **{_cache_keyword(backbone): repeated_cache(cache, g)})
            h = out.last_hidden_state.view(rows_b, g, span, -1).transpose(0, 1)  # (g, B, A, H)
            parts.append(h[:, rows_t, cols_t])  # (g, N, H)
            del out, h
        hid = torch.cat(parts, 0)  # (K, N, H)
    targets = torch.tensor([tok for a in answers for tok in a], dtype=torch.long, device=device)
    scores, passes = answer_scores(hid, targets, answer_lengths, project, measure=measure, k=k,
                                   normalize=normalize, budget=budget, temperature=temperature)
    return scores, passes, hidden

