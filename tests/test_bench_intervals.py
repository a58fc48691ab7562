"""The gates' and stages' benches print intervals clustered by photo (issue 27), checked on small known inputs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from analysis.stats import wilson

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench() -> tuple[ModuleType, ModuleType]:
    """bench/gates.py and bench/stages.py, imported as their scripts import each other."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("gates"), importlib.import_module("stages")
    finally:
        sys.path.remove(str(BENCH))


def test_photo_hits_groups_photo_major_units_by_photo(bench: tuple[ModuleType, ModuleType]) -> None:
    gates, _ = bench
    truth = np.array([7, 3])
    top1 = np.array([7, 7, 1, 3, 0, 3])  # photo 0: 3 draws, photo 1: 3 draws
    assert gates.photo_hits(top1, truth, 3).tolist() == [[True, True, False], [True, False, True]]


def test_views_that_agree_within_a_photo_count_once(bench: tuple[ModuleType, ModuleType]) -> None:
    gates, _ = bench
    # 10 photos, 2 views each; 5 photos right in both views, 5 wrong in both: 20 views, but 10 units.
    hits = np.array([[True, True]] * 5 + [[False, False]] * 5)
    assert gates.rate(hits) == "50 % [24-76]"  # Wilson on n = 10 photos
    lo, hi = wilson(10, 20) or (0.0, 1.0)
    assert f"[{100 * lo:.0f}-{100 * hi:.0f}]" == "[30-70]"  # the plain interval over views it replaces


def test_independent_views_keep_their_number(bench: tuple[ModuleType, ModuleType]) -> None:
    gates, _ = bench
    # 20 photos, each right in exactly one of its two views: no between-photo variance, so n_eff = 40 views.
    hits = np.array([[True, False], [False, True]] * 10)
    assert gates.rate(hits) == "50 % [35-65]"


def test_one_unit_per_photo_is_the_plain_wilson_interval(bench: tuple[ModuleType, ModuleType]) -> None:
    gates, _ = bench
    hits = np.array([True] * 17 + [False] * 3)
    lo, hi = wilson(17, 20) or (0.0, 1.0)
    assert gates.rate(hits) == f"85 % [{100 * lo:.0f}-{100 * hi:.0f}]" == "85 % [64-95]"


def test_stages_cell_clusters_the_draws_of_each_photo(bench: tuple[ModuleType, ModuleType]) -> None:
    _, stages = bench
    truth = np.arange(10)
    # 6 draws per photo; photos 0-5 right in every draw, 6-9 wrong in every draw: 60 draws, 10 photos.
    top1 = np.repeat(np.where(truth < 6, truth, -1), 6)
    assert stages.cell(top1, truth, 6) == "60 % [31-83] (n = 60, 10 photos)"


def test_stages_reads_a_half_of_the_photo_split_as_craft_does(bench: tuple[ModuleType, ModuleType]) -> None:
    """``bench/stages.py --images tuning``: the split's tuning half, ImageNet labels where the photo has one (-1 for
    the others, which take the label model's top-1), and PyWavelets' ``.npz`` photos read as craft reads them."""
    _, stages = bench
    from craft.images import split_photos

    photos = stages._split("tuning")
    want = split_photos("tuning")
    assert [k for k, _, _ in photos] == [p.key for p in want] and len(photos) >= 20
    assert [lab for _, lab, _ in photos] == [-1 if p.label is None else p.label for p in want]
    assert sum(lab >= 0 for _, lab, _ in photos) == 10  # foolbox's ImageNet photos, as the split file says
    npz = next(p for _, _, p in photos if p.suffix == ".npz")
    img = stages._rgb(npz)
    assert img.mode == "RGB" and min(img.size) > 100


def test_pigeonhole_interval_widens_when_runs_differ_and_photos_do_not() -> None:
    """``bench/calibrate_pool.crossed`` (Owen 2007) resamples runs as well as photos: when one run's sessions agree on
    every tile and another's on none, each photo's mean is the same and the by-photo interval has no width, but an
    interval that resamples runs must span most of 0..1."""
    pool = importlib.import_module("bench.calibrate_pool")
    photo = {(r, f"i{p}", "clean"): f"p{p}" for r in ("run-a", "run-b") for p in range(12)}
    values = {k: float(k[0] == "run-a") for k in photo}
    m, lo, hi = pool.clustered(values, photo)
    assert (m, lo, hi) == (0.5, 0.5, 0.5)
    m2, lo2, hi2 = pool.crossed(values, photo)
    assert m2 == 0.5 and lo2 <= 0.25 and hi2 >= 0.75
    # the other way about: runs alike, photos apart; the two intervals then agree roughly
    values = {k: float(int(k[1][1:]) % 2) for k in photo}
    _, lo, hi = pool.clustered(values, photo)
    _, lo2, hi2 = pool.crossed(values, photo)
    assert hi - lo > 0.3 and abs((hi2 - lo2) - (hi - lo)) < 0.1
    assert pool.crossed(values, photo, seed=3) == pool.crossed(values, photo, seed=3)


