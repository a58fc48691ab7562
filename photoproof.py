"""Photoproof from Python (notebooks): craft, print, capture, report.

::

    import photoproof as pp

    batch = pp.craft(net, "photos/", out="runs/mine", spec=pp.PreprocessSpec(input_size=224,
                     mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)), attack="bim", eps="8/255")
    pp.print_sheets("runs/mine")
    pp.capture("runs/mine", "lite2", pp.simulated_camera("runs/mine", frames=24), frames=24)
    rows = pp.summary("runs/mine")           # every figure with its interval, as dicts
    table = pp.report("runs/mine").headline  # the report's headline table

Each function is the library call behind one command (``photoproof craft``,
``print``, ``capture``, ``report``), with the same checks: bad input raises
:class:`UserError` with the same one-line message the CLI prints. ``docs/api.md``
has a worked example. Only :func:`craft` and :func:`model` import torch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contracts.errors import UserError
from contracts.frames import Frame, FrameSource
from contracts.manifest import Batch, load_batch
from contracts.preprocess import PreprocessSpec
from contracts.profile import DEFAULT_PRESET
from contracts.units import parse_eps, parse_eps_value

if TYPE_CHECKING:
    from torch import nn

    from analysis.report import ReportResult
    from craft.sources import SourceModel

__all__ = [
    "PreprocessSpec",
    "UserError",
    "Batch",
    "craft",
    "model",
    "print_sheets",
    "capture",
    "frames_from",
    "simulated_camera",
    "report",
    "summary",
    "channel_check",
    "prediction_check",
    "attack_comparison",
    "load_batch",
]


def model(
    net: nn.Module | str,
    spec: PreprocessSpec | None = None,
    classes: Sequence[str] | None = None,
    name: str = "model",
) -> SourceModel:
    """A source model: an ``nn.Module`` that takes the *normalised* input (with ``spec``), or any ``--source`` string.

    Args:
        net: an ``nn.Module`` (eval mode is set, weights frozen), or ``"lite0"``, ``"net.onnx"``, ``"net.pt2"``, ...
        spec: how pixels become its input (required for a module).
        classes: its class names (default ImageNet-1k for 1000 outputs).
        name: what the batch calls it.
    """
    from craft.sources import from_module, load_source

    if isinstance(net, str):
        return load_source(net)
    if spec is None:
        raise UserError(f"model {name!r}: give spec=PreprocessSpec(input_size=..., mean=..., std=...) for an nn.Module")
    return from_module(net, spec, classes, name)


def _write_arrays(images: Sequence[np.ndarray] | np.ndarray, labels: Sequence[str | int] | None, folder: Path) -> Path:
    """Save ``N x H x W x 3`` uint8 RGB arrays as PNGs with a ``labels.csv``: the batch's record of its inputs."""
    from PIL import Image

    from contracts.paths import atomic_write_bytes

    arrays = list(images)
    if labels is not None and len(labels) != len(arrays):
        raise UserError(f"labels: {len(labels)} labels for {len(arrays)} images")
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise UserError(f"images[{i}]: expected an H x W x 3 uint8 RGB array, got {a.shape} {a.dtype}")
        buf = io.BytesIO()
        Image.fromarray(a, mode="RGB").save(buf, format="PNG")
        atomic_write_bytes(folder / f"{i:05d}.png", buf.getvalue())
        if labels is not None:
            rows.append([f"{i:05d}.png", str(labels[i])])
    if labels is not None:
        text = io.StringIO()
        csv.writer(text).writerows([["file", "label"], *rows])
        atomic_write_bytes(folder / "labels.csv", text.getvalue().encode())
    return folder


