"""The float64 sum and absolute sum of every tensor in a safetensors model folder, as JSON.

    tensor_sums.py FOLDER OUT.json [--compare THEIRS.json]

With --compare: exit 1 and name the tensors whose sums differ from THEIRS (a conversion check
between two machines: the same GGUF de-quantised on each must give the same float32 weights).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def tensor_sums(folder: Path) -> dict[str, list[float]]:
    sums = {}
    for path in sorted(folder.glob("*.safetensors")):
        for name, tensor in load_file(str(path)).items():
            wide = tensor.to(torch.float64)
            sums[name] = [wide.sum().item(), wide.abs().sum().item()]
    return sums


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    ours = tensor_sums(args.folder)
    args.out.write_text(json.dumps(ours, indent=0, sort_keys=True))
    if args.compare is None:
        print(f"{len(ours)} tensors")
        return 0
    theirs = json.loads(args.compare.read_text())
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    print(f"{len(ours)} tensors, {len(differ)} differ from {args.compare}" + (f": {differ[:5]}" if differ else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
