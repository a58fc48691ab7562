"""Source models of any kind, by what ``--source`` names: a small registry of loaders.

=============================  ===========  ================================================
``--source``                   kind         how it is loaded
=============================  ===========  ================================================
``lite0``                      zoo          :mod:`craft.zoo` (weights ``torch.load(weights_only=True)``)
``FILE.onnx``                  onnx         converted to torch by onnx2torch, checked against onnxruntime
``FILE.pt2``                   pt2          ``torch.export.load`` with unpickling and native code refused
``FILE.pt`` / ``.ts`` / ``.jit``   torchscript  ``torch.jit.load``
``package.module:factory``     factory      imports the module and calls ``factory()`` — *runs your code*
=============================  ===========  ================================================

Nothing is unpickled. ``torch.jit.load`` reads a TorchScript archive with
TorchScript's own restricted unpickler, which builds only tensors and
TorchScript types and cannot call Python; the model's code is TorchScript,
which can call only registered torch operators. ``torch.export.load`` *can*
unpickle (tensor subclasses, opaque constants, legacy archives, and a fallback
to ``weights_only=False``), so :func:`craft.loaders.load_pt2` refuses archives whose payload
configs ask for pickle and runs the load with ``torch.load`` held to
``weights_only=True`` and ``pickle.loads`` refused. It also refuses archives that
carry compiled AOTInductor artefacts (``data/aotinductor/``, shared libraries):
``torch.export.load`` would ``dlopen`` them, running native code, unless the user
passes ``--unsafe-native-code``.

Each loaded model's preprocessing comes from :func:`contracts.modelspec.resolve_spec`
(flags > ``model.toml`` > the model's metadata > defaults from its input shape),
its class names from ``--labels``, ``model.toml``, its metadata, or ImageNet-1k
when it has 1000 outputs; a model whose output size differs from its label
set is refused.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.labels import read_label_file
from contracts.manifest import ModelRecord
from contracts.modelspec import read_sidecar, resolve_spec, sidecar_path
from contracts.preprocess import PreprocessSpec
from craft.loaders import LOADERS, Raw, load_pt2, state_sha256
from craft.zoo import ZOO, Normalized, get_entry, load_net, weights_sha256

if TYPE_CHECKING:
    from craft.detectors.vanish import FaceSource

log = logging.getLogger(__name__)

TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".jit", ".torchscript")
_FACTORY = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class ModelOptions:
    """What the flags say about foreign models: spec fields and a label file.

    They apply to every source that is not a zoo model (a zoo model has its own spec and names).
    """

    overrides: dict[str, Any] = field(default_factory=dict)
    labels: str | None = None
    allow_native: bool = False  # --unsafe-native-code: load a .pt2's compiled AOTInductor code (it runs on load)

    def key(self) -> str:
        return json.dumps([self.overrides, self.labels, self.allow_native], sort_keys=True)


@dataclass
class SourceModel:
    """A loaded source model: ``module`` takes ``N x 3 x S x S`` RGB pixels in 0..255 and returns logits."""

    name: str
    kind: str
    ref: str
    arch: str
    sha256: str
    spec: PreprocessSpec
    classes: tuple[str, ...]
    module: nn.Module
    weights_package: str = ""

    def record(self, role: str = "source") -> ModelRecord:
        """Its entry in ``batch.json``."""
        return ModelRecord(
            self.name, self.arch, role, self.sha256, self.weights_package, self.spec.to_dict(), self.kind, self.ref
        )


# Models handed over in Python (``photoproof.craft(net, ...)``), by their reference ``python:<name>``.
IN_MEMORY: dict[str, SourceModel] = {}


def register_module(sm: SourceModel) -> str:
    """Make an in-memory source model reachable as ``--source python:<name>`` in this process; return that reference."""
    ref = f"python:{sm.name}"
    IN_MEMORY[ref] = sm
    return ref


def source_kind(ref: str) -> str:
    """Which loader takes ``ref`` (module docstring); a one-line error for anything else."""
    if ref in ZOO:
        return "zoo"
    if ref in _torch_detectors():
        return "detector"
    if ref in IN_MEMORY:
        return "module"
    p = Path(ref)
    suffix = p.suffix.lower()
    if suffix in (".onnx", ".pt2", *TORCHSCRIPT_SUFFIXES):
        if not p.is_file():
            raise UserError(f"--source {ref}: no such file")
        return "onnx" if suffix == ".onnx" else "pt2" if suffix == ".pt2" else "torchscript"
    if suffix == ".pth" or suffix == ".pkl" or suffix == ".bin":
        raise UserError(
            f"--source {ref}: Photoproof does not unpickle {suffix} files; save the model with torch.export.save "
            "(.pt2), torch.jit.save (.pt) or export it to .onnx, or name a factory package.module:function"
        )
    if _FACTORY.fullmatch(ref):
        return "factory"
    raise UserError(
        f"--source {ref!r}: not a zoo model ({', '.join(ZOO)}), a model file (.onnx, .pt2, TorchScript .pt/.ts) "
        f"or a factory package.module:function"
    )


def _torch_detectors() -> list[str]:
    """The zoo's torch face detectors (``mtcnn``): sources of the vanishing attack (docs/detectors.md)."""
    from contracts.detection import DETECTORS

    return [d.name for d in DETECTORS.values() if d.runtime == "torch"]


