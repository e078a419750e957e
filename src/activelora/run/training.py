"""LoRA training with STAR's hybrid regularisation (Zhang et al. 2024, Sec. 3.3).

The two parts, each switchable for ablations:

* dropout on the input of the A matrices (rate set per run), drawn by
  :func:`activelora.models.lora.lora_input_dropout` for the duration of training;
* L2 on the B matrices, either as decoupled weight decay on a parameter group that holds
  only the B matrices (the authors' code: 0.5 on B, 0 on A), or as an explicit penalty
  ``coef * sum_l ||B_l||_F^2`` added to the loss.

The loss is the mean token cross-entropy over target tokens only (:func:`target_token_loss`:
the decoder runs on every position, the LM head only on the target ones). AdamW with a linear
schedule sized from the number of optimiser steps actually run (the authors sized it from
the test set), gradient clipping, gradient accumulation over groups of micro-batches, ``accelerate`` for
device placement and bf16. With ``train.group_by_length`` the shuffled examples are batched
with neighbours of similar length (:func:`_group_by_length`), so less of each batch is padding.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data.example import Example
from ..multiprocess.data_parallel import MicroBatchShards
from ..models.heads import backbone_and_head
from ..models.lora import lora_a_parameters, lora_b_parameters, lora_input_dropout
from ..models.regularization import Regularization
from ..models.text import IGNORE_INDEX, TrainingFeature, build_feature, encode_prompt, encode_target, pad_right

# Length grouping sorts within windows of this many batches: on 96 `arith` examples in
# batches of 8, padding falls from 46% of the real tokens to 12% (8 batches: 8%, the whole
# epoch: 4%), while a batch still draws its rows from 32 random examples.
GROUP_WINDOW_BATCHES = 4


@dataclass
class TrainResult:
    steps: int
    examples: int
    losses: list[float] = field(default_factory=list)  # one per optimiser step

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


def build_features(tokenizer, task, examples: Sequence[Example], max_length: int,
                   chat_template: bool = False) -> list[TrainingFeature]:
    return [
        build_feature(encode_prompt(tokenizer, task.prompt(ex), chat_template),
                      encode_target(tokenizer, task.target(ex)), max_length)
        for ex in examples
    ]


def b_l2_penalty(model) -> torch.Tensor:
    """sum_l ||B_l||_F^2 over every LoRA B matrix."""
    return sum((p.float() ** 2).sum() for p in lora_b_parameters(model))


def make_optimizer(model, train: TrainConfig, reg: Regularization) -> torch.optim.AdamW:
    """AdamW with B in its own group, so weight decay can touch B only."""
    a_params = [p for p in lora_a_parameters(model) if p.requires_grad]
    b_params = [p for p in lora_b_parameters(model) if p.requires_grad]
    lora_ids = {id(p) for p in a_params + b_params}
    other = [p for p in model.parameters() if p.requires_grad and id(p) not in lora_ids]
    b_decay = reg.b_weight_decay if reg.b_l2_mode == "decay" else train.weight_decay
    groups = [
        {"params": a_params + other, "weight_decay": train.weight_decay},
        {"params": b_params, "weight_decay": b_decay},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=train.learning_rate)


def _batches(n: int, batch_size: int, epochs: float, seed: int,
             lengths: Sequence[int] | None = None) -> list[list[int]]:
    """Shuffled index batches for ``epochs`` passes (a fractional last epoch is cut short).

    With ``lengths``, each pass's shuffled order is regrouped by length
    (:func:`_group_by_length`); without, the batches are consecutive slices of it.
    """
    rng = random.Random(seed)
    per_epoch = math.ceil(n / batch_size)
    total = max(1, math.ceil(per_epoch * epochs))
    batches: list[list[int]] = []
    while len(batches) < total:
        order = list(range(n))
        rng.shuffle(order)
        if lengths is None:
            batches.extend(order[i:i + batch_size] for i in range(0, n, batch_size))
        else:
            batches.extend(_group_by_length(order, lengths, batch_size, rng))
    return batches[:total]


def _group_by_length(order: list[int], lengths: Sequence[int], batch_size: int,
                     rng: random.Random) -> list[list[int]]:
    """One pass's batches with less padding, still random.

    The shuffled ``order`` is cut into windows of ``GROUP_WINDOW_BATCHES * batch_size``
    examples; each window is sorted by length (longest first) and cut into batches; then the
    pass's batches are shuffled, so the step order carries no length trend. Every example
    appears exactly once, and there are as many batches as without grouping (only the
    last window can end in a short batch).
    """
    window = GROUP_WINDOW_BATCHES * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: -lengths[i])  # stable: ties stay shuffled
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(features: list[TrainingFeature], pad_id: int, device) -> dict[str, torch.Tensor]:
    ids, mask = pad_right([f.input_ids for f in features], pad_id)
    labels, _ = pad_right([f.labels for f in features], IGNORE_INDEX)
    return {
        "input_ids": torch.tensor(ids, device=device),
        "attention_mask": torch.tensor(mask, device=device),
        "labels": torch.tensor(labels, device=device),
    }


def target_token_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean token cross-entropy over the target tokens of a right-padded batch::

        loss = -(1/N) * sum_{(b,t): y[b,t+1] != IGNORE} log softmax(head(h[b,t]))[y[b,t+1]]

    the causal-LM loss of ``model(input_ids, labels=...)`` (transformers' ``ForCausalLMLoss``:
    logits at t predict the label at t+1, in float32, mean over non-ignored labels). The decoder
    runs on every position; only the N target positions go through the ``V``-wide LM head
    (:func:`activelora.models.heads.backbone_and_head`, soft cap included), where the full
    forward projects every prompt and padding position too.

    No attention mask is passed: with right padding the real tokens keep positions
    0..len-1 and, the model being causal, never attend to the pads after them, so their
    hidden states are those of the masked forward; the pads' own states reach no target.
    """
    backbone, project = backbone_and_head(model)
    hidden = backbone(input_ids=batch["input_ids"], use_cache=False).last_hidden_state  # (B, L, H)
    next_labels = batch["labels"][:, 1:]  # (B, L-1): the token position t predicts
    rows, cols = (next_labels != IGNORE_INDEX).nonzero(as_tuple=True)
    logits = project(hidden[rows, cols])  # (N, V)
    if logits.dtype in (torch.float16, torch.bfloat16):  # the loss in at least float32, as transformers'
        logits = logits.float()
    return F.cross_entropy(logits, next_labels[rows, cols])


