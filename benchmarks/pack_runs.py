"""Pack study folders into gzipped tar parts small enough to come back from a lent machine.

A lent GPU machine returns at most 8 files of 16 MiB each from ``$OUT`` (the device tool's
limits), so a study run there must be packed inside the same command that ran it: once the
command returns, the machine may be gone. What makes a run folder large is its adapters
(about 20 MB a round for mix at r = 16); the tables, ``skill_table.py`` and ``star_terms.py``
read only the JSON files beside them, so adapters and any ``*.safetensors`` are left out.
Without them a run can no longer be resumed or extended; its results are all there.

    python3 benchmarks/pack_runs.py $OUT/mix /tmp/runs/dev-random /tmp/runs/test  # -> $OUT/mix.tgz.part-00, ...
    cat mix.tgz.part-* | tar -xz                                                   # here: the folders again

Each root is stored under its own name (``dev-random/...``). Files larger than
``--max-file-mib`` are left out and named on stderr; ``--suffixes .json .jsonl`` keeps only
the results (no logs or plots), should a whole study not fit. If the packed files need more than
``--max-parts`` parts, nothing is left behind and the command exits with status 2.
"""
from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

LEFT_OUT_SUFFIXES = (".safetensors",)
LEFT_OUT_FOLDERS = ("adapter",)


class PackTooLarge(Exception):
    """The archive needs more parts than allowed."""


class SplitWriter(io.RawIOBase):
    """A write-only stream that fills ``PREFIX.part-00``, ``-01``, ... up to ``part_bytes`` each."""

    def __init__(self, prefix: Path, part_bytes: int, max_parts: int):
        self.prefix, self.part_bytes, self.max_parts = prefix, part_bytes, max_parts
        self.paths: list[Path] = []
        self._file = None
        self._room = 0

    def writable(self) -> bool:
        return True

    def _next_part(self) -> None:
        if self._file is not None:
            self._file.close()
        if len(self.paths) == self.max_parts:
            raise PackTooLarge(f"the packed folders need more than {self.max_parts} parts "
                               f"of {self.part_bytes / 2**20:g} MiB")
        path = Path(f"{self.prefix}.tgz.part-{len(self.paths):02d}")
        self.paths.append(path)
        self._file = open(path, "wb")
        self._room = self.part_bytes

    def write(self, data) -> int:
        view = memoryview(data)
        while view:
            if self._room == 0:
                self._next_part()
            chunk = view[: self._room]
            self._file.write(chunk)
            self._room -= len(chunk)
            view = view[len(chunk):]
        return len(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def files_to_pack(root: Path, max_file_bytes: int,
                  suffixes: tuple[str, ...] | None = None) -> tuple[list[Path], list[Path]]:
    """The files under ``root`` to pack (only those ending in ``suffixes`` if given), and
    those left out for their size (sorted)."""
    packed, too_large = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if path.suffix in LEFT_OUT_SUFFIXES or any(part in LEFT_OUT_FOLDERS for part in relative.parts[:-1]):
            continue
        if suffixes is not None and path.suffix not in suffixes:
            continue
        (too_large if path.stat().st_size > max_file_bytes else packed).append(path)
    return packed, too_large


def pack(prefix: Path, roots: list[Path], part_mib: float = 15, max_parts: int = 8,
         max_file_mib: float = 8, suffixes: tuple[str, ...] | None = None) -> tuple[list[Path], list[Path]]:
    """Write the parts; return them and the files left out for their size."""
    writer = SplitWriter(prefix, int(part_mib * 2**20), max_parts)
    left_out: list[Path] = []
    try:
        with tarfile.open(fileobj=writer, mode="w|gz") as archive:
            for root in roots:
                packed, too_large = files_to_pack(root, int(max_file_mib * 2**20), suffixes)
                left_out += too_large
                for path in packed:
                    archive.add(path, arcname=str(Path(root.name) / path.relative_to(root)))
        writer.close()
    except BaseException:
        writer.close()
        for path in writer.paths:
            path.unlink(missing_ok=True)
        raise
    return writer.paths, left_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", type=Path, help="parts are PREFIX.tgz.part-00, -01, ...")
    parser.add_argument("roots", type=Path, nargs="+", help="run or study folders to pack")
    parser.add_argument("--part-mib", type=float, default=15)
    parser.add_argument("--max-parts", type=int, default=8)
    parser.add_argument("--max-file-mib", type=float, default=8)
    parser.add_argument("--suffixes", nargs="+", metavar="SUFFIX",
                        help="pack only files ending so (e.g. .json .jsonl: the results without logs or plots)")
    args = parser.parse_args(argv)
    for root in args.roots:
        if not root.is_dir():
            print(f"pack_runs: {root}: not a folder", file=sys.stderr)
            return 2
    if not args.prefix.parent.is_dir():
        print(f"pack_runs: {args.prefix.parent}: no such folder for the parts", file=sys.stderr)
        return 2
    try:
        parts, left_out = pack(args.prefix, args.roots, args.part_mib, args.max_parts, args.max_file_mib,
                               tuple(args.suffixes) if args.suffixes else None)
    except PackTooLarge as exc:
        print(f"pack_runs: {exc}; nothing written (pack fewer folders per prefix)", file=sys.stderr)
        return 2
    for path in left_out:
        print(f"pack_runs: left out {path} ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    total = sum(p.stat().st_size for p in parts)
    print(f"{len(parts)} part(s), {total / 2**20:.1f} MiB: {' '.join(p.name for p in parts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
