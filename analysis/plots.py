"""Figures of the report as PNG bytes (matplotlib, Agg canvas, no pyplot state).

Each function returns the PNG or ``None`` when there is nothing to draw. The
figures follow Kurakin et al. 2016 (https://arxiv.org/abs/1607.02533): the
destruction rate against ε per attack, accuracy digital vs photographed, and
the distribution of the capture model's confidence.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any, Callable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.load import Session
from analysis.summary import SummaryRow
from analysis.sweep import SweepPoint

DPI = 100
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _err(values: Sequence[float], los: Sequence[float], his: Sequence[float]) -> list[list[float]]:
    return [[max(0.0, v - lo) for v, lo in zip(values, los)], [max(0.0, hi - v) for v, hi in zip(values, his)]]


def _series(rows: list[SummaryRow], x_of: Callable[[SummaryRow], tuple[Any, ...]]) -> dict[tuple[Any, ...], list[tuple[float, float, float, float]]]:
    out: dict[tuple[Any, ...], list[tuple[float, float, float, float]]] = defaultdict(list)
    for r in rows:
        v = r.rate.value
        if v is None:
            continue
        lo = v if r.rate.lo is None else r.rate.lo
        hi = v if r.rate.hi is None else r.rate.hi
        out[x_of(r)].append((r.eps, v, lo, hi))
    return out


def destruction_vs_eps(rows: list[SummaryRow], metric: str = "destruction", view: str = "tile") -> bytes | None:
    """One panel per attack: destruction rate against ε, a line per session and top-k, 95% bars."""
    sel = [r for r in rows if r.metric == metric and r.view == view]
    if not any(r.rate.value is not None for r in sel):
        return None
    attacks = sorted({r.attack for r in sel})
    sessions = sorted({r.session or "" for r in sel})
    ncol = min(3, len(attacks))
    nrow = (len(attacks) + ncol - 1) // ncol
    fig = Figure(figsize=(max(6.0, 4.2 * ncol), 3.4 * nrow), layout="constrained")
    for i, attack in enumerate(attacks):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        series = _series([r for r in sel if r.attack == attack], lambda r: (r.session or "", r.topk))
        for (session, k), pts in sorted(series.items()):
            pts.sort()
            xs, vs, los, his = zip(*pts)
            color = COLORS[sessions.index(session) % len(COLORS)]
            ax.errorbar(xs, vs, yerr=_err(vs, los, his), color=color, marker="o" if k == 1 else "s",
                        linestyle="-" if k == 1 else "--", capsize=3, label=f"{session} top-{k}")
        eps = sorted({r.eps for r in sel if r.attack == attack})
        ax.set_xticks(eps)
        if len(eps) == 1:
            ax.set_xlim(eps[0] - 1, eps[0] + 1)
        ax.set_title(attack)
        ax.set_xlabel("ε (0–255)")
        ax.set_ylabel("destruction rate")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    title = "prefiltered case" if metric.endswith("prefiltered") else "average case"
    fig.suptitle(f"Destruction rate, {title} (per {view})", fontsize=11)
    return _png(fig)


def accuracy_bars(rows: list[SummaryRow], session: str | None, model: str, k: int = 1) -> bytes | None:
    """Grouped bars per (attack, ε): accuracy on clean and adversarial images, digital vs photographed (per tile)."""
    sel = [r for r in rows if r.session == session and r.model == model and r.topk == k and r.source_model is None]
    bars = [("clean, digital", "digital", "clean_acc", "#9ecae1"), ("clean, photographed", "tile", "clean_acc", "#3182bd"),
            ("adv, digital", "digital", "adv_acc", "#fcae91"), ("adv, photographed", "tile", "adv_acc", "#de2d26")]
    groups = sorted({(r.attack, r.eps) for r in sel})
    if not groups:
        return None
    bars = [b for b in bars if any(r.view == b[1] and r.metric == b[2] and r.rate.value is not None for r in sel)]
    if not bars:
        return None
    fig = Figure(figsize=(min(12.0, max(6.0, 0.4 * len(groups) * len(bars) + 2)), 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(bars)
    for j, (label, view, metric, color) in enumerate(bars):
        xs, vs, los, his = [], [], [], []
        for g, (attack, eps) in enumerate(groups):
            r = next((r for r in sel if r.attack == attack and r.eps == eps and r.view == view and r.metric == metric), None)
            if r is None or r.rate.value is None:
                continue
            xs.append(g + (j - (len(bars) - 1) / 2) * width)
            vs.append(r.rate.value)
            los.append(r.rate.lo if r.rate.lo is not None else r.rate.value)
            his.append(r.rate.hi if r.rate.hi is not None else r.rate.value)
        ax.bar(xs, vs, width, color=color, label=label, yerr=_err(vs, los, his), capsize=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{a}\nε={e:g}" for a, e in groups], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"top-{k} accuracy")
    ax.set_title(f"{session or 'source'} · {model}: top-{k} accuracy", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def confidence_hist(session: Session) -> bytes | None:
    """Histogram of the capture model's top-1 probability on good observations, clean vs adversarial."""
    clean = [o.pred.top1_prob for o in session.observations if o.role == "clean"]
    adv = [o.pred.top1_prob for o in session.observations if o.role == "adv"]
    return _prob_hist(clean, adv, "observations", f"{session.id}: confidence, good observations")


def digital_confidence_hist(clean: list[float], adv: list[float], model: str) -> bytes | None:
    """Histogram of a source model's top-1 probability on the saved PNGs."""
    return _prob_hist(clean, adv, "items", f"{model} (source): confidence on the PNGs")


def _prob_hist(clean: list[float], adv: list[float], ylabel: str, title: str) -> bytes | None:
    """Overlaid histograms of top-1 probabilities, clean in blue and adversarial in red; ``None`` when both are empty."""
    if not clean and not adv:
        return None
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    bins = [i / 20 for i in range(21)]
    for values, colour, name in ((clean, "#3182bd", "clean"), (adv, "#de2d26", "adversarial")):
        if values:
            ax.hist(values, bins=bins, alpha=0.6, color=colour, label=f"{name} (n={len(values)})")
    ax.set_xlabel("top-1 probability")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def sweep_plot(points: list[SweepPoint]) -> bytes | None:
    """One panel per transform: destruction rate against strength, top-1 and top-5."""
    transforms = sorted({p.transform for p in points})
    if not transforms:
        return None
    ncol = min(3, len(transforms))
    nrow = (len(transforms) + ncol - 1) // ncol
    fig = Figure(figsize=(max(6.0, 4.2 * ncol), 3.4 * nrow), layout="constrained")
    for i, tr in enumerate(transforms):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        for k, style in ((1, "o-"), (5, "s--")):
            pts = sorted((p.strength, p.rates["destruction"]) for p in points if p.transform == tr and p.topk == k)
            known = [(s, r.value, r.value if r.lo is None else r.lo, r.value if r.hi is None else r.hi) for s, r in pts if r.value is not None]
            if not known:
                continue
            xs = [s for s, _, _, _ in known]
            vs = [v for _, v, _, _ in known]
            los = [lo for _, _, lo, _ in known]
            his = [hi for _, _, _, hi in known]
            ax.errorbar(xs, vs, yerr=np.asarray(_err(vs, los, his)), fmt=style, capsize=3, label=f"top-{k}")
        ax.set_title(tr)
        ax.set_xlabel("strength")
        ax.set_ylabel("destruction rate")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Transformation sweep: destruction rate", fontsize=11)
    return _png(fig)
