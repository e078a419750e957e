"""A round's prompt embeddings, kept beside its ``pool_scores.json`` as safetensors.

Strategies over embeddings (the strata and diversity steps, typiclust, probcover,
cluster-weighted, adaptive) read an (N, d) matrix of the unlabelled pool each round, and the
set rules a second one of the labelled examples. Written into the JSON as text, mix's pool of
1000 prompts at d = 576 took 11-13 MiB per round and most of the time spent reading it back.
Here the matrices go to ``round-<r>/pool_embeddings.safetensors`` as float64 (lossless for the
Python floats the scorer hands over, about 4.6 MB for that pool), and the JSON names the file
under ``embeddings_file``. A folder written before this keeps its matrices inside the JSON and
is read as it is, so runs resume across the change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from ..atomic_files import atomic_write_bytes
from ..errors import RunStateError

EMBEDDINGS_FILE = "pool_embeddings.safetensors"
MATRIX_KEYS = ("embeddings", "labelled_embeddings")


def move_embeddings_out(round_dir: Path, scores: Mapping[str, Any]) -> dict[str, Any]:
    """``scores`` without its embedding matrices, which are written to
    ``round_dir/EMBEDDINGS_FILE`` first (so a crash before the JSON is written leaves the
    round unscored, never a JSON that names a missing file). Unchanged when it has none."""
    matrices = {key: np.asarray(scores[key], dtype=np.float64) for key in MATRIX_KEYS if key in scores}
    if not matrices:
        return dict(scores)
    atomic_write_bytes(Path(round_dir) / EMBEDDINGS_FILE, save_tensors(matrices))
    kept = {key: value for key, value in scores.items() if key not in matrices}
    kept["embeddings_file"] = EMBEDDINGS_FILE
    return kept


def saved_embeddings(round_dir: Path, saved: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The embedding matrices of a saved round as float64 arrays: from the file its JSON names,
    or from the JSON itself in a folder written before the file existed."""
    if "embeddings_file" in saved:
        path = Path(round_dir) / str(saved["embeddings_file"])
        try:
            return dict(load_tensors(path.read_bytes()))
        except (OSError, SafetensorError) as exc:
            raise RunStateError(f"{path}: cannot read the round's embeddings ({exc}); "
                                "use --restart to start this run over") from None
    return {key: np.asarray(saved[key], dtype=np.float64) for key in MATRIX_KEYS if key in saved}
