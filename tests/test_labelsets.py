"""A target with its own label set: lite0 restricted to ten ImageNet classes, exported with its own names.

Capture maps the batch's ImageNet labels onto the ten classes by name; the
report's figures must equal those recomputed here by hand from batch.json, the
model's own class list and the SQLite file, and the gallery and tile CSV print
the ten-class model's names.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import torch
from torch import nn

from analysis.report import make_report
from capture.classify import OnnxClassifier
from capture.session import run_capture
from channel.simulate import SimulatedCamera
from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.labels import read_label_map
from contracts.profile import load_profile
from craft.export import export_source
from craft.job import CraftConfig, craft_batch
from craft.sources import from_module
from craft.zoo import ZOO, load_net
from printouts.sheets import print_batch

pytestmark = pytest.mark.slow

# The six first foolbox photos' classes, and four more, in an order of the model's own.
TEN = [853, 1, 243, 609, 438, 0, 990, 207, 949, 559]
SESSION = "ten"


def ten_class_onnx(path: Path, classes: list[int], names: list[str]) -> Path:
    """lite0 with its classifier head sliced to ``classes``, exported with ``names``."""
    net = load_net("lite0")
    fc = net._fc
    head = nn.Linear(fc.in_features, len(classes))
    with torch.no_grad():
        head.weight.copy_(fc.weight[classes])
        head.bias.copy_(fc.bias[classes])
    net._fc = head
    return export_source(from_module(net, ZOO["lite0"].spec, names, name="lite0-ten"), path)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    d = tmp_path_factory.mktemp("ten")
    out = d / "batch"
    craft_batch(out, CraftConfig(limit=6, attacks=["fgsm"], eps=[4.0], seed=0))
    names = [imagenet_names()[c] for c in TEN]
    model = ten_class_onnx(d / "ten.onnx", TEN, names)
    prof = load_profile("office-laser-webcam")
    print_batch(out, camera=(prof.camera.width, prof.camera.height), model=str(model))  # tiles that pass the size gate
    cam = SimulatedCamera.from_batch(out, profile=prof, seed=0, n_frames=6)
    run_capture(out, model, cam, frames=6, headless=True, session_id=SESSION)
    make_report(out, formats=("csv",))
    return out, names


def _rows(out: Path) -> list[dict]:  # type: ignore[type-arg]
    with (out / "report" / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def _one(rows: list[dict], **m: object) -> dict:  # type: ignore[type-arg]
    hits = [r for r in rows if all(r[k] == str(v) for k, v in m.items())]
    assert len(hits) == 1, (m, hits)
    return hits[0]


@pytest.mark.parametrize("k", [1, 5])
def test_ten_class_figures_equal_those_recomputed_by_hand(run: tuple[Path, list[str]], k: int) -> None:
    out, names = run
    batch = json.loads((out / "batch.json").read_text())
    # By hand: the batch's ImageNet label, by name, as the ten-class model numbers it.
    label = {i["id"]: names.index(imagenet_names()[i["label"]["index"]]) for i in batch["items"]}
    con = sqlite3.connect(out / "captures" / f"{SESSION}.sqlite")
    cfg = json.loads(con.execute("SELECT config FROM sessions").fetchone()[0])
    assert cfg["labels"]["target_classes"] == names
    digital = {(i, r): json.loads(ids)[:k] for i, r, ids in con.execute("SELECT item_id, role, top5_ids FROM digital")}
    assert all(0 <= c < 10 for ids in digital.values() for c in ids)
    rows = _rows(out)
    common = dict(session=SESSION, model="lite0-ten", topk=k, attack="fgsm", eps=4.0)
    for role, metric in (("clean", "clean_acc"), ("adv", "adv_acc")):
        right = sum(label[i] in digital[(i, role)] for i in label)
        r = _one(rows, view="digital", metric=metric, **common)
        assert (int(r["num"]), int(r["n"])) == (right, len(label))
        obs = con.execute("SELECT item_id, top5_ids FROM observations WHERE good = 1 AND role = ?", (role,)).fetchall()
        right = sum(label[i] in json.loads(ids)[:k] for i, ids in obs)
        r = _one(rows, view="frame", metric=metric, **common)
        assert (int(r["num"]), int(r["n"])) == (right, len(obs))
    fooled = {i for i in label if label[i] in digital[(i, "clean")] and label[i] not in digital[(i, "adv")]}
    obs = con.execute("SELECT item_id, top5_ids FROM observations WHERE good = 1 AND role = 'adv'").fetchall()
    r = _one(rows, view="frame", metric="destruction", **common)
    assert (int(r["num"]), int(r["n"])) == (
        sum(label[i] in json.loads(ids)[:k] for i, ids in obs if i in fooled),
        sum(i in fooled for i, _ in obs),
    )
    # The clean photos of its own classes are mostly recognised by the ten-class model: the mapping is not scrambled.
    if k == 1:
        assert sum(label[i] in digital[(i, "clean")] for i in label) >= 4


def test_tile_table_and_gallery_print_the_targets_names(run: tuple[Path, list[str]]) -> None:
    from analysis.gallery import gallery
    from analysis.load import load_input

    out, names = run
    with (out / "report" / "tiles.csv").open() as f:
        tiles = list(csv.DictReader(f))
    assert tiles and all(t["vote_name"] in names for t in tiles)
    assert all(names[int(t["vote_top1"])] == t["vote_name"] for t in tiles)
    entries = gallery(load_input(out))
    shown = [name for e in entries for sh in e.shots for name, _ in sh.top3]
    assert shown and all(n in names for n in shown)


def test_unmappable_labels_are_an_error_and_a_label_map_fixes_them(run: tuple[Path, list[str]], tmp_path: Path) -> None:
    out, names = run
    model = next((out.parent).glob("ten.onnx"))
    renamed = [f"class-{n}" if n == "Bullmastiff" else n for n in names]  # 243 goes by another name
    clf = OnnxClassifier(model, providers=["CPUExecutionProvider"], class_names=renamed)
    cam = SimulatedCamera.from_batch(out, profile=load_profile("office-laser-webcam"), seed=0, n_frames=1)
    with pytest.raises(UserError, match=r"'Bullmastiff': nearest: 'class-Bullmastiff'.*--label-map"):
        run_capture(out, model, cam, frames=1, headless=True, session_id="renamed", classifier=clf)
    m = tmp_path / "map.csv"
    m.write_text("batch,target\nBullmastiff,class-Bullmastiff\n")
    db = run_capture(
        out,
        model,
        cam,
        frames=1,
        headless=True,
        session_id="renamed",
        classifier=clf,
        label_map=read_label_map(m),
        save_crops=False,
    )
    con = sqlite3.connect(db)
    cfg = json.loads(con.execute("SELECT config FROM sessions").fetchone()[0])
    assert cfg["labels"]["map"][str(243)] == renamed.index("class-Bullmastiff")
    db.unlink()
