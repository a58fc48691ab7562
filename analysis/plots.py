"""Figures of the report: PNG for the page, SVG and PDF (vector) for a paper.

matplotlib with the Agg canvas and no pyplot state. Each function returns a
:class:`Figures` (the same figure as PNG, SVG and PDF bytes) or ``None`` when
there is nothing to draw. The figures follow Kurakin et al. 2016
(https://arxiv.org/abs/1607.02533): the destruction rate against ε per attack,
accuracy digital vs photographed, the channel check, and the distribution of the
capture model's confidence.

For print: every axis names its quantity and unit, rates are in percent, the
legend sits outside the axes (never over data, never under a title), each session
has its own colour and series are nudged apart along x so that their 95% interval
bars do not hide each other. Nothing is told by colour alone (a greyscale print, a
colour-blind reader): top-1 and top-5 differ in marker and line style (solid and
dashed), photographed bars are hatched, and counts have integer ticks.
Camera-limited sessions are drawn hollow, dotted (top-1) or dash-dotted (top-5),
and say so in the legend.
"""

from __future__ import annotations

import functools
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from analysis.load import Session
from analysis.summary import SummaryRow

DPI = 100
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<")
# Line style per top-k, and for a camera-limited session: never the same for top-1 and top-5.
LINESTYLES = {(1, False): "-", (5, False): "--", (1, True): ":", (5, True): "-."}


def series_style(session_index: int, k: int, limited: bool) -> tuple[str, str]:
    """The marker and line style of a session's top-``k`` series: each (session, k) its own marker,
    top-1 and top-5 their own line style, so that no series is told from another by colour alone."""
    return MARKERS[(2 * session_index + (k != 1)) % len(MARKERS)], LINESTYLES[(1 if k == 1 else 5, limited)]


EPS_UNIT = "ε (0–255 pixel levels)"


@dataclass(frozen=True)
class Figures:
    """One figure in three formats."""

    png: bytes
    svg: bytes
    pdf: bytes


def _render(fig: Figure) -> Figures:
    """PNG, SVG and PDF of ``fig``, without dates or software names (reproducible bytes).

    The constrained layout is solved once, for the PNG; the vector copies reuse it
    (same positions, a third of the layout time). Text stays text: TrueType
    (Type 42) fonts in the PDF, as publishers ask (no Type 3), and ``<text>``
    elements in the SVG, so labels can be edited and searched.
    """
    _legend_clear_of_title(fig, FigureCanvasAgg(fig))
    out = {}
    with rc_context({"pdf.fonttype": 42, "svg.fonttype": "none"}):
        for fmt, meta in (
            ("png", {"Software": None}),
            ("svg", {"Date": None, "Creator": None}),
            ("pdf", {"CreationDate": None, "Creator": None, "Producer": None}),
        ):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=DPI, metadata=meta)
            out[fmt] = buf.getvalue()
            fig.set_layout_engine("none")
    return Figures(out["png"], out["svg"], out["pdf"])


def rendered(build: Callable[..., Figure | None]) -> Callable[..., Figures | None]:
    """Turn a function that builds a :class:`Figure` into one that returns its :class:`Figures`.

    The builder stays reachable as ``.figure`` (tests measure where legends sit).
    """

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Figures | None:
        with rc_context({"text.parse_math": False}):  # names from files ("$x^{$") are text, never mathtext
            fig = build(*args, **kwargs)
        return None if fig is None else _render(fig)

    wrapper.figure = build  # type: ignore[attr-defined]
    return wrapper


def err(values: Sequence[float], los: Sequence[float], his: Sequence[float]) -> list[list[float]]:
    return [
        [max(0.0, v - lo) for v, lo in zip(values, los, strict=True)],
        [max(0.0, hi - v) for v, hi in zip(values, his, strict=True)],
    ]


def pct_points(pts: list[tuple[float, Any]]) -> tuple[list[float], list[float], list[float], list[float]]:
    """(x, value %, low %, high %) from (x, Rate) pairs with a value; a missing interval bound is the value."""
    xs, vs, los, his = [], [], [], []
    for x, r in pts:
        if r.value is None:
            continue
        xs.append(x)
        vs.append(100 * r.value)
        los.append(100 * (r.value if r.lo is None else r.lo))
        his.append(100 * (r.value if r.hi is None else r.hi))
    return xs, vs, los, his


def legend_outside(
    fig: Figure, handles: list[Any], labels: list[str], title: str | None = None, below: bool = False
) -> None:
    """One legend for the figure, to the right of (or below) every axes; constrained layout makes room."""
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside lower center" if below else "outside right upper",
            ncols=min(2, len(handles)) if below else 1,
            fontsize=7,
            title=title,
            title_fontsize=7,
            frameon=False,
        )


