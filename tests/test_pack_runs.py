"""benchmarks/pack_runs.py: study folders packed in parts under a size limit, and back."""
from __future__ import annotations

import importlib.util
import io
import os
import tarfile
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "pack_runs", Path(__file__).resolve().parents[1] / "benchmarks" / "pack_runs.py")
pack_runs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(pack_runs)


def _study(root: Path) -> dict[str, bytes]:
    """A small study folder; returns the files that must come back, by archive name."""
    kept = {}
    for seed in range(3):
        run = root / "star" / f"seed-{seed}"
        for round_index in range(2):
            folder = run / f"round-{round_index}"
            (folder / "adapter").mkdir(parents=True)
            (folder / "adapter" / "adapter_model.safetensors").write_bytes(os.urandom(20_000))
            (folder / "adapter" / "adapter_config.json").write_text("{}")
            # incompressible, so the archive needs several small parts
            data = os.urandom(6_000)
            (folder / "pool_scores.json").write_bytes(data)
            kept[f"{root.name}/star/seed-{seed}/round-{round_index}/pool_scores.json"] = data
        (run / "metrics.jsonl").write_text(f'{{"seed": {seed}}}\n')
        kept[f"{root.name}/star/seed-{seed}/metrics.jsonl"] = f'{{"seed": {seed}}}\n'.encode()
    return kept


def _unpack(parts: list[Path]) -> dict[str, bytes]:
    data = b"".join(p.read_bytes() for p in sorted(parts))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def test_parts_respect_the_limit_and_give_back_every_result_file(tmp_path):
    kept = _study(tmp_path / "dev-random")
    (tmp_path / "out").mkdir()
    part_mib = 10_000 / 2**20
    status = pack_runs.main([str(tmp_path / "out" / "mix"), str(tmp_path / "dev-random"),
                             "--part-mib", str(part_mib), "--max-parts", "20"])
    assert status == 0
    parts = sorted((tmp_path / "out").iterdir())
    assert len(parts) > 1
    assert all(p.stat().st_size <= 10_000 for p in parts)
    assert _unpack(parts) == kept  # adapters left out, everything else byte for byte


def test_too_many_parts_leave_nothing_behind(tmp_path, capsys):
    _study(tmp_path / "study")
    (tmp_path / "out").mkdir()
    status = pack_runs.main([str(tmp_path / "out" / "mix"), str(tmp_path / "study"),
                             "--part-mib", str(10_000 / 2**20), "--max-parts", "2"])
    assert status == 2
    assert list((tmp_path / "out").iterdir()) == []
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and "more than 2 parts" in message


def test_an_oversized_file_is_named_and_left_out(tmp_path, capsys):
    kept = _study(tmp_path / "study")
    (tmp_path / "study" / "big.log").write_bytes(b"x" * 3_000_000)
    (tmp_path / "out").mkdir()
    assert pack_runs.main([str(tmp_path / "out" / "p"), str(tmp_path / "study"), "--max-file-mib", "2"]) == 0
    assert "big.log" in capsys.readouterr().err
    assert _unpack(list((tmp_path / "out").iterdir())) == kept


@pytest.mark.parametrize("missing", ["root", "destination"])
def test_a_missing_folder_is_one_line_and_status_2(tmp_path, capsys, missing):
    (tmp_path / "study").mkdir()
    root = tmp_path / ("absent" if missing == "root" else "study")
    prefix = tmp_path / ("nowhere" if missing == "destination" else "") / "p"
    assert pack_runs.main([str(prefix), str(root)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_suffixes_keep_only_the_results(tmp_path):
    kept = _study(tmp_path / "study")
    (tmp_path / "study" / "curves.png").write_bytes(b"\x89PNG")
    (tmp_path / "out").mkdir()
    assert pack_runs.main([str(tmp_path / "out" / "p"), str(tmp_path / "study"), "--suffixes", ".jsonl"]) == 0
    assert _unpack(list((tmp_path / "out").iterdir())) == {k: v for k, v in kept.items() if k.endswith(".jsonl")}
