"""Which answer token ids each STAR/subtract term scores (issue 9, cause b).

``strategy.base_target``: ``own`` scores the base model on its own greedy answer (the
default); ``tuned`` scores it on the tuned model's greedy answer, so both terms score one
token sequence under the two models (the closest label-free analogue of the paper, which
scored both models on the gold answer).

``strategy.answer_end``: how an answer ends when scored. ``generated`` keeps the token that
ended it (EOS for an adapter trained on EOS-terminated targets; the token completing a stop
string, e.g. a newline, for the base model), as generation produced it. ``content`` drops
that end marker for every scored answer (:func:`content_only`); ``eos`` re-encodes every
answer's text as a training target is encoded, closed with EOS (:func:`as_target`). Either
way the base model's newline and the tuned model's EOS no longer enter the two terms
differently. With ``tuned`` both terms see the same sequence whichever end is chosen.
"""

from __future__ import annotations

from ..models.generation import Generation
from ..models.text import encode_target


def content_only(tokenizer, generation: Generation) -> Generation:
    """``generation`` cut to the shortest prefix of its ids that decodes to its answer text.

    The dropped tail is the end marker: EOS, or the tokens of the stop string that ended
    generation. When no prefix decodes to the text (a token carries both content and the
    stop string) or the answer has no content at all, the ids are kept whole. No recorded
    per-step values are carried over (they would belong to the full sequence).
    """
    ids = list(generation.token_ids)
    text = generation.text.strip()
    if text:
        for k in range(1, len(ids) + 1):
            if tokenizer.decode(ids[:k], skip_special_tokens=True).strip() == text:
                return Generation(generation.text, ids[:k], list(generation.token_logprobs[:k]))
    return Generation(generation.text, ids, list(generation.token_logprobs))


def as_target(tokenizer, generation: Generation) -> Generation:
    """``generation``'s answer text encoded as a training target is: ``" " + text`` (the
    tasks' target convention after ``Answer:``), then EOS. The ids may differ from the
    generated ones; they carry no log-probabilities (only the ids are scored)."""
    return Generation(generation.text, encode_target(tokenizer, " " + generation.text.strip()), [])


def rescored(tokenizer, generation: Generation, answer_end: str) -> Generation:
    """The answer to score for ``strategy.answer_end`` (generated, content or eos)."""
    if answer_end == "content":
        return content_only(tokenizer, generation)
    if answer_end == "eos":
        return as_target(tokenizer, generation)
    return without_values(generation)


def without_values(generation: Generation) -> Generation:
    """The same answer without the values recorded while generating it."""
    return Generation(generation.text, list(generation.token_ids), list(generation.token_logprobs))
