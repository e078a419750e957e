# FROZEN TEST ORACLE: the pre-issue-8 src/activelora/uncertainty/scorer.py, kept verbatim (imports made absolute)
# from commit a0338fe so the faster code can be tested against it and timed beside it.
# Do not edit or import it from the library.
"""The batched, label-free pool scorer.

For each example: the answer to score (the model's own greedy answer, or the gold target in
simulations), then ONE teacher-forced pass over ``prompt + answer`` that runs the backbone,
keeps the hidden states at the answer positions only, and projects just those through the
LM head (the prompt positions never reach the ``V``-wide head). ``K`` Monte-Carlo passes
repeat the batch along the batch axis, as many at once as the memory budget allows, with
dropout sampling only on the LoRA A inputs (:func:`activelora.models.lora.mc_dropout`).

The pool is processed in chunks (tokenised, sorted by length, padded only within a batch),
so peak memory does not grow with the pool. Results carry example ids and are computed per
example, so a pool can be split across processes and the parts merged by id
(:func:`merge_scores`). ``base=True`` scores the adapter-free model on the same weights and
caches the scores on disk (``cache_dir()/scores``) per example, so a shrinking pool reuses them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from filelock import FileLock
from tqdm.auto import tqdm

from activelora.errors import ConfigError, DataError
from reference.legacy_generation import answer_length, generate
from activelora.models.loading import cache_dir
from activelora.models.lora import adapter_disabled, lora_dropout_modules, mc_dropout
from activelora.models.text import encode_prompt, encode_target, pad_left, pad_right
from activelora.atomic_files import atomic_write_text
from activelora.uncertainty.measures import Measure, get_measure, reduce_positions, vote

log = logging.getLogger(__name__)

TARGETS = ("generated", "gold")
CACHE_VERSION = 1


@dataclass(frozen=True)
class ScoredExample:
    """One example's uncertainty.

    ``samples``: the per-pass values when K > 1 (``score`` is their mean); empty for ``bald``
    (defined over all passes jointly) and ``vote``. ``answer``: the scored answer text
    (greedy or gold; for ``vote`` the most common extracted answer). ``votes``: the K
    extracted answers (``vote`` only). ``hidden``: mean last-layer hidden state over the
    prompt tokens, (H,) float32, averaged over the K passes (``return_hidden`` only).
    """

    id: str
    score: float
    samples: tuple[float, ...] = ()
    answer: str | None = None
    votes: tuple[str | None, ...] = ()
    hidden: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON-able fields (``hidden`` left out)."""
        out = {"id": self.id, "score": self.score, "samples": list(self.samples), "answer": self.answer}
        if self.votes:
            out["votes"] = list(self.votes)
        return out


# --------------------------------------------------------------------------- model parts


