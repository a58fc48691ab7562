"""The channel check's tables in the report: one row per session (verdict, views, baseline, the camera's medians,
why and what to do) and the observations by layout (print) read.

Built from :class:`analysis.channel.ChannelCheck`, the checks of :func:`analysis.channel.check_sessions`.
"""

from __future__ import annotations

from analysis.channel import ChannelCheck
from analysis.stats import Rate
from analysis.tables import CHECK_COLUMN, Table
from contracts.verdict import DROP_POINTS


def channel_table(checks: dict[str, ChannelCheck]) -> Table:
    """One row per session: the verdict, the views, the baseline, the camera's medians, why and what to do."""
    rows = []
    for c in checks.values():
        q = c.quality
        pre = c.prefiltered
        rows.append(
            {
                "session": c.session,
                "model": c.model,
                CHECK_COLUMN: c.verdict,
                "layouts": ", ".join(c.layouts) or "",
                "clean_digital": _round(c.frame.digital),
                "clean_baseline": _round(c.frame.baseline),
                "clean_photo_frame": c.frame.photo,
                "loss_points": _round(c.frame.drop, 100),
                "clean_photo_tile": c.tile.photo,
                "prefiltered_digital": _round(pre.digital) if pre else None,
                "prefiltered_photo": pre.photo if pre else Rate.empty(),
                "more_photos_needed": c.judged.more_photos if c.judged else None,
                "input_px": c.input_size,
                "median_tile_px": _round(q.get("tile_px"), 1, 1),
                "median_angle_deg": _round(q.get("angle_deg"), 1, 1),
                "median_blur_sigma_px": _round(q.get("blur_sigma_px"), 1, 2),
                "black_level": _round(q.get("black_level"), 1, 1),
                "paper_white": _round(q.get("paper_white"), 1, 1),
                "good_fraction": _round(q.get("good_fraction")),
                "side_p": None if c.sides is None else _round(c.sides.p),
                "reason": "; ".join(c.reasons) if c.flagged else "",
                "advice": "; ".join(c.advice) if c.flagged else "",
            }
        )
    cols = list(rows[0]) if rows else ["session", "model", CHECK_COLUMN]
    return Table(
        "channel",
        "Channel check: clean accuracy photographed against digital (top-1)",
        cols,
        rows,
        ["clean_photo_frame", "clean_photo_tile", "prefiltered_photo"],
        "Same items, same model; intervals clustered by source photo (n observations, and photos behind them). "
        "ok: the "
        f"loss's 95% upper bound at most {100 * DROP_POINTS:.0f} points and at least half of the observations through "
        "the gates; camera-limited: the loss the camera adds beyond the digital baseline (mild resampling, blur, JPEG) "
        f"bounded above {100 * DROP_POINTS:.0f} points; model-fragile: the baseline alone loses more than that; "
        "inconclusive otherwise (more_photos_needed). A flagged session's destruction and paired-survival figures are "
        "not about the attack. Medians over the clean tiles' good observations; black level and paper white: the "
        "strip's "
        "black and white patches (digital 0 and 255); side_p: Fisher's exact test, clean tiles kept left against "
        "right.",
    )


def layouts_table(checks: dict[str, ChannelCheck]) -> Table:
    """Observations by session and layout (print): which printed sheets each session read."""
    rows = [
        {"session": c.session, "layout_id": lid, CHECK_COLUMN: c.verdict, "observations": n}
        for c in checks.values()
        for lid, n in sorted(c.layouts.items())
    ]
    return Table(
        "layouts",
        "Observations by layout (print) read",
        ["session", "layout_id", CHECK_COLUMN, "observations"],
        rows,
        [],
        "Each observation records the layout its sheet was read with (the QR code names the print; "
        "layouts/<id>.json keeps every print's layout). unknown: a database from before layout ids.",
    )


def _round(v: float | None, scale: float = 1.0, digits: int = 4) -> float | None:
    return None if v is None else round(scale * v, digits)
