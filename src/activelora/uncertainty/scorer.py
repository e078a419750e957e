"""The batched, label-free pool scorer.

For each example: the answer to score (the model's own greedy answer, or the gold target in
simulations), then ONE teacher-forced pass over ``prompt + answer`` that runs the backbone,
keeps the hidden states at the answer positions only, and projects just those through the
LM head (the prompt positions never reach the ``V``-wide head). One deterministic pass over
the model's own greedy answer needs no teacher-forced pass at all: greedy decoding already
computed the logits at every answer position, so the per-position values are recorded
while generating (:class:`OnePassValues`) and only summed here. ``K`` Monte-Carlo passes
repeat the batch along the batch axis, as many at once as the memory budget allows, with
dropout sampling only on the LoRA A inputs (:func:`activelora.models.lora.mc_dropout`): over
the whole sequence (``mc_estimator="sequence"``), or at the answer positions only over one
shared prompt cache (``"answer"``, :mod:`activelora.uncertainty.answer_passes`).

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
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from filelock import FileLock
from tqdm.auto import tqdm

from ..multiprocess.distributed import example_seed
from ..errors import ConfigError, DataError
from ..models.generation import Generation, answer_length, generate
from ..models.loading import cache_dir
from ..models.keyed_dropout import RowKeys, keyed_dropout, pass_keys
from ..models.heads import backbone_and_head, unwrap
from ..models.lora import adapter_disabled, lora_dropout_modules, mc_dropout, merged_adapter
from ..models.text import encode_prompt, encode_target, pad_left, pad_right
from ..atomic_files import atomic_write_text
from ..config import MC_ESTIMATORS
from .answer_head import answer_scores
from .answer_passes import answer_passes
from .measures import Measure, get_measure, reduce_positions, vote

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


# --------------------------------------------------------------------------- one deterministic pass


@dataclass(frozen=True)
class OnePassValues:
    """The per-position values of ``measure`` at temperature T, recorded during greedy
    decoding (a :data:`activelora.models.generation.StepValues` hook).

    At step t the model has the logits ``z_t`` that predict the greedy token ``y_t``; the
    measure's value there is ``position_values(z_t / T, y_t)``, the same function the
    teacher-forced pass applies to the same logits (recomputed there from ``prompt + y``).
    Comparable, so a :class:`Generation` says which values it carries.
    """

    measure: str
    temperature: float = 1.0

    def __call__(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        spec = get_measure(self.measure)
        if self.temperature != 1.0:  # temperature scaling: softmax(z / T) (Guo et al. 2017)
            logits = logits / self.temperature
        return spec.position_values(logits[None], ids)[0]  # (1, B, V) -> (1, B) -> (B,)

    @staticmethod
    def applies(spec: Measure, k: int, target: str, want_hidden: bool) -> bool:
        """One deterministic pass of a per-pass logit measure on the model's own answers."""
        return (k == 1 and target == "generated" and not want_hidden and not spec.joint
                and not spec.needs_sampled_answers and spec.position_values is not None)


def _one_pass_scores(spec: Measure, gens: Sequence[Generation], normalize: bool) -> torch.Tensor:
    """Per-sequence scores from the values recorded while generating: (B,) float64."""
    values = torch.tensor([v for g in gens for v in g.step_values], dtype=torch.float32)
    return spec.finish(reduce_positions(values, [len(g.step_values) for g in gens], normalize))


# --------------------------------------------------------------------------- model parts


