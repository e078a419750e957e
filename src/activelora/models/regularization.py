"""What one LoRA training run regularises: STAR's hybrid regularisation, or none.

Zhang et al. 2024 (STAR, Sec. 3.3) train LoRA with two constraints against over-confidence:
dropout on the input of the A matrices (reused as Monte-Carlo dropout when scoring), and L2
on the B matrices, either as decoupled weight decay on B alone (the authors' code) or as an
explicit penalty ``coef * sum_l ||B_l||_F^2``. :func:`activelora.run.training.train_lora`
applies a :class:`Regularization`; :mod:`activelora.strategies.regime` decides which one a
strategy's runs train with. It lives here, below both, because it describes the adapter's
training and depends on nothing but the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config, RegularizationConfig


@dataclass(frozen=True)
class Regularization:
    """What one training run applies. ``plain()`` is vanilla LoRA: no dropout, no L2 on B."""

    a_dropout: float
    b_l2_mode: str = "none"  # decay | penalty | none
    b_weight_decay: float = 0.0
    b_l2_penalty: float = 0.0

    @classmethod
    def plain(cls) -> "Regularization":
        return cls(a_dropout=0.0)

    @classmethod
    def hybrid(cls, config: Config, b_l2: bool = True) -> "Regularization":
        reg: RegularizationConfig = config.regularization
        return cls(
            a_dropout=config.lora.lora_dropout,
            b_l2_mode=reg.b_l2_mode if b_l2 else "none",
            b_weight_decay=reg.b_weight_decay,
            b_l2_penalty=reg.b_l2_penalty,
        )
