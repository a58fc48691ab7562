"""The long summary: every figure of the report, one row each, with its interval.

A row is one metric of one model (a source model seen digitally, or the model
of a capture session) for one attack, ε and top-k, in one view:

- ``digital``: the model's predictions on the saved PNGs, one unit per item;
- ``frame``: every good observation counts (item-bootstrap intervals);
- ``tile``: one majority-voted prediction per tile (Wilson intervals).

Metric definitions are in :mod:`analysis.metrics` (Kurakin et al. 2016,
https://arxiv.org/abs/1607.02533).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from analysis.load import Observation, Pred, ReportInput, Session, manifest_pred, observations_by_tile
from analysis.metrics import ItemData, digital_counts, photo_counts, transfer_counts, vote
from analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Rate, bootstrap_weights, rate_from_counts

TOPK = (1, 5)
VIEWS = ("digital", "frame", "tile")
SUMMARY_COLUMNS = (
    "session",
    "model",
    "model_kind",
    "source_model",
    "attack",
    "eps",
    "topk",
    "view",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "ci_method",
    "num",
    "n",
    "n_items",
    "channel_check",
)


@dataclass(frozen=True)
class SummaryRow:
    """One figure of the report. ``session`` is ``None`` for a source model seen digitally."""

    session: str | None
    model: str
    model_kind: str  # "source" or "capture"
    attack: str
    eps: float
    topk: int
    view: str
    metric: str
    rate: Rate
    source_model: str | None = None  # set on transfer rows
    channel_check: str | None = None  # the session's channel-check verdict (analysis.channel); None for source models

    def to_dict(self) -> dict[str, Any]:
        r = self.rate
        return {
            "session": self.session,
            "model": self.model,
            "model_kind": self.model_kind,
            "source_model": self.source_model,
            "attack": self.attack,
            "eps": self.eps,
            "topk": self.topk,
            "view": self.view,
            "metric": self.metric,
            "value": r.value,
            "ci_low": r.lo,
            "ci_high": r.hi,
            "ci_method": r.method,
            "num": r.num,
            "n": r.n,
            "n_items": r.n_items,
            "channel_check": self.channel_check,
        }


def source_items(inp: ReportInput, model: str) -> list[ItemData]:
    """The items as ``model`` (a source model) saw them, from batch.json."""
    return [
        ItemData(
            it.id,
            it.attack,
            it.eps,
            it.label.index,
            it.target,
            manifest_pred(it, "clean", model),
            manifest_pred(it, "adv", model),
        )
        for it in inp.batch.items
    ]


def session_items(inp: ReportInput, s: Session, view: str) -> list[ItemData]:
    """The items as session ``s``'s model saw them: digital, plus photographed units of ``view``."""
    tiles = observations_by_tile(s)
    out = []
    for it in inp.batch.items:
        d = ItemData(
            it.id,
            it.attack,
            it.eps,
            s.truth(it.label.index),
            s.truth(it.target),
            s.digital.get((it.id, "clean")),
            s.digital.get((it.id, "adv")),
        )
        for role, dest in (("clean", d.photo_clean), ("adv", d.photo_adv)):
            obs = tiles.get((it.id, role), [])
            if view == "frame":
                dest.extend(o.pred for o in obs)
            elif view == "tile" and obs:
                dest.append(vote([o.pred for o in obs]))
        if view == "frame":  # clean and adversarial tile of the item seen in the same frame
            d.photo_pairs = same_frame_pairs(tiles.get((it.id, "clean"), []), tiles.get((it.id, "adv"), []))
        elif view == "tile" and d.photo_clean and d.photo_adv:
            d.photo_pairs = [(d.photo_clean[0], d.photo_adv[0])]
        out.append(d)
    return out


def same_frame_pairs(clean: list[Observation], adv: list[Observation]) -> list[tuple[Pred, Pred]]:
    """One (clean, adversarial) pair per frame in which both tiles of an item passed the gates (first of each)."""
    first_clean: dict[int, Pred] = {}
    for o in clean:
        first_clean.setdefault(o.frame_idx, o.pred)
    out: list[tuple[Pred, Pred]] = []
    seen: set[int] = set()
    for o in adv:
        if o.frame_idx in first_clean and o.frame_idx not in seen:
            seen.add(o.frame_idx)
            out.append((first_clean[o.frame_idx], o.pred))
    return out


