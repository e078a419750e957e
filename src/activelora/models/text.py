"""Turning examples into token ids: prompts for generation, prompt+target for training."""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100  # positions the loss skips (prompt and padding)


def format_prompt(tokenizer, prompt: str, chat_template: bool = False) -> str:
    """The text fed to the model; optionally wrapped in the tokenizer's chat template."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return prompt


def encode_prompt(tokenizer, prompt: str, chat_template: bool = False) -> list[int]:
    text = format_prompt(tokenizer, prompt, chat_template)
    # The chat template already carries its special tokens.
    return tokenizer(text, add_special_tokens=not chat_template)["input_ids"]


def encode_target(tokenizer, target: str) -> list[int]:
    """Target ids followed by EOS, so the model learns where to stop."""
    return tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


@dataclass(frozen=True)
class TrainingFeature:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on the prompt: the loss covers target tokens only


def build_feature(prompt_ids: list[int], target_ids: list[int], max_length: int) -> TrainingFeature:
    """Concatenate prompt and target; over-long prompts lose their left end, never the target."""
    target_ids = target_ids[:max_length]
    room = max_length - len(target_ids)
    prompt_ids = prompt_ids[-room:] if room > 0 else []
    return TrainingFeature(prompt_ids + target_ids, [IGNORE_INDEX] * len(prompt_ids) + list(target_ids))


def pad_right(rows: list[list[int]], value: int) -> tuple[list[list[int]], list[list[int]]]:
    """Right-pad to the longest row; returns (padded, attention_mask)."""
    width = max(len(r) for r in rows)
    padded = [r + [value] * (width - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
    return padded, mask


def pad_left(rows: list[list[int]], value: int) -> tuple[list[list[int]], list[list[int]]]:
    """Left-pad to the longest row (generation continues from the right edge)."""
    width = max(len(r) for r in rows)
    padded = [[value] * (width - len(r)) + r for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return padded, mask
