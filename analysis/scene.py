"""Scene figures of an adversarial patch: with and without it in view, against its apparent size.

Reads the ``scene_observations`` of ``capture --scene`` sessions
(:mod:`contracts.capturedb`). For each patch (by its target class), frames are
grouped as *without* the patch (no marker of it found) and *with* it, and the
latter again by the patch's area as a share of the classified view. Per group,
with Wilson 95% intervals over frames (Wilson 1927):

- the target-class rate: top-1 is the patch's target class;
- the untargeted fooling rate: top-1 is not the object's true class (for a face
  detector's scene, :mod:`capture.scene`: the frame's face is not found). The true
  class is the session's ``--label``; without one, the most frequent top-1 of
  the session's frames without the patch stands in for it (and the table says so).

Frames of one session are not independent (a steady camera repeats itself), so
the intervals describe the frames, not the scenes; Brown et al. 2017
(https://arxiv.org/abs/1712.09665) report the same per-photo rates.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from analysis.stats import Rate, wilson
from analysis.tables import Table
from contracts.capturedb import open_db_readonly

SHARE_BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 1.0)  # patch area / view area
FINE_BINS = (
    0.0,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    1.0,
)  # for the figure, when every bin holds MIN_FINE_N frames
MIN_FINE_N = 30


@dataclass(frozen=True)
class SceneFrame:
    """One ``scene_observations`` row, as the figures need it."""

    session: str
    frame: int
    label: int | None
    patch: str | None
    target: int | None
    present: bool
    share: float | None
    top1: int


def load_scene(dbs: list[Path]) -> list[SceneFrame]:
    """Every scene row of the given capture databases (none from databases without the table)."""
    out: list[SceneFrame] = []
    for db in dbs:
        con = open_db_readonly(Path(db))
        try:
            if (
                con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='scene_observations'").fetchone()
                is None
            ):
                continue
            rows = con.execute(
                "SELECT session_id, frame_idx, label, patch, patch_target, patch_present, patch_share, top1 FROM "
                "scene_observations ORDER BY session_id, frame_idx"
            ).fetchall()
        except sqlite3.DatabaseError:
            rows = []
        finally:
            con.close()
        out += [
            SceneFrame(
                str(s),
                int(f),
                None if lab is None else int(lab),
                p,
                None if t is None else int(t),
                bool(pr),
                sh,
                int(t1),
            )
            for s, f, lab, p, t, pr, sh, t1 in rows
        ]
    return out


def _rate(k: int, n: int) -> Rate:
    ci = wilson(k, n)
    if ci is None:
        return Rate.empty()
    return Rate(k / n, ci[0], ci[1], k, n, n, "wilson")


def _bin(share: float | None, bins: tuple[float, ...] = SHARE_BINS) -> str:
    s = share or 0.0
    for lo, hi in pairwise(bins):
        if lo <= s < hi or (hi == bins[-1] and s >= lo):
            return f"{100 * lo:g}-{100 * hi:g}%"
    return "?"


def references(frames: list[SceneFrame]) -> dict[str, tuple[int | None, str]]:
    """Per session: the true class and where it came from (``--label`` or the mode without the patch)."""
    out: dict[str, tuple[int | None, str]] = {}
    for s in dict.fromkeys(f.session for f in frames):
        rows = [f for f in frames if f.session == s]
        labels = {f.label for f in rows if f.label is not None}
        if labels:
            out[s] = (labels.pop(), "--label")
            continue
        clean = Counter(f.top1 for f in rows if not f.present)
        out[s] = (clean.most_common(1)[0][0], "mode without the patch") if clean else (None, "unknown")
    return out


def scene_figures(dbs: list[Path]) -> list[dict[str, Any]]:
    """The rows of the scene table: per patch target, without / with the patch / by share bin."""
    frames = load_scene(dbs)
    if not frames:
        return []
    refs = references(frames)
    targets: list[int | None] = [*sorted({f.target for f in frames if f.target is not None})]
    if any(f.present and f.target is None for f in frames):
        targets.append(None)  # an untargeted patch, e.g. a face sticker (its fooling rate: no face found)
    rows: list[dict[str, Any]] = []
    for target in targets:
        names = sorted({f.patch for f in frames if f.target == target and f.patch})
        groups: list[tuple[str, list[SceneFrame]]] = [
            ("without patch", [f for f in frames if not f.present]),
            ("with patch", [f for f in frames if f.present and f.target == target]),
        ]
        with_patch = groups[1][1]
        for b in dict.fromkeys(_bin(f.share) for f in sorted(with_patch, key=lambda f: f.share or 0.0)):
            groups.append((f"with patch, share {b}", [f for f in with_patch if _bin(f.share) == b]))
        for name, fs in groups:
            known = [f for f in fs if refs[f.session][0] is not None]
            shares = [f.share for f in fs if f.share is not None]
            rows.append(
                {
                    "patch": ", ".join(names),
                    "target": target,
                    "group": name,
                    "frames": len(fs),
                    "median_share": round(sorted(shares)[len(shares) // 2], 4) if shares else None,
                    "target_rate": Rate.empty()
                    if target is None
                    else _rate(sum(f.top1 == target for f in fs), len(fs)),
                    "fooling_rate": _rate(sum(f.top1 != refs[f.session][0] for f in known), len(known)),
                    "true_class": ", ".join(sorted({f"{refs[f.session][0]} ({refs[f.session][1]})" for f in fs})),
                }
            )
    return rows


@dataclass(frozen=True)
class SharePoint:
    """One share bin of a :class:`SceneSeries`: its frames with the patch and their rates."""

    bin: str  # "2-5%"
    median_share: float  # of the bin's frames (0..1): where the figure draws it
    frames: int
    target_rate: Rate
    fooling_rate: Rate


@dataclass(frozen=True)
class SceneSeries:
    """One patch target in one session: rates by the patch's share of the view, and the rates without the patch."""

    target: int
    session: str
    points: list[SharePoint]
    without_target: Rate  # the session's frames without the patch: top-1 is the target
    without_fooling: Rate  # ... top-1 is not the true class
    true_class: str


