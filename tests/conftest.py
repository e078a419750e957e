"""Shared fixtures: the real SmolLM2 tokenizer and a tiny, seeded LLaMA (nothing downloaded).

``make_tiny_llama()`` returns a fresh model with the same weights every time, so a test may
wrap or change it freely. Its ``attention_dropout`` is non-zero on purpose: any dropout
other than LoRA's that wrongly switched on would change the outputs.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path

import pytest
import torch

from activelora.data.example import Example

# Tiny models do microsecond matmuls; with several OpenMP threads on shared cores the
# threads' hand-offs dominate (measured: 50x slower under load). One thread by default.
torch.set_num_threads(int(os.environ.get("ACTIVELORA_TEST_THREADS", "1")))
# The CLI and --jobs workers take their threads from OMP_NUM_THREADS when set
# (activelora.multiprocess.threads): the same fixed count in every process of a test.
os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())


@pytest.fixture(scope="session")
def benchmark_script():
    """``load(name)``: the script ``benchmarks/<name>.py`` as a module. The scripts run as
    ``python benchmarks/<name>.py``, not from a package, so a test loads them by path."""
    folder = Path(__file__).resolve().parents[1] / "benchmarks"

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture
def plain_adapter(tmp_path, tiny_model_dir):
    """A tiny plain-LoRA adapter trained by the ``train`` command on four plain questions:
    ``(common, folder)``, the data and model flags it was trained with and its output folder
    (``folder/adapter``, ``folder/train.json``)."""
    import json

    from activelora.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"question": f"Say {w}.", "answer": w}) + "\n"
                            for w in ["yes", "no", "red", "blue"]))
    common = ["--data", str(data), "--task", "plain", "--model", str(tiny_model_dir)]
    small = ["--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]", "--set", "train.epochs=1"]
    assert main(["train", *common, "--plain", "--out", str(tmp_path / "t"), *small]) == 0
    return common, tmp_path / "t"


class FakeTask:
    """A minimal task: ``Q: question\\nA:`` prompts, targets ``" " + answer``, last word extracted."""

    name = "fake"
    max_new_tokens = 6
    stop_strings: tuple[str, ...] = ()

    def prompt(self, example: Example) -> str:
        return f"Q: {example.question}\nA:"

    def target(self, example: Example) -> str:
        return " " + example.answer.strip()

    def extract(self, text: str) -> str | None:
        words = text.split()
        return words[-1] if words else None

    def is_correct(self, text: str, example: Example) -> bool:
        return self.extract(text) == example.answer.strip()


@pytest.fixture(scope="session")
def smol_tokenizer():
    from activelora.models.loading import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model("smollm2-135m"))


@pytest.fixture(scope="session")
def tiny_llama_config(smol_tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=len(smol_tokenizer), attention_dropout=0.2,
        pad_token_id=smol_tokenizer.pad_token_id, eos_token_id=smol_tokenizer.eos_token_id,
        bos_token_id=None,
    )


@pytest.fixture(scope="session")
def tiny_llama_state(tiny_llama_config):
    from transformers import LlamaForCausalLM

    torch.manual_seed(1234)
    model = LlamaForCausalLM(tiny_llama_config)
    with torch.no_grad():
        # The default init (std 0.02) gives near-uniform next-token distributions, where
        # every measure is ~log V and differences vanish; a larger head makes them peaked.
        model.lm_head.weight.normal_(0.0, 0.5)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def make_tiny_llama(tiny_llama_config, tiny_llama_state):
    """Factory: a fresh tiny LLaMA (eval mode) with the session's fixed weights."""
    from transformers import LlamaForCausalLM

    def make():
        # A copy of the config: a test that changes its model's config (e.g. attention dropout
        # off) must not change the models later tests build.
        model = LlamaForCausalLM(copy.deepcopy(tiny_llama_config))
        model.load_state_dict(tiny_llama_state)
        model.generation_config.pad_token_id = tiny_llama_config.pad_token_id
        return model.eval()

    return make


@pytest.fixture(scope="session")
def fake_task():
    return FakeTask()


@pytest.fixture(scope="session")
def fake_examples():
    """Examples of clearly different prompt and answer lengths."""
    return [
        Example("a", "What is 2 plus 3?", "5"),
        Example("b", "Tom has 12 apples and gives away 4 of them to his friends. How many are left now?",
                "He has 12 - 4 = 8 left. 8"),
        Example("c", "Hi?", "yes"),
        Example("d", "A train travels 60 km in one hour; at the same speed, how far does it go in three "
                     "hours, and how far in four and a half hours?", "180 km and 270 km, so 270"),
        Example("e", "Name a colour.", "blue"),
    ]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, make_tiny_llama, smol_tokenizer):
    """The tiny LLaMA and the SmolLM2 tokenizer saved as a model folder, for commands that take
    ``--model DIR`` (one per test module; a module may override it, as test_distributed_launch does)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_llama().save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder
