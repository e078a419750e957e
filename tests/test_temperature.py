"""Post-hoc logit temperature scaling: the scorer's T against a float64 reference, the fit
against a grid search, and the loop recording its effect on the ECE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from activelora.models.text import encode_prompt, encode_target
from activelora.probes.temperature import fit_logit_temperature, gold_nll
from activelora.uncertainty import score_pool


def reference_gold_nll(model, tokenizer, task, examples, temperature: float) -> float:
    """Full-logits forward per example, softmax(z / T) in float64."""
    total = 0.0
    with torch.no_grad():
        for ex in examples:
            prompt = encode_prompt(tokenizer, task.prompt(ex))
            answer = encode_target(tokenizer, task.target(ex))
            logits = model(input_ids=torch.tensor([prompt + answer])).logits[0].double()
            logp = torch.log_softmax(logits / temperature, dim=-1)
            for t, token in enumerate(answer):
                total -= float(logp[len(prompt) - 1 + t, token])
    return total


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7, 3.0])
def test_scorer_temperature_matches_reference(make_tiny_llama, smol_tokenizer, fake_task, fake_examples, temperature):
    model = make_tiny_llama()
    ours = gold_nll(model, smol_tokenizer, fake_task, fake_examples, temperature)
    assert ours == pytest.approx(reference_gold_nll(model, smol_tokenizer, fake_task, fake_examples, temperature),
                                 rel=1e-4)


def test_temperature_changes_entropy_ranking_inputs(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = make_tiny_llama()
    cold = score_pool(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", target="gold",
                      temperature=0.5, cache=False, progress=False)
    warm = score_pool(model, smol_tokenizer, fake_task, fake_examples, measure="entropy", target="gold",
                      temperature=2.0, cache=False, progress=False)
    assert all(w.score > c.score for w, c in zip(warm, cold))  # a flatter softmax has more entropy


def test_fit_finds_the_grid_minimum(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    model = make_tiny_llama()
    fitted = fit_logit_temperature(model, smol_tokenizer, fake_task, fake_examples, bounds=(0.25, 8.0))
    grid = np.exp(np.linspace(math.log(0.25), math.log(8.0), 41))
    losses = [reference_gold_nll(model, smol_tokenizer, fake_task, fake_examples, t) for t in grid]
    best = grid[int(np.argmin(losses))]
    step = math.log(grid[1]) - math.log(grid[0])
    assert abs(math.log(fitted) - math.log(best)) <= step
    fitted_loss = reference_gold_nll(model, smol_tokenizer, fake_task, fake_examples, fitted)
    # The search compares float32 losses (within 1e-4 relative of float64, see above).
    assert fitted_loss <= min(losses) * (1 + 1e-4)


def test_temperature_scaling_needs_a_probe_set():
    from activelora.config import build_config, parse_set
    from activelora.errors import ConfigError

    with pytest.raises(ConfigError, match="probe_size"):
        build_config(overrides=parse_set(["score.temperature_scaling=true", "loop.probe_size=0"]))
