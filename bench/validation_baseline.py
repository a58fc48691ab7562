"""How much of the clean drop mere resampling already costs, per photo (issue 27 part 3).

Reads the same ``bench/fidelity.py`` work directories as ``bench/validation.py`` (its
:func:`validation.photos`: one unit per photo) and sets the photographed clean top-1 against
both the digital figure ``D`` and the capture's digital stability baseline ``B``
(:mod:`capture.stability`: each clean PNG through a mild resampling, blur and JPEG, no camera;
the ``stability`` rows every capture session records). Nothing is re-captured or tuned.

Per directory, for all photos, for sure ones (digital top-1 probability >= 0.8) and for stable
ones (right under all three mild transforms: the photos whose loss the baseline cannot explain):

- ``B``: the share of (photo, mild transform) pairs still right (the channel check's ``B``,
  :mod:`contracts.verdict`), and how many photos all three transforms keep;
- the drop ``D - p`` and ``B - p`` in points, each with the interval ``[ref - p_hi, ref - p_lo]``
  from the Wilson interval of ``p`` over photos (clustered by photo, as ``bench/validation.py``);
- the photos lost (right digitally, wrong photographed) split into those a mild transform alone
  already flips ("resampling": the model's fragility) and those all three keep ("channel only"),
  each a share of the photos with its Wilson interval;

then, per lost photo, the transforms that flip it::

    python bench/validation_baseline.py VF/careful-lab-lite0 VF/careful-lab-lite2 VF/office-laser-webcam-lite0 ...
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from validation import SURE, Photo, _short, photos  # noqa: E402  (bench/validation.py: one unit per photo)

from capture.stability import TRANSFORMS  # noqa: E402
from contracts.intervals import wilson  # noqa: E402


@dataclass(frozen=True)
class Split:
    """The clean drop of a set of photos against ``D`` and ``B``, and its lost photos split by cause."""

    n: int  # photos with a photographed clean tile and a stability baseline
    digital: int  # right digitally
    stable: float  # B: mean share of mild transforms right, over the n photos
    all_kept: int  # photos right under all three mild transforms
    photo: int  # right photographed
    photo_lo: float
    photo_hi: float
    fragile: int  # lost photographed, and a mild transform alone already flips it
    channel: int  # lost photographed although all mild transforms keep it

    def drop(self, ref: float) -> tuple[float, float, float]:
        """``ref - p`` in points with its interval ``[ref - p_hi, ref - p_lo]``."""
        p = self.photo / self.n
        return 100 * (ref - p), 100 * (ref - self.photo_hi), 100 * (ref - self.photo_lo)


def split(ps: list[Photo]) -> Split | None:
    """The photos of ``ps`` seen photographed and with a baseline; ``None`` when there are none."""
    seen = [p for p in ps if p.photo is not None and p.stable is not None]
    if not seen:
        return None
    n, pho = len(seen), sum(bool(p.photo) for p in seen)
    lo, hi = wilson(pho, n) or (0.0, 1.0)
    lost = [p for p in seen if p.digital and not p.photo]
    return Split(
        n=n,
        digital=sum(p.digital for p in seen),
        stable=sum(p.stable or 0.0 for p in seen) / n,
        all_kept=sum(p.stable == 1.0 for p in seen),
        photo=pho,
        photo_lo=lo,
        photo_hi=hi,
        fragile=sum((p.stable or 0.0) < 1.0 for p in lost),
        channel=sum(p.stable == 1.0 for p in lost),
    )


def cause(p: Photo) -> str:
    """Why a lost photo (right digitally, wrong photographed) was lost: a mild transform alone, or the channel."""
    if p.stable is None:
        return "no baseline"
    return f"resampling alone ({', '.join(p.flipped)})" if p.stable < 1.0 else "channel only"


def _share(k: int, n: int) -> str:
    lo, hi = wilson(k, n) or (0.0, 1.0)
    return f"{k}/{n}, {100 * k / n:.0f} % [{100 * lo:.0f}-{100 * hi:.0f}]"


def _drop(d: tuple[float, float, float]) -> str:
    return f"{d[0]:+.0f} [{d[1]:+.0f} to {d[2]:+.0f}]"


def row(label: str, ps: list[Photo]) -> str:
    """A Markdown row of :func:`split` for ``ps``."""
    s = split(ps)
    if s is None:
        return f"| {label} | 0 |" + " - |" * 7
    d = s.digital / s.n
    return (
        f"| {label} | {s.n} | {100 * d:.0f} % | {100 * s.stable:.0f} % ({s.all_kept}/{s.n} kept by all 3) | "
        f"{_share(s.photo, s.n)} | {_drop(s.drop(d))} | {_drop(s.drop(s.stable))} | "
        f"{_share(s.fragile, s.n)} | {_share(s.channel, s.n)} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("works", type=Path, nargs="+", help="bench/fidelity.py work directories (PRESET-MODEL)")
    a = ap.parse_args()
    per = {w.name: photos(w) for w in a.works}
    print(
        "| preset / target, photos | n | digital D | baseline B (no camera) | photographed p | D - p (points) "
        "| B - p (points) | lost, a mild transform alone flips it | lost, channel only |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, ps in per.items():
        print(row(f"{name}, all", ps))
        print(row(f"{name}, sure (p >= {SURE:g})", [p for p in ps if p.prob >= SURE]))
        print(row(f"{name}, stable (all mild transforms keep it)", [p for p in ps if p.stable == 1.0]))
    print("\n| preset / target | lost photo (digital top-1 probability) | mild transforms kept | lost to |")
    print("|---|---|---:|---|")
    for name, ps in per.items():
        for p in ps:
            if p.digital and p.photo is False:
                kept = "-" if p.stable is None else f"{round(len(TRANSFORMS) * p.stable)}/{len(TRANSFORMS)}"
                print(f"| {name} | {_short(p.name)} ({p.prob:.2f}) | {kept} | {cause(p)} |")


if __name__ == "__main__":
    main()
