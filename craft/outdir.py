"""The batch directory a craft writes (``--out``): its lock, the check that a resumed batch was made with the
same options, and the craft journals folded into ``batch.json`` (:mod:`contracts.journal`).
"""

from __future__ import annotations

from pathlib import Path

from contracts.errors import UserError
from contracts.journal import journal_files
from contracts.lock import ExclusiveLock, HeldElsewhere
from contracts.manifest import Batch, compact_batch, load_batch
from craft.config import IDENTITY_KEYS, CraftConfig


def fold_journal(out: Path, attack_order: list[str], eps: list[float]) -> Batch:
    """Fold the journals into ``batch.json`` (one atomic write), items sorted by attack, ε and id."""
    folded = journal_files(out)
    batch = load_batch(out)
    rank_a = {a: k for k, a in enumerate(attack_order)}
    rank_e = {e: k for k, e in enumerate(eps)}
    batch.items.sort(key=lambda it: (rank_a.get(it.attack, len(rank_a)), rank_e.get(it.eps, 0), it.id))
    compact_batch(out, batch, folded)
    return batch


LOCK = ".craft.lock"


def lock_out(out: Path) -> ExclusiveLock:
    """Hold ``OUT/.craft.lock`` for the run: a second craft into the same ``--out`` is refused in one line.

    Two writers would each fold their own journal into ``batch.json`` and lose the
    other's items. The OS drops the lock when the process dies (even on SIGKILL).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        return ExclusiveLock(out / LOCK)
    except HeldElsewhere as e:
        who = f" (process {e.holder})" if e.holder else ""
        raise UserError(
            f"--out {out}: another craft is writing this batch{who}; wait until it ends, or choose another --out"
        ) from None
    except OSError as e:
        raise UserError(
            f"--out {out}: cannot write there ({e.strerror or e}); check the disk and its permissions"
        ) from None


def check_identity(out: Path, resolved: dict[str, object]) -> None:
    """Refuse to resume a batch made with other options (one line naming each difference)."""
    batch = load_batch(out)
    defaults = CraftConfig().resolved()
    old = {k: batch.config.get(k, defaults.get(k)) for k in IDENTITY_KEYS}
    new = {k: resolved.get(k) for k in IDENTITY_KEYS}
    if old != new:
        diff = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in IDENTITY_KEYS if old[k] != new[k])
        raise UserError(f"{out}: holds a batch made with other options ({diff}); use a new --out directory")
