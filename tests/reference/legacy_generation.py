# FROZEN TEST ORACLE: the pre-issue-8 src/activelora/models/generation.py, kept verbatim (imports made absolute)
# from commit a0338fe so the faster code can be tested against it and timed beside it.
# Do not edit or import it from the library.
"""Batched greedy generation with the KV cache, and the log-probability of what was generated.

Prompts are sorted by length and left-padded only within a batch. Generation stops at EOS
or at one of the task's stop strings. Each result carries the generated token ids (up to
and including the token that ended it) and their log-probabilities under the model, from
which the confidence ``p(y|x) = exp(sum_t log p(y_t | y_<t, x))`` follows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from activelora.models.text import pad_left


@dataclass(frozen=True)
class Generation:
    text: str  # decoded answer, cut before any stop string, without special tokens
    token_ids: list[int]  # generated ids that belong to the answer (EOS included if emitted)
    token_logprobs: list[float]  # log p of each of those ids

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))

    @property
    def confidence(self) -> float:
        """p(y|x): the probability of the whole generated sequence."""
        return math.exp(self.logprob)

    @property
    def confidence_normalized(self) -> float:
        """Geometric mean token probability, exp(mean_t log p(y_t|...))."""
        n = len(self.token_logprobs)
        return math.exp(self.logprob / n) if n else 1.0


def answer_length(tokenizer, ids: list[int], stop_strings: Sequence[str]) -> tuple[int, str]:
    """How many generated ids belong to the answer, and its text cut before a stop string.

    A finished row is filled with the pad id (often equal to EOS), so the end is found
    from the content: the first EOS, or the first token that completes a stop string.
    """
    eos = tokenizer.eos_token_id
    end = ids.index(eos) + 1 if eos in ids else len(ids)
    text = tokenizer.decode(ids[:end], skip_special_tokens=True)
    hits = [text.find(s) for s in stop_strings if s and s in text]
    if not hits:
        return end, text
    cut = min(hits)
    # Smallest prefix whose text contains the stop string: the answer ends with that token.
    for k in range(1, end + 1):
        prefix = tokenizer.decode(ids[:k], skip_special_tokens=True)
        if any(s and s in prefix for s in stop_strings):
            return k, text[:cut]
    return end, text[:cut]  # pragma: no cover - the loop always finds it


# (id(tokenizer), stop strings) -> (tokenizer, criteria); holding the tokenizer keeps its
# id from being reused by another object while the entry lives.
_STOP_CRITERIA: dict[tuple[int, tuple[str, ...]], tuple[object, object]] = {}


def _stop_criteria(tokenizer, stop_strings: Sequence[str]):
    """transformers' stop-string criterion, built once per tokenizer and stop strings.

    Building it scans the whole vocabulary (about 0.1 s for 49k tokens); ``generate`` would
    otherwise rebuild it on every call.
    """
    from transformers import StoppingCriteriaList, StopStringCriteria

    key = (id(tokenizer), tuple(stop_strings))
    if key not in _STOP_CRITERIA:
        criteria = StoppingCriteriaList([StopStringCriteria(tokenizer, list(stop_strings))])
        _STOP_CRITERIA[key] = (tokenizer, criteria)
    return _STOP_CRITERIA[key][1]


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_strings: Sequence[str] = (),
    batch_size: int = 32,
    progress: bool | str = False,
) -> list[Generation]:
    """Greedy answers for each prompt (in input order)."""
    order = sorted(range(len(prompt_ids)), key=lambda i: (len(prompt_ids[i]), i))
    results: list[Generation | None] = [None] * len(prompt_ids)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id
    bar = tqdm(total=len(order), desc=progress if isinstance(progress, str) else "generate",
               unit="ex", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        ids, mask = pad_left([list(prompt_ids[i]) for i in batch], pad_id)
        input_ids = torch.tensor(ids, device=device)
        attention_mask = torch.tensor(mask, device=device)
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            temperature=None,
            top_p=None,
            top_k=None,
            stopping_criteria=_stop_criteria(tokenizer, stop_strings) if stop_strings else None,
            pad_token_id=pad_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
        new_ids = out.sequences[:, input_ids.shape[1]:]
        # (steps, B, V) -> (B, steps): log p of each chosen id, in float32.
        scores = torch.stack(out.scores, dim=1).float()
        chosen = torch.log_softmax(scores, dim=-1).gather(-1, new_ids[:, : scores.shape[1], None]).squeeze(-1)
        for row, index in enumerate(batch):
            row_ids = new_ids[row].tolist()
            length, text = answer_length(tokenizer, row_ids, stop_strings)
            results[index] = Generation(text.strip(), row_ids[:length], chosen[row, :length].tolist())
        bar.update(len(batch))
    bar.close()
    return results  # type: ignore[return-value]