def is_face_source(ref: str) -> bool:
    """Whether ``--source ref`` is a face detector: the zoo's ``mtcnn``, or a factory whose module declares the
    detector protocol (:mod:`craft.detectors.userdet`; the factory is called once, its result kept for the load)."""
    kind = source_kind(ref)
    if kind == "detector":
        return True
    if kind != "factory":
        return False
    from craft.detectors.userdet import is_detector
    from craft.loaders import call_factory

    return is_detector(call_factory(ref))


def load_face_source(ref: str) -> FaceSource:
    """The face detector ``--source ref`` names: MTCNN, or the user's, its protocol checked
    (:func:`craft.detectors.userdet.load_user_detector`)."""
    if source_kind(ref) == "detector":
        from craft.detectors.mtcnn import MTCNN

        return MTCNN()
    from craft.detectors.userdet import is_detector, load_user_detector
    from craft.loaders import take_factory

    net = take_factory(ref)
    if not is_detector(net):
        raise UserError(f"--source {ref}: not a face detector; its module must set task = 'face-detector'")
    return load_user_detector(ref, net, state_sha256(net))


def source_name(ref: str) -> str:
    """The name a source goes by in ``batch.json`` (top-5 keys): the zoo name, the file's stem, or the factory."""
    kind = source_kind(ref)
    if kind == "module":
        return IN_MEMORY[ref].name
    return Path(ref).stem if kind in ("onnx", "pt2", "torchscript") else ref


# -- assembling a source model --------------------------------------------------------------------------