def _legend_clear_of_title(fig: Figure, canvas: FigureCanvasAgg) -> None:
    """Move a legend that the laid-out figure title runs into (a long session id, say) below the axes."""
    text = fig.get_suptitle()
    titles = fig.findobj(lambda a: isinstance(a, Text) and a.figure is fig and a.get_text() == text)
    if not text or not titles or not fig.legends:
        return
    canvas.draw()
    renderer = canvas.get_renderer()
    box = titles[0].get_window_extent(renderer)
    for leg in list(fig.legends):
        if leg.get_window_extent(renderer).overlaps(box):
            handles, labels = list(leg.legend_handles), [t.get_text() for t in leg.get_texts()]
            name = leg.get_title().get_text() or None
            leg.remove()
            legend_outside(fig, handles, labels, name, below=True)


def _nudge(xs_all: list[float], n_series: int) -> float:
    """How far apart along x to draw ``n_series`` series at the same x values."""
    xs = sorted(set(xs_all))
    gap = min((b - a for a, b in pairwise(xs)), default=2.0)
    return 0.25 * gap / (n_series - 1) if n_series > 1 else 0.0


@rendered
def destruction_vs_eps(
    rows: list[SummaryRow], metric: str = "destruction", view: str = "tile", limited: set[str] | None = None
) -> Figure | None:
    """One panel per attack: destruction rate (%) against ε, a line per session and top-k, 95% interval bars."""
    limited = limited or set()
    sel = [r for r in rows if r.metric == metric and r.view == view]
    if not any(r.rate.value is not None for r in sel):
        return None
    attacks = sorted({r.attack for r in sel})
    sessions = sorted({r.session or "" for r in sel})
    series_keys = sorted({(r.session or "", r.topk) for r in sel})
    ncol = min(3, len(attacks))
    nrow = (len(attacks) + ncol - 1) // ncol
    fig = Figure(figsize=(max(6.5, 3.8 * ncol + 2.2), 3.2 * nrow), layout="constrained")
    step = _nudge([r.eps for r in sel], len(series_keys))
    handles: dict[str, Any] = {}
    for i, attack in enumerate(attacks):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        by: dict[tuple[str, int], list[tuple[float, Any]]] = defaultdict(list)
        for r in sel:
            if r.attack == attack:
                by[(r.session or "", r.topk)].append((r.eps, r.rate))
        for j, key in enumerate(series_keys):
            session, k = key
            xs, vs, los, his = pct_points(sorted(by.get(key, []), key=lambda p: p[0]))
            if not xs:
                continue
            si = sessions.index(session)
            lim = session in limited
            off = (j - (len(series_keys) - 1) / 2) * step
            marker, linestyle = series_style(si, k, lim)
            h = ax.errorbar(
                [x + off for x in xs],
                vs,
                yerr=err(vs, los, his),
                color=COLORS[si % len(COLORS)],
                marker=marker,
                markerfacecolor="none" if lim else COLORS[si % len(COLORS)],
                linestyle=linestyle,
                capsize=3,
                linewidth=1.2,
                markersize=5,
                label=(label := f"{session} top-{k}" + (" (camera-limited)" if lim else "")),
            )
            handles.setdefault(label, h)
        eps = sorted({r.eps for r in sel if r.attack == attack})
        ax.set_xticks(eps)
        ax.set_xticklabels([f"{e:g}" for e in eps])
        if len(eps) == 1:
            ax.set_xlim(eps[0] - 1, eps[0] + 1)
        ax.set_title(attack, fontsize=10)
        ax.set_xlabel(EPS_UNIT)
        ax.set_ylabel("destruction rate (%)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    legend_outside(fig, list(handles.values()), list(handles), "session, top-k")
    title = "prefiltered case" if metric.endswith("prefiltered") else "average case"
    fig.suptitle(f"Destruction rate, {title} (per {view}, 95% intervals)", fontsize=11)
    return fig


@rendered
def accuracy_bars(rows: list[SummaryRow], session: str | None, model: str, k: int = 1) -> Figure | None:
    """Grouped bars per (attack, ε): accuracy (%) on clean and adversarial
    images, digital vs photographed (per tile).
    """
    sel = [r for r in rows if r.session == session and r.model == model and r.topk == k and r.source_model is None]
    bars = [  # photographed bars hatched, adversarial ones with a dark edge: told apart without colour
        ("clean, digital", "digital", "clean_acc", "#9ecae1"),
        ("clean, photographed", "tile", "clean_acc", "#3182bd"),
        ("adv, digital", "digital", "adv_acc", "#fcae91"),
        ("adv, photographed", "tile", "adv_acc", "#de2d26"),
    ]
    hatch = {"digital": "", "tile": "////"}
    groups = sorted({(r.attack, r.eps) for r in sel})
    if not groups:
        return None
    bars = [b for b in bars if any(r.view == b[1] and r.metric == b[2] and r.rate.value is not None for r in sel)]
    if not bars:
        return None
    fig = Figure(figsize=(min(12.0, max(6.5, 0.4 * len(groups) * len(bars) + 3)), 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(bars)
    for j, (label, view, metric, color) in enumerate(bars):
        pts = []
        for g, (attack, eps) in enumerate(groups):
            r = next(
                (r for r in sel if r.attack == attack and r.eps == eps and r.view == view and r.metric == metric), None
            )
            if r is not None:
                pts.append((g + (j - (len(bars) - 1) / 2) * width, r.rate))
        xs, vs, los, his = pct_points(pts)
        ax.bar(
            xs,
            vs,
            width,
            color=color,
            label=label,
            yerr=err(vs, los, his),
            capsize=2,
            hatch=hatch[view],
            edgecolor="black" if metric == "adv_acc" else "white",
            linewidth=0.6,
        )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{a}\nε={e:g}" for a, e in groups], fontsize=8)
    ax.set_xlabel(f"attack and {EPS_UNIT}")
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"top-{k} accuracy (%)")
    fig.suptitle(f"{session or 'source'} · {model}: top-{k} accuracy (95% intervals)", fontsize=10)
    h, lab = ax.get_legend_handles_labels()
    legend_outside(fig, h, lab)
    ax.grid(axis="y", alpha=0.3)
    return fig


@rendered
def channel_check(checks: Sequence[Any], drop_points: float) -> Figure | None:
    """Per session: clean top-1 accuracy (%) digital vs photographed per tile and per frame, with the threshold.

    ``checks`` are :class:`analysis.channel.ChannelCheck`; ``drop_points`` the
    allowed drop (a fraction, 0.10 for 10 points).
    """
    checks = [c for c in checks if c.tile.digital is not None or c.frame.digital is not None]
    if not checks:
        return None
    fig = Figure(figsize=(max(6.5, 1.3 * len(checks) + 4), 3.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    handles: dict[str, Any] = {}
    for i, c in enumerate(checks):
        ref = c.tile.digital if c.tile.digital is not None else c.frame.digital
        h = ax.hlines(100 * ref, i - 0.35, i + 0.35, color="black", linewidth=1.5)
        handles.setdefault("clean, digital (same items)", h)
        band = ax.fill_between(
            [i - 0.35, i + 0.35],
            [100 * (ref - drop_points)] * 2,
            [100 * ref] * 2,
            color="#cccccc",
            alpha=0.5,
            linewidth=0,
        )
        handles.setdefault(f"allowed drop ({100 * drop_points:.0f} points)", band)
        for off, v, color, marker in ((-0.12, c.tile, "#3182bd", "o"), (0.12, c.frame, "#6baed6", "s")):
            xs, vs, los, his = pct_points([(i + off, v.photo)])
            if xs:
                h2 = ax.errorbar(xs, vs, yerr=err(vs, los, his), fmt=marker, color=color, capsize=4)
                handles.setdefault(f"clean, photographed per {v.view}", h2)
    ax.set_xticks(range(len(checks)))
    ax.set_xticklabels([f"{c.session}\n{c.model}\n{c.verdict}" for c in checks], fontsize=8)
    ax.set_xlim(-0.6, len(checks) - 0.4)
    ax.set_xlabel("capture session, model and verdict")
    ax.set_ylabel("clean top-1 accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Channel check: clean top-1 accuracy, photographed vs digital (95% intervals)", fontsize=10)
    legend_outside(fig, list(handles.values()), list(handles), below=True)
    return fig


def confidence_hist(session: Session) -> Figures | None:
    """Histogram of the capture model's top-1 probability on good observations, clean vs adversarial."""
    clean = [o.pred.top1_prob for o in session.observations if o.role == "clean"]
    adv = [o.pred.top1_prob for o in session.observations if o.role == "adv"]
    return _prob_hist(clean, adv, "good observations (count)", f"{session.id}: confidence, good observations")


def digital_confidence_hist(clean: list[float], adv: list[float], model: str) -> Figures | None:
    """Histogram of a source model's top-1 probability on the saved PNGs."""
    return _prob_hist(clean, adv, "items (count)", f"{model} (source): confidence on the PNGs")


@rendered
def _prob_hist(clean: list[float], adv: list[float], ylabel: str, title: str) -> Figure | None:
    """Overlaid histograms of top-1 probabilities, clean in blue and
    adversarial in red; ``None`` when both are empty.
    """
    if not clean and not adv:
        return None
    fig = Figure(figsize=(6.5, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    bins = [i / 20 for i in range(21)]
    for values, colour, name, hatch in ((clean, "#3182bd", "clean", ""), (adv, "#de2d26", "adversarial", "////")):
        if values:
            ax.hist(
                values,
                bins=bins,
                alpha=0.6,
                color=colour,
                label=f"{name} (n={len(values)})",
                hatch=hatch,
                edgecolor="black",
                linewidth=0.5,
            )
    ax.set_xlabel("top-1 probability (0–1)")
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count: no 0.5
    ax.set_xlim(0, 1)
    fig.suptitle(title, fontsize=10)
    h, lab = ax.get_legend_handles_labels()
    legend_outside(fig, h, lab)
    return fig


__all__ = [
    "Figures",
    "accuracy_bars",
    "channel_check",
    "confidence_hist",
    "destruction_vs_eps",
    "digital_confidence_hist",
    "err",
    "legend_outside",
    "pct_points",
    "rendered",
]