def scene_series(dbs: list[Path]) -> list[SceneSeries]:
    """The figure's data: per patch target and session, the rates in each share bin (:data:`SHARE_BINS`, or the
    finer :data:`FINE_BINS` when each of its occupied bins holds at least :data:`MIN_FINE_N` frames)."""
    frames = load_scene(dbs)
    refs = references(frames)
    out: list[SceneSeries] = []
    for target in sorted({f.target for f in frames if f.target is not None}):
        for session in dict.fromkeys(f.session for f in frames if f.target == target and f.present):
            truth = refs[session][0]
            with_patch = sorted(
                (f for f in frames if f.session == session and f.present and f.target == target),
                key=lambda f: f.share or 0.0,
            )
            fine = Counter(_bin(f.share, FINE_BINS) for f in with_patch)
            bins = FINE_BINS if min(fine.values()) >= MIN_FINE_N else SHARE_BINS
            points = []
            for b in dict.fromkeys(_bin(f.share, bins) for f in with_patch):
                fs = [f for f in with_patch if _bin(f.share, bins) == b]
                shares = sorted(f.share or 0.0 for f in fs)
                points.append(
                    SharePoint(
                        b,
                        shares[len(shares) // 2],
                        len(fs),
                        _rate(sum(f.top1 == target for f in fs), len(fs)),
                        _rate(sum(f.top1 != truth for f in fs), len(fs)) if truth is not None else Rate.empty(),
                    )
                )
            without = [f for f in frames if f.session == session and not f.present]
            out.append(
                SceneSeries(
                    target,
                    session,
                    points,
                    _rate(sum(f.top1 == target for f in without), len(without)),
                    _rate(sum(f.top1 != truth for f in without), len(without)) if truth is not None else Rate.empty(),
                    f"{truth} ({refs[session][1]})",
                )
            )
    return out


def scene_table(rows: list[dict[str, Any]]) -> Any:
    """A rich table of :func:`scene_figures` for the terminal."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    t = RichTable(title="scene: the patch in view and not", show_edge=False)
    for col in (
        "target",
        "group",
        "frames",
        "median share",
        "target rate [95% CI]",
        "fooling rate [95% CI]",
        "true class",
    ):
        t.add_column(col)

    def fmt(r: Rate) -> str:
        return (
            "-"
            if r.value is None
            else f"{100 * r.value:.0f}% [{100 * (r.lo or 0):.0f}, {100 * (r.hi or 0):.0f}] ({r.num}/{r.n})"
        )

    for r in rows:
        share = "-" if r["median_share"] is None else f"{100 * r['median_share']:.1f}%"
        t.add_row(
            escape("untargeted" if r["target"] is None else str(r["target"])),
            escape(str(r["group"])),
            str(r["frames"]),
            share,
            fmt(r["target_rate"]),
            fmt(r["fooling_rate"]),
            escape(str(r["true_class"])),
        )
    if not rows:
        t.caption = "no scene frames with a patch target (capture with --scene and a printed patch card)"
    return t


def scene_report_table(dbs: list[Path]) -> Table | None:
    """The report's ``scene`` table (CSV/JSON/HTML), or ``None`` without scene frames."""
    rows = scene_figures(dbs)
    if not rows:
        return None
    note = (
        "Frames of capture --scene sessions. Wilson 95% intervals over frames. Fooling: top-1 is not the true class "
        "(--label, else the most frequent top-1 without the patch). Share: the patch's area over the classified view's."
    )
    return Table(
        "scene",
        "Adversarial patch in the scene: with and without, by apparent size",
        ["patch", "target", "group", "frames", "median_share", "target_rate", "fooling_rate", "true_class"],
        rows,
        ["target_rate", "fooling_rate"],
        note,
    )