def cells(items: list[ItemData]) -> dict[tuple[str, float], list[ItemData]]:
    """Group items by (attack, ε), sorted."""
    out: dict[tuple[str, float], list[ItemData]] = defaultdict(list)
    for it in items:
        out[(it.attack, it.eps)].append(it)
    return dict(sorted(out.items()))


def _digital_rows(session: str | None, model: str, kind: str, items: list[ItemData]) -> list[SummaryRow]:
    rows = []
    for (attack, eps), cell in cells(items).items():
        for k in TOPK:
            for metric, counts in digital_counts(cell, k).items():
                rows.append(
                    SummaryRow(session, model, kind, attack, eps, k, "digital", metric, rate_from_counts(counts))
                )
    return rows


def _photo_rows(inp: ReportInput, s: Session, seed: int, resamples: int) -> list[SummaryRow]:
    rows = []
    for view in ("frame", "tile"):
        for (attack, eps), cell in cells(session_items(inp, s, view)).items():
            weights = (
                bootstrap_weights(len(cell), seed, f"{s.id}|{attack}|{eps:g}", resamples) if view == "frame" else None
            )
            for k in TOPK:
                for metric, counts in photo_counts(cell, k).items():
                    rows.append(
                        SummaryRow(
                            s.id,
                            s.model_name,
                            "capture",
                            attack,
                            eps,
                            k,
                            view,
                            metric,
                            rate_from_counts(counts, weights),
                        )
                    )
    return rows


def _transfer_rows(inp: ReportInput, s: Session, src_model: str, src: list[ItemData]) -> list[SummaryRow]:
    tgt = session_items(inp, s, "digital")
    rows = []
    tgt_cells = cells(tgt)
    for (attack, eps), cell in cells(src).items():
        for k in TOPK:
            counts = transfer_counts(cell, tgt_cells.get((attack, eps), []), k)
            rows.append(
                SummaryRow(
                    s.id,
                    s.model_name,
                    "capture",
                    attack,
                    eps,
                    k,
                    "digital",
                    "transfer",
                    rate_from_counts(counts),
                    src_model,
                )
            )
    return rows


def compute_summary(inp: ReportInput, seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES) -> list[SummaryRow]:
    """Every figure: source models digitally, then each session digitally, per frame and per tile, and transfer."""
    rows: list[SummaryRow] = []
    src_items = {m: source_items(inp, m) for m in inp.source_models}
    for m, items in src_items.items():
        rows += _digital_rows(None, m, "source", items)
    for s in inp.sessions:
        rows += _digital_rows(s.id, s.model_name, "capture", session_items(inp, s, "digital"))
        rows += _photo_rows(inp, s, seed, resamples)
        for m, items in src_items.items():
            rows += _transfer_rows(inp, s, m, items)
    return rows


def find(rows: list[SummaryRow], **match: Any) -> list[SummaryRow]:
    """Rows whose fields equal every keyword given (``metric="destruction", topk=1``...)."""
    return [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]


def tile_rows(inp: ReportInput) -> list[dict[str, Any]]:
    """One row per tile (session, item, role): how many good observations, the vote, and whether it is right."""
    items = {it.id: it for it in inp.batch.items}
    out = []
    for s in inp.sessions:
        for (item_id, role), obs in sorted(observations_by_tile(s).items()):
            it = items[item_id]
            v = vote([o.pred for o in obs])
            y = s.truth(it.label.index)  # in the session model's own classes
            names = s.class_names or inp.batch.class_names()
            out.append(
                {
                    "session": s.id,
                    "item": item_id,
                    "role": role,
                    "attack": it.attack,
                    "eps": it.eps,
                    "label": y,
                    "target": s.truth(it.target),
                    "n_good": len(obs),
                    "vote_top1": v.top1,
                    "vote_name": names[v.top1] if 0 <= v.top1 < len(names) else "",
                    "vote_prob": round(v.top1_prob, 6),
                    "correct_top1": y in v.ids[:1],
                    "correct_top5": y in v.ids[:5],
                }
            )
    return out
