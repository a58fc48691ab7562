"""Kurakin et al. 2016, Table 3 (photos, average case, top-1), beside ours: the recipe's last step.

Kurakin, Goodfellow & Bengio (2016, "Adversarial examples in the physical world",
arXiv:1607.02533) printed adversarial images of ImageNet validation photos and photographed
them with a phone; Table 3 gives the destruction rate, the share of adversarial images that
fooled the model digitally and are classified right again once photographed:
``d = sum C(X) not C(X_adv) C(T(X_adv)) / sum C(X) not C(X_adv)`` (design.md). The recipe::

    photoproof craft --out K --images validation --source lite0 --attack fgsm,bim,ll --eps 8,16
    python bench/fidelity.py --batch K --out /tmp/kf --presets careful-lab --models lite0
    python bench/kurakin.py /tmp/kf/careful-lab-lite0

prints the table side by side, with n and Wilson 95 % intervals over the adversarial tiles.
Where the numbers differ, and why, is discussed in docs/physical-fidelity.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.load import load_input  # noqa: E402
from analysis.metrics import photo_counts  # noqa: E402
from analysis.stats import wilson  # noqa: E402
from analysis.summary import cells, session_items  # noqa: E402

# Table 3, "photos", average case, top-1 destruction rate in %, by eps (Kurakin et al. 2016).
PAPER = {("fgsm", 16.0): 12.5, ("fgsm", 8.0): 33.3, ("bim", 16.0): 40.4, ("bim", 8.0): 52.1}
PAPER.update({("ll", 16.0): 72.2, ("ll", 8.0): 86.3})
NAMES = {"fgsm": "fast", "bim": "basic iterative", "ll": "iterative least-likely"}


def rows(work: Path) -> list[tuple[str, float, int, int]]:
    """(attack, eps, destroyed, fooled digitally) per cell of the capture in ``work`` (the tile view)."""
    inp = load_input(work)
    items = [it for s in inp.sessions for it in session_items(inp, s, "tile")]
    out = []
    for (attack, eps), group in cells(items).items():
        d = [c for c in photo_counts(group, 1)["destruction"] if c[1]]
        out.append((attack, eps, sum(k for k, _ in d), sum(n for _, n in d)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="a batch directory with a capture (bench/fidelity.py's work directory)")
    a = ap.parse_args()
    print("| attack | ε | Kurakin et al. 2016 (photos, average, top-1) | ours | n (fooled digitally) |")
    print("|---|---:|---:|---:|---:|")
    for attack, eps, k, n in rows(a.work):
        paper = PAPER.get((attack, eps))
        lo, hi = wilson(k, n) or (0.0, 1.0)
        ours = f"{100 * k / n:.1f} % [{100 * lo:.0f}-{100 * hi:.0f}]" if n else "-"
        cite = f"{paper:.1f} %" if paper is not None else "-"
        print(f"| {NAMES.get(attack, attack)} | {eps:g} | {cite} | {ours} | {n} |")


if __name__ == "__main__":
    main()
