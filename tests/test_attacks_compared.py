"""The report's attack comparison: which of two attacks survives the camera better, paired by photo.

End to end with a real model and a known answer: foolbox photos that EfficientNet-Lite0 (ONNX) is sure of, two
"attacks" printed side by side and photographed by the simulated 1080p webcam in one session. ``swap``'s adversarial
image is another photo (lite0 calls it that photo's class: it survives any camera), ``noise``'s a ±4 copy of the
photo itself (lite0 still recognises it). The comparison must find ``swap`` better on every photo, with a sign test
that says so, and must count in the paired survival only items whose adversarial PNG fooled lite0 digitally.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import photoproof as pp
from analysis.attacks_compared import (
    CAMERA,
    FIRST,
    NA,
    NO_DIFF,
    SECOND,
    Comparison,
    Contrast,
    compare_attacks,
    contrast,
)
from analysis.load import Pred, load_input
from analysis.metrics import ItemData
from analysis.report import make_report
from analysis.stats import Diff, sign_test
from analysis.synthetic import Odds, write_capture_db
from capture.classify import OnnxClassifier
from capture.session import run_capture
from channel.simulate import SimulatedCamera
from contracts.manifest import save_batch
from contracts.profile import load_profile
from craft.images import sample_photos
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.photos import PhotoItem, foolbox_photos, photo_batch


def test_sign_test_is_mcnemars_exact_test_on_discordant_photos() -> None:
    assert sign_test(4, 0) == sign_test(0, 4) == 0.125  # 2 x (1/2)^4
    assert sign_test(5, 0) == 0.0625
    assert sign_test(3, 3) == 1.0 and sign_test(0, 0) == 1.0
    assert abs(sign_test(9, 1) - 22 / 1024) < 1e-12  # 2 x (1 + 10) / 2^10


def _item(label: int, clean_ok: bool, adv_fools: bool | None, fooled: bool = True) -> ItemData:
    right, wrong = Pred((label,), (0.9,)), Pred((label + 1,), (0.9,))
    return ItemData(
        "x",
        "a",
        0.0,
        label,
        clean=right,
        adv=wrong if fooled else right,
        photo_clean=[right if clean_ok else wrong],
        photo_adv=[] if adv_fools is None else [wrong if adv_fools else right],
    )


def test_a_photos_items_at_every_eps_are_one_unit() -> None:
    """Over every ε, the sign test counts photos (their items summed), and unseen or unrecognised items drop out."""
    a = {("p1", 2.0): _item(1, True, True), ("p1", 4.0): _item(1, True, True), ("p2", 2.0): _item(2, True, False)}
    b = {("p1", 2.0): _item(1, True, False), ("p1", 4.0): _item(1, True, False), ("p2", 2.0): _item(2, True, True)}
    a[("p3", 2.0)], b[("p3", 2.0)] = _item(3, True, None), _item(3, True, True)  # adversarial tile unseen: out
    a[("p4", 2.0)], b[("p4", 2.0)] = _item(4, False, True), _item(4, False, False)  # clean tile lost: out
    c = contrast(a, b, key="t")
    assert (c.items, c.photos, c.wins, c.losses, c.p) == (3, 2, 1, 1, 1.0)
    assert c.diff is not None and abs(c.diff.points - 100 / 3) < 1e-9 and c.verdict() == NO_DIFF
    b[("p2", 2.0)] = _item(2, True, True, fooled=False)  # not fooled digitally: out of the survival, not the success
    assert contrast(a, b, survival=True).items == 2 and contrast(a, b).items == 3
    assert contrast(a, {}).verdict() == NA


def test_an_attack_is_better_only_when_interval_and_sign_test_agree() -> None:
    def c(lo: float, hi: float, p: float) -> Contrast:
        return Contrast(10, 10, 0.5, 0.5, Diff((lo + hi) / 2, lo, hi), 5, 0, p)

    assert c(10, 40, 0.01).verdict() == FIRST and c(-40, -10, 0.01).verdict() == SECOND
    assert c(10, 40, 0.125).verdict() == NO_DIFF  # 4 photos to 0: the bootstrap is liberal, the sign test is not
    assert c(-5, 40, 0.01).verdict() == NO_DIFF
    limited = Comparison("s", "m", CAMERA, "16", "a", "b", c(10, 40, 0.01), c(10, 40, 0.01))
    assert limited.verdict == CAMERA and "not the perturbation" in limited.sentence()
    # an interval clear of 0 without the sign test says why it is no difference, and how few photos are too few
    liberal = Comparison("s", "m", "ok", "16", "a", "b", c(10, 40, 0.125), c(10, 40, 0.125)).sentence()
    assert (
        "excludes 0, but 5 photos to 0 are too few for the sign test: it needs at least 6 photos that differ, all "
        "one way." in liberal
    )
    assert liberal.endswith(
        "rate of photos that differ (5 of 10), that takes at least 12 photos whose clean tile the camera keeps."
    )
    unclear = Comparison("s", "m", "ok", "16", "a", "b", c(-5, 40, 0.5), c(-5, 40, 0.5)).sentence()
    assert "excludes 0" not in unclear and "(5 of 10), that takes at least 12 photos" in unclear
    mixed = Contrast(10, 10, 0.5, 0.5, Diff(5, -10, 20), 4, 3, 1.0)  # 7 photos differ: enough, were they one-sided
    said = Comparison("s", "m", "ok", "16", "a", "b", mixed, mixed).sentence()
    assert said.endswith("p = 1): no difference shown. Print and photograph more photos to tell them apart."), said


@pytest.mark.slow
def test_the_attack_that_survives_is_found_better_on_every_photo(tmp_path: Path, lite0_onnx: Path) -> None:
    clf = OnnxClassifier(lite0_onnx)
    sure = []
    for key, (img, label) in sorted(foolbox_photos(sample_photos()).items()):
        ids, probs = clf.classify(img[None])
        if ids[0][0] == label and probs[0][0] >= 0.8 and label not in {lab for _, _, lab in sure}:
            sure.append((key, img, label))
    sure = sure[:8]
    assert len(sure) >= 6, "lite0 is sure of too few foolbox photos for this test"
    rng = np.random.default_rng(0)
    items = []
    for i, (key, img, label) in enumerate(sure):
        noise = np.clip(img.astype(int) + rng.choice([-4, 4], img.shape), 0, 255).astype(np.uint8)
        items += [PhotoItem(key, img, noise, label, "noise"), PhotoItem(key, img, sure[i - 1][1], label, "swap")]
    d = tmp_path / "batch"
    photo_batch(d, items, "bswap-0001", attacks=("noise", "swap"))
    office = load_profile("office-laser-webcam")
    print_batch(d, camera=(office.camera.width, office.camera.height), model="lite0")
    n = 2 * len(items)  # one pair a page at 1080p: two frames a page
    cam = SimulatedCamera.from_batch(d, profile=office, seed=0, n_frames=n)
    run_capture(d, lite0_onnx, cam, frames=n, session_id="webcam", save_crops=False)

    res = make_report(d, formats=("json",))
    (row,) = json.loads((d / "report" / "attacks_compared.json").read_text())["rows"]
    assert (row["first"], row["second"], row["eps"], row["session"]) == ("swap", "noise", "16", "webcam")
    assert row["photos"] >= 6 and row["success_first_pct"] == 100.0 and row["success_second_pct"] == 0.0
    assert row["photos_for_first"] == row["photos"] and row["photos_for_second"] == 0
    assert row["sign_test_p"] == float(f"{2 * 0.5 ** row['photos']:.3g}") and row["verdict"] == FIRST
    assert row["success_diff"] == "+100.0 [+100.0, +100.0]"
    noise_fools = sum(int(clf.classify(it.adv[None])[0][0][0] != it.label) for it in items if it.attack == "noise")
    assert row["survival_items"] <= noise_fools  # only items that fooled lite0 digitally under both attacks
    assert pp.attack_comparison(d) == [row]
    line = next(n for n in res.notes if n.startswith("Attacks compared, session webcam (lite0), ε 16"))
    assert "end-to-end success swap − noise +100.0" in line and "exact sign test p = 0.00" in line
    assert "swap survives better." in line and "channel check is inconclusive" in line  # 8 photos cannot bound it


def test_every_eps_both_attacks_share_gets_a_row_and_the_console_reads_the_pooled_one(tmp_path: Path) -> None:
    """Synthetic captures: 3 photos, each attacked by fgsm and bim at ε 4 and 16 (and one photo by ll alone); the batch
    lists fgsm twice, as a hand-edited batch.json may."""
    d = tmp_path / "batch"
    b = write_batch(d, n_items=13, attacks=("fgsm", "bim"), eps=(4.0, 16.0))
    items = [replace(it, source=replace(it.source, file=f"photo-{i // 4}")) for i, it in enumerate(b.items)]
    items[-1] = replace(items[-1], attack="ll", source=replace(items[-1].source, file="photo-ll"))
    b = replace(b, items=items, config={**b.config, "attacks": ["fgsm", "bim", "fgsm", "ll"]})
    save_batch(d, b)
    write_capture_db(d / "captures" / "s1.sqlite", b, "s1", odds=Odds(clean_photo=0.95), n_frames=30)
    comps = compare_attacks(load_input(d))
    assert [(c.first, c.second, c.eps, c.headline) for c in comps] == [
        ("bim", "fgsm", "4", False),
        ("bim", "fgsm", "16", False),
        ("bim", "fgsm", "all", True),
    ]  # ll attacked no photo the others did: no row
    pooled = comps[-1].success
    assert pooled.photos <= 3 and pooled.items == sum(c.success.items for c in comps[:2])
    notes = make_report(d, formats=("json",)).notes
    assert [n for n in notes if n.startswith("Attacks compared")] == [comps[-1].sentence()]
