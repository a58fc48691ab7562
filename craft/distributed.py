"""Crafting on many processes, GPUs and machines with ``torch.distributed``.

``torchrun --nproc-per-node N --no-python photoproof craft ...`` starts N
copies of the command; torchrun tells each its ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` (and where to meet: ``MASTER_ADDR``/``MASTER_PORT``). The copies
share nothing but the batch folder (on several machines, a shared file system)
and a gloo process group used only to wait for each other (barriers): no
tensors travel between them.

How the work is split: the job is cut into the very mini-batches a single
process would make (per attack and ε, ``--batch-size`` items each, in order),
and mini-batch ``k`` goes to rank ``k mod N``. Each item's randomness comes from
its own seed (:mod:`craft.attacks.rng`), so on the CPU every image and every
manifest record equals, byte for byte, what one process would have produced.

Each rank appends its finished items to its own journal file
(:mod:`contracts.journal`); rank 0 folds the journals into ``batch.json`` once
every rank is done. A run that is killed resumes with any number of processes:
``batch.json`` plus the journals say what is done, and the rest is split anew.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch

from contracts.errors import UserError

log = logging.getLogger(__name__)

# Ranks finish at different times; the barriers that wait for the slowest must not time out.
BARRIER_TIMEOUT = timedelta(days=7)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"environment variable {name}={raw!r}: expected an integer (set by torchrun)") from None


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        """Read torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (absent: one process)."""
        world = _env_int("WORLD_SIZE", 1)
        rank = _env_int("RANK", 0)
        local = _env_int("LOCAL_RANK", rank if world > 1 else 0)
        if world < 1 or not (0 <= rank < world) or local < 0:
            raise UserError(f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}: not a valid torchrun placement")
        return cls(rank, world, local)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        """Rank 0 writes ``batch.json``."""
        return self.rank == 0

    def start(self) -> None:
        """Join the process group (gloo: barriers only, so any device will do)."""
        if not self.active or (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        if not torch.distributed.is_available():
            raise UserError(
                "WORLD_SIZE > 1 but this torch has no torch.distributed; run one process or install a torch with it"
            )
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(var):
                raise UserError(f"WORLD_SIZE={self.world} but {var} is not set; start the processes with torchrun")
        torch.distributed.init_process_group("gloo", rank=self.rank, world_size=self.world, timeout=BARRIER_TIMEOUT)
        log.info("rank %d of %d (local rank %d) joined", self.rank, self.world, self.local_rank)

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def stop(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def mine(self, k: int) -> bool:
        """Whether mini-batch number ``k`` (0-based, in job order) is this rank's."""
        return k % self.world == self.rank

    def device(self, device: str) -> str:
        """``--device`` for this rank: ``cuda`` and ``auto`` (with CUDA) mean this rank's local GPU.

        An explicit ``cuda:N`` is kept as given, and so is everything in a one-process run.
        """
        if not self.active:
            return device
        if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
            if not torch.cuda.is_available():
                return device  # resolve_device reports the missing GPU
            n = torch.cuda.device_count()
            if self.local_rank >= n:
                raise UserError(
                    f"--device {device}: LOCAL_RANK {self.local_rank} but this machine has {n} CUDA device(s); start "
                    f"at most {n} processes per machine"
                )
            torch.cuda.set_device(self.local_rank)
            return f"cuda:{self.local_rank}"
        return device
