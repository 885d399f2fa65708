"""Valid rows of a padded layout packed into a fixed capacity, and back, without a host read.

Hi-TRS runs F-TRS only on frames some task reads and C-TRS only on real clips. Selecting them
with ``nonzero`` makes the host wait for the device and gives every batch its own shape. Here
the host chooses a capacity from the batch's lengths (known before the batch reaches the
device; augmentation only shortens), rounded up to a few sizes (``bucket``), and the device
fills it: slot ``i`` holds the ``i``-th valid row (``searchsorted`` on the running count), slots
past the count repeat a real row and are flagged ``ok = False``. ``unpack`` is a gather from
the packed rows plus one zero row, so both directions are differentiable gathers.

``capacity=None`` packs exactly the valid rows (``nonzero``: a sync, a data-dependent shape):
the variable-shape path the static one is tested against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: significant bits kept by ``bucket``: sizes m * 2**e with m in [8, 16): at most 1/8 padding
BUCKET_BITS = 4


def bucket(n: int, bits: int = BUCKET_BITS) -> int:
    """``n`` rounded up to the next number with ``bits`` significant bits (a geometric ladder:
    a batch-to-batch spread of a few percent lands on a handful of sizes)."""
    n = max(int(n), 1)
    shift = max(n.bit_length() - bits, 0)
    return ((n + (1 << shift) - 1) >> shift) << shift


@dataclass
class Packing:
    index: torch.Tensor          # (N,) flat position in the padded layout of each packed row
    ok: torch.Tensor | None      # (N,) bool: slot holds a real row (None: all do)
    slot: torch.Tensor           # (numel,) packed slot of each flat position; N = "no row" (zeros)
    shape: tuple[int, ...]       # the padded layout's leading shape

    @property
    def rows(self) -> int:
        return self.index.shape[0]

    def gather(self, table: torch.Tensor) -> torch.Tensor:
        """Rows of ``table`` (leading dims = ``shape``) at the packed positions."""
        return table.reshape(math.prod(self.shape), *table.shape[len(self.shape):])[self.index]

    def keep(self, flags: torch.Tensor) -> torch.Tensor:
        """``flags`` (layout-shaped bool) at the packed positions, False on padding slots."""
        picked = self.gather(flags)
        return picked if self.ok is None else picked & self.ok.view(-1, *([1] * (picked.dim() - 1)))

    def unpack(self, rows: torch.Tensor) -> torch.Tensor:
        """Packed ``rows`` (N, ...) -> the padded layout (``shape`` + ...), zeros where invalid."""
        padded = torch.cat([rows, rows.new_zeros(1, *rows.shape[1:])])
        return padded[self.slot].view(*self.shape, *rows.shape[1:])


def pack(valid: torch.Tensor, capacity: int | None = None) -> Packing:
    """Pack the True positions of ``valid`` (any shape) into ``capacity`` slots (None: exactly)."""
    flat = valid.reshape(-1)
    running = flat.long().cumsum(0)
    if capacity is None:
        index, ok = flat.nonzero().squeeze(1), None
    else:
        wanted = torch.arange(1, capacity + 1, device=flat.device)
        index = torch.searchsorted(running, wanted).clamp(max=max(flat.numel() - 1, 0))
        ok = wanted <= running[-1]
        if valid.device.type == "cpu" and not torch.compiler.is_compiling() and int(running[-1]) > capacity:
            raise ValueError(f"packing capacity {capacity} is below the {int(running[-1])} valid rows: the "
                             "host's capacity estimate must bound the batch (augmentation may only shorten)")
    slots = index.shape[0]
    slot = torch.where(flat, (running - 1).clamp(max=slots), slots)
    return Packing(index, ok, slot, tuple(valid.shape))