# The decoder/head split is shared with training (models/heads.py).
_unwrap = unwrap
_backbone_and_head = backbone_and_head


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
    layers: int = 1
    kv_width: int = 0  # key (= value) features per token and layer; 0: hidden

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
            layers=int(getattr(cfg, "num_hidden_layers", 1)),
            kv_width=int(getattr(cfg, "num_key_value_heads", None) or getattr(cfg, "num_attention_heads", 16))
            * int(getattr(cfg, "head_dim", None) or hidden // int(getattr(cfg, "num_attention_heads", 16))),
        )

    def forward_bytes(self, rows: int, length: int) -> float:
        # Transient activations of one layer per token (projections, MLP, a row of attention).
        per_token = (4 * self.hidden + 3 * self.intermediate + self.heads * length) * self.elt
        return rows * length * per_token

    def passes_per_forward(self, k: int, rows: int, length: int) -> int:
        return max(1, min(k, int(self.bytes // max(1.0, self.forward_bytes(rows, length)))))

    def cached_forward_bytes(self, rows: int, new: int, context: int) -> float:
        # ``new`` tokens per row attending to ``context`` (cache + new) positions, plus the
        # row's copy of the key/value cache, which grows to ``context`` in every layer.
        per_token = (4 * self.hidden + 3 * self.intermediate + self.heads * context) * self.elt
        cache = 2 * self.layers * (self.kv_width or self.hidden) * context * self.elt
        return rows * (new * per_token + cache)

    def cached_passes_per_forward(self, k: int, rows: int, new: int, context: int) -> int:
        return max(1, min(k, int(self.bytes // max(1.0, self.cached_forward_bytes(rows, new, context)))))

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
                    pad_id: int, budget: _Budget, want_hidden: bool, temperature: float = 1.0,
                    row_keys: RowKeys | None = None, example_keys: Sequence[int] = ()):
    """Score one padded batch. Returns (scores (B,), per-pass (K, B) or None, hidden (B, H) or None).

    ``row_keys``/``example_keys``: under :func:`keyed_dropout`, the dropout masks of example
    b in pass q are keyed by (example_keys[b], q), so they do not depend on the batch."""
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
        if row_keys is not None:
            row_keys.set(pass_keys(torch.tensor(list(example_keys), dtype=torch.int64), range(start, start + g)),
                         device)
        out = backbone(input_ids=input_ids.repeat(g, 1), use_cache=False)
        h = out.last_hidden_state.view(g, rows_b, lengths, -1)  # (g, B, L, H)
        answer_hidden.append(h[:, rows_t, cols_t])  # (g, N, H)
        if want_hidden:
            pooled = (h.float() * prompt_mask[None, :, :, None]).sum((0, 2))  # (B, H)
            hidden_sum = pooled if hidden_sum is None else hidden_sum + pooled
        del out, h
    hid = torch.cat(answer_hidden, 0)  # (K, N, H)
    scores, passes = answer_scores(hid, targets, [len(a) for a in answers], project, measure=measure, k=k,
                                   normalize=normalize, budget=budget, temperature=temperature)
    hidden = None
    if want_hidden:
        hidden = (hidden_sum / (k * prompt_mask.sum(1, keepdim=True))).cpu().numpy().astype(np.float32)
    return scores, passes, hidden


@torch.no_grad()
def _prompt_hidden(model, prompts, pad_id) -> np.ndarray:
    """Mean last hidden state over each prompt: (B, H) (deterministic, eval mode)."""
    backbone, _ = _backbone_and_head(model)
    device = _device(model)
    ids, mask = pad_right(prompts, pad_id)  # right padding: causal, no mask needed (see above)
    h = backbone(input_ids=torch.tensor(ids, device=device), use_cache=False).last_hidden_state.float()
    m = torch.tensor(mask, device=device, dtype=torch.float32)[:, :, None]
    return ((h * m).sum(1) / m.sum(1)).cpu().numpy().astype(np.float32)


@torch.no_grad()
def gold_answer_logits(model, tokenizer, task, examples, *, batch_size: int = 16, chat_template: bool = False,
                       memory_budget_mb: float = 256.0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The logits at every gold-answer position, from ONE deterministic teacher-forced pass.

    Returns (chunks of logits ``(n, V)`` float32 in position order, targets ``(N,)``): what
    the pass of :func:`score_pool` with ``target="gold"`` computes before dividing by T, so a
    caller that needs them at many temperatures (fitting T) runs the model once. Eval mode,
    adapter merged; holds ``N x V`` floats, so it is meant for a probe set, not a pool.
    """
    budget = _Budget.of(model, memory_budget_mb)
    backbone, project = _backbone_and_head(model)
    device = _device(model)
    prompts = [encode_prompt(tokenizer, task.prompt(ex), chat_template) for ex in examples]
    answers = [encode_target(tokenizer, task.target(ex)) for ex in examples]
    lengths = [len(p) + len(a) for p, a in zip(prompts, answers)]
    order = sorted(range(len(examples)), key=lambda i: (lengths[i], i))
    chunks, targets = [], []
    model.eval()
    with merged_adapter(model):
        for idx in budget.batches(order, lengths, batch_size):
            ids, _ = pad_right([prompts[i] + answers[i] for i in idx], tokenizer.pad_token_id)  # causal: no mask
            hidden = backbone(input_ids=torch.tensor(ids, device=device), use_cache=False).last_hidden_state
            rows = torch.tensor([b for b, i in enumerate(idx) for _ in answers[i]], dtype=torch.long, device=device)
            cols = torch.tensor([len(prompts[i]) - 1 + t for i in idx for t in range(len(answers[i]))],
                                dtype=torch.long, device=device)
            h = hidden[rows, cols]  # (n, H): logits predicting each answer token sit one to its left
            step = budget.positions_per_chunk(1)
            chunks += [project(h[s:s + step]).float() for s in range(0, h.shape[0], step)]
            targets += [tok for i in idx for tok in answers[i]]
    return chunks, torch.tensor(targets, dtype=torch.long, device=device)


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


# id(parameter) -> (weak reference, identity key, content sample, digest of the tensor)
_TENSOR_DIGESTS: dict[int, tuple[weakref.ref, tuple, bytes, bytes]] = {}
SAMPLE_POINTS = 1024


def _tensor_digest(name: str, p: torch.Tensor) -> bytes:
    """Shape, dtype, a few values and the float64 sum of one tensor (reads all of it)."""
    flat = p.detach().reshape(-1)
    h = hashlib.sha256(f"{name}{tuple(p.shape)}{p.dtype}".encode())
    h.update(torch.cat([flat[:16], flat[-16:]]).float().cpu().numpy().tobytes())
    h.update(np.float64(flat.sum(dtype=torch.float64).item()).tobytes())
    return h.digest()


def _content_sample(p: torch.Tensor) -> bytes:
    """About SAMPLE_POINTS evenly spaced values: cheap, and changed by any dense update."""
    flat = p.detach().reshape(-1)
    return flat[:: max(1, flat.numel() // SAMPLE_POINTS)].float().cpu().numpy().tobytes()


def _weights_fingerprint(model) -> str:
    """A fingerprint of the base weights: per tensor its shape, a few values and its sum.

    Summing every weight takes seconds on a CPU, so each tensor's digest is remembered and
    reused while the tensor is provably or very probably unchanged: the same Parameter
    object, the same storage (``data_ptr``; a ``.data`` swap, as a merge does, changes it),
    the same autograd version counter (bumped by every in-place op outside ``.data``), and
    the same values at ~1024 evenly spaced points (which catches in-place writes through
    ``.data``, such as peft's unsafe merge, that bypass the version counter). A write through
    ``.data`` that touches only a few elements between the sample points goes unnoticed.
    """
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in _unwrap(model).named_parameters():
            if "lora_" in name:
                continue
            identity = (name, p.data_ptr(), p._version, tuple(p.shape), p.dtype, p.device)
            sample = _content_sample(p)
            entry = _TENSOR_DIGESTS.get(id(p))
            if entry is None or entry[0]() is not p or entry[1] != identity or entry[2] != sample:
                entry = (weakref.ref(p), identity, sample, _tensor_digest(name, p))
                _TENSOR_DIGESTS[id(p)] = entry
            h.update(entry[3])
    for key in [k for k, e in _TENSOR_DIGESTS.items() if e[0]() is None]:  # freed tensors
        del _TENSOR_DIGESTS[key]
    return h.hexdigest()[:24]


def _example_key(ex, target: str, answer_ids: Sequence[int] | None = None) -> str:
    # The gold answer matters only when it is what gets scored; given answer ids (another
    # model's answer, which changes every round) always do.
    key = [ex.id, ex.question, ex.answer if target == "gold" else None]
    return _digest(key if answer_ids is None else key + [list(answer_ids)])[:24]


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
               chat_template, seed, temperature, mc_estimator: str = "sequence") -> dict[str, Any]:
    inner = _unwrap(model)
    stochastic = measure.needs_sampled_answers or mc_samples > 1
    # The estimator enters the key only where it changes the scores (K > 1 dropout passes),
    # and only when it is not the one every existing cache entry was made with.
    estimator = ({"mc_estimator": mc_estimator}
                 if mc_estimator != "sequence" and mc_samples > 1 and not measure.needs_sampled_answers else {})
    return {**estimator,
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


def _check_args(measure: Measure, target, mc_samples, batch_size, max_new_tokens, temperature, examples,
                mc_estimator: str = "sequence") -> None:
    if target not in TARGETS:
        raise ConfigError(f"score.target: must be generated or gold, got {target!r}")
    if mc_estimator not in MC_ESTIMATORS:
        raise ConfigError(f"mc_estimator: must be one of {', '.join(MC_ESTIMATORS)}, got {mc_estimator!r}")
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
    generations: Sequence[Generation] | None = None,
    generation_batch_size: int | None = None,
    mc_estimator: str = "sequence",
) -> list[ScoredExample]:
    """Score ``examples`` with ``measure``; one :class:`ScoredExample` per example, in input order.

    ``target``: ``generated`` (greedy answers; label-free) or ``gold`` (needs labels).
    ``mc_samples`` K: LoRA-dropout passes (per-pass measures average them; ``bald`` needs
    K >= 2) or, for ``vote``, sampled answers. ``mc_estimator``, for K >= 2 dropout passes:
    ``sequence`` samples dropout over the whole ``prompt + answer`` in each pass; ``answer``
    runs the prompt once without dropout and samples only the answer positions, the K passes
    over one shared prompt cache (:mod:`activelora.uncertainty.answer_passes`). ``temperature`` T: every distribution is
    ``softmax(logits / T)`` (the teacher-forced pass, and the sampling for ``vote``); a T fitted
    on held-out labels is post-hoc temperature scaling. ``base``: the adapter is
    disabled and results are cached on disk when ``cache``. ``seed`` keys each example's dropout
    masks by (seed, id, pass) (:mod:`activelora.models.keyed_dropout`), the same in any batch,
    chunk or process shard; ``vote``'s samples it fixes for this pool and batch size. The
    global RNG state is left untouched.
    ``return_hidden``: also the mean prompt hidden state (for diversity sampling).
    ``memory_budget_mb``: rough cap on the transient memory of one forward (rows per batch
    and MC passes stacked per forward shrink to fit) and of the LM-head chunks.
    ``chunk_size``: examples tokenised and sorted at a time (the pool is streamed).
    ``generation_batch_size``: prompts per greedy-decoding batch (default ``batch_size``);
    decoding one token at a time gains more from wide batches than the teacher-forced pass.
    ``generations``: this same model's greedy answers to ``examples`` (in order), e.g. from
    :func:`activelora.models.evaluation.evaluate`, scored instead of generating them again; when
    they carry the :class:`OnePassValues` of this measure and temperature and one pass is
    scored, no forward runs at all. With ``base``: answers given to score under the base
    model (e.g. the tuned model's, STAR's ``base_target=tuned``), carrying no recorded values;
    the base cache is then keyed by their token ids.
    The model ends in eval mode with every dropout off.
    """
    spec = get_measure(measure) if isinstance(measure, str) else measure
    examples = list(examples)
    _check_args(spec, target, mc_samples, batch_size, max_new_tokens, temperature, examples, mc_estimator)
    if generation_batch_size is not None and (not isinstance(generation_batch_size, int) or generation_batch_size < 1):
        raise ConfigError(f"generation batch size: must be > 0, got {generation_batch_size!r}")
    max_new = int(max_new_tokens if max_new_tokens is not None else task.max_new_tokens)
    if generations is not None:
        generations = list(generations)
        if (target != "generated" or spec.needs_sampled_answers or len(generations) != len(examples)
                or (base and any(g.step_values_of is not None for g in generations))):
            raise ValueError("score_pool: generations are greedy answers to score, one per example (not with "
                             "target gold or a sampled-answer measure; with base, without recorded values)")
    if not examples:
        return []

    per_pass_mc = mc_samples > 1 and not spec.needs_sampled_answers
    if per_pass_mc and (base or not any(getattr(m, "p", 0) > 0 for m in lora_dropout_modules(model))):
        log.warning("mc_samples=%d but no LoRA dropout will sample (%s): the passes will be identical",
                    mc_samples, "adapter disabled" if base else "lora_dropout is 0 or no adapter")

    store = None
    results: dict[str, ScoredExample] = {}
    given = dict(zip((ex.id for ex in examples), generations)) if generations is not None else None

    def key_of(ex) -> str:
        return _example_key(ex, target, None if given is None else given[ex.id].token_ids)

    if base and cache:
        store = _ScoreCache(_cache_key(model, tokenizer, task, measure=spec,
                                       target=target if generations is None else "given",
                                       mc_samples=mc_samples, normalize=normalize, max_new_tokens=max_new,
                                       chat_template=chat_template, seed=seed, temperature=temperature,
                                       mc_estimator=mc_estimator))
        if not return_hidden:  # the cache holds no hidden states
            hits = store.load()
            for ex in examples:
                entry = hits.get(key_of(ex))
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
                                         want_hidden=return_hidden, temperature=temperature, bar=bar, seed=seed,
                                         given=None if given is None else [given[ex.id] for ex in chunk],
                                         generation_batch_size=generation_batch_size or batch_size,
                                         mc_estimator=mc_estimator):
                    results[item.id] = item
    finally:
        bar.close()
        model.eval()  # whatever happened inside, no dropout stays on
    if store is not None and todo:
        store.update({key_of(ex): results[ex.id].to_json() for ex in todo})
    return [results[ex.id] for ex in examples]


def _score_chunk(model, tokenizer, task, chunk, *, spec, target, k, normalize, batch_size, max_new, stop,
                 chat_template, pad_id, budget, want_hidden, temperature, bar, seed: int = 0,
                 given: list[Generation] | None = None, generation_batch_size: int | None = None,
                 mc_estimator: str = "sequence") -> Iterable[ScoredExample]:
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

    one_pass = OnePassValues(spec.name, temperature)
    reuse = OnePassValues.applies(spec, k, target, want_hidden)
    if target == "gold":
        answers = [encode_target(tokenizer, task.target(ex)) for ex in chunk]
        texts = [task.target(ex).strip() for ex in chunk]
    else:
        gens = given
        if gens is None:
            gens = generate(model, tokenizer, prompts, max_new_tokens=max_new, stop_strings=stop,
                            batch_size=generation_batch_size or batch_size,
                            progress=False if bar.disable else "generate",
                            step_values=one_pass if reuse else None)
        if reuse and all(g.step_values_of == one_pass for g in gens):
            # Greedy decoding computed these logits already: no teacher-forced pass.
            scores = _one_pass_scores(spec, gens, normalize)
            for j, (ex, g) in enumerate(zip(chunk, gens)):
                yield ScoredExample(ex.id, float(scores[j]), (), g.text)
            bar.update(len(chunk))
            return
        answers = [list(g.token_ids) for g in gens]
        texts = [g.text for g in gens]

    lengths = [len(p) + len(a) for p, a in zip(prompts, answers)]
    order = sorted(range(len(chunk)), key=lambda i: (lengths[i], i))
    # One deterministic pass runs on the merged adapter (a no-op while dropout samples).
    # MC masks are keyed by (seed, example id, pass), not drawn from one stream, so an
    # example's K passes are the same in any batch, chunk or shard of the pool.
    keys = [example_seed(seed, ex.id, "mc") for ex in chunk]
    # With one pass both estimators are the same deterministic pass (the sequence one is cheaper).
    forward = answer_passes if k > 1 and mc_estimator == "answer" else _teacher_forced
    with mc_dropout(model, active=k > 1), merged_adapter(model), \
            (keyed_dropout(model) if k > 1 else contextlib.nullcontext()) as row_keys:
        for idx in budget.batches(order, lengths, batch_size):
            scores, passes, hidden = forward(
                model, [prompts[i] for i in idx], [answers[i] for i in idx], measure=spec, k=k,
                normalize=normalize, pad_id=pad_id, budget=budget, want_hidden=want_hidden,
                temperature=temperature, row_keys=row_keys, example_keys=[keys[i] for i in idx])
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

