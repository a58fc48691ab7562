"""The edge fit says when the strip cannot tell sharpening from blur (``channel.calibrate_edges``).

Observed edges are made by the fit's own forward model (a slanted edge through a defocus, an unsharp mask
and JPEG, measured by capture's ESF estimator) plus per-view noise drawn from a seeded generator, so the
truth is known: an unsharp mask of 1.5 at 1 px on a defocus of 1 px. With quiet edges the fit names that
one mask; with edges as noisy as a short session's, several masks fit within the noise and the fit and
calibrate's notes say so instead of writing one of them as measured.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from channel.calibrate_edges import EdgeFit, fit_edges, median_variance, synthetic_esf
from channel.calibrate_notes import edge_notes
from contracts.profile import Isp, load_profile

TRUE_AMOUNT, TRUE_SIGMA, TRUE_DEFOCUS = 1.5, 1.0, 1.0
VIEWS = 12


def observed(noise: float, seed: int) -> np.ndarray:
    """``VIEWS`` edge spread functions of the true camera, each with independent per-bin noise."""
    printer = load_profile("office-laser-webcam").printer
    isp = replace(Isp(), sharpen_amount=TRUE_AMOUNT, sharpen_sigma_px=TRUE_SIGMA)
    esf = synthetic_esf(printer, isp, 2.2, TRUE_DEFOCUS, 90)
    assert esf is not None
    rng = np.random.default_rng(seed)
    return esf + rng.normal(0.0, noise, (VIEWS, len(esf)))


def fit(rows: np.ndarray) -> EdgeFit:
    got = fit_edges(rows, np.full(len(rows), 1.2), load_profile("office-laser-webcam").printer, Isp(), 2.2, 90)
    assert got is not None
    return got


def test_the_median_variance_is_that_of_a_median() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(0.0, 0.1, (400, 25))
    # sqrt(pi/2) s / sqrt(n): a median's standard error for normal data
    assert median_variance(rows) == pytest.approx(np.pi / 2 * 0.01 / 400, rel=0.1)
    assert median_variance(rows[:1]) == 0.0


def test_quiet_edges_single_out_the_mask() -> None:
    got = fit(observed(0.002, seed=1))
    assert (got.amount, got.sigma) == (TRUE_AMOUNT, TRUE_SIGMA)
    assert got.determined and got.amounts == (TRUE_AMOUNT, TRUE_AMOUNT)
    assert abs(got.defocus[0] - TRUE_DEFOCUS) < 0.1
    assert "weakly determined" not in edge_notes(got, 90)["isp.sharpen_amount"]


def test_noisy_edges_say_the_mask_is_not_determined() -> None:
    got = fit(observed(0.03, seed=1))
    assert not got.determined
    lo, hi = got.amounts
    assert lo <= TRUE_AMOUNT <= hi and hi - lo >= 1.0
    assert (TRUE_AMOUNT, TRUE_SIGMA) in {(a, s) for a, s, _ in got.alike}
    assert got.defocus_alike[0] < TRUE_DEFOCUS < got.defocus_alike[1]
    notes = edge_notes(got, 90)
    for key in ("isp.sharpen_amount", "camera.defocus_sigma_px"):
        assert ", weakly determined (trades off with" in notes[key].split(":")[0], notes[key]
        assert f"unsharp amounts {lo:g} to {hi:g}" in notes[key]


def test_few_views_with_gaps_still_fit() -> None:
    rows = observed(0.01, seed=2)[:3]
    rows[0, :5] = np.nan  # a view whose edge ran off its window on one side
    rows[1, -3:] = np.nan
    got = fit(rows)
    assert got.n == 3 and (got.amount, got.sigma) in {(a, s) for a, s, _ in got.alike}
    assert got.amounts[0] <= got.amount <= got.amounts[1]
