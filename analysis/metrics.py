"""Pure metric functions of Kurakin, Goodfellow & Bengio (2016).

"Adversarial examples in the physical world", https://arxiv.org/abs/1607.02533.

- ``C_k(X, y)``: the model is right about X at top-k (``y`` in its top-k).
- Attack success on ``X_adv``: untargeted, ``not C_k(X_adv, y)``; targeted,
  ``top1(X_adv) == target`` (at both k). Reported among items the model gets
  right when clean: ``Σ C(X)·S(X_adv) / Σ C(X)``.
- Destruction rate after a transform T (print and photograph):
  ``d = Σ C(X)·¬C(X_adv)·C(T(X_adv)) / Σ C(X)·¬C(X_adv)``, where ``C(X)`` and
  ``C(X_adv)`` are the *same model's* digital predictions.
  Average case: all items; prefiltered case: clean right at top-1 with
  confidence >= 0.8 and adversarial wrong at top-1 and at top-5.
- Paired survival (Photoproof's own, beside Kurakin's measures): among the
  photographed pairs whose clean tile the model recognises (``C(T(X))``, same
  session; per frame: the same frame) and whose adversarial PNG fools it
  digitally (``S(X_adv)``), the share whose photographed adversarial tile still
  fools it: ``Σ C(T(X))·S(X_adv)·S(T(X_adv)) / Σ C(T(X))·S(X_adv)``. Conditioning
  on the photographed clean tile keeps a camera that wrecks every tile from
  passing for a perturbation that survives.
- Digital transfer rate source -> target: of the items the attack fools on the
  source model (``C(X)·S(X_adv)``), the fraction it also fools on the target.

Every function here returns per-item ``(numerator, denominator)`` counts,
aligned with its input items, so that :mod:`analysis.stats` can put Wilson or
item-bootstrap intervals on them. No I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from analysis.load import Pred

PREFILTER_CONFIDENCE = 0.8
DIGITAL_METRICS = ("clean_acc", "adv_acc", "attack_success")
PHOTO_METRICS = ("clean_acc", "adv_acc", "attack_success", "destruction", "destruction_prefiltered", "paired_survival")

Counts = list[tuple[int, int]]


@dataclass
class ItemData:
    """One item as one model saw it.

    ``clean`` and ``adv`` are the model's digital top-5 on the saved PNGs
    (``None`` if not recorded); ``photo_clean`` and ``photo_adv`` are the
    photographed predictions, one per unit of the view (a frame or a tile);
    ``photo_pairs`` the (clean, adversarial) photographed predictions seen
    together: in the same frame (frame view) or the two voted tiles (tile view).
    """

    item_id: str
    attack: str
    eps: float
    label: int
    target: int | None = None
    clean: Pred | None = None
    adv: Pred | None = None
    photo_clean: list[Pred] = field(default_factory=list)
    photo_adv: list[Pred] = field(default_factory=list)
    photo_pairs: list[tuple[Pred, Pred]] = field(default_factory=list)


def correct(pred: Pred | None, label: int, k: int) -> bool:
    """``C_k``: is ``label`` among the first ``k`` classes of ``pred``?"""
    return pred is not None and label in pred.ids[:k]


def succeeded(pred: Pred | None, label: int, target: int | None, k: int) -> bool:
    """Did the attack reach its goal on ``pred``: top-1 is the target, or (untargeted) ``not C_k``?"""
    if pred is None:
        return False
    if target is not None:
        return pred.top1 == target
    return not correct(pred, label, k)


def prefiltered(item: ItemData) -> bool:
    """Kurakin's prefiltered case: clean right (top-1) with confidence >= 0.8, adversarial wrong at top-1 and top-5."""
    c, a = item.clean, item.adv
    if c is None or a is None:
        return False
    return correct(c, item.label, 1) and c.top1_prob >= PREFILTER_CONFIDENCE and not correct(a, item.label, 5)


