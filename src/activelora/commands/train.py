"""Train a LoRA adapter (with STAR's hybrid regularisation unless it is switched off).

Writes DIR/adapter/ (safetensors + adapter_config.json), DIR/config.yaml and DIR/train.json.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from ..atomic_files import atomic_write_json, atomic_write_text
from . import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_data_args(parser)
    common.add_model_args(parser, adapter=False)
    parser.add_argument("--epochs", type=float, help="passes over the data (default 2)")
    parser.add_argument("--lr", type=float, help="learning rate (default 5e-4)")
    parser.add_argument("--batch-size", type=common.positive_int, help="examples per step (default 8)")
    parser.add_argument("--seed", type=int, help="seed for initialisation and shuffling")
    parser.add_argument("--plain", action="store_true",
                        help="plain LoRA: no A-input dropout, no L2 on B (default: hybrid regularisation)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    common.add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from ..models.lora import attach_lora, save_adapter
    from ..models.prompt_format import prompt_record
    from ..strategies.regime import decide_regime
    from ..run.training import train_lora

    common.setup_logging()
    config = common.config_from_args(args, {"train": {
        "epochs": args.epochs, "learning_rate": args.lr, "batch_size": args.batch_size, "seed": args.seed,
    }})
    out = common.output_dir(args.out)
    task, examples = common.load_split(config, args.split or config.data.train_split, args.limit or config.data.limit)
    model, tokenizer = common.load_model_and_adapter(config)
    model = attach_lora(model, config.lora, seed=config.train.seed)
    # The same decision the loop makes; recorded in train.json, where `score` and `probe`
    # read whether MC dropout may be sampled from this adapter.
    regime = decide_regime(config, plain=args.plain)
    reg = regime.regularization()
    started = time.time()
    result = train_lora(model, tokenizer, task, examples, config.train, reg,
                        chat_template=config.model.chat_template)
    seconds = time.time() - started

    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".adapter.", dir=out))
    save_adapter(model, staging)
    final = out / "adapter"
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    atomic_write_json(out / "train.json", {
        "examples": result.examples, "steps": result.steps, "final_loss": result.final_loss,
        "losses": result.losses, "seconds": round(seconds, 2), "regularization": regime.to_dict(),
        "prompt": prompt_record(config),
    })
    print(f"trained on {result.examples} examples, {result.steps} steps, final loss "
          f"{result.final_loss:.4f}, {seconds:.0f}s -> {final}")
    return 0
