"""Metrics, intervals and loading of the analysis stage, on tiny hand-made data with known answers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.load import Pred, load_input
from analysis.metrics import (
    ItemData,
    correct,
    digital_counts,
    photo_counts,
    prefiltered,
    succeeded,
    transfer_counts,
    vote,
)
from analysis.stats import Rate, bootstrap_ratio, bootstrap_weights, rate_from_counts, ratio, wilson
from analysis.summary import compute_summary, find
from analysis.tables import fmt_rate
from contracts.capturedb import create_db, encode_top5
from contracts.errors import UserError
from contracts.manifest import load_batch, save_batch

RIGHT, WRONG = 10, 99  # a true label and some other class


def P(*pairs: tuple[int, float]) -> Pred:
    return Pred.from_pairs(pairs)


def top5(first: int, p: float = 0.9, label_at: int | None = None) -> Pred:
    """A top-5 whose first class is ``first``; ``label_at`` puts RIGHT at that rank (1-based) as well."""
    ids = [first, 201, 202, 203, 204]
    if label_at is not None and label_at > 1:
        ids[label_at - 1] = RIGHT
    return Pred(tuple(ids), (p, 0.04, 0.03, 0.02, 0.01))


R, W = top5(RIGHT), top5(WRONG)


# ---------------------------------------------------------------- Wilson and friends


@pytest.mark.parametrize(
    "k,n,lo,hi",
    [  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson score)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson(k, n)
    assert got is not None
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_edges_and_symmetry() -> None:
    assert wilson(0, 0) is None
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 10)[0] == 0.0  # type: ignore[index]
    lo, hi = wilson(3, 17)  # type: ignore[misc]
    lo2, hi2 = wilson(14, 17)  # type: ignore[misc]
    assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
    with pytest.raises(ValueError):
        wilson(5, 3)


def test_ratio_and_empty_rate_never_divide_by_zero() -> None:
    assert ratio(1, 0) is None and ratio(1, 4) == 0.25
    r = rate_from_counts([])
    assert r == Rate.empty() and r.value is None
    assert rate_from_counts([(0, 0), (0, 0)]).value is None
    assert fmt_rate(r) == "n/a (n=0)"


def test_rate_uses_wilson_for_one_unit_per_item_and_bootstrap_for_frames() -> None:
    r = rate_from_counts([(1, 1), (0, 1), (1, 1), (0, 0)])
    assert (r.value, r.num, r.n, r.n_items, r.method) == (2 / 3, 2, 3, 3, "wilson")
    assert (r.lo, r.hi) == pytest.approx(wilson(2, 3))
    counts = [(3, 4), (0, 2), (5, 5), (1, 3)]
    w = bootstrap_weights(len(counts), seed=7, key="cell", resamples=500)
    r = rate_from_counts(counts, w)
    assert r.method == "bootstrap" and r.value == pytest.approx(9 / 14) and r.n == 14 and r.n_items == 4
    assert r.lo is not None and r.hi is not None and r.lo <= r.value <= r.hi
    # reproducible from the seed and the key; another key draws other items
    assert rate_from_counts(counts, bootstrap_weights(4, 7, "cell", 500)) == r
    assert not np.array_equal(bootstrap_weights(4, 7, "other", 500), w)
    with pytest.raises(ValueError):
        rate_from_counts(counts)  # several frames per item need weights
    one = rate_from_counts([(3, 5), (0, 0)], bootstrap_weights(2, 7, "one", 100))
    assert (one.value, one.lo, one.hi, one.n_items) == (0.6, None, None, 1)  # one item's frames: no interval


def test_bootstrap_resamples_items_not_frames() -> None:
    # Every item has the same per-item ratio: resampling items cannot move it.
    counts = [(1, 2), (5, 10), (25, 50)]
    boot = bootstrap_ratio(
        np.array([c[0] for c in counts]), np.array([c[1] for c in counts]), bootstrap_weights(3, 0, "k", 300)
    )
    assert boot == pytest.approx((0.5, 0.5))
    # ...but the reported interval never collapses to a point: it is widened to the Wilson interval on the effective n
    r = rate_from_counts(counts, bootstrap_weights(3, 0, "k", 300))
    assert r.lo < 0.5 < r.hi and (r.lo, r.hi) == pytest.approx(wilson(31, 62))  # type: ignore[operator]
    # One item with 100 frames: the interval is as wide as one item's worth, not 100 frames' worth.
    counts = [(100, 100), (0, 1), (1, 1), (0, 1)]
    r = rate_from_counts(counts, bootstrap_weights(4, 0, "k", 2000))
    assert r.hi - r.lo > 0.5  # type: ignore[operator]
    w = wilson(r.num, r.n)
    assert w is not None and w[1] - w[0] < 0.1  # what frame-level Wilson would (wrongly) claim


# ---------------------------------------------------------------- correctness, success, vote


def test_correct_and_success() -> None:
    p = top5(WRONG, label_at=3)
    assert not correct(p, RIGHT, 1) and correct(p, RIGHT, 5) and not correct(None, RIGHT, 5)
    assert succeeded(p, RIGHT, None, 1) and not succeeded(p, RIGHT, None, 5)
    assert succeeded(top5(7), RIGHT, 7, 1) and succeeded(top5(7), RIGHT, 7, 5)  # targeted: top-1 is the target
    assert not succeeded(top5(8), RIGHT, 7, 1)  # wrong, but not the target
    assert not succeeded(None, RIGHT, None, 1)


def test_vote_majority_and_ties() -> None:
    assert vote([P((1, 0.5)), P((1, 0.4)), P((2, 0.99))]).top1 == 1
    assert vote([P((1, 0.6)), P((2, 0.9))]).top1 == 2  # tie: higher mean probability wins
    assert vote([P((1, 0.5), (2, 0.3)), P((2, 0.5), (1, 0.3))]).top1 == 1  # full tie: lower id, deterministic
    v = vote([P((1, 0.6), (3, 0.2)), P((2, 0.5), (3, 0.3)), P((1, 0.8), (4, 0.1))])
    assert v.ids[:2] == (1, 3) and v.probs[0] == pytest.approx(0.7) and v.probs[1] == pytest.approx(0.25)
    with pytest.raises(ValueError):
        vote([])


# ---------------------------------------------------------------- Kurakin's measures


def _items() -> list[ItemData]:
    """A: counts everywhere; B: adv right at top-5; C: clean wrong; D: low confidence, never photographed; E: attack
    failed.
    """
    return [
        ItemData("A", "fgsm", 8, RIGHT, None, top5(RIGHT, 0.9), top5(WRONG), [R, R], [R, W, R]),
        ItemData("B", "fgsm", 8, RIGHT, None, top5(RIGHT, 0.95), top5(WRONG, label_at=2), [R], [R]),
        ItemData("C", "fgsm", 8, RIGHT, None, top5(WRONG), top5(WRONG), [W], [W]),
        ItemData("D", "fgsm", 8, RIGHT, None, top5(RIGHT, 0.5), top5(WRONG), [], []),
        ItemData("E", "fgsm", 8, RIGHT, None, top5(RIGHT, 0.9), top5(RIGHT), [R], [W]),
    ]


def _rate(counts: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def test_digital_metrics_known_answers() -> None:
    d1, d5 = digital_counts(_items(), 1), digital_counts(_items(), 5)
    assert _rate(d1["clean_acc"]) == (4, 5)
    assert _rate(d1["adv_acc"]) == (1, 5)
    assert _rate(d1["attack_success"]) == (3, 4)  # of A, B, D, E (clean right): A, B, D fooled
    assert _rate(d5["adv_acc"]) == (2, 5)  # B is right at top-5
    assert _rate(d5["attack_success"]) == (2, 4)


def test_destruction_rate_average_and_prefiltered_case() -> None:
    items = _items()
    assert [prefiltered(i) for i in items] == [True, False, False, False, False]
    f1, f5 = photo_counts(items, 1), photo_counts(items, 5)
    # average case, per frame: A (2 of 3 frames right) and B (1 of 1); C clean wrong, D unseen, E not fooled
    assert _rate(f1["destruction"]) == (3, 4)
    assert _rate(f5["destruction"]) == (2, 3)  # B is not fooled at top-5
    assert _rate(f1["destruction_prefiltered"]) == (2, 3)
    assert _rate(f1["clean_acc"]) == (4, 5) and _rate(f1["adv_acc"]) == (3, 6)
    assert _rate(f1["attack_success"]) == (2, 5)  # A: 1 wrong frame, B: 0, E: 1 (C excluded, D unseen)
    # per tile: one voted prediction per tile
    tiles = [
        ItemData(
            i.item_id,
            i.attack,
            i.eps,
            i.label,
            i.target,
            i.clean,
            i.adv,
            [vote(i.photo_clean)] if i.photo_clean else [],
            [vote(i.photo_adv)] if i.photo_adv else [],
        )
        for i in items
    ]
    t1 = photo_counts(tiles, 1)
    assert _rate(t1["destruction"]) == (2, 2) and _rate(t1["destruction_prefiltered"]) == (1, 1)


def test_destruction_rate_of_an_empty_cell_is_na() -> None:
    never_fooled = [ItemData("E", "fgsm", 8, RIGHT, None, top5(RIGHT), top5(RIGHT), [R], [R])]
    r = rate_from_counts(photo_counts(never_fooled, 1)["destruction"])
    assert r.value is None and r.lo is None and r.n == 0
    no_digital = [ItemData("X", "fgsm", 8, RIGHT, None, None, None, [R], [W])]
    counts = photo_counts(no_digital, 1)
    assert rate_from_counts(counts["destruction"]).value is None
    assert rate_from_counts(counts["attack_success"]).value is None
    assert rate_from_counts(counts["adv_acc"]).value == 0.0


def test_targeted_items_count_success_only_on_the_target() -> None:
    items = [
        ItemData("T1", "ll", 8, RIGHT, 7, top5(RIGHT), top5(7), [], [top5(7), top5(8)]),
        ItemData("T2", "ll", 8, RIGHT, 7, top5(RIGHT), top5(8), [], [top5(8)]),
    ]
    assert _rate(digital_counts(items, 1)["attack_success"]) == (1, 2)
    assert _rate(photo_counts(items, 1)["attack_success"]) == (1, 3)
    # the destruction rate is about the true class, whatever the target
    assert _rate(photo_counts(items, 1)["destruction"]) == (0, 3)


def test_transfer_rate_counts_only_what_fools_the_source() -> None:
    src = [
        ItemData("a", "fgsm", 8, RIGHT, None, R, W),  # fools the source
        ItemData("b", "fgsm", 8, RIGHT, None, R, W),  # fools the source
        ItemData("c", "fgsm", 8, RIGHT, None, R, R),  # does not: left out
        ItemData("d", "fgsm", 8, RIGHT, None, R, W),  # fools the source, target has no record
    ]
    tgt = [
        ItemData("a", "fgsm", 8, RIGHT, None, R, W),  # transfers
        ItemData("b", "fgsm", 8, RIGHT, None, R, R),  # does not transfer
        ItemData("c", "fgsm", 8, RIGHT, None, R, W),
    ]
    counts = transfer_counts(src, tgt, 1)
    assert counts == [(1, 1), (0, 1), (0, 0), (0, 0)]
    assert rate_from_counts(counts).value == 0.5
    assert rate_from_counts(transfer_counts(src, [], 1)).value is None


# ---------------------------------------------------------------- loading capture databases


def write_db(
    path: Path,
    batch_id: str,
    session: str = "s1",
    model: str = "lite2",
    digital: dict[tuple[str, str], Pred] | None = None,
    obs: list[tuple[int, str, str, int, Pred]] | None = None,
) -> Path:
    """A hand-made capture database: ``obs`` rows are (frame, item, role, good, pred)."""
    con = create_db(path)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('batch_id', ?)", (batch_id,))
    con.execute(
        "INSERT INTO sessions (id, batch_id, source, model, provider, started, config) VALUES (?,?,?,?,?,?,?)",
        (session, batch_id, "photos:DIR", model, "CPUExecutionProvider", 0.0, "{}"),
    )
    for (item, role), p in (digital or {}).items():
        con.execute("INSERT INTO digital VALUES (?,?,?,?,?)", (session, item, role, *encode_top5(p.ids, p.probs)))
    frames = sorted({o[0] for o in obs or []})
    for f in frames:
        con.execute("INSERT INTO frames VALUES (?,?,?,?,?)", (session, f, float(f), 1, "[]"))
    for f, item, role, good, p in obs or []:
        con.execute(
            "INSERT INTO observations (session_id, frame_idx, sheet_id, item_id, role, sharpness, tile_px, angle_deg, "
            "clipped, good, top1, top1_prob, top5_ids, top5_probs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                session,
                f,
                "s0",
                item,
                role,
                100.0 + f,
                120.0,
                5.0,
                0.0,
                good,
                p.top1,
                p.top1_prob,
                *encode_top5(p.ids, p.probs),
            ),
        )
    con.commit()
    con.close()
    return path


def test_load_keeps_only_good_observations_and_counts_all(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=2)
    b = load_batch(bdir)
    i0 = b.items[0].id
    write_db(
        bdir / "captures" / "s1.sqlite",
        b.batch_id,
        obs=[(0, i0, "adv", 1, W), (1, i0, "adv", 0, R), (1, "not-in-batch", "adv", 1, R)],
    )
    inp = load_input(bdir)
    (s,) = inp.sessions
    assert (s.n_frames, s.n_obs, s.n_good) == (2, 3, 2)
    assert [o.pred.top1 for o in s.observations] == [WRONG]  # the bad one and the foreign item are out


def test_digital_falls_back_to_batch_json_for_a_source_model(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=3)
    b = load_batch(bdir)
    write_db(bdir / "captures" / "white.sqlite", b.batch_id, session="white", model="models/lite0.onnx")
    inp = load_input(bdir)
    assert inp.sessions[0].digital_from_manifest == 3
    assert any("taken from batch.json" in n for n in inp.notes)
    rows = compute_summary(inp, resamples=50)
    (r,) = find(rows, session="white", view="digital", metric="adv_acc", topk=1)
    assert r.rate.value == 0.0 and r.rate.n == 3  # synthetic adversarial PNGs fool lite0


def test_database_from_another_batch_is_refused(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=2)
    write_db(bdir / "captures" / "other.sqlite", "b-someone-else")
    with pytest.raises(UserError, match="other.sqlite.*b-someone-else"):
        load_input(bdir)


def test_corrupt_database_is_named(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=2)
    (bdir / "captures").mkdir()
    (bdir / "captures" / "broken.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="broken.sqlite"):
        load_input(bdir)


def test_unknown_session_is_named_with_the_ones_available(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=2)
    b = load_batch(bdir)
    write_db(bdir / "captures" / "cam1.sqlite", b.batch_id, session="sess-a")
    write_db(bdir / "captures" / "cam2.sqlite", b.batch_id, session="sess-b")
    with pytest.raises(UserError, match="--session nope.*cam1, cam2"):
        load_input(bdir, ["nope"])
    assert [s.id for s in load_input(bdir, ["cam2"]).sessions] == ["sess-b"]
    assert [s.id for s in load_input(bdir, ["sess-a"]).sessions] == ["sess-a"]
    assert len(load_input(bdir).sessions) == 2


def test_no_captures_means_digital_only_and_says_so(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=2)
    inp = load_input(bdir)
    assert inp.sessions == [] and "digital results only" in inp.notes[0]
    rows = compute_summary(inp)
    assert {r.view for r in rows} == {"digital"} and {r.model_kind for r in rows} == {"source"}


def test_clean_prediction_labels_are_flagged(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=2)
    b = load_batch(bdir)
    b.items[0].label.source = "clean-prediction"
    save_batch(bdir, b)
    assert any("clean-prediction" in n for n in load_input(bdir).notes)


def test_summary_has_no_nan_and_json_round_trips(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    bdir = synthetic_batch(n_items=3)
    b = load_batch(bdir)
    i0 = b.items[0].id
    write_db(bdir / "captures" / "s1.sqlite", b.batch_id, digital={(i0, "clean"): R}, obs=[(0, i0, "clean", 1, R)])
    rows = compute_summary(load_input(bdir), resamples=50)
    text = json.dumps([r.to_dict() for r in rows], allow_nan=False)
    assert all(r.rate.value is None or 0 <= r.rate.value <= 1 for r in rows)
    assert not any(isinstance(v, float) and math.isnan(v) for r in json.loads(text) for v in r.values())


def test_analysis_never_imports_torch() -> None:
    code = "import sys, analysis.report, analysis.cli, analysis.synthetic; sys.exit('torch' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.returncode == 0, proc.stderr or "analysis imported torch"
