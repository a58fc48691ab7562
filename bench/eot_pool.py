"""Pool several ``bench/eot.py`` runs (other photos, profiles or ε): EOT − BIM per camera, end to end and paired.

Each run's output folder holds one ``bim-*`` and one ``eot-*`` batch (``eot-layout-*`` is left out), photographed by
the preset's simulated camera and, with ``--real-camera``, by the real one (session ``real``). Items are keyed by
photo, ε and run; the bootstrap resamples photos (a photo's items in every run together) and the exact sign test
counts photos, as in ``bench/eot.py``.

Run: ``python bench/eot_pool.py /tmp/h31/eot10 /tmp/h32/eot10``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.eot import Outcome, outcomes, paired_survival  # noqa: E402


def batches(out: Path) -> tuple[Path, Path]:
    """The plain-BIM and the EOT batch of one ``bench/eot.py`` output folder."""
    bim = sorted(out.glob("bim-*"))
    eot = sorted(p for p in out.glob("eot-*") if not p.name.startswith("eot-layout-"))
    if len(bim) != 1 or len(eot) != 1:
        raise ValueError(
            f"{out}: expected one bim-* and one eot-* batch of bench/eot.py, found {len(bim)} and {len(eot)}"
        )
    return bim[0], eot[0]


def session(batch: Path, camera: str) -> str:
    """The session of ``camera`` ("real", or "channel": the preset's simulated camera) in ``batch``."""
    names = sorted(p.stem for p in (batch / "captures").glob("*.sqlite"))
    got = [n for n in names if (n == "real") == (camera == "real")]
    if len(got) != 1:
        raise ValueError(f"{batch}: no single {camera} session among {names}")
    return got[0]


def pooled(outs: list[Path], camera: str) -> tuple[dict[tuple[str, float, str], Outcome], ...]:
    """BIM's and EOT's outcomes over every run, keyed by (photo, ε, run)."""
    bim: dict[tuple[str, float, str], Outcome] = {}
    eot: dict[tuple[str, float, str], Outcome] = {}
    for out in outs:
        for batch, into in zip(batches(out), (bim, eot), strict=True):
            for (photo, eps), o in outcomes(batch, session(batch, camera)).items():
                into[(photo, eps, str(out))] = o
    return bim, eot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outs", nargs="+", type=Path, help="bench/eot.py --out folders")
    ap.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    a = ap.parse_args()
    for camera, name in (("channel", "the preset's simulated camera"), ("real", "the real camera")):
        try:
            bim, eot = pooled(a.outs, camera)
        except ValueError as e:
            print(f"{name}: {e}")
            continue
        photos = len({k[0] for k in bim})
        print(f"### {name}: {len(a.outs)} runs, {len(bim)} items of {photos} photos\n")
        for what, e2e in (("end-to-end success", True), ("paired survival", False)):
            print(f"- {what}, EOT − BIM: {paired_survival(eot, bim, a.seed, end_to_end=e2e)}")
        print()


if __name__ == "__main__":
    main()
