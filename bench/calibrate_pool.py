"""The closed loop of ``bench/calibrate_loop.py`` pooled over several runs: enough tiles to bound "fitted − camera".

Each run (``--out`` of ``calibrate_loop.py``: one printed batch, e.g. FGSM at one ε on the validation
half) has the four sessions ``real-1``, ``real-2``, ``uncalibrated`` and ``fitted``; its ``fitted.toml`` is
fitted to its own ``real-2``. Tiles of all runs are pooled; a photo's tiles (its clean and adversarial tile
in every run) form one cluster of the paired bootstrap, so the interval counts photos, not tiles. Runs whose
sessions share seeds (``calibrate_loop.py --seed``) photograph their clean tiles alike (the same image at the
same place, pose and noise): a clean tile is then counted once, from the first such run.

Per session: the share of tiles with the same top-1 as ``real-1`` (Wilson 95 %), clean accuracy and
adversarial success (top-1 against the item's label). Paired on the tiles every session saw: agreement with
``real-1`` of the fitted profile (and the preset) minus the camera's own (``real-2``); and the fitted
profile's clean accuracy and adversarial success minus the camera's (``real-1`` and ``real-2`` pooled as
the camera), each with a 95 % bootstrap interval clustered by photo.

Run::

    python bench/calibrate_pool.py /tmp/loop-e2 /tmp/loop-e4 /tmp/loop-e8 /tmp/loop-e16
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.calibrate_loop import _pct, tiles  # noqa: E402
from contracts.manifest import load_batch  # noqa: E402

SESSIONS = ("real-1", "real-2", "uncalibrated", "fitted")
Key = tuple[str, str, str]  # (run, item, role)


def pooled(runs: list[Path]) -> tuple[dict[str, dict[Key, int]], dict[Key, int], dict[Key, str]]:
    """Per session, (run, item, role) -> top-1; the label and the photo of every key."""
    every: dict[str, dict[Key, int]] = {s: {} for s in SESSIONS}
    labels: dict[Key, int] = {}
    photo: dict[Key, str] = {}
    seen: set[tuple[int, str]] = set()  # (real-1's seed, photo) of the clean tiles counted so far
    for run in runs:
        work = run / "work"
        items = load_batch(work).items
        con = sqlite3.connect(work / "captures" / "real-1.sqlite")
        seed = int(con.execute("SELECT seed FROM sessions").fetchone()[0])
        con.close()
        for name in SESSIONS:
            if not (work / "captures" / f"{name}.sqlite").is_file():
                raise SystemExit(f"{run}: no session {name}; run bench/calibrate_loop.py on it first")
            every[name].update({(run.name, i, r): t for (i, r), t in tiles(work, name).items()})
        for it in items:
            for role in ("clean", "adv"):
                if role == "clean" and (seed, it.source.file) in seen:
                    for name in SESSIONS:
                        every[name].pop((run.name, it.id, role), None)
                    continue
                labels[(run.name, it.id, role)] = it.label.index
                photo[(run.name, it.id, role)] = it.source.file
            seen.add((seed, it.source.file))
    return every, labels, photo


def clustered(
    values: dict[Key, float], photo: dict[Key, str], seed: int = 0, n: int = 4000
) -> tuple[float, float, float]:
    """Mean of per-tile ``values`` and its 95 % bootstrap interval, resampling photos (a photo's tiles together)."""
    photos = sorted({photo[k] for k in values})
    idx = {p: i for i, p in enumerate(photos)}
    s, c = np.zeros(len(photos)), np.zeros(len(photos))
    for k, v in values.items():
        s[idx[photo[k]]] += v
        c[idx[photo[k]]] += 1
    w = np.random.default_rng(seed).multinomial(len(photos), np.full(len(photos), 1.0 / len(photos)), size=n)
    boot = (w @ s) / np.maximum(w @ c, 1)
    lo, hi = np.quantile(boot, (0.025, 0.975))
    return float(s.sum() / c.sum()), float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="calibrate_loop.py --out folders")
    a = ap.parse_args()
    every, labels, photo = pooled(a.runs)
    ref = every["real-1"]
    print(f"{len(a.runs)} runs, {len({photo[k] for k in labels})} photos, {len(labels)} tiles printed\n")
    print("| session | same top-1 as real-1 | clean accuracy | adversarial success |")
    print("|---|---|---|---|")
    for name in SESSIONS:
        got = every[name]
        both = [k for k in ref if k in got]
        clean = [k for k in got if k[2] == "clean"]
        adv = [k for k in got if k[2] == "adv"]
        agree = "(itself)" if name == "real-1" else _pct(sum(ref[k] == got[k] for k in both), len(both))
        ok = sum(got[k] == labels[k] for k in clean)
        fooled = sum(got[k] != labels[k] for k in adv)
        print(f"| {name} | {agree} | {_pct(ok, len(clean))} | {_pct(fooled, len(adv))} |")
    common = set.intersection(*(set(t) for t in every.values()))
    n_photos = len({photo[k] for k in common})
    print(f"\npaired on the {len(common)} tiles ({n_photos} photos) every session saw, bootstrap by photo:")
    same = {s: {k: float(ref[k] == every[s][k]) for k in common} for s in SESSIONS[1:]}
    for a_name, b_name in (("fitted", "real-2"), ("uncalibrated", "real-2"), ("fitted", "uncalibrated")):
        d = {k: same[a_name][k] - same[b_name][k] for k in common}
        m, lo, hi = clustered(d, photo)
        print(f"- agreement with real-1, {a_name} minus {b_name}: {100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    for role, what in (("clean", "clean accuracy"), ("adv", "adversarial success")):
        keys = [k for k in common if k[2] == role]

        def hit(s: str, k: Key, clean: bool = role == "clean") -> float:
            return float((every[s][k] == labels[k]) == clean)

        for other in ("real-1", "real-2", "uncalibrated"):
            d = {k: hit("fitted", k) - hit(other, k) for k in keys}
            m, lo, hi = clustered(d, photo)
            print(f"- {what}, fitted minus {other}: {100 * m:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
                  f"({len(keys)} tiles)")  # fmt: skip


if __name__ == "__main__":
    main()
