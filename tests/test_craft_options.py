"""``photoproof craft`` with the new options, end to end on the real zoo models (tiny runs).

Targeted runs record their targets and get distinct ids; random attacks resume
to the same bytes; the identity check covers the new options; an ensemble
records every member's top-5; options reach the job from the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from contracts.errors import UserError
from contracts.manifest import load_batch
from craft import cli
from craft.job import CraftConfig, craft_batch

RANDOM = dict(limit=2, attacks=["pgd+di"], eps=[4.0], steps=2, seed=5, target="random", batch_size=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def targeted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("craft-opts") / "batch"
    craft_batch(out, CraftConfig(**RANDOM))  # type: ignore[arg-type]
    return out


def test_targeted_run_records_targets_and_distinct_ids(targeted: Path) -> None:
    batch = load_batch(targeted)
    assert len(batch.items) == 2
    for it in batch.items:
        assert it.id.endswith("-pgd-di-e4-trandom") and it.attack == "pgd+di"
        assert it.target is not None and it.target != it.label.index
        assert it.params["target_mode"] == "random" and it.params["steps"] == 2 and it.params["di"]["prob"] == 0.5
        assert (targeted / it.adv.path).is_file()
    assert batch.config["attacks"] == ["pgd+di"] and batch.config["target"] == "random"


def test_resume_skips_finished_items_and_recrafts_the_same_bytes(targeted: Path) -> None:
    batch = load_batch(targeted)
    victim = batch.items[0]
    (targeted / victim.adv.path).unlink()
    stamps = {it.id: (targeted / it.adv.path).stat().st_mtime_ns for it in batch.items[1:]}
    craft_batch(targeted, CraftConfig(**RANDOM))  # type: ignore[arg-type]
    after = load_batch(targeted)
    assert [it.id for it in after.items] == [it.id for it in batch.items]
    assert after.items[0].adv.sha256 == victim.adv.sha256, "random start, DI and target come from the item's seed"
    assert after.items[0].target == victim.target
    for it in after.items[1:]:
        assert (targeted / it.adv.path).stat().st_mtime_ns == stamps[it.id], "finished items are skipped"


@pytest.mark.parametrize(
    "change", [{"steps": 3}, {"target": "ll"}, {"attacks": ["pgd"], "di": True, "di_prob": 0.3}, {"ensemble": "loss"}]
)
def test_resume_with_other_new_options_is_refused(targeted: Path, change: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(UserError, match="other options"):
        craft_batch(targeted, CraftConfig(**{**RANDOM, **change}))  # type: ignore[arg-type]


def test_flags_and_modifiers_are_the_same_attack(targeted: Path) -> None:
    """``--attack pgd --di`` resumes a batch made with ``--attack pgd+di``."""
    craft_batch(targeted, CraftConfig(**{**RANDOM, "attacks": ["pgd"], "di": True}))  # type: ignore[arg-type]


def test_manifest_from_before_the_new_options_still_resumes(tmp_path: Path) -> None:
    out = tmp_path / "old"
    craft_batch(out, CraftConfig(limit=1, attacks=["fgsm"], eps=[4.0]))
    m = json.loads((out / "batch.json").read_text())
    for k in (
        "ensemble",
        "steps",
        "alpha",
        "momentum",
        "random_start",
        "di",
        "di_prob",
        "eot",
        "eot_samples",
        "profile",
        "channel",
        "repair_steps",
        "amp",
    ):
        del m["config"][k]
    (out / "batch.json").write_text(json.dumps(m))
    batch = craft_batch(out, CraftConfig(limit=1, attacks=["fgsm"], eps=[4.0]))
    assert [it.id for it in batch.items] == ["foolbox-00-fgsm-e4"]


def test_fixed_target_by_name(tmp_path: Path) -> None:
    batch = craft_batch(tmp_path / "t", CraftConfig(limit=1, attacks=["bim"], eps=[2.0], target="goldfish", steps=1))
    (it,) = batch.items
    assert it.target == 1 and it.id == "foolbox-00-bim-e2-t1" and it.params["target_mode"] == "class"


def test_ensemble_of_lite0_and_lite1(tmp_path: Path) -> None:
    batch = craft_batch(
        tmp_path / "ens",
        CraftConfig(limit=2, source=["lite0", "lite1"], attacks=["mifgsm"], steps=2, eps=[8.0], ensemble="loss"),
    )
    assert [m.name for m in batch.models] == ["lite0", "lite1"]
    for it in batch.items:
        assert set(it.adv.top5) == {"lite0", "lite1"} and set(it.clean.top5) == {"lite0", "lite1"}
    from PIL import Image

    assert Image.open(tmp_path / "ens" / batch.items[0].adv.path).size == (224, 224), (
        "images live at the first model's size"
    )
    fooled = sum(it.adv.top5[m][0][0] != it.label.index for it in batch.items for m in ("lite0", "lite1"))
    assert fooled >= 3


def _app() -> typer.Typer:
    app = typer.Typer()
    cli.register(app)
    return app


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--attack", "pgd", "--steps", "0"], "--steps"),
        (["--attack", "eot", "--profile", "nowhere"], "--profile"),
        (["--target", "zebra-unicorn"], "--target"),
        (["--attack", "bim", "--eot", "--eot-samples", "0"], "--eot-samples"),
        (["--attack", "bim", "--eot", "--eot-tile-px", "580-480"], "--eot-tile-px"),
        (["--attack", "bim", "--eot", "--eot-tile-px", "big"], "--eot-tile-px"),
        (["--attack", "bim", "--eot", "--eot-tile-px", "8-20"], "--eot-tile-px"),
        (["--eps", "300"], "--eps"),
        (["--attack", "carlini"], "--attack"),
    ],
)
def test_cli_options_reach_validation(tmp_path: Path, args: list[str], needle: str) -> None:
    r = CliRunner().invoke(_app(), ["craft", "--out", str(tmp_path / "b"), *args])
    assert isinstance(r.exception, UserError) and needle in str(r.exception)
    assert not (tmp_path / "b").exists(), "nothing is written before the options are checked"
