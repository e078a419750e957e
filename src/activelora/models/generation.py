"""Batched greedy generation with the KV cache, and the log-probability of what was generated.

Prompts are sorted by length and left-padded only within a batch. Generation stops at EOS
or at one of the task's stop strings. Each result carries the generated token ids (up to
and including the token that ended it) and their log-probabilities under the model, from
which the confidence ``p(y|x) = exp(sum_t log p(y_t | y_<t, x))`` follows.

What is kept per step is only what is needed: a logits processor sees each step's
``(B, V)`` logits once, records ``log p`` of the greedy token (and, when asked, a
per-position value such as the token entropy that a one-pass scorer reuses) and drops the
logits. (Asking ``generate`` for ``output_scores`` would keep ``(B, steps, V)`` floats.)
Deterministic passes run with the LoRA adapter merged into the base weights
(:func:`activelora.models.lora.merged_adapter`).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .lora import merged_adapter
from .text import pad_left

# Per-step value hook: step logits (B, V) float32 and the greedy ids (B,) -> values (B,).
StepValues = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Generation:
    text: str  # decoded answer, cut before any stop string, without special tokens
    token_ids: list[int]  # generated ids that belong to the answer (EOS included if emitted)
    token_logprobs: list[float]  # log p of each of those ids
    # ``step_values(logits, ids)`` at each of those positions, when generate() was given one,
    # and that function (compare it to know what the values are).
    step_values: tuple[float, ...] = ()
    step_values_of: StepValues | None = field(default=None, repr=False)

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


def _contains_stop(tokenizer, ids: list[int], stop_strings: Sequence[str]) -> bool:
    text = tokenizer.decode(ids, skip_special_tokens=True)
    return any(s and s in text for s in stop_strings)


def answer_length(tokenizer, ids: list[int], stop_strings: Sequence[str]) -> tuple[int, str]:
    """How many generated ids belong to the answer, and its text cut before a stop string.

    A finished row is filled with the pad id (often equal to EOS), so the end is found
    from the content: the first EOS, or the smallest prefix whose text contains a stop
    string (the answer ends with the token that completes it). Decoded prefixes only grow,
    so "contains a stop string" is monotone in the prefix length and a binary search finds
    that prefix with ``log2(n)`` decodes instead of one per prefix.
    """
    eos = tokenizer.eos_token_id
    end = ids.index(eos) + 1 if eos in ids else len(ids)
    text = tokenizer.decode(ids[:end], skip_special_tokens=True)
    hits = [text.find(s) for s in stop_strings if s and s in text]
    if not hits:
        return end, text
    lo, hi = 1, end  # the prefix of length hi contains a stop string
    while lo < hi:
        mid = (lo + hi) // 2
        if _contains_stop(tokenizer, ids[:mid], stop_strings):
            hi = mid
        else:
            lo = mid + 1
    return hi, text[:min(hits)]


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


class _GreedyStepRecorder:
    """A logits processor that changes nothing and records, per step, ``log p`` of the
    greedy token and optionally ``step_values``; the ``(B, V)`` logits are not kept.

    It runs last, so it sees the scores greedy decoding takes its ``argmax`` of and picks
    the same token (``torch.argmax``, as ``generate`` does). ``log p`` of that token is
    ``z_max - logsumexp(z)``: the gather of a log-softmax, without allocating it.
    """

    def __init__(self, step_values: StepValues | None):
        self.step_values = step_values
        self.logprobs: list[torch.Tensor] = []  # one (B,) per step
        self.values: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        _, logprob, value = self.step(scores)
        self.logprobs.append(logprob)
        if value is not None:
            self.values.append(value)
        return scores

    def step(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One step's greedy ids, their ``log p`` and ``step_values`` (None without one)."""
        logits = scores.float()
        chosen = torch.argmax(logits, dim=-1)
        logprob = logits.gather(-1, chosen[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        value = self.step_values(logits, chosen).float() if self.step_values is not None else None
        return chosen, logprob, value

    def stacked(self, which: list[torch.Tensor], steps: int) -> torch.Tensor:
        """(B, steps) on the CPU; a step ``generate`` undid at the end is dropped."""
        return torch.stack(which[:steps], dim=1).cpu()


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
    step_values: StepValues | None = None,
) -> list[Generation]:
    """Greedy answers for each prompt (in input order).

    ``step_values``: a function of each step's logits (B, V) and greedy ids (B,) giving one
    float per row (e.g. the token entropy); its values at the answer positions come back in
    :attr:`Generation.step_values`.
    """
    order = sorted(range(len(prompt_ids)), key=lambda i: (len(prompt_ids[i]), i))
    results: list[Generation | None] = [None] * len(prompt_ids)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id
    bar = tqdm(total=len(order), desc=progress if isinstance(progress, str) else "generate",
               unit="ex", disable=not progress, leave=False)
    with merged_adapter(model):
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            ids, mask = pad_left([list(prompt_ids[i]) for i in batch], pad_id)
            input_ids = torch.tensor(ids, device=device)
            attention_mask = torch.tensor(mask, device=device)
            recorder = _GreedyStepRecorder(step_values)
            if _plain_greedy(model):
                new_ids = _greedy_dropping_finished(model, tokenizer, input_ids, attention_mask, recorder,
                                                    max_new_tokens=max_new_tokens, stop_strings=stop_strings)
            else:  # the model's generation config adds logits processors: transformers' own loop
                new_ids = _greedy_with_generate(model, tokenizer, input_ids, attention_mask, recorder,
                                                max_new_tokens=max_new_tokens, stop_strings=stop_strings)
            steps = new_ids.shape[1]
            chosen = recorder.stacked(recorder.logprobs, steps)
            values = recorder.stacked(recorder.values, steps) if step_values is not None else None
            for row, index in enumerate(batch):
                row_ids = new_ids[row].tolist()
                length, text = answer_length(tokenizer, row_ids, stop_strings)
                results[index] = Generation(
                    text.strip(), row_ids[:length], chosen[row, :length].tolist(),
                    tuple(values[row, :length].tolist()) if values is not None else (), step_values)
            bar.update(len(batch))
    bar.close()
    return results  # type: ignore[return-value]


# Generation-config fields that make ``generate`` add a logits processor to greedy decoding,
# with the value that adds none. (Sampling settings do not matter: decoding is greedy.)
_NO_PROCESSOR = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                 "bad_words_ids": None, "sequence_bias": None, "suppress_tokens": None,
                 "begin_suppress_tokens": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
                 "min_length": 0, "min_new_tokens": None, "exponential_decay_length_penalty": None,
                 "renormalize_logits": False}


