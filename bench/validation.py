"""Clean drop on the photo split's halves, for all photos and for photos the target is sure of (issue 27 part 3).

Reads the captures that ``bench/fidelity.py`` left in its work directories (one per preset and
target model) and prints, per directory, clean top-1 digitally and photographed, the drop in
points and its 95 % upper bound, for every photo and for the photos whose digital top-1
probability is at least 0.8 ("sure"). One unit per photo: a photo printed on several clean
tiles (one per attack and ε) counts once, by the majority of its tiles' votes, so the Wilson
interval over photos is the interval clustered by photo. The drop's upper bound is digital
minus the interval's lower end (the channel check's rule, ``contracts.verdict``). Each photo
also carries the capture's digital stability baseline (its clean PNG through
:mod:`capture.stability`'s mild transforms, no camera), which ``bench/validation_baseline.py``
sets against the photographed figure. ``--top 5`` counts a photo right when its label is among the
target's five best (Kurakin et al.'s second figure): how much of the top-1 loss is a near-synonym::

    photoproof craft --out V --images validation --attack fgsm --eps 16 --source lite0
    python bench/fidelity.py --batch V --out VF --presets careful-lab,office-laser-webcam --models lite0,lite2
    python bench/validation.py VF/careful-lab-lite0 VF/careful-lab-lite2 VF/office-laser-webcam-lite0 ...
    python bench/validation.py --top 5 VF/careful-lab-lite0 ...
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.load import load_input  # noqa: E402
from analysis.metrics import correct  # noqa: E402
from analysis.summary import session_items  # noqa: E402
from contracts.intervals import wilson  # noqa: E402

SURE = 0.8  # digital top-1 probability: Kurakin et al.'s prefilter confidence


@dataclass(frozen=True)
class Photo:
    """One source photo as the target saw it: digitally and photographed (None: no clean tile passed the gates)."""

    name: str
    digital: bool
    prob: float
    photo: bool | None
    stable: float | None = None  # share of capture's mild transforms it stays right under (None: no baseline)
    flipped: tuple[str, ...] = ()  # the mild transforms that flip it (capture.stability)


def photos(work: Path, top: int = 1) -> list[Photo]:
    """The source photos of the capture in ``work``, one per photo (its clean tiles' majority), right when the label
    is among the target's ``top`` best; ``prob`` is always the digital top-1 probability."""
    inp = load_input(work)
    s = inp.sessions[0]
    source = {it.id: it.source.file for it in inp.batch.items}
    tiles: dict[str, list[bool]] = defaultdict(list)
    digital: dict[str, tuple[bool, float]] = {}
    shares: dict[str, list[float]] = defaultdict(list)
    flipped: dict[str, set[str]] = defaultdict(set)
    for it in session_items(inp, s, "tile"):
        if it.clean is None:
            continue
        name = source[it.item_id]
        digital[name] = (correct(it.clean, it.label, top), it.clean.probs[0])
        if s.stability is not None and it.item_id in s.stability:
            shares[name].append(s.stability[it.item_id])
            flipped[name].update(s.unstable.get(it.item_id, ()))
        tiles[name] += [correct(p, it.label, top) for p in it.photo_clean]
    out = []
    for name, (dig, prob) in sorted(digital.items()):
        votes = tiles.get(name, [])
        share = sum(shares[name]) / len(shares[name]) if shares[name] else None
        out.append(
            Photo(
                name, dig, prob, (2 * sum(votes) > len(votes)) if votes else None, share, tuple(sorted(flipped[name]))
            )
        )
    return out


def _short(name: str) -> str:
    """``package:stem`` of a split photo's manifest name."""
    return f"{name.split(':')[0]}:{Path(name.split(':')[-1]).stem}"


def row(label: str, ps: list[Photo], goal: float) -> str:
    """A Markdown row: digital, photographed (Wilson over photos), drop and its upper bound, against ``goal``."""
    seen = [p for p in ps if p.photo is not None]
    n, dig, pho = len(seen), sum(p.digital for p in seen), sum(bool(p.photo) for p in seen)
    if n == 0:
        return f"| {label} | 0 | - | - | - | - | - | - |"
    lo, hi = wilson(pho, n) or (0.0, 1.0)
    drop, upper = 100 * (dig - pho) / n, 100 * (dig / n - lo)
    lost = [f"{_short(p.name)} ({p.prob:.2f})" for p in seen if p.digital and not p.photo]
    verdict = "yes" if upper <= goal else ("point only" if drop <= goal else "no")
    return (
        f"| {label} | {n} | {dig}/{n} | {pho}/{n}, {100 * pho / n:.0f} % [{100 * lo:.0f}-{100 * hi:.0f}] | "
        f"{drop:+.0f} | {upper:.0f} | {verdict} | {', '.join(lost) or '-'} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("works", type=Path, nargs="+", help="bench/fidelity.py work directories (PRESET-MODEL)")
    ap.add_argument("--goal", default="careful-lab=10,office-laser-webcam=15", help="PRESET=points, ...")
    ap.add_argument("--top", type=int, default=1, choices=(1, 5), help="right when the label is among the k best")
    a = ap.parse_args()
    goals = {k: float(v) for k, v in (g.split("=") for g in a.goal.split(","))}
    print(
        f"| preset / target, photos (top-{a.top}) | n | digital | photographed | drop (points) | drop, 95 % upper "
        "| within goal | lost (digital top-1 probability) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for work in a.works:
        ps = photos(work, a.top)
        goal = next((v for k, v in goals.items() if work.name.startswith(k)), 10.0)
        missing = [_short(p.name) for p in ps if p.photo is None]
        name = work.name + (f" ({', '.join(missing)}: no good clean tile)" if missing else "")
        print(row(f"{name}, all", ps, goal))
        print(row(f"{work.name}, sure (p >= {SURE:g})", [p for p in ps if p.prob >= SURE], goal))


if __name__ == "__main__":
    main()
