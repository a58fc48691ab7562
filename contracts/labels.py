"""Label sets: the class names a model answers in, and mapping one set onto another.

A batch's labels are indices into its label set (``batch.json`` ``classes``;
ImageNet-1k when absent). A label file holds one class name per line (or a JSON
list); a name twice is an error. Capture maps the batch's labels onto the target
model's classes by name (case and spaces ignored), or through a ``--label-map``
CSV (``batch_name,target_name`` per row) where names differ; a label that
cannot be mapped is an error, never a silent mismatch. Torch-free.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from contracts.errors import UserError


def norm(name: str) -> str:
    """How names are compared: lower case, runs of spaces, ``_`` and ``-`` as one space."""
    return " ".join(str(name).replace("_", " ").replace("-", " ").lower().split())


def nearest(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """The closest names (difflib's ratio), for 'did you mean' hints."""
    pool = list(dict.fromkeys(names))
    by_norm = {norm(x): x for x in pool}
    return [by_norm[m] for m in difflib.get_close_matches(norm(name), list(by_norm), n=n, cutoff=0.4)]


def _hint(name: str, names: Sequence[str]) -> str:
    near = nearest(name, names)
    return f"nearest: {', '.join(repr(x) for x in near)}" if near else "no similar name"


def check_unique(names: Sequence[str], where: str) -> None:
    """Refuse a label set that names a class twice (names compared as :func:`norm` does)."""
    seen: dict[str, int] = {}
    for i, n in enumerate(names, 1):
        k = norm(n)
        if not k:
            raise UserError(f"{where}: class {i} has an empty name")
        if k in seen:
            raise UserError(
                f"{where}: class name {n!r} appears twice (lines {seen[k]} and {i}); class names must be unique"
            )
        seen[k] = i


def read_label_file(path: Path, flag: str = "--labels") -> list[str]:
    """Class names from a text file (one per line, blank lines skipped) or a JSON list.

    Raises:
        UserError: a missing or unreadable file, no names, or a name twice.
    """
    path = Path(path)
    where = f"{flag} {path}"
    if not path.is_file():
        raise UserError(f"{where}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{where}: cannot read it as UTF-8 text ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise UserError(f"{where}: invalid JSON ({e})") from None
        if not isinstance(names, list) or not all(isinstance(n, (str, int)) for n in names):
            raise UserError(f"{where}: expected a JSON list of class names")
        out = [str(n).strip() for n in names]
    else:
        out = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not out:
        raise UserError(f"{where}: no class names in it")
    check_unique(out, where)
    return out


def index_of(name: str, names: Sequence[str], where: str) -> int:
    """The index of ``name`` in a (non-ImageNet) label set: a class index or a class name.

    Raises:
        UserError: naming ``where`` (``labels.csv:7``) and the nearest names.
    """
    t = name.strip()
    if t.isdigit():
        i = int(t)
        if 0 <= i < len(names):
            return i
        raise UserError(f"{where}: class index {i} is outside 0..{len(names) - 1}")
    k = norm(t)
    for i, n in enumerate(names):
        if norm(n) == k:
            return i
    raise UserError(f"{where}: {t!r} is not a class of this label set ({len(names)} classes); {_hint(t, names)}")


def read_label_map(path: Path) -> dict[str, str]:
    """A ``--label-map`` CSV: ``batch_name,target_name`` per row (a ``batch,target`` header is allowed).

    Raises:
        UserError: naming the file and row of a malformed or repeated row.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--label-map {path}: no such file")
    out: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
                continue
            if n == 1 and [c.strip().lower() for c in row[:2]] in (["batch", "target"], ["source", "target"]):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise UserError(f"--label-map {path}:{n}: expected 'batch_name,target_name'")
            k = norm(row[0])
            if k in out:
                raise UserError(f"--label-map {path}:{n}: {row[0].strip()!r} is mapped twice")
            out[k] = row[1].strip()
    if not out:
        raise UserError(f"--label-map {path}: no rows")
    return out


def map_labels(
    batch_names: Sequence[str],
    target_names: Sequence[str],
    used: Iterable[int],
    explicit: dict[str, str] | None = None,
    where: str = "--model",
) -> dict[int, int]:
    """Map each used batch class index to the target's class index by name.

    Args:
        batch_names: the batch's label set.
        target_names: the target model's class names.
        used: the batch class indices that items use (labels and targets).
        explicit: a ``--label-map`` (:func:`read_label_map`); names it lacks map by name.
        where: how errors name the target model.

    Raises:
        UserError: listing the labels that cannot be mapped, with the nearest target names.
    """
    tgt: dict[str, int] = {}
    twice: set[str] = set()
    for i, n in enumerate(target_names):
        if norm(n) in tgt:
            twice.add(norm(n))
        tgt.setdefault(norm(n), i)
    out: dict[int, int] = {}
    bad: list[str] = []
    for b in sorted(set(used)):
        if not 0 <= b < len(batch_names):
            raise UserError(
                f"batch.json: label {b} is outside its label set of {len(batch_names)} classes; re-run 'photoproof "
                "craft'"
            )
        name = batch_names[b]
        want = (explicit or {}).get(norm(name), name)
        t = tgt.get(norm(want))
        if norm(want) in twice:
            bad.append(f"{want!r}: the model names two classes so; map it by --label-map to one that is unique")
        elif t is None:
            bad.append(
                f"{name!r}" + (f" (mapped to {want!r})" if want != name else "") + f": {_hint(want, target_names)}"
            )
        else:
            out[b] = t
    if bad:
        raise UserError(
            f"{where}: {len(bad)} label(s) of the batch are not classes of this model: {'; '.join(bad[:4])}"
            f"{' ...' if len(bad) > 4 else ''}; give --label-map FILE.csv with rows 'batch_name,target_name'"
        )
    return out


def target_map(
    batch_names: Sequence[str],
    target_names: Sequence[str],
    used: Iterable[int],
    explicit: dict[str, str] | None = None,
    where: str = "--model",
) -> dict[int, int] | None:
    """:func:`map_labels`, or ``None`` when the two label sets are the same list and no map is given (identity)."""
    if explicit is None and list(batch_names) == list(target_names):
        return None
    return map_labels(batch_names, target_names, used, explicit, where)