def _unwrap(model):
    """The transformers model inside a peft wrapper (its LoRA layers stay in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _backbone_and_head(model):
    """The decoder stack (returns ``last_hidden_state``) and a function hidden -> logits."""
    inner = _unwrap(model)
    backbone = inner.get_decoder() if hasattr(inner, "get_decoder") else getattr(inner, inner.base_model_prefix)
    head = inner.get_output_embeddings()
    if backbone is inner or head is None:
        raise ConfigError(f"model {type(inner).__name__}: cannot find its decoder and LM head")
    softcap = getattr(inner.config, "final_logit_softcapping", None)  # Gemma-2 caps its logits

    def project(hidden: torch.Tensor) -> torch.Tensor:
        logits = head(hidden)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    return backbone, project


def _device(model) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------- teacher-forced pass


@dataclass
class _Budget:
    """Rough memory arithmetic for grouping MC passes and chunking the LM head."""

    bytes: float
    hidden: int
    intermediate: int
    heads: int
    vocab: int
    elt: int

    @classmethod
    def of(cls, model, megabytes: float) -> "_Budget":
        cfg = _unwrap(model).config
        cfg = getattr(cfg, "get_text_config", lambda: cfg)()
        hidden = int(getattr(cfg, "hidden_size", 1024))
        return cls(
            bytes=megabytes * 2**20,
            hidden=hidden,
            intermediate=int(getattr(cfg, "intermediate_size", 4 * hidden) or 4 * hidden),
            heads=int(getattr(cfg, "num_attention_heads", 16)),
            vocab=int(getattr(cfg, "vocab_size", 32000)),
            elt=next(model.parameters()).element_size(),
        )

    def forward_bytes(self, rows: int, length: int) -> float:
        # Transient activations of one layer per token (projections, MLP, a row of attention).
        per_token = (4 * self.hidden + 3 * self.intermediate + self.heads * length) * self.elt
        return rows * length * per_token

    def passes_per_forward(self, k: int, rows: int, length: int) -> int:
        return max(1, min(k, int(self.bytes // max(1.0, self.forward_bytes(rows, length)))))

    def positions_per_chunk(self, k: int) -> int:
        # float32 logits, log-softmax, probabilities and two temporaries, each (K, n, V).
        return max(1, int(self.bytes // (5 * 4 * k * self.vocab)))

    def batches(self, order: list[int], lengths: list[int], batch_size: int) -> Iterable[list[int]]:
        """Consecutive groups of the length-sorted ``order``: at most ``batch_size`` rows, and
        fewer when long rows would exceed the budget (so memory does not track the longest)."""
        batch: list[int] = []
        for i in order:
            if batch and (len(batch) == batch_size or self.forward_bytes(len(batch) + 1, lengths[i]) > self.bytes):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch


@torch.no_grad()
def _teacher_forced(model, prompts, answers, *, measure: Measure, k: int, normalize: bool,
                    pad_id: int, budget: _Budget, want_hidden: bool, temperature: float = 1.0):
    """Score one padded batch. Returns (scores (B,), per-pass (K, B) or None, hidden (B, H) or None)."""
    backbone, project = _backbone_and_head(model)
    device = _device(model)
    seqs = [p + a for p, a in zip(prompts, answers)]
    # Right padding: the real tokens keep positions 0..len-1 and, the model being causal,
    # never attend to the pads after them; so an example scores the same alone or next to
    # longer neighbours, and no attention mask is needed (the fused causal kernel runs).
    ids, _ = pad_right(seqs, pad_id)
    input_ids = torch.tensor(ids, device=device)  # (B, L)
    rows_b, lengths = input_ids.shape
    # The logits predicting answer token t sit one position to its left.
    rows = [b for b, a in enumerate(answers) for _ in a]
    cols = [len(p) - 1 + t for p, a in zip(prompts, answers) for t in range(len(a))]
    targets = torch.tensor([tok for a in answers for tok in a], dtype=torch.long, device=device)  # (N,)
    rows_t = torch.tensor(rows, dtype=torch.long, device=device)
    cols_t = torch.tensor(cols, dtype=torch.long, device=device)
    prompt_mask = torch.zeros(rows_b, lengths, device=device)
    for b, p in enumerate(prompts):
        prompt_mask[b, : len(p)] = 1.0

    group = budget.passes_per_forward(k, rows_b, lengths)
    answer_hidden, hidden_sum = [], None
    for start in range(0, k, group):
        g = min(group, k - start)
        out = backbone(input_ids=input_ids.repeat(g, 1), use_cache=False)
        h = out.last_hidden_state.view(g, rows_b, lengths, -1)  # (g, B, L, H)
        answer_hidden.append(h[:, rows_t, cols_t])  # (g, N, H)
        if want_hidden:
            pooled = (h.float() * prompt_mask[None, :, :, None]).sum((0, 2))  # (B, H)
            hidden_sum = pooled if hidden_sum is None else hidden_sum + pooled
        del out, h
    hid = torch.cat(answer_hidden, 0)  # (K, N, H)

    n_total = hid.shape[1]
    step = budget.positions_per_chunk(k)
    values = []
    for s in range(0, n_total, step):
        logits = project(hid[:, s:s + step])  # (K, n, V)
        if temperature != 1.0:  # temperature scaling: softmax(z / T) (Guo et al. 2017)
            logits = logits / temperature
        values.append(measure.position_values(logits, targets[s:s + step]).double())
    per_position = torch.cat(values, -1) if values else torch.zeros((() if measure.joint else (k,)) + (0,),
                                                                    dtype=torch.float64, device=device)
    reduced = measure.finish(reduce_positions(per_position, [len(a) for a in answers], normalize))
    hidden = None
    if want_hidden:
        hidden = (hidden_sum / (k * prompt_mask.sum(1, keepdim=True))).cpu().numpy().astype(np.float32)
    if measure.joint:  # (B,)
        return reduced.cpu(), None, hidden
    return reduced.mean(0).cpu(), reduced.cpu(), hidden  # (K, B) -> (B,)


@torch.no_grad()
def _prompt_hidden(model, prompts, pad_id) -> np.ndarray:
    """Mean last hidden state over each prompt: (B, H) (deterministic, eval mode)."""
    backbone, _ = _backbone_and_head(model)
    device = _device(model)
    ids, mask = pad_right(prompts, pad_id)  # right padding: causal, no mask needed (see above)
    h = backbone(input_ids=torch.tensor(ids, device=device), use_cache=False).last_hidden_state.float()
    m = torch.tensor(mask, device=device, dtype=torch.float32)[:, :, None]
    return ((h * m).sum(1) / m.sum(1)).cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------- sampled answers (vote)


@torch.no_grad()
def _sample_answers(model, tokenizer, prompts, *, k, max_new_tokens, stop_strings, batch_size,
                    temperature) -> list[list[str]]:
    """K answers per prompt by ancestral sampling (temperature, no top-k/top-p cut): texts."""
    device = _device(model)
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    per_call = max(1, batch_size // k)  # K copies per prompt share the batch
    texts: list[list[str]] = [[] for _ in prompts]
    for start in range(0, len(order), per_call):
        batch = order[start:start + per_call]
        ids, mask = pad_left([list(prompts[i]) for i in batch], tokenizer.pad_token_id)
        input_ids = torch.tensor(ids, device=device)
        out = model.generate(
            input_ids=input_ids, attention_mask=torch.tensor(mask, device=device),
            max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
            num_return_sequences=k, stop_strings=list(stop_strings) or None,
            tokenizer=tokenizer if stop_strings else None, pad_token_id=tokenizer.pad_token_id,
        )
        new = out[:, input_ids.shape[1]:].tolist()  # (len(batch) * K, steps), prompt-major
        for row, index in enumerate(batch):
            for j in range(k):
                _, text = answer_length(tokenizer, new[row * k + j], stop_strings)
                texts[index].append(text.strip())
    return texts


# --------------------------------------------------------------------------- cache


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _weights_fingerprint(model) -> str:
    """A cheap fingerprint of the base weights: shapes, a few values and the sum of each tensor."""
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in _unwrap(model).named_parameters():
            if "lora_" in name:
                continue
            flat = p.detach().reshape(-1)
            h.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
            h.update(torch.cat([flat[:16], flat[-16:]]).float().cpu().numpy().tobytes())
            h.update(np.float64(flat.sum(dtype=torch.float64).item()).tobytes())
    return h.hexdigest()[:24]


def _example_key(ex, target: str) -> str:
    # The gold answer matters only when it is what gets scored.
    return _digest([ex.id, ex.question, ex.answer if target == "gold" else None])[:24]


class _ScoreCache:
    """One JSON file per scoring setting; entries keyed by a hash of each example."""

    def __init__(self, key: dict[str, Any]):
        root = cache_dir() / "scores"
        self.key = key
        self.path = root / f"{_digest(key)[:24]}.json"

    def load(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("score cache %s unreadable; recomputing", self.path)
            return {}
        return data.get("entries", {}) if data.get("key") == self.key else {}

    def update(self, entries: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Shards scoring in parallel merge into the same file: read-merge-write under a lock.
        with FileLock(str(self.path) + ".lock"):
            merged = self.load()
            merged.update(entries)
            atomic_write_text(self.path, json.dumps({"key": self.key, "entries": merged}))


def _cache_key(model, tokenizer, task, *, measure, target, mc_samples, normalize, max_new_tokens,
               chat_template, seed, temperature) -> dict[str, Any]:
    inner = _unwrap(model)
    stochastic = measure.needs_sampled_answers or mc_samples > 1
    return {
        "version": CACHE_VERSION,
        "model": str(getattr(inner.config, "name_or_path", "") or type(inner).__name__),
        "weights": _weights_fingerprint(model),
        "dtype": str(next(model.parameters()).dtype),
        "tokenizer": [str(getattr(tokenizer, "name_or_path", "")), len(tokenizer)],
        "task": getattr(task, "name", type(task).__name__),
        "chat_template": chat_template,
        "measure": measure.name,
        "target": "sampled" if measure.needs_sampled_answers else target,
        "mc_samples": mc_samples,
        "normalize": normalize,
        "max_new_tokens": max_new_tokens,
        "seed": seed if stochastic else None,
        "temperature": temperature,
    }


# --------------------------------------------------------------------------- public API


def _check_args(measure: Measure, target, mc_samples, batch_size, max_new_tokens, temperature, examples) -> None:
    if target not in TARGETS:
        raise ConfigError(f"score.target: must be generated or gold, got {target!r}")
    if not isinstance(mc_samples, int) or mc_samples < 1:
        raise ConfigError(f"score.mc_samples: must be >= 1, got {mc_samples!r}")
    if mc_samples < measure.min_samples:
        raise ConfigError(f"measure {measure.name!r} needs --mc-samples >= {measure.min_samples}, got {mc_samples}")
    if measure.needs_sampled_answers and target == "gold":
        raise ConfigError(f"measure {measure.name!r} scores sampled answers; --target gold does not apply")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"score.batch_size: must be > 0, got {batch_size!r}")
    if not temperature > 0:
        raise ConfigError(f"temperature: must be > 0, got {temperature!r}")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise ConfigError(f"score.max_new_tokens: must be > 0, got {max_new_tokens!r}")
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise DataError(f"duplicate example id {ex.id!r} in the pool")
        seen.add(ex.id)
        if target == "gold" and ex.answer is None:
            raise DataError(f"example {ex.id!r} has no gold answer; --target gold needs labels")


def score_pool(
    model,
    tokenizer,
    task,
    examples: Sequence,
    *,
    measure: str | Measure = "entropy",
    target: str = "generated",
    mc_samples: int = 1,
    normalize: bool = False,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    chat_template: bool = False,
    base: bool = False,
    cache: bool = True,
    progress: bool = True,
    seed: int = 0,
    return_hidden: bool = False,
    temperature: float = 1.0,
    memory_budget_mb: float = 256.0,
    chunk_size: int = 512,
) -> list[ScoredExample]:
    """Score ``examples`` with ``measure``; one :class:`ScoredExample` per example, in input order.

    ``target``: ``generated`` (greedy answers; label-free) or ``gold`` (needs labels).
    ``mc_samples`` K: LoRA-dropout passes (per-pass measures average them; ``bald`` needs
    K >= 2) or, for ``vote``, sampled answers. ``temperature`` T: every distribution is
    ``softmax(logits / T)`` (the teacher-forced pass, and the sampling for ``vote``); a T fitted
    on held-out labels is post-hoc temperature scaling. ``base``: the adapter is
    disabled and results are cached on disk when ``cache``. ``seed`` fixes the dropout masks
    and samples for this pool and batch size; the global RNG state is left untouched.
    ``return_hidden``: also the mean prompt hidden state (for diversity sampling).
    ``memory_budget_mb``: rough cap on the transient memory of one forward (rows per batch
    and MC passes stacked per forward shrink to fit) and of the LM-head chunks.
    ``chunk_size``: examples tokenised and sorted at a time (the pool is streamed).
    The model ends in eval mode with every dropout off.
    """
    spec = get_measure(measure) if isinstance(measure, str) else measure
    examples = list(examples)
    _check_args(spec, target, mc_samples, batch_size, max_new_tokens, temperature, examples)
    max_new = int(max_new_tokens if max_new_tokens is not None else task.max_new_tokens)
    if not examples:
        return []

    per_pass_mc = mc_samples > 1 and not spec.needs_sampled_answers
    if per_pass_mc and (base or not any(getattr(m, "p", 0) > 0 for m in lora_dropout_modules(model))):
        log.warning("mc_samples=%d but no LoRA dropout will sample (%s): the passes will be identical",
                    mc_samples, "adapter disabled" if base else "lora_dropout is 0 or no adapter")

    store = None
    results: dict[str, ScoredExample] = {}
    if base and cache:
        store = _ScoreCache(_cache_key(model, tokenizer, task, measure=spec, target=target,
                                       mc_samples=mc_samples, normalize=normalize, max_new_tokens=max_new,
                                       chat_template=chat_template, seed=seed, temperature=temperature))
        if not return_hidden:  # the cache holds no hidden states
            hits = store.load()
            for ex in examples:
                entry = hits.get(_example_key(ex, target))
                if entry is not None:
                    results[ex.id] = ScoredExample(entry["id"], entry["score"], tuple(entry["samples"]),
                                                   entry["answer"], tuple(entry.get("votes", ())))
    todo = [ex for ex in examples if ex.id not in results]

    device = _device(model)
    budget = _Budget.of(model, memory_budget_mb)
    pad_id = tokenizer.pad_token_id
    stop = tuple(getattr(task, "stop_strings", ()) or ())
    bar = tqdm(total=len(todo), desc=f"score {spec.name}{' (base)' if base else ''}", unit="ex",
               disable=not progress or not todo, leave=False)
    rng_devices = [device] if device.type == "cuda" else []
    model.eval()
    try:
        with contextlib.ExitStack() as stack:
            if base:
                stack.enter_context(adapter_disabled(model))
            stack.enter_context(torch.random.fork_rng(devices=rng_devices))
            torch.manual_seed(seed)
            for c in range(0, len(todo), chunk_size):
                chunk = todo[c:c + chunk_size]
                for item in _score_chunk(model, tokenizer, task, chunk, spec=spec, target=target, k=mc_samples,
                                         normalize=normalize, batch_size=batch_size, max_new=max_new, stop=stop,
                                         chat_template=chat_template, pad_id=pad_id, budget=budget,
                                         want_hidden=return_hidden, temperature=temperature, bar=bar):
                    results[item.id] = item
    finally:
        bar.close()
        model.eval()  # whatever happened inside, no dropout stays on
    if store is not None and todo:
        store.update({_example_key(ex, target): results[ex.id].to_json() for ex in todo})
    return [results[ex.id] for ex in examples]


def _score_chunk(model, tokenizer, task, chunk, *, spec, target, k, normalize, batch_size, max_new, stop,
                 chat_template, pad_id, budget, want_hidden, temperature, bar) -> Iterable[ScoredExample]:
    prompts = [encode_prompt(tokenizer, task.prompt(ex), chat_template) for ex in chunk]
    for ex, p in zip(chunk, prompts):
        if not p:
            raise DataError(f"example {ex.id!r}: the prompt encodes to no tokens")

    if spec.needs_sampled_answers:
        texts = _sample_answers(model, tokenizer, prompts, k=k, max_new_tokens=max_new, stop_strings=stop,
                                batch_size=batch_size, temperature=temperature)
        order = sorted(range(len(chunk)), key=lambda i: len(prompts[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            hidden = _prompt_hidden(model, [prompts[i] for i in idx], pad_id) if want_hidden else None
            for j, i in enumerate(idx):
                votes = tuple(task.extract(t) for t in texts[i])
                top = Counter(votes).most_common(1)[0][0]
                yield ScoredExample(chunk[i].id, vote(votes), (), top, votes,
                                    hidden[j] if hidden is not None else None)
            bar.update(len(idx))
        return

    if target == "gold":
        answers = [encode_target(tokenizer, task.target(ex)) for ex in chunk]
        texts = [task.target(ex).strip() for ex in chunk]
    else:
        gens = generate(model, tokenizer, prompts, max_new_tokens=max_new, stop_strings=stop,
                        batch_size=batch_size, progress=False if bar.disable else "generate")
        answers = [list(g.token_ids) for g in gens]
        texts = [g.text for g in gens]

    lengths = [len(p) + len(a) for p, a in zip(prompts, answers)]
    order = sorted(range(len(chunk)), key=lambda i: (lengths[i], i))
    with mc_dropout(model, active=k > 1):
        for idx in budget.batches(order, lengths, batch_size):
            scores, passes, hidden = _teacher_forced(
                model, [prompts[i] for i in idx], [answers[i] for i in idx], measure=spec, k=k,
                normalize=normalize, pad_id=pad_id, budget=budget, want_hidden=want_hidden,
                temperature=temperature)
            for j, i in enumerate(idx):
                samples = tuple(float(v) for v in passes[:, j]) if passes is not None and k > 1 else ()
                yield ScoredExample(chunk[i].id, float(scores[j]), samples, texts[i], (),
                                    hidden[j] if hidden is not None else None)
            bar.update(len(idx))


def merge_scores(*parts: Iterable[ScoredExample]) -> list[ScoredExample]:
    """Join the results of pool shards scored in separate processes; ids must not repeat."""
    merged: dict[str, ScoredExample] = {}
    for part in parts:
        for item in part:
            if item.id in merged:
                raise DataError(f"example id {item.id!r} scored in two shards")
            merged[item.id] = item
    return list(merged.values())

