"""answer_confidence: p(final answer tokens | prompt, own worked solution), its ECE, and where
it is recorded (evaluate, probe, each round's metrics)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from activelora.cli import main
from activelora.data.example import Example
from activelora.data.tasks import get_task
from activelora.models.evaluation import evaluate
from activelora.models.generation import Generation
from activelora.models.text import encode_prompt
from activelora.probes.answer_confidence import (
    answer_calibration,
    answer_confidence,
    answer_confidences,
    answer_span,
    token_positions,
)
from activelora.probes.calibration import ece

ARITH = get_task("arith")


@pytest.mark.parametrize("text, extracted, expected", [
    ("3 + 4 = 7. The final answer is 7.", "7", "7"),
    ("12 * 3 = 36. 36 - 6 = 30. The final answer is 30.", "30", "30"),
    ("It costs $1,250 in all. The final answer is $1,250.", "1250", "$1,250"),
    ("5 / 2 = 2.5. The final answer is 2.5", "2.5", "2.5"),
])
def test_answer_span_finds_the_last_spelling_of_the_answer(text, extracted, expected):
    span = answer_span(text, extracted, ARITH)
    assert text[span[0]:span[1]] == expected
    assert span[1] > text.rindex("answer")  # the final one, not an earlier equal number


def test_answer_span_none_when_absent():
    assert answer_span("no number here", "7", ARITH) is None
    assert answer_span("anything", None, ARITH) is None


def test_token_positions_cover_exactly_the_answer(smol_tokenizer):
    answer = " 12 * 3 = 36. The final answer is 36."
    ids = smol_tokenizer(answer, add_special_tokens=False)["input_ids"] + [smol_tokenizer.eos_token_id]
    text = smol_tokenizer.decode(ids, skip_special_tokens=True).strip()
    span = answer_span(text, "36", ARITH)
    positions = token_positions(smol_tokenizer, ids, text, span)
    assert smol_tokenizer.decode([ids[k] for k in positions]).strip() == "36"
    assert positions[-1] == len(ids) - 3  # then "." and EOS


def test_confidence_is_the_product_of_the_answer_token_probabilities(smol_tokenizer):
    answer = " 3 + 4 = 7. The final answer is 7."
    ids = smol_tokenizer(answer, add_special_tokens=False)["input_ids"]
    rng = np.random.default_rng(0)
    logprobs = list(np.log(rng.uniform(0.05, 1.0, len(ids))))
    gen = Generation(text=answer.strip(), token_ids=ids, token_logprobs=logprobs)
    positions = token_positions(smol_tokenizer, ids, gen.text, answer_span(gen.text, "7", ARITH))
    expected = float(np.prod(np.exp(np.array(logprobs, dtype=np.float64)[positions])))
    assert answer_confidence(smol_tokenizer, ARITH, gen, "7") == pytest.approx(expected, rel=1e-12)
    assert answer_confidence(smol_tokenizer, ARITH, gen, None) == 0.0  # no final answer: it claims none
    assert answer_confidence(smol_tokenizer, ARITH, gen, "8") is None  # cannot be located


def test_against_float64_teacher_forcing_on_the_tiny_model(make_tiny_llama, smol_tokenizer, fake_task,
                                                           fake_examples):
    fake_task = type("GoldFakeTask", (type(fake_task),), {"gold": lambda self, ex: ex.answer.strip()})()
    torch.manual_seed(0)
    model = make_tiny_llama()
    result = evaluate(model, smol_tokenizer, fake_task, fake_examples, batch_size=2, max_new_tokens=6,
                      progress=False)
    got = answer_confidences(smol_tokenizer, fake_task, result)
    reference_model = make_tiny_llama().double()
    checked = 0
    for ex, gen, pred, conf in zip(fake_examples, result.generations, result.predictions, got):
        if pred.extracted is None:
            assert conf == 0.0
            continue
        span = answer_span(gen.text, pred.extracted, fake_task)
        assert gen.text[span[0]:span[1]].strip() and conf is not None
        positions = token_positions(smol_tokenizer, gen.token_ids, gen.text, span)
        prompt = encode_prompt(smol_tokenizer, fake_task.prompt(ex))
        ids = torch.tensor([prompt + list(gen.token_ids)])
        with torch.no_grad():
            logp = torch.log_softmax(reference_model(input_ids=ids).logits[0].double(), -1)  # (L, V) float64
        reference = math.exp(sum(float(logp[len(prompt) - 1 + k, gen.token_ids[k]]) for k in positions))
        assert conf == pytest.approx(reference, rel=1e-4, abs=1e-12)
        checked += 1
    assert checked >= 3


def test_a_result_without_generations_gives_nulls():
    from activelora.models.evaluation import EvalResult, Prediction

    pred = Prediction("a", "The final answer is 4.", "4", "4", True, 0.1, 0.5, 6)
    result = EvalResult(accuracy=1.0, n=1, predictions=[pred], generations=[])
    assert answer_confidences(None, ARITH, result) == [None]
    assert answer_calibration([None], [True])["answer_confidence_n"] == 0


def test_answer_calibration_against_ece_of_the_defined_ones():
    conf = [0.9, None, 0.2, 0.6, 0.0]
    correct = [True, False, False, True, False]
    got = answer_calibration(conf, correct)
    assert got["answer_confidence_n"] == 4
    assert got["ece_answer"] == pytest.approx(ece([0.9, 0.2, 0.6, 0.0], [True, False, True, False]))
    assert got["mean_answer_confidence"] == pytest.approx(1.7 / 4)
    assert answer_calibration([None], [True])["ece_answer"] is None


# ----------------------------------------------------------------------------- where it is recorded


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def test_evaluate_probe_and_run_record_it(tmp_path, tiny_model_dir):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"question": f"Say {w}.", "answer": w}) + "\n"
                            for w in ["yes", "no", "red", "blue"]))
    common = ["--data", str(data), "--task", "plain", "--model", str(tiny_model_dir)]
    assert main(["evaluate", *common, "--max-new-tokens", "4", "--out", str(tmp_path / "e")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "e" / "predictions.jsonl").read_text().splitlines()]
    assert all("answer_confidence" in r for r in rows)
    assert all(r["answer_confidence"] is None or 0.0 <= r["answer_confidence"] <= 1.0 for r in rows)
    assert "ece_answer" in json.loads((tmp_path / "e" / "metrics.json").read_text())

    assert main(["probe", *common, "--set", "score.max_new_tokens=4", "--set", "eval.max_new_tokens=4",
                 "--out", str(tmp_path / "p")]) == 0
    probe = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert {"ece", "ece_answer", "mean_answer_confidence", "answer_confidence_n"} <= set(probe)
    rows = [json.loads(line) for line in (tmp_path / "p" / "predictions.jsonl").read_text().splitlines()]
    assert all("answer_confidence" in r for r in rows)

    out = tmp_path / "run"
    assert main(["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", "--strategy", "random",
                 "--rounds", "0", "--set", "loop.pool_limit=8", "--set", "loop.test_limit=4",
                 "--set", "loop.probe_size=0", "--set", "loop.initial=4", "--set", "train.epochs=1",
                 "--set", "eval.max_new_tokens=4", "--set", "lora.r=2",
                 "--set", "lora.target_modules=[q_proj,v_proj]"]) == 0
    row = json.loads((out / "random" / "seed-0" / "metrics.jsonl").read_text().splitlines()[0])
    assert "ece_answer" in row and "ece" in row
    preds = [json.loads(line) for line in
             (out / "random" / "seed-0" / "round-0" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 4 and all("answer_confidence" in p for p in preds)


def test_unlabelled_example_is_not_needed():
    # answer_span only needs the task's extract; no gold answer is read.
    assert answer_span("The final answer is 4.", "4", ARITH) is not None
    assert Example("x", "q", None).answer is None


@pytest.mark.slow
def test_embedded_model_arith_answers_against_float64():
    """Real arith answers of SmolLM2-135M: the span is the final number, and the confidence
    is the float64 teacher-forced probability of its tokens."""
    from activelora.data.arith import generate_arith
    from activelora.models.loading import load_model

    model, tok = load_model("smollm2-135m", dtype="float32")  # compared with float64 at rel 2e-3
    examples = generate_arith("test", 4)
    result = evaluate(model, tok, ARITH, examples, batch_size=4, progress=False)
    got = answer_confidences(tok, ARITH, result)
    model = model.double()
    checked = 0
    for ex, gen, pred, conf in zip(examples, result.generations, result.predictions, got):
        if pred.extracted is None:
            assert conf == 0.0
            continue
        span = answer_span(gen.text, pred.extracted, ARITH)
        assert ARITH.extract(gen.text[span[0]:span[1]]) == pred.extracted
        positions = token_positions(tok, gen.token_ids, gen.text, span)
        prompt = encode_prompt(tok, ARITH.prompt(ex))
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([prompt + list(gen.token_ids)])).logits[0], -1)
        reference = math.exp(sum(float(logp[len(prompt) - 1 + k, gen.token_ids[k]]) for k in positions))
        assert conf == pytest.approx(reference, rel=2e-3, abs=1e-9)
        checked += 1
    assert checked >= 2