def test_paired_survival_counts_photos_that_are_pairs_under_both_attacks() -> None:
    """``bench/eot.paired_survival``: only items that are a pair (fooled digitally, clean tile recognised, adversarial
    tile seen) under both attacks; the bootstrap interval holds the point and has no width when every photo differs
    alike; a photo's items at several ε are one cluster."""
    eot = importlib.import_module("bench.eot")
    Outcome = eot.Outcome
    survives, lost = Outcome(True, True, True, True), Outcome(True, True, True, False)
    a = {(f"p{i}", 16.0): survives for i in range(10)} | {("p10", 16.0): Outcome(False, True, True, True)}
    b = {(f"p{i}", 16.0): (lost if i < 4 else survives) for i in range(10)} | {("p10", 16.0): survives}
    line = eot.paired_survival(a, b)
    assert line.startswith("+40.0 points [")
    assert "(n = 10 items of 10 photos; 4 items survive only the first, 0 only the second; photos 4 to 0, exact" in line
    assert line.endswith("over photos p = 0.125)")
    lo, hi = (float(x) for x in line.split("[")[1].split("]")[0].split(", "))
    assert 0.0 < lo < 40.0 < hi <= 80.0
    assert eot.paired_survival(a, {k: lost for k in b}).startswith("+100.0 points [+100.0, +100.0]")
    assert eot.paired_survival(a, {}) == "- (n = 0)"
    # the same 10 photos at a second ε that differs the other way: each photo's mean is 0 for the 4 that differ, so
    # the interval over photos is far narrower than one that took the 20 items as independent
    a2 = a | {(f"p{i}", 4.0): (lost if i < 4 else survives) for i in range(10)}
    b2 = b | {(f"p{i}", 4.0): survives for i in range(10)}
    line = eot.paired_survival(a2, b2)
    assert line.startswith(
        "+0.0 points [+0.0, +0.0] (n = 20 items of 10 photos; 4 items survive only the first, 4 only"
    )
    assert "photos 0 to 0, exact sign test over photos p = 1)" in line  # a photo whose items cancel is no vote


def test_end_to_end_success_keeps_items_an_attack_does_not_fool_digitally() -> None:
    """``paired_survival(..., end_to_end=True)`` counts an item whose clean tile is recognised and adversarial tile
    seen under both attacks even where one attack's PNG does not fool the target digitally, so an attack that loses
    digital reach is not credited with the survival of the items it kept."""
    eot = importlib.import_module("bench.eot")
    Outcome = eot.Outcome
    survives, lost = Outcome(True, True, True, True), Outcome(True, True, True, False)
    weak = Outcome(False, True, True, False)  # does not fool digitally, and its tile does not fool either
    a = {("p0", 2.0): survives, ("p1", 2.0): weak, ("p2", 2.0): weak}
    b = {("p0", 2.0): lost, ("p1", 2.0): survives, ("p2", 2.0): survives}
    assert eot.paired_survival(a, b).startswith("+100.0 points [+100.0, +100.0] (n = 1 items of 1 photos;")
    line = eot.paired_survival(a, b, end_to_end=True)
    assert (
        line.startswith("-33.3 points [")
        and "(n = 3 items of 3 photos; 1 items survive only the first, 2 only the second; photos 1 to 2," in line
    )


def test_eot_pool_takes_one_bim_and_one_eot_batch_per_run(tmp_path: Path) -> None:
    """``bench/eot_pool.batches``: a run's plain-BIM and EOT batches; the layout-matched EOT is left out, and a
    folder that is not one ``bench/eot.py`` run is refused by name."""
    pool = importlib.import_module("bench.eot_pool")
    for name in ("bim-fitted", "eot-fitted", "eot-layout-fitted", "onnx"):
        (tmp_path / "run" / name).mkdir(parents=True)
    assert pool.batches(tmp_path / "run") == (tmp_path / "run" / "bim-fitted", tmp_path / "run" / "eot-fitted")
    (tmp_path / "run" / "eot-harsh").mkdir()
    with pytest.raises(ValueError, match="run: expected one bim-\\* and one eot-\\* batch"):
        pool.batches(tmp_path / "run")


def test_kurakins_order_is_tested_paired_by_photo_per_eps_and_over_both(tmp_path: Path) -> None:
    """``bench/kurakin.order_lines``: 4 photos, each attacked by fgsm, bim and ll at ε 8 and 16 (synthetic captures);
    a line per pair and ε and one over both ε, whose items are the two ε's together."""
    from dataclasses import replace

    from analysis.synthetic import Odds, write_capture_db
    from contracts.manifest import save_batch
    from testkit.batch import write_batch

    kurakin = importlib.import_module("bench.kurakin")
    b = write_batch(tmp_path, n_items=24, attacks=("fgsm", "bim", "ll"), eps=(8.0, 16.0))
    items = [
        replace(it, source=replace(it.source, file=f"photo-{i // 6}"), target=None) for i, it in enumerate(b.items)
    ]
    b = replace(b, items=items)
    save_batch(tmp_path, b)
    write_capture_db(tmp_path / "captures" / "s.sqlite", b, "s", odds=Odds(adv_digital=0.0, good=1.0), n_frames=40)
    lines = kurakin.order_lines(tmp_path)
    heads = [line.split(":")[0] for line in lines]
    assert heads == [
        f"- destruction, {hi} − {lo}, {e}"
        for lo, hi in (("fast", "basic iterative"), ("basic iterative", "iterative least-likely"))
        + (("fast", "iterative least-likely"),)
        for e in ("ε 8", "ε 16", "both ε")
    ]
    n_items = [int(line.split("(")[1].split(" items")[0]) for line in lines]
    assert all(n_items[i + 2] == n_items[i] + n_items[i + 1] and 0 < n_items[i + 2] <= 8 for i in (0, 3, 6))
