"""Per-item randomness: one generator per image, so results do not depend on batching.

A batch of N images carries N ``torch.Generator`` objects, one per item, each
seeded from the item's recorded seed (:func:`item_seed`). Every random
draw of an attack (PGD's start, DI's resize and pad, EOT's channel samples) is
made row by row from the item's own generator, in the same order whatever the
other items of the batch are, so a resumed run that groups items differently
draws the same numbers for each item. Draws happen on the generator's device
(CPU generators by default) and are then moved to the input's device, so the
random numbers are the same on the CPU and on CUDA.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch


def item_seed(seed: int, item_id: str) -> int:
    """The per-item seed recorded in the manifest: a stable mix of the run seed and the item id."""
    return int(np.random.SeedSequence([seed, zlib.crc32(item_id.encode())]).generate_state(1)[0])


class ItemRng:
    """A list of generators, one per row of a batch."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)

    @classmethod
    def from_seeds(cls, seeds: Sequence[int]) -> ItemRng:
        """One CPU generator per seed."""
        return cls([torch.Generator().manual_seed(int(s)) for s in seeds])

    @classmethod
    def coerce(cls, generator: torch.Generator | Sequence[torch.Generator] | ItemRng | None, n: int) -> ItemRng:
        """Accept what an attack's caller hands over.

        ``None``: item ``i`` gets a CPU generator seeded ``i`` (deterministic, for tests);
        one generator: shared by every row, drawn from in row order;
        a sequence: one generator per row.
        """
        if isinstance(generator, ItemRng):
            rng = generator
        elif generator is None:
            rng = cls.from_seeds(range(n))
        elif isinstance(generator, torch.Generator):
            rng = cls([generator] * n)
        else:
            rng = cls(generator)
        if len(rng) != n:
            raise ValueError(f"got {len(rng)} generators for a batch of {n}")
        return rng

    def __len__(self) -> int:
        return len(self.generators)

    def __getitem__(self, idx: torch.Tensor | Sequence[int]) -> ItemRng:
        rows = idx.tolist() if isinstance(idx, torch.Tensor) else list(idx)
        return ItemRng([self.generators[i] for i in rows])

    def repeat_interleave(self, k: int) -> ItemRng:
        """Rows ``i*k .. i*k+k-1`` draw from item ``i``'s generator (for replicated batches)."""
        return ItemRng([g for g in self.generators for _ in range(k)])

    def rand(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) numbers of shape ``N x *shape`` on ``like``'s device, in its dtype."""
        rows = [torch.rand(tuple(shape), generator=g, device=g.device) for g in self.generators]
        out = torch.stack(rows).to(dtype=like.dtype)
        if out.device != like.device and out.device.type == "cpu" and like.device.type == "cuda":
            return out.pin_memory().to(like.device, non_blocking=True)  # no stream sync per step
        return out.to(like.device)
