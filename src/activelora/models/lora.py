"""Attach, reset, save and load LoRA adapters; switch Monte-Carlo dropout on and off.

STAR's hybrid regularisation puts dropout on the input of the A matrices (where peft's
``lora_dropout`` sits) and reuses that dropout as Monte-Carlo dropout when scoring. Both
sample through :func:`lora_input_dropout`, which swaps in the cheaper masks of
:mod:`activelora.models.lora_dropout` for the duration of a ``with`` block.
``mc_dropout`` turns on only those modules; every other dropout in the model stays off,
and on exit the model is back in eval mode with all dropout off (the authors' release ran
its "MC" passes in eval mode, so they were identical; baal#279 leaked MC state into eval).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ..config import LoraSection
from ..errors import ModelLoadError
from .lora_dropout import LoraInputDropout

ADAPTER = "default"


@contextlib.contextmanager
def _quiet_peft_wrap():
    """peft's model wrapper reads transformers' deprecated ``is_gradient_checkpointing``,
    which warns (two stderr lines) on every attach/load; nothing the user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def attach_lora(model, lora: LoraSection, seed: int = 0):
    """Wrap ``model`` in a peft LoRA model (the base weights are shared, not copied)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    try:
        with _quiet_peft_wrap():
            peft_model = get_peft_model(model, config)
    except ValueError as exc:
        raise ModelLoadError(f"lora.target_modules {lora.target_modules}: {exc}") from None
    peft_model.eval()
    return peft_model


def lora_layers(model) -> Iterator[nn.Module]:
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            yield module


def reset_lora(model, seed: int) -> None:
    """Re-initialise every adapter (A random, B zero) for a cold start; no base copy made."""
    torch.manual_seed(seed)
    for layer in lora_layers(model):
        layer.reset_lora_parameters(ADAPTER, init_lora_weights=True)


def lora_b_parameters(model) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if ".lora_B." in n]


def lora_a_parameters(model) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if ".lora_A." in n]


def lora_dropout_modules(model) -> list[nn.Module]:
    """The dropout modules on the A-matrix inputs (``nn.Identity`` when ``lora_dropout=0``)."""
    return [layer.lora_dropout[ADAPTER] for layer in lora_layers(model) if ADAPTER in layer.lora_dropout]


def set_lora_dropout_rate(model, rate: float) -> None:
    """Set p on the A-input dropout (e.g. 0 for plain LoRA) without rebuilding the adapter."""
    for module in lora_dropout_modules(model):
        if isinstance(module, nn.Dropout):
            module.p = rate


@contextlib.contextmanager
def lora_input_dropout(model, rate: float | None = None) -> Iterator[None]:
    """Inside: each LoRA layer's A-input dropout is a :class:`LoraInputDropout` (the cheap
    16-bit masks of :mod:`activelora.models.lora_dropout`) with rate ``rate``, or the rate of
    the module it stands in for when ``rate`` is None (0 for peft's ``nn.Identity``); it keeps
    that module's train/eval flag. On exit the modules it replaced are back, untouched.

    Training and Monte-Carlo scoring both sample through it, so they are one dropout. With
    ``rate`` None, a module that is not peft's own (the keyed masks of an outer
    :func:`activelora.models.keyed_dropout.keyed_dropout` block, or this context's own)
    stays as it is, so the contexts nest in either order.
    """
    swapped: list[tuple[nn.ModuleDict, nn.Module]] = []
    try:
        for layer in lora_layers(model):
            holder = layer.lora_dropout
            if ADAPTER not in holder:
                continue
            original = holder[ADAPTER]
            if rate is None and type(original) not in (nn.Dropout, nn.Identity):
                continue
            p = rate if rate is not None else (original.p if isinstance(original, nn.Dropout) else 0.0)
            replacement = LoraInputDropout(p)
            replacement.train(original.training)
            holder[ADAPTER] = replacement
            swapped.append((holder, original))
        yield
    finally:
        for holder, original in reversed(swapped):
            holder[ADAPTER] = original


@contextlib.contextmanager
def mc_dropout(model, active: bool = True):
    """Inside: eval mode everywhere except the LoRA A-input dropout, which samples masks
    with the dropout training uses (:func:`lora_input_dropout`; the scorer keys them by
    example with :mod:`activelora.models.keyed_dropout`, which has the same distribution).

    On exit the whole model is in eval mode, whatever happened inside.
    """
    model.eval()
    with lora_input_dropout(model) if active else contextlib.nullcontext():
        if active:
            for module in lora_dropout_modules(model):
                module.train()
        try:
            yield model
        finally:
            model.eval()


@contextlib.contextmanager
def lora_dropout_paused(model):
    """Inside: the LoRA A-input dropout modules sample no mask (eval mode); on exit each is
    back in the mode it had. For a deterministic pass in the middle of Monte-Carlo scoring
    (the prompt pass of :mod:`activelora.uncertainty.answer_passes`)."""
    modules = lora_dropout_modules(model)
    modes = [m.training for m in modules]
    try:
        for module in modules:
            module.eval()
        yield model
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


def any_dropout_active(model) -> bool:
    """True when some dropout module would sample a mask (used by tests and sanity checks)."""
    return any(isinstance(m, nn.Dropout) and m.training and m.p > 0 for m in model.modules())


def save_adapter(model, folder: str | Path) -> Path:
    """Write the adapter as safetensors + its JSON config (never a pickle)."""
    folder = Path(folder)
    model.save_pretrained(str(folder), safe_serialization=True)
    if not (folder / "adapter_model.safetensors").is_file():  # pragma: no cover - peft contract
        raise RuntimeError(f"peft did not write {folder}/adapter_model.safetensors")
    return folder


def load_adapter_weights(model, folder: str | Path) -> None:
    """Load a saved adapter's weights into an attached LoRA model (same rank and targets)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise ModelLoadError(f"adapter {folder}: adapter_model.safetensors not found")
    state = load_file(str(weights))
    result = set_peft_model_state_dict(model, state)
    missing = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if missing:
        raise ModelLoadError(f"adapter {folder}: weights do not fit the model ({missing[0]} ...)")


def read_adapter_config(folder: str | Path) -> dict:
    path = Path(folder) / "adapter_config.json"
    if not path.is_file():
        raise ModelLoadError(f"adapter {folder}: adapter_config.json not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: invalid JSON ({exc.msg})") from None


def load_adapter(model, folder: str | Path):
    """Attach a saved adapter to a base model (its own rank, alpha and targets)."""
    from peft import PeftModel

    read_adapter_config(folder)  # a clear error before peft's own
    with _quiet_peft_wrap():
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    peft_model.eval()
    return peft_model


@contextlib.contextmanager
def adapter_disabled(model):
    """Run the base model on the same loaded weights (peft's adapter-disabling context)."""
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield model
    else:  # a plain model: it is its own base
        yield model


@contextlib.contextmanager
def merged_adapter(model):
    """Inside: each LoRA layer's ``W + s·BA`` is one weight, so a forward costs what the
    base model's does (the adapter's two extra small matmuls per module are gone).

    Only for deterministic passes: a merged layer skips its A-input dropout, so nothing is
    merged while some LoRA dropout samples masks, nor while the adapter is disabled (peft
    would then unmerge by subtraction). ``W + ΔW`` is written into a new tensor (peft's
    ``get_delta_weight``; layers with a LoRA variant or bias use peft's ``safe_merge``, which
    does the same) and the original tensor is left untouched; on exit that original tensor
    object is put back, so the base weights are bit-identical afterwards. (peft's own
    ``unmerge`` subtracts ``ΔW`` again, which in floating point does not give ``W`` back
    exactly, and the base-model score cache is keyed by those weights.)
    """
    from peft.tuners.lora import Linear as LoraLinear

    layers = list(lora_layers(model))
    skip = any(getattr(layer, "disable_adapters", False) or layer.merged for layer in layers) or any(
        m.training and getattr(m, "p", 0) > 0 for m in lora_dropout_modules(model))
    saved = []
    try:
        if not skip:
            with torch.no_grad():
                for layer in layers:
                    base = layer.get_base_layer()
                    bias = getattr(base, "bias", None)
                    saved.append((layer, base, base.weight.data, None if bias is None else bias.data))
                    names = [a for a in layer.active_adapters if a in layer.lora_A]
                    plain = isinstance(layer, LoraLinear) and not any(
                        a in layer.lora_variant or layer.lora_bias.get(a) for a in names)
                    if not plain:  # peft's copy-then-add merge (it also checks for NaNs)
                        layer.merge(safe_merge=True)
                        continue
                    # One out-of-place add per weight: peft's safe_merge would also clone
                    # and scan for NaNs, several passes over every weight on each call.
                    weight = base.weight.data
                    for name in names:
                        weight = weight + layer.get_delta_weight(name).to(weight.dtype)
                        layer.merged_adapters.append(name)
                    base.weight.data = weight
        yield model
    finally:
        for layer, base, weight, bias in reversed(saved):
            base.weight.data = weight
            if bias is not None:
                base.bias.data = bias
            layer.merged_adapters.clear()
