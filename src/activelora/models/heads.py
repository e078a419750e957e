"""The decoder stack and the LM head of a causal LM, taken apart.

Training and scoring both need next-token log-probabilities at a few positions only (the
target tokens); the prompt positions need hidden states but never the ``V``-wide head.
Splitting the model lets them run the decoder once and project just the gathered positions:
for SmolLM2-135M the head is 576 x 49152, about a third of a forward pass at prompt length.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError


def unwrap(model):
    """The transformers model inside a peft wrapper (its LoRA layers stay in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def backbone_and_head(model) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """The decoder stack (returns ``last_hidden_state``) and a function hidden -> logits.

    The function applies the model's final-logit soft cap when it has one (Gemma-2:
    ``z -> c * tanh(z / c)``), as the full model's forward does, so logits match it.
    """
    inner = unwrap(model)
    backbone = inner.get_decoder() if hasattr(inner, "get_decoder") else getattr(inner, inner.base_model_prefix)
    head = inner.get_output_embeddings()
    if backbone is inner or head is None:
        raise ConfigError(f"model {type(inner).__name__}: cannot find its decoder and LM head")
    softcap = getattr(inner.config, "final_logit_softcapping", None)

    def project(hidden: torch.Tensor) -> torch.Tensor:
        logits = head(hidden)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    return backbone, project