def vote(preds: Sequence[Pred]) -> Pred:
    """Majority vote of a tile's observations.

    Top-1: the class most observations put first; a tie goes to the class whose
    supporting observations have the higher mean probability (then the lower id).
    The other places: classes ranked by how many observations have them in their
    top-5, ties again by mean probability. Probabilities are means over the
    supporting observations.
    """
    if not preds:
        raise ValueError("vote: a tile needs at least one observation")
    first: dict[int, list[float]] = defaultdict(list)
    anywhere: dict[int, list[float]] = defaultdict(list)
    for p in preds:
        first[p.top1].append(p.top1_prob)
        for c, q in zip(p.ids, p.probs, strict=True):
            anywhere[c].append(q)

    def key(votes: dict[int, list[float]]) -> Callable[[int], tuple[int, float, int]]:
        return lambda c: (-len(votes[c]), -sum(votes[c]) / len(votes[c]), c)

    top = min(first, key=key(first))
    rest = sorted((c for c in anywhere if c != top), key=key(anywhere))
    ids = (top, *rest[: max(0, max(len(p.ids) for p in preds) - 1)])
    probs = tuple(sum(first[top]) / len(first[top]) if c == top else sum(anywhere[c]) / len(anywhere[c]) for c in ids)
    return Pred(ids, probs)


def digital_counts(items: Sequence[ItemData], k: int) -> dict[str, Counts]:
    """Per-item counts of the digital metrics (one unit per item) at top-``k``."""
    out: dict[str, Counts] = {m: [] for m in DIGITAL_METRICS}
    for it in items:
        c_ok = correct(it.clean, it.label, k)
        out["clean_acc"].append((int(c_ok), 1) if it.clean is not None else (0, 0))
        out["adv_acc"].append((int(correct(it.adv, it.label, k)), 1) if it.adv is not None else (0, 0))
        has_both = it.clean is not None and it.adv is not None
        out["attack_success"].append(
            (int(succeeded(it.adv, it.label, it.target, k)), 1) if has_both and c_ok else (0, 0)
        )
    return out


def photo_counts(items: Sequence[ItemData], k: int) -> dict[str, Counts]:
    """Per-item counts of the photographed metrics at top-``k``.

    Each unit of ``photo_clean``/``photo_adv`` counts once: frames in the frame
    view, the voted tile in the tile view.
    """
    out: dict[str, Counts] = {m: [] for m in PHOTO_METRICS}
    for it in items:
        n_c, n_a = len(it.photo_clean), len(it.photo_adv)
        right_adv = sum(correct(p, it.label, k) for p in it.photo_adv)
        out["clean_acc"].append((sum(correct(p, it.label, k) for p in it.photo_clean), n_c))
        out["adv_acc"].append((right_adv, n_a))
        has_both = it.clean is not None and it.adv is not None
        c_ok = correct(it.clean, it.label, k)
        if has_both and c_ok:
            out["attack_success"].append((sum(succeeded(p, it.label, it.target, k) for p in it.photo_adv), n_a))
        else:
            out["attack_success"].append((0, 0))
        fooled_digitally = has_both and c_ok and not correct(it.adv, it.label, k)
        out["destruction"].append((right_adv, n_a) if fooled_digitally else (0, 0))
        out["destruction_prefiltered"].append((right_adv, n_a) if prefiltered(it) else (0, 0))
        out["paired_survival"].append(paired_survival_counts(it, k))
    return out


def paired_survival_counts(item: ItemData, k: int) -> tuple[int, int]:
    """``(Σ C(T(X))·S(X_adv)·S(T(X_adv)), Σ C(T(X))·S(X_adv))`` over the item's photographed pairs.

    ``S(X_adv)`` is attack success on the adversarial PNG (digital, the same
    model); ``C(T(X))`` the photographed clean tile is right at top-``k``.
    """
    if item.adv is None or not succeeded(item.adv, item.label, item.target, k):
        return (0, 0)
    kept = [a for c, a in item.photo_pairs if correct(c, item.label, k)]
    return (sum(succeeded(a, item.label, item.target, k) for a in kept), len(kept))


def fooled(item: ItemData, k: int) -> bool | None:
    """``C_k(X)·S_k(X_adv)`` on the digital images, or ``None`` if either is missing."""
    if item.clean is None or item.adv is None:
        return None
    return correct(item.clean, item.label, k) and succeeded(item.adv, item.label, item.target, k)


def transfer_counts(source: Sequence[ItemData], target: Sequence[ItemData], k: int) -> Counts:
    """Per-item counts of the digital transfer rate, aligned with ``source``.

    Among items whose adversarial image fools the source model, the fraction
    that also fools the target model (both digital, so that a failure to
    transfer is never taken for physical destruction).
    """
    by_id = {t.item_id: t for t in target}
    out: Counts = []
    for s in source:
        t = by_id.get(s.item_id)
        f_t = None if t is None else fooled(t, k)
        if fooled(s, k) and f_t is not None:
            out.append((int(f_t), 1))
        else:
            out.append((0, 0))
    return out
