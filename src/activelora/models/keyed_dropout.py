"""Dropout masks that are a function of the example, not of the batch it sits in.

Monte-Carlo dropout draws K masks per example. Drawn from one random stream for a whole
batch, an example's masks depend on which examples were scored before it and beside it:
on the batch size, the chunking, and on how many processes share the pool. Here each mask
entry is a hash of where it is. For row ``b`` (one example in one pass), LoRA module
``m``, token position ``t`` and input feature ``j`` of width ``d``, with ``i = t*d + j``::

    s_bm = high 32 bits of SplitMix64(key_b + phi64 * (m + 1))        (per row and module)
    h    = fmix32((floor(i / 2) * phi32) XOR s_bm)                     (one hash, two entries)
    v    = 16-bit half (i mod 2) of h,   keep = 1{ v >= round(p * 2^16) },   mask = keep / (1 - p)

``key_b`` comes from the example id, the seed and the pass
(:func:`activelora.multiprocess.distributed.example_seed`); ``phi`` are the golden-ratio constants;
SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) and MurmurHash3's ``fmix32`` finaliser are
bijective mixers. So P(drop) = round(p * 2^16) / 2^16 (p to 1.5e-5), and a mask entry depends
only on (key, module, position, feature): the same on a CPU and a GPU (integer arithmetic),
alone or in any batch, as long as the row's tokens keep their positions (right padding, as
in the scorer's teacher-forced pass). Two rows' streams coincide in part only when their
salts differ by a multiple of phi32 within L*d/2 counters: probability about L*d / 2^33 per
pair of rows. The cost is about that of ``torch.nn.functional.dropout`` (int32 hashing,
two mask entries per hash; measured in benchmarks/bench_distributed.py).

:func:`keyed_dropout` swaps the LoRA A-input dropout modules for :class:`KeyedDropout`
for the duration of a ``with`` block; the caller sets each forward's row keys on the
returned :class:`RowKeys`.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from .lora import ADAPTER, lora_layers

_MASK64 = (1 << 64) - 1
_PHI64 = 0x9E3779B97F4A7C15
_PHI32 = 0x9E3779B9
_SPLITMIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
_FMIX32 = (0x85EBCA6B, 0xC2B2AE35)


def _signed(value: int, bits: int = 64) -> int:
    """An unsigned constant as torch's int64/int32 holds it (two's complement)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _shift_right(x: torch.Tensor, shift: int, bits: int) -> torch.Tensor:
    """Logical right shift (torch's ``>>`` is arithmetic: it copies the sign bit)."""
    return (x >> shift) & ((1 << (bits - shift)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 tensors (multiplication wraps modulo 2^64)."""
    x = x ^ _shift_right(x, 30, 64)
    x = x * _signed(_SPLITMIX[0])
    x = x ^ _shift_right(x, 27, 64)
    x = x * _signed(_SPLITMIX[1])
    return x ^ _shift_right(x, 31, 64)


def fmix32(x: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 32-bit finaliser on int32 tensors (multiplication wraps modulo 2^32)."""
    x = x ^ _shift_right(x, 16, 32)
    x = x * _signed(_FMIX32[0], 32)
    x = x ^ _shift_right(x, 13, 32)
    x = x * _signed(_FMIX32[1], 32)
    return x ^ _shift_right(x, 16, 32)


def row_salts(row_keys: torch.Tensor, module_index: int) -> torch.Tensor:
    """(R,) int32 salts s_bm from (R,) int64 row keys and the module's index."""
    mixed = splitmix64(row_keys + _signed(_PHI64 * (module_index + 1)))
    high = _shift_right(mixed, 32, 64)  # in [0, 2^32)
    return torch.where(high >= 1 << 31, high - (1 << 32), high).to(torch.int32)


_COUNTERS: dict[tuple[int, str], torch.Tensor] = {}  # (pairs, device) -> floor(i/2) * phi32


def _counters(pairs: int, device: torch.device) -> torch.Tensor:
    key = (pairs, str(device))
    if key not in _COUNTERS:
        if len(_COUNTERS) > 64:  # a few sequence lengths recur; do not grow without bound
            _COUNTERS.clear()
        _COUNTERS[key] = torch.arange(pairs, dtype=torch.int32, device=device) * _signed(_PHI32, 32)
    return _COUNTERS[key]


def keep_mask(row_keys: torch.Tensor, module_index: int, length: int, width: int, p: float) -> torch.Tensor:
    """(R, length, width) bool: which inputs dropout keeps (see the module docstring)."""
    salts = row_salts(row_keys, module_index)
    n = length * width
    h = fmix32(_counters((n + 1) // 2, row_keys.device)[None, :] ^ salts[:, None])  # (R, ceil(n/2))
    threshold = int(round(p * (1 << 16)))
    # Compare each 16-bit half as it is cut out; interleave the bools (entry i: half i mod 2).
    keep = torch.stack(((h & 0xFFFF) >= threshold, _shift_right(h, 16, 32) >= threshold), dim=-1)
    return keep.view(h.shape[0], -1)[:, :n].reshape(-1, length, width)


def pass_keys(example_keys: torch.Tensor, passes: range) -> torch.Tensor:
    """(len(passes) * B,) int64 row keys for B examples repeated pass-major, the layout of
    ``input_ids.repeat(g, 1)``: row ``q * B + b`` is example ``b`` in pass ``passes[q]``."""
    return torch.cat([splitmix64(example_keys + _signed(_PHI64 * (k + 1))) for k in passes])


class RowKeys:
    """The (R,) int64 keys of the rows of the next forward pass, one per batch row."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None

    def set(self, keys: Sequence[int] | torch.Tensor, device: torch.device | str = "cpu") -> None:
        self.keys = torch.as_tensor([_signed(int(k)) for k in keys] if not torch.is_tensor(keys) else keys,
                                    dtype=torch.int64).to(device)


class KeyedDropout(nn.Module):
    """Inverted dropout whose mask comes from :func:`keep_mask` (see the module docstring)."""

    def __init__(self, p: float, module_index: int, row_keys: RowKeys):
        super().__init__()
        self.p = p
        self.module_index = module_index
        self.row_keys = row_keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keys = self.row_keys.keys
        if keys is None or x.dim() != 3 or keys.shape[0] != x.shape[0]:
            raise RuntimeError("KeyedDropout: set one row key per batch row before the forward pass "
                               f"(input {tuple(x.shape)}, keys {None if keys is None else tuple(keys.shape)})")
        keep = keep_mask(keys.to(x.device), self.module_index, x.shape[1], x.shape[2], self.p)
        # Scale, then zero in place: no float mask is built (and none kept for a backward).
        return (x * (1.0 / (1.0 - self.p))).masked_fill_(~keep, 0.0)

    def extra_repr(self) -> str:
        return f"p={self.p}, module_index={self.module_index}"


@contextlib.contextmanager
def keyed_dropout(model) -> Iterator[RowKeys]:
    """Inside: every LoRA A-input ``nn.Dropout`` is a :class:`KeyedDropout` with the same
    rate and train/eval flag; on exit the original modules are back in place."""
    row_keys = RowKeys()
    swapped: list[tuple[nn.ModuleDict, nn.Module]] = []
    try:
        for index, layer in enumerate(lora_layers(model)):
            holder = layer.lora_dropout
            original = holder[ADAPTER] if ADAPTER in holder else None
            if isinstance(original, nn.Dropout):
                keyed = KeyedDropout(original.p, index, row_keys)
                keyed.train(original.training)
                holder[ADAPTER] = keyed
                swapped.append((holder, original))
        yield row_keys
    finally:
        for holder, original in swapped:
            holder[ADAPTER] = original