def craft(
    source: nn.Module | str | SourceModel | Sequence[nn.Module | str | SourceModel],
    images: str | Path | Sequence[np.ndarray] | np.ndarray = "samples",
    *,
    out: str | Path,
    labels: Sequence[str | int] | None = None,
    spec: PreprocessSpec | None = None,
    classes: Sequence[str] | None = None,
    attack: str | Sequence[str] = "fgsm",
    eps: str | float | Sequence[float] = 16.0,
    progress: bool = False,
    **options: Any,
) -> Batch:
    """Craft a batch (as ``photoproof craft``) and return its manifest.

    Args:
        source: an ``nn.Module`` (with ``spec``/``classes``), a :func:`model`, a ``--source``
            string (``"lite0"``, ``"net.onnx"``, ``"pkg.mod:factory"``), or a list of them (an ensemble);
            ``"mtcnn"`` or the factory of a face detector crafts a face batch (docs/detectors.md; ``truth="f.json"``).
        images: ``"samples"``, a folder, or arrays (``N x H x W x 3`` uint8 RGB; saved under ``out/inputs/``).
        out: the batch directory (created, or resumed).
        labels: the arrays' labels (class names or indices of the source's label set).
        spec, classes: for an ``nn.Module`` source.
        attack: ``"fgsm"``, ``"bim,ll"`` or a list.
        eps: as ``--eps`` reads it (``contracts.units``): ``16`` is in pixel units, ``8/255`` or any
            value below 1 (``0.0314``) in [0, 1] units; a string may list several (``"4,8/255"``).
        progress: show the progress bar (per attack step, with an ETA).
        options: any other :class:`craft.job.CraftConfig` field (``steps=10``, ``seed=1``, ``target="ll"``, ``limit=4``,
        ...).
    """
    from craft.job import CraftConfig, craft_batch
    from craft.sources import SourceModel, register_module

    out = Path(out)
    members = [source] if isinstance(source, str) or not isinstance(source, Sequence) else list(source)
    refs: list[str] = []
    for i, m in enumerate(members):
        if isinstance(m, str):
            refs.append(m)
            continue
        sm = (
            m
            if isinstance(m, SourceModel)
            else model(m, spec, classes, name=f"model{i}" if len(members) > 1 else "model")
        )
        refs.append(register_module(sm))
    if isinstance(images, (str, Path)):
        folder = str(images)
    else:
        folder = str(_write_arrays(images, labels, out / "inputs"))
    eps_list = (
        parse_eps(eps)
        if isinstance(eps, str)
        else [parse_eps_value(repr(float(e))) for e in ([eps] if isinstance(eps, (int, float)) else eps)]
    )
    attacks = attack.split(",") if isinstance(attack, str) else list(attack)
    cfg = CraftConfig(images=folder, source=refs, attacks=attacks, eps=eps_list, **options)
    from console.progress import make_progress, rich_progress
    from craft.sources import is_face_source

    if is_face_source(refs[0]):  # mtcnn or a factory of a face detector (docs/detectors.md)
        from craft.detectors.run import craft_face_batch

        if not progress:
            return craft_face_batch(out, cfg)
        with make_progress() as bar:
            return craft_face_batch(out, cfg, rich_progress(bar))
    if not progress:
        return craft_batch(out, cfg)
    with make_progress() as bar:
        return craft_batch(out, cfg, progress=rich_progress(bar))


def print_sheets(
    batch_dir: str | Path,
    paper: str = "a4",
    tile_mm: float | None = None,
    layout: str = "pairs",
    camera: tuple[int, int] | None = None,
    model: str | None = None,
) -> Path:
    """Write ``sheets.pdf`` and ``layout.json`` (as ``photoproof print``); return the PDF's path.

    As the command: laid out for ``camera`` (width, height) and the target ``model``, each
    defaulting to capture's (1920x1080, lite2), unless ``tile_mm`` fixes the tile size.
    """
    from printouts.camera import camera_defaults
    from printouts.sheets import print_batch

    if tile_mm is not None and (camera is not None or model is not None):
        raise UserError("print_sheets: give tile_mm, or camera and model, not both")
    frame, target, _ = camera_defaults(tile_mm, camera, model)
    print_batch(
        Path(batch_dir),
        paper=paper,
        tile_mm=60.0 if tile_mm is None else tile_mm,
        layout=layout,
        camera=frame,
        model=target,
    )
    return Path(batch_dir) / "sheets.pdf"