class FixedBatch(nn.Module):
    """Run a model exported with a fixed batch size on any batch, in chunks padded with zeros."""

    def __init__(self, net: nn.Module, batch: int) -> None:
        super().__init__()
        self.net, self.batch = net, int(batch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for i in range(0, len(x), self.batch):
            part = x[i : i + self.batch]
            n = len(part)
            if n < self.batch:
                part = torch.cat([part, part.new_zeros((self.batch - n, *part.shape[1:]))])
            outs.append(self.net(part)[:n])
        return torch.cat(outs)


def _labels(raw: Raw, opts: ModelOptions, sidecar_labels: Path | None, n_out: int, where: str) -> tuple[str, ...]:
    if opts.labels is not None:
        names, src = read_label_file(Path(opts.labels)), f"--labels {opts.labels}"
    elif sidecar_labels is not None:
        names, src = read_label_file(sidecar_labels, flag="labels of model.toml"), str(sidecar_labels)
    elif raw.classes is not None:
        names, src = raw.classes, "its metadata"
    elif n_out == 1000:
        names, src = list(imagenet_names()), "ImageNet-1k"
        log.info("%s: 1000 outputs and no labels given; taken as ImageNet-1k", where)
    else:
        raise UserError(
            f"{where}: it outputs {n_out} classes; give --labels FILE with {n_out} class names, one per line"
        )
    if len(names) != n_out:
        raise UserError(
            f"{where}: it outputs {n_out} classes but {src} names {len(names)}; the model and its labels must agree"
        )
    return tuple(names)


def _probe(model: nn.Module, spec: PreprocessSpec, where: str) -> int:
    """Run the model on two grey images; return its number of classes."""
    s = spec.input_size
    x = torch.full((2, 3, s, s), 128.0)
    try:
        with torch.inference_mode():
            y = model(x)
    except Exception as e:
        raise UserError(
            f"{where}: running it on a 2x3x{s}x{s} batch ({spec.layout}) failed ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160]}); check --input-size and the model's input"
        ) from None
    if not isinstance(y, torch.Tensor) or y.ndim != 2 or y.shape[0] != 2:
        shape = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        hint = "" if isinstance(y, torch.Tensor) else "; a face detector's module sets task = 'face-detector'"
        raise UserError(
            f"{where}: not an image classifier: its output for 2 images is {shape}, expected [2, classes]{hint}"
        )
    if y.shape[1] < 2:
        raise UserError(f"{where}: not an image classifier: {y.shape[1]} output class")
    return int(y.shape[1])


def _check_photos(spec: PreprocessSpec) -> list[np.ndarray]:
    from craft.images import load_rgb, sample_photos
    from craft.onnxtorch import CHECK_PHOTOS

    return [spec.resize_center_crop(load_rgb(p)) for p in sample_photos()[:CHECK_PHOTOS]]


def load_source(ref: str, opts: ModelOptions | None = None, device: str = "cpu") -> SourceModel:
    """Load ``ref`` (a zoo name, a model file or a factory) as a :class:`SourceModel` on ``device``."""
    opts = opts or ModelOptions()
    kind = source_kind(ref)
    where = f"--source {ref}"
    if kind == "module":
        sm = IN_MEMORY[ref]
    elif kind == "zoo":
        entry = get_entry(ref)
        module = Normalized(load_net(ref), entry.spec).eval()
        sm = SourceModel(
            ref,
            "zoo",
            ref,
            entry.arch,
            weights_sha256(ref),
            entry.spec,
            imagenet_names(),
            module,
            entry.weights_package,
        )
    else:
        raw = load_pt2(ref, opts.allow_native) if kind == "pt2" else LOADERS[kind](ref)
        side = None
        sc_labels = None
        if kind != "factory":
            sp = sidecar_path(Path(ref))
            if sp is not None:
                side = read_sidecar(sp)
                sc_labels = side.labels
                log.info("%s: read %s", where, sp)
        spec = resolve_spec(raw.meta, raw.shape, opts.overrides, side.overrides if side else None, where=where)
        net = raw.net
        for p in net.parameters():
            p.requires_grad_(False)
        if raw.fixed_batch and raw.fixed_batch > 0:
            net = FixedBatch(net, raw.fixed_batch)
        module = Normalized(net, spec).eval()
        n_out = _probe(module, spec, where)
        classes = _labels(raw, opts, sc_labels, n_out, where)
        sm = SourceModel(source_name(ref), kind, ref, raw.arch, raw.sha256, spec, classes, module, raw.weights_package)
        if kind == "onnx":
            from craft.onnxtorch import check_conversion

            check_conversion(Path(ref), raw.net, spec, _check_photos(spec), where)
    dev = torch.device(device)
    sm.module = sm.module.eval().to(dev)
    if dev.type == "cuda":
        sm.module = sm.module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # nn.Module.to takes it; the stubs omit it
    return sm


def from_module(
    net: nn.Module, spec: PreprocessSpec, classes: Sequence[str] | None = None, name: str = "model", device: str = "cpu"
) -> SourceModel:
    """A :class:`SourceModel` from an ``nn.Module`` in hand (the Python API): ``net`` takes the *normalised* input."""
    net = net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    module = Normalized(net, spec).eval()
    where = f"model {name!r}"
    n_out = _probe(module, spec, where)
    names = tuple(classes) if classes is not None else (imagenet_names() if n_out == 1000 else None)
    if names is None:
        raise UserError(f"{where}: it outputs {n_out} classes; pass classes=[...] with {n_out} names")
    if len(names) != n_out:
        raise UserError(f"{where}: it outputs {n_out} classes but {len(names)} class names were given")
    if classes is not None:
        from contracts.labels import check_unique

        check_unique(list(names), where)
    return SourceModel(
        name, "module", name, type(net).__name__, state_sha256(net), spec, names, module.to(torch.device(device))
    )