def _plain_greedy(model) -> bool:
    """True when ``generate`` would decode greedily with no logits processor of its own (the
    embedded model and most checkpoints), so :func:`_greedy_dropping_finished` gives the
    same tokens; a decoder-only model only."""
    config = getattr(model, "generation_config", None)
    if config is None or getattr(model.config, "is_encoder_decoder", False):
        return False
    for name, neutral in _NO_PROCESSOR.items():
        value = getattr(config, name, None)
        if value is not None and (neutral is None or value != neutral):
            return False
    return True


def _step_kwargs(model, cache) -> dict:
    """The forward's keyword for the KV cache (``cache`` in recent transformers, formerly
    ``past_key_values``) and, where the model has it, logits at the last position only."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    accepted = inspect.signature(inner.forward).parameters
    kwargs = {"cache" if "cache" in accepted else "past_key_values": cache, "use_cache": True}
    if "logits_to_keep" in accepted:
        kwargs["logits_to_keep"] = 1
    return kwargs


def _eos_ids(model, tokenizer) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
    return ids or ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def _greedy_dropping_finished(model, tokenizer, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                              recorder: _GreedyStepRecorder, *, max_new_tokens: int,
                              stop_strings: Sequence[str]) -> torch.Tensor:
    """Greedy decoding with the KV cache that stops computing a row once it has ended.

    The same steps as transformers' greedy ``generate`` (left padding, position ids from the
    attention mask, ``argmax`` of each step's float32 logits, a row ends at EOS or when its
    text completes a stop string), but a finished row leaves the batch: its cache entries,
    mask and position are dropped, instead of decoding pads alongside the longest answer.
    On ``arith`` the longest answer of a batch of 32 runs to the 80-token limit while the
    mean is about 31 tokens, so most of the rows ``generate`` decodes at a step are done (the
    saving is smaller than that share: a step over a few rows is bound by reading the weights).
    The prompt pass computes logits at the last position only.

    Returns the (B, steps) new ids, each finished row filled with the pad id, as ``generate``
    returns them; the recorder gets (B,) values per step, a finished row's being 0.
    """
    from transformers import DynamicCache

    rows, device = input_ids.shape[0], input_ids.device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    eos = torch.tensor(sorted(_eos_ids(model, tokenizer)), dtype=torch.long, device=device)
    stop = _stop_criteria(tokenizer, stop_strings) if stop_strings else None
    out = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=device)
    logprobs = torch.zeros(rows, max_new_tokens)
    values = torch.zeros(rows, max_new_tokens) if recorder.step_values is not None else None
    live = torch.arange(rows, device=device)  # which original rows are still decoding
    sequences, mask = input_ids, attention_mask
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as generate() does
    cache = DynamicCache(config=model.config)
    step_kwargs = _step_kwargs(model, cache)
    step_input, step_positions = input_ids, positions
    steps = 0
    for step in range(max_new_tokens):
        logits = model(input_ids=step_input, attention_mask=mask, position_ids=step_positions,
                       **step_kwargs).logits[:, -1, :]
        chosen, logprob, value = recorder.step(logits)
        out[live, step] = chosen
        rows_here = live.cpu()
        logprobs[rows_here, step] = logprob.cpu()
        if values is not None:
            values[rows_here, step] = value.cpu()
        steps = step + 1
        sequences = torch.cat([sequences, chosen[:, None]], dim=1)
        ended = torch.isin(chosen, eos)
        if stop is not None:
            ended |= stop(sequences, logits)
        if bool(ended.all()):
            break
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            live, sequences, mask, chosen = live[keep], sequences[keep], mask[keep], chosen[keep]
            step_positions = step_positions[keep]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        step_positions = step_positions[:, -1:] + 1
        step_input = chosen[:, None]
    recorder.logprobs = list(logprobs[:, :steps].unbind(1))
    if values is not None:
        recorder.values = list(values[:, :steps].unbind(1))
    return out[:, :steps]


def _greedy_with_generate(model, tokenizer, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          recorder: _GreedyStepRecorder, *, max_new_tokens: int,
                          stop_strings: Sequence[str]) -> torch.Tensor:
    """transformers' ``generate``, greedy, with the recorder as the last logits processor."""
    from transformers import LogitsProcessorList

    sequences = model.generate(
        input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
        do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None,
        stopping_criteria=_stop_criteria(tokenizer, stop_strings) if stop_strings else None,
        logits_processor=LogitsProcessorList([recorder]), pad_token_id=tokenizer.pad_token_id)
    return sequences[:, input_ids.shape[1]:]