class _ArrayFrames(FrameSource):
    """Frames from any iterable of ``H x W x 3`` uint8 arrays (BGR, as OpenCV reads them)."""

    description = "frames:python"

    def __init__(self, frames: Iterable[np.ndarray], fps: float = 10.0) -> None:
        self._frames, self._fps = frames, fps

    def open(self) -> None:
        pass

    def frames(self) -> Any:
        for i, img in enumerate(self._frames):
            a = np.asarray(img)
            if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
                raise UserError(f"frame {i}: expected an H x W x 3 uint8 BGR array, got {a.shape} {a.dtype}")
            yield Frame(i, i / self._fps, a)
            if self.interrupted:
                return

    def close(self) -> None:
        pass


def frames_from(frames: Iterable[np.ndarray], fps: float = 10.0) -> FrameSource:
    """A frame source from arrays (``H x W x 3`` uint8 **BGR**): a generator over your camera API works."""
    return _ArrayFrames(frames, fps)


def simulated_camera(
    batch_dir: str | Path, profile: str = DEFAULT_PRESET, seed: int = 0, frames: int | None = None
) -> FrameSource:
    """The simulated print-and-photograph channel of ``profile`` looking at the batch's printed sheets."""
    from channel.simulate import SimulatedCamera
    from contracts.profile import load_profile

    prof = load_profile(profile)
    return SimulatedCamera.from_batch(Path(batch_dir), profile=prof, seed=seed, fps=prof.camera.fps, n_frames=frames)


