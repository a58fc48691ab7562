"""Write ``craft/photosplit.toml``: every distinct photo in the installed packages, split in two halves.

The brief's rule "never tune on what you validate": channel figures are tuned on the
``tuning`` half and reported on the ``validation`` half, fixed here before any tuning.
Run once; re-running with the same seed and the same package files writes the same file
(the order is by key, the shuffle by ``SEED``), so a change shows up in ``git diff``.

::

    .venv/bin/python tools/make_photosplit.py        # writes craft/photosplit.toml
    .venv/bin/python tools/make_photosplit.py --check  # exit 1 if the file would change

What counts as one photo (``PHOTOS`` below, each checked by eye): a photograph, not a
drawing, a plot or a synthetic test pattern, at least 128 px on its short side; two views
of one scene (skimage's stereo pair ``motorcycle_left``/``_right``) or crops of one photo
count once. Left out, with the reason: foolbox's ``cifar10_*``/``cifar100_*``/``mnist_*``
(32 px and 28 px), skimage's ``lfw_subset.npy`` (25 px faces), ``microaneurysms.png``
(102 px), ``no_time_for_that_tiny.gif``; ``color.png``, ``logo.png``, ``phantom.png``,
``horse.png`` (synthetic or a silhouette); ``motorcycle_right.png`` (the same scene as
``motorcycle_left``); matplotlib's ``logo2.png``, ``Minduka_Present_Blue_Pack.png`` (icons);
networkx's and sympy's test plots. scikit-learn (``china.jpg``, ``flower.jpg``) is not a
dependency, so its two photos are not in the set.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.paths import sha256_file  # noqa: E402

OUT = ROOT / "craft" / "photosplit.toml"
SEED = 27  # issue 27; recorded in the file

# (package, path inside it): the distinct photographs found in the installed packages.
PHOTOS: tuple[tuple[str, str], ...] = (
    *(
        ("foolbox", f"data/imagenet_{i:02d}_{lab}.jpg")
        for i, lab in enumerate(
            (243, 559, 438, 990, 949, 853, 609, 609, 915, 455, 541, 630, 741, 471, 129, 99, 251, 22, 317, 305)
        )
    ),
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/camera.png"),
    ("skimage", "data/coins.png"),
    ("skimage", "data/moon.png"),
    ("skimage", "data/page.png"),
    ("skimage", "data/text.png"),
    ("skimage", "data/brick.png"),
    ("skimage", "data/grass.png"),
    ("skimage", "data/gravel.png"),
    ("skimage", "data/clock_motion.png"),
    ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/retina.jpg"),
    ("skimage", "data/ihc.png"),
    ("skimage", "data/cell.png"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)


def package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{module} is not installed; the split lists its photos")
    return Path(spec.submodule_search_locations[0])


def render() -> str:
    rows = []
    for pkg, rel in PHOTOS:
        p = package_dir(pkg) / rel
        rows.append((pkg, rel, sha256_file(p), pkg == "foolbox"))
    # Stratified: the ImageNet-labelled photos (foolbox) and the others are each shuffled and halved,
    # so both halves have labelled photos; an odd stratum gives its extra photo to the tuning half.
    rng = random.Random(SEED)
    half: dict[tuple[str, str], str] = {}
    for labelled in (True, False):
        group = sorted((r for r in rows if r[3] == labelled), key=lambda r: (r[0], r[1]))
        rng.shuffle(group)
        cut = (len(group) + 1) // 2
        for i, r in enumerate(group):
            half[(r[0], r[1])] = "tuning" if i < cut else "validation"
    out = [
        "# The photo split of the brief's rule 'never tune on what you validate' (issue 27).",
        "# Written by tools/make_photosplit.py (its docstring says what counts as one photo and what was",
        "# left out); fixed before any tuning. craft --images tuning | validation reads these files from the",
        "# installed packages and checks each sha256; a file that differs is left out with a warning.",
        f"seed = {SEED}",
        'method = "stratified: ImageNet-labelled (foolbox) and other photos each shuffled with random.Random(seed), '
        'first half (rounded up) to tuning"',
        "",
    ]
    for pkg, rel, sha, _ in sorted(rows, key=lambda r: (half[(r[0], r[1])], r[0], r[1])):
        out += ["[[photo]]", f'package = "{pkg}"', f'path = "{rel}"', f'sha256 = "{sha}"']
        out += [f'half = "{half[(pkg, rel)]}"', ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if craft/photosplit.toml would change")
    a = ap.parse_args()
    text = render()
    if a.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print("photosplit.toml is up to date" if same else "photosplit.toml differs from what the packages give")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}: {len(PHOTOS)} photos")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
