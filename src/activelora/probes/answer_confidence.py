"""The probability a model gives its FINAL answer: a confidence whose ECE can see over-confidence.

The sequence probability ``p(y|x)`` of a worked answer multiplies the probabilities of every
reasoning token, most of them choices between equivalent phrasings, so it is about 0 for
every answer and its ECE is about the accuracy (issue 9, cause e). What a user wants
calibrated is the result, so we take

    answer_confidence = p(a | x, s) = prod_{t in A} p(y_t | y_<t, x)

where ``s`` is the model's own worked solution up to the final answer, ``a`` the tokens that
spell the final answer the task extracts, and ``A`` their positions in the greedy answer
``y``. The factors are the log-probabilities greedy decoding already recorded
(:attr:`activelora.models.generation.Generation.token_logprobs`), so it costs no forward pass.

Why this and not the agreement of K sampled answers (self-consistency, Wang et al. 2023,
"Self-Consistency Improves Chain of Thought Reasoning in Language Models"): agreement needs
K further generations per example (K times the cost of evaluation on 2 CPU cores) and takes
only K+1 values for small K, so its ECE would be coarse. The answer-token probability is the
token-level confidence whose calibration Kadavath et al. 2022 ("Language Models (Mostly) Know
What They Know") study for answers, here conditioned on the model's own reasoning.

Conventions: an answer from which the task extracts nothing gets confidence 0 (the model
committed to no answer, and it is scored wrong). When the extracted answer cannot be located
in the text (the task normalised it beyond recognition) the confidence is None and the
example is left out of ``ece_answer`` (``answer_confidence_n`` counts those kept).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Sequence

from .calibration import ece

log = logging.getLogger(__name__)

_PIECES = re.compile(r"\S+")
_INNER = re.compile(r"[-+$]?\d[\d,]*(?:\.\d+)?|[A-Za-z]+")
_EDGE_PUNCT = ".,;:!?()[]{}\"'*"


def answer_span(text: str, extracted: str | None, task) -> tuple[int, int] | None:
    """Character span ``[a, b)`` of the last place in ``text`` that spells ``extracted``.

    Candidates, from the end of the text backwards: each whitespace-separated piece with its
    edge punctuation stripped, then the numbers and words inside it, then the piece as is;
    the first candidate ``c`` with ``task.extract(c) == extracted`` wins (so ``7.`` in
    "The final answer is 7." gives the span of ``7``).
    """
    if extracted is None:
        return None
    pieces = list(_PIECES.finditer(text))
    for piece in reversed(pieces):
        word = piece.group()
        start = piece.start()
        stripped = word.strip(_EDGE_PUNCT)
        candidates = []
        if stripped:
            offset = start + word.index(stripped)
            candidates.append((offset, offset + len(stripped)))
        candidates += [(start + m.start(), start + m.end()) for m in reversed(list(_INNER.finditer(word)))]
        candidates.append((piece.start(), piece.end()))
        for a, b in candidates:
            if task.extract(text[a:b]) == extracted:
                return a, b
    return None


def token_positions(tokenizer, token_ids: Sequence[int], text: str, span: tuple[int, int]) -> list[int]:
    """Indices of the generated tokens whose decoded characters overlap ``span`` of ``text``.

    ``text`` is the generation's answer text: the decoded ids cut before any stop string and
    stripped, so its offset 0 sits after the leading whitespace of the decoded ids.
    """
    ends = [len(tokenizer.decode(list(token_ids[:k + 1]), skip_special_tokens=True)) for k in range(len(token_ids))]
    full = tokenizer.decode(list(token_ids), skip_special_tokens=True)
    lead = len(full) - len(full.lstrip())
    a, b = span[0] + lead, span[1] + lead
    starts = [0] + ends[:-1]
    return [k for k, (s, e) in enumerate(zip(starts, ends)) if s < b and e > a]


def answer_confidence(tokenizer, task, generation, extracted: str | None) -> float | None:
    """``p(final answer tokens | prompt, own worked solution)`` of one greedy answer (see the
    module docstring); 0.0 when nothing was extracted, None when it cannot be located."""
    if extracted is None:
        return 0.0
    span = answer_span(generation.text, extracted, task)
    if span is None:
        return None
    positions = token_positions(tokenizer, generation.token_ids, generation.text, span)
    if not positions:
        return None
    return math.exp(math.fsum(generation.token_logprobs[k] for k in positions))


def answer_confidences(tokenizer, task, result) -> list[float | None]:
    """One answer confidence per prediction of an :class:`~activelora.models.evaluation.EvalResult`.

    A result without its ``generations`` (e.g. gathered from several processes, which keep
    only the predictions) gives None for every example, with a warning: the token
    log-probabilities are gone, and a confidence made up without them would mislead.
    """
    if len(result.generations) != len(result.predictions):
        log.warning("answer confidence: the evaluation kept no generations; recorded as null")
        return [None] * len(result.predictions)
    return [answer_confidence(tokenizer, task, g, p.extracted)
            for g, p in zip(result.generations, result.predictions)]


def answer_calibration(confidences: Sequence[float | None], correct: Sequence[bool], bins: int = 10) -> dict:
    """``ece_answer`` (equal-width bins, as ``ece``), ``mean_answer_confidence`` and
    ``answer_confidence_n`` over the examples whose answer confidence is defined."""
    kept = [(c, ok) for c, ok in zip(confidences, correct) if c is not None]
    if not kept:
        return {"ece_answer": None, "mean_answer_confidence": None, "answer_confidence_n": 0}
    conf, ok = zip(*kept)
    return {"ece_answer": ece(list(conf), list(ok), bins=bins),
            "mean_answer_confidence": math.fsum(conf) / len(conf), "answer_confidence_n": len(kept)}