def capture(
    batch_dir: str | Path,
    target: str | Path,
    frames: FrameSource | Iterable[np.ndarray],
    *,
    n_frames: int | None = None,
    session: str | None = None,
    labels: Sequence[str] | None = None,
    label_map: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Record a capture session (as ``photoproof capture``); return the session database's path.

    Args:
        batch_dir: the printed batch.
        target: a zoo name (exported once into ``BATCH/models/``) or an ``.onnx`` file.
        frames: any :class:`FrameSource` (:func:`simulated_camera`, ``capture.sources``), or arrays (BGR).
        n_frames: stop after this many frames (``--frames``).
        labels: the target's class names, when its metadata has none.
        label_map: batch class name -> target class name, where names differ.
        overrides: preprocessing fields for a foreign ``.onnx`` (``{"input_size": 224, ...}``).
        options: ``duration``, ``per_tile``, ``gates``, ``save_crops`` of :func:`capture.session.run_capture` (a
        simulated camera carries its own profile and seed).
    """
    from capture.classify import OnnxClassifier
    from capture.session import run_capture
    from craft.onnxmodel import resolve_onnx_model

    batch_dir = Path(batch_dir)
    path = resolve_onnx_model(str(target), batch_dir)
    clf = OnnxClassifier(path, class_names=list(labels) if labels is not None else None, overrides=overrides or {})
    src = frames if isinstance(frames, FrameSource) else frames_from(frames)
    from contracts.labels import norm

    lmap = {norm(k): v for k, v in label_map.items()} if label_map else None
    return run_capture(
        batch_dir,
        path,
        src,
        frames=n_frames,
        session_id=session,
        classifier=clf,
        headless=True,
        label_map=lmap,
        **options,
    )


def report(
    batch_dir: str | Path, sessions: list[str] | None = None, formats: tuple[str, ...] = ("html", "csv")
) -> ReportResult:
    """Build the report (as ``photoproof report``); ``.headline`` and ``.summary`` hold its tables."""
    from analysis.report import make_report

    return make_report(Path(batch_dir), sessions=sessions, formats=formats)


def summary(batch_dir: str | Path, sessions: list[str] | None = None) -> list[dict[str, Any]]:
    """Every figure of the report as a dict (``summary.csv``'s columns): ``pandas.DataFrame(pp.summary(b))`` reads it.

    A capture session's rows carry its channel-check verdict (``channel_check``), the report's. For a face batch
    (``craft --source mtcnn``) the rows are its recall and paired hiding figures instead
    (:func:`analysis.faces_api.face_summary`: ``measure``, ``value``, ``lo``, ``hi``, ``k``, ``n``, ``photos``, ...).
    """
    from analysis.channel import check_sessions
    from analysis.load import load_input
    from analysis.summary import compute_summary

    if _face_batch(batch_dir):
        from analysis.faces_api import face_summary

        return face_summary(Path(batch_dir), sessions)
    inp = load_input(Path(batch_dir), sessions)
    verdicts = {sid: c.verdict for sid, c in check_sessions(inp).items()}
    return [
        {**r.to_dict(), "channel_check": verdicts.get(r.session)} if r.session else r.to_dict()
        for r in compute_summary(inp)
    ]


def channel_check(batch_dir: str | Path, sessions: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each session's channel check (the report's, and the live capture line's rule: ``contracts.verdict``), by session.

    ``verdict`` is ``ok``, ``inconclusive`` (``more_photos_needed`` says how many more photos would settle it),
    ``camera-limited``, ``model-fragile`` or ``n/a``; ``why``, ``reasons`` and ``advice`` say why and what to do.
    A face batch's sessions are checked on their clean tiles, "right" meaning every truth face found
    (:func:`analysis.faces_api.face_channel_check`).
    """
    from analysis.channel import check_sessions
    from analysis.load import load_input

    if _face_batch(batch_dir):
        from analysis.faces_api import face_channel_check

        return face_channel_check(Path(batch_dir), sessions)
    return {sid: c.to_dict() for sid, c in check_sessions(load_input(Path(batch_dir), sessions)).items()}


def prediction_check(batch_dir: str | Path, sessions: list[str] | None = None) -> list[dict[str, Any]]:
    """Does each profile's simulated sessions predict the real camera's? The report's prediction check
    (:mod:`analysis.prediction`), one dict per profile: ``profile``, ``sessions``, ``verdict`` (``predicts``,
    ``close by point estimates``, ``differs``, ``not shown``, ``n/a``), the camera's sessions compared and left out,
    the differences in points with their intervals, and ``advice``. Empty without a simulated session and a real one
    of one model."""
    from analysis.load import load_input
    from analysis.prediction import predict, prediction_table

    if _face_batch(batch_dir):
        return []
    return prediction_table(predict(load_input(Path(batch_dir), sessions))).rows


def attack_comparison(batch_dir: str | Path, sessions: list[str] | None = None) -> list[dict[str, Any]]:
    """Which of two attacks survives the camera better? The report's attack comparison
    (:mod:`analysis.attacks_compared`), one dict per session, pair of attacks (``first`` minus ``second``) and ε
    (``"all"``: every ε they share): end-to-end success and paired survival of each, their difference in points
    with a 95 % interval over photos, the exact sign test's ``sign_test_p`` and ``verdict`` (``first survives
    better``, ``second survives better``, ``no difference shown``, ``camera-limited``, ``n/a``). Empty for a batch
    of one attack."""
    from analysis.attacks_compared import compare_attacks, compare_table
    from analysis.channel import check_sessions
    from analysis.load import load_input

    if _face_batch(batch_dir):
        return []
    inp = load_input(Path(batch_dir), sessions)
    verdicts = {sid: c.verdict for sid, c in check_sessions(inp).items()}
    return compare_table(compare_attacks(inp, verdicts)).rows


def _face_batch(batch_dir: str | Path) -> bool:
    from contracts.manifest import is_face_batch

    return is_face_batch(load_batch(Path(batch_dir)))
