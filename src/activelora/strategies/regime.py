"""The one place that decides how a run's adapters train and whether MC dropout means anything.

A strategy that scores the pool with ``K >= 2`` Monte-Carlo dropout passes samples the
dropout on the input of the LoRA A matrices. MC dropout approximates the posterior of a
network *trained with that dropout* (Gal & Ghahramani 2016, "Dropout as a Bayesian
Approximation"); sampling a dropout the adapter never had at training time measures only
noise injected into weights fitted without it. So the rule is:

* **A-input dropout** at ``lora.lora_dropout`` when the strategy trains with STAR's hybrid
  regularisation (``regularization.apply``: ``star`` and the strategy declares it, or
  ``all``), *or* when it scores with K >= 2 dropout passes (subtract, bald, vote, ...):
  a strategy trains with the dropout it samples.
* **L2 on B** only with the hybrid regularisation (and not for the ``star-no-l2`` ablation).
* Refused up front (:class:`~activelora.errors.ConfigError`, before any training): K >= 2
  dropout passes with ``regularization.apply=none`` or ``lora.lora_dropout=0``.

The loop (training and the rate set before scoring), the ``train`` command (whose
``train.json`` records the decision) and the ``score``/``probe`` commands (which read it back
from the adapter's folder before sampling dropout) all use :class:`TrainingRegime`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from ..models.prompt_format import TRAIN_RECORD  # written beside an adapter folder by the loop and `train`
from ..models.regularization import Regularization

if TYPE_CHECKING:  # pragma: no cover
    from .base import Strategy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRegime:
    """How one run's adapters train, and with how many dropout passes they are scored.

    ``a_dropout``: the A-input dropout rate during training, and so the only rate MC
    sampling may use. ``b_l2_mode`` / ``b_weight_decay`` / ``b_l2_penalty``: the L2 on B.
    ``mc_samples``: the dropout passes the strategy scores with (1 = deterministic).
    ``why``: one line saying which rule chose this, recorded in ``train.json``.
    """

    a_dropout: float
    b_l2_mode: str = "none"
    b_weight_decay: float = 0.0
    b_l2_penalty: float = 0.0
    mc_samples: int = 1
    why: str = "plain LoRA"

    @property
    def hybrid(self) -> bool:
        return self.a_dropout > 0 and self.b_l2_mode != "none"

    @property
    def mc_dropout_rate(self) -> float:
        """The rate MC passes sample: the trained one (0 when the adapter trained without)."""
        return self.a_dropout

    def regularization(self) -> "Regularization":
        """The :class:`~activelora.models.regularization.Regularization` that ``train_lora`` applies."""

        return Regularization(a_dropout=self.a_dropout, b_l2_mode=self.b_l2_mode,
                              b_weight_decay=self.b_weight_decay if self.b_l2_mode == "decay" else 0.0,
                              b_l2_penalty=self.b_l2_penalty if self.b_l2_mode == "penalty" else 0.0)

    def check_scoring(self, mc_samples: int, where: str) -> None:
        """Refuse ``mc_samples >= 2`` dropout passes of an adapter trained without dropout."""
        if mc_samples > 1 and self.a_dropout <= 0:
            raise ConfigError(
                f"{where}: {mc_samples} Monte-Carlo dropout passes need an adapter trained with A-input "
                f"dropout, but it trained without ({self.why}); score with one pass (mc_samples=1) or "
                f"train with dropout (regularization.apply=star or all, lora.lora_dropout > 0)"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingRegime":
        fields = {k: data[k] for k in ("a_dropout", "b_l2_mode", "b_weight_decay", "b_l2_penalty",
                                        "mc_samples", "why") if k in data}
        if "a_dropout" not in fields:
            raise ConfigError(f"training record without 'a_dropout': {data!r}")
        return cls(**fields)


def _hybrid_regime(config: Config, *, b_l2: bool, mc_samples: int, why: str,
                   overrides: dict[str, Any] | None = None) -> TrainingRegime:
    reg = config.regularization
    values = {"b_l2_mode": reg.b_l2_mode, "b_weight_decay": reg.b_weight_decay, "b_l2_penalty": reg.b_l2_penalty}
    values.update(overrides or {})
    return TrainingRegime(a_dropout=config.lora.lora_dropout, b_l2_mode=values["b_l2_mode"] if b_l2 else "none",
                          b_weight_decay=float(values["b_weight_decay"]), b_l2_penalty=float(values["b_l2_penalty"]),
                          mc_samples=mc_samples, why=why)


def decide_regime(config: Config, strategy: "Strategy | None" = None, *, plain: bool = False) -> TrainingRegime:
    """The training regime of ``strategy``'s runs under ``config`` (see the module docstring).

    ``strategy=None`` is a single training outside the loop (the ``train`` command): hybrid
    unless ``plain`` or ``regularization.apply=none``. Raises ``ConfigError`` for a strategy
    that would sample MC dropout its adapters never trained with.
    """
    reg = config.regularization
    rate = config.lora.lora_dropout
    if strategy is None:
        if plain or reg.apply == "none":
            return TrainingRegime(a_dropout=0.0, why="plain LoRA (--plain or regularization.apply=none)")
        return _hybrid_regime(config, b_l2=True, mc_samples=1, why="hybrid regularisation (train command)")
    needs = strategy.needs()
    k = needs.dropout_passes  # vote's K samples are generated answers: no dropout
    name = strategy.name
    hybrid = reg.apply == "all" or (reg.apply == "star" and needs.hybrid_regularization)
    if k > 1 and (reg.apply == "none" or rate <= 0):
        cause = "regularization.apply=none" if reg.apply == "none" else f"lora.lora_dropout={rate!r}"
        raise ConfigError(
            f"strategy {name!r} scores with {k} Monte-Carlo dropout passes (strategy.mc_samples), but "
            f"{cause} trains its adapters without A-input dropout; set strategy.mc_samples=1 or "
            f"strategy.mc_dropout=false, or train with dropout"
        )
    if hybrid:
        return _hybrid_regime(config, b_l2=needs.b_l2, mc_samples=k,
                              why=f"hybrid regularisation (regularization.apply={reg.apply}, strategy {name!r})",
                              overrides=getattr(strategy, "regularization_overrides", None))
    if k > 1:
        return TrainingRegime(a_dropout=rate, mc_samples=k,
                              why=f"A-input dropout only: strategy {name!r} samples it in {k} MC passes")
    return TrainingRegime(a_dropout=0.0, mc_samples=1, why=f"plain LoRA (strategy {name!r})")


def regime_of_adapter(adapter: str | Path | None) -> TrainingRegime | None:
    """The regime recorded in ``train.json`` beside ``adapter`` (the loop's ``round-r/adapter``
    and the ``train`` command's ``DIR/adapter``), or None when there is none to read."""
    if adapter is None:
        return None
    path = Path(adapter).parent / TRAIN_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text()).get("regularization")
    except (OSError, json.JSONDecodeError):
        log.warning("%s: unreadable; the adapter's training regime is unknown", path)
        return None
    if not isinstance(record, dict) or "a_dropout" not in record:
        return None
    return TrainingRegime.from_dict(record)


def check_adapter_for_scoring(model, adapter: str | Path | None, *, mc_samples: int, measure: str,
                              where: str) -> TrainingRegime | None:
    """Before a command samples MC dropout from a saved adapter: refuse an adapter whose
    ``train.json`` says it trained without A-input dropout, and sample the rate it trained
    with. An adapter without a record (made elsewhere) keeps the rate of its peft config."""
    from ..models.lora import set_lora_dropout_rate
    from ..uncertainty.measures import get_measure

    regime = regime_of_adapter(adapter)
    passes = 1 if get_measure(measure).needs_sampled_answers else mc_samples
    if regime is None:
        if adapter is not None and passes > 1:
            log.warning("%s: no %s beside the adapter; MC dropout samples the rate of its adapter_config.json",
                        adapter, TRAIN_RECORD)
        return None
    regime.check_scoring(passes, where)
    set_lora_dropout_rate(model, regime.mc_dropout_rate)
    return regime