def train_lora(
    model,
    tokenizer,
    task,
    examples: Sequence[Example],
    train: TrainConfig,
    reg: Regularization,
    *,
    chat_template: bool = False,
    progress: bool | str = True,
) -> TrainResult:
    """Train the attached LoRA adapter of ``model`` in place on ``examples``."""
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    if not examples:
        raise ValueError("train_lora: no examples to train on")
    torch.manual_seed(train.seed)
    features = build_features(tokenizer, task, examples, train.max_length, chat_template)
    lengths = [len(f.input_ids) for f in features] if train.group_by_length else None
    batches = _batches(len(features), train.batch_size, train.epochs, train.seed, lengths)
    # Accumulation is done by hand over explicit groups of micro-batches: the batches are a
    # plain list, not a prepared dataloader, so accelerate's ``accumulate`` would never see
    # the end of the data and would drop a last, partial group without an optimiser step.
    groups = [batches[i:i + train.grad_accum] for i in range(0, len(batches), train.grad_accum)]
    steps = len(groups)

    accelerator = Accelerator(
        mixed_precision="bf16" if train.bf16 else "no",
        cpu=not torch.cuda.is_available(),
        # One scheduler step per optimiser step. accelerate's default steps it once per
        # process, for a dataloader it shards; here every process runs every step.
        step_scheduler_with_optimizer=False,
    )
    if train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    optimizer = make_optimizer(model, train, reg)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=int(train.warmup_ratio * steps), num_training_steps=steps
    )
    with warnings.catch_warnings():
        # accelerate asks transformers a deprecated question; nothing the user can act on.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    # The loss gathers hidden states past the model's forward; a distributed wrapper must see
    # its forward called, so under one the full model computes the (same) loss.
    direct = accelerator.unwrap_model(model) is model
    # Under a launch each micro-batch is split across the processes (activelora.multiprocess.data_parallel).
    shards = MicroBatchShards(accelerator.process_index, accelerator.num_processes)
    result = TrainResult(steps=steps, examples=len(features))
    bar = tqdm(total=steps, desc=progress if isinstance(progress, str) else "train",
               unit="step", disable=not progress, leave=False)
    with lora_input_dropout(model, reg.a_dropout):
        model.train()
        for group in groups:
            step_loss = 0.0
            for batch_ids in group:
                if shards.active:  # this process's rows of the micro-batch, one process's maths
                    loss, shown = shards.loss(model, [features[j] for j in batch_ids], tokenizer.pad_token_id,
                                              accelerator.device)
                    shown = accelerator.reduce(shown, "sum")  # the whole micro-batch's loss, for the log
                else:
                    batch = _collate([features[j] for j in batch_ids], tokenizer.pad_token_id, accelerator.device)
                    if direct:
                        with accelerator.autocast():  # what the prepared model's forward applies for bf16
                            loss = target_token_loss(model, batch)
                    else:
                        loss = model(**batch).loss
                    shown = loss
                if reg.b_l2_mode == "penalty" and reg.b_l2_penalty > 0:
                    penalty = reg.b_l2_penalty * b_l2_penalty(model)
                    loss, shown = loss + penalty, shown + penalty
                # The mean over the group's micro-batches: gradients add up across backward calls.
                accelerator.backward(loss / len(group))
                step_loss += shown.item() / len(group)
            if train.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), train.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(step_loss)
            bar.set_postfix(loss=f"{step_loss:.3f}")
            bar.update(1)
        model.eval()
    bar.close()
    if train.gradient_checkpointing:
        model.gradient_checkpointing_disable()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    return result
