"""Source models of any kind, by what ``--source`` names: a small registry of loaders.

=============================  ===========  ================================================
``--source``                   kind         how it is loaded
=============================  ===========  ================================================
``lite0``                      zoo          :mod:`craft.zoo` (weights ``torch.load(weights_only=True)``)
``FILE.onnx``                  onnx         converted to torch by onnx2torch, checked against onnxruntime
``FILE.pt2``                   pt2          ``torch.export.load`` with unpickling refused
``FILE.pt`` / ``.ts`` / ``.jit``   torchscript  ``torch.jit.load``
``package.module:factory``     factory      imports the module and calls ``factory()`` — *runs your code*
=============================  ===========  ================================================

Nothing is unpickled. ``torch.jit.load`` reads a TorchScript archive with
TorchScript's own restricted unpickler, which builds only tensors and
TorchScript types and cannot call Python; the model's code is TorchScript,
which can call only registered torch operators. ``torch.export.load`` *can*
unpickle (tensor subclasses, opaque constants, legacy archives, and a fallback
to ``weights_only=False``), so :func:`load_pt2` refuses archives whose payload
configs ask for pickle and runs the load with ``torch.load`` held to
``weights_only=True`` and ``pickle.loads`` refused.

Each loaded model's preprocessing comes from :func:`contracts.modelspec.resolve_spec`
(flags > ``model.toml`` > the model's metadata > defaults from its input shape),
its class names from ``--labels``, ``model.toml``, its metadata, or ImageNet-1k
when it has 1000 outputs; a model whose output size differs from its label
set is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.labels import read_label_file
from contracts.manifest import ModelRecord
from contracts.modelspec import META_CLASSES, META_MODEL, read_sidecar, resolve_spec, sidecar_path
from contracts.paths import sha256_file
from contracts.preprocess import PreprocessSpec
from craft.zoo import ZOO, Normalized, get_entry, load_net, weights_sha256

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

    def key(self) -> str:
        return json.dumps([self.overrides, self.labels], sort_keys=True)


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
        return ModelRecord(self.name, self.arch, role, self.sha256, self.weights_package, self.spec.to_dict(), self.kind, self.ref)


# Models handed over in Python (``photoproof.craft(net, ...)``), by their reference ``python:<name>``.
IN_MEMORY: dict[str, "SourceModel"] = {}


def register_module(sm: "SourceModel") -> str:
    """Make an in-memory source model reachable as ``--source python:<name>`` in this process; return that reference."""
    ref = f"python:{sm.name}"
    IN_MEMORY[ref] = sm
    return ref


def source_kind(ref: str) -> str:
    """Which loader takes ``ref`` (module docstring); a one-line error for anything else."""
    if ref in ZOO:
        return "zoo"
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
            f"--source {ref}: Photoproof does not unpickle {suffix} files; save the model with torch.export.save (.pt2), "
            f"torch.jit.save (.pt) or export it to .onnx, or name a factory package.module:function"
        )
    if _FACTORY.fullmatch(ref):
        return "factory"
    raise UserError(
        f"--source {ref!r}: not a zoo model ({', '.join(ZOO)}), a model file (.onnx, .pt2, TorchScript .pt/.ts) "
        f"or a factory package.module:function"
    )


def source_name(ref: str) -> str:
    """The name a source goes by in ``batch.json`` (top-5 keys): the zoo name, the file's stem, or the factory."""
    kind = source_kind(ref)
    if kind == "module":
        return IN_MEMORY[ref].name
    return Path(ref).stem if kind in ("onnx", "pt2", "torchscript") else ref


# -- loaders: each returns the bare network, its metadata, input shape, sha256 and arch ---------------------


@dataclass
class _Raw:
    net: nn.Module
    meta: dict[str, Any]
    shape: Sequence[Any] | None
    sha256: str
    arch: str
    classes: list[str] | None = None
    weights_package: str = ""
    fixed_batch: int | None = None


def _load_onnx(ref: str) -> _Raw:
    import onnx

    from craft.onnxtorch import convert_onnx

    path = Path(ref)
    where = f"--source {ref}"
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise UserError(f"{where}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(inputs) != 1:
        raise UserError(f"{where}: not an image classifier: it takes {len(inputs)} inputs, expected one image batch")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in inputs[0].type.tensor_type.shape.dim]
    classes = None
    if META_CLASSES in meta:
        try:
            classes = [str(c) for c in json.loads(meta[META_CLASSES])]
        except (json.JSONDecodeError, TypeError):
            raise UserError(f"{where}: the class names in its metadata are not a JSON list") from None
    fixed = dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None
    return _Raw(convert_onnx(path, where), meta, dims, sha256_file(path), meta.get(META_MODEL, "onnx"), classes, fixed_batch=fixed)


_REFUSE_PICKLE = re.compile(rb'"use_pickle"\s*:\s*true')


@contextlib.contextmanager
def _no_unpickling() -> Iterator[None]:
    """Hold ``torch.load`` to ``weights_only=True`` and refuse ``pickle.loads`` inside torch.export's loader."""
    from torch.export.pt2_archive import _package

    real_load, real_pickle = torch.load, _package.pickle

    def weights_only_load(f: Any, *a: Any, **k: Any) -> Any:
        k["weights_only"] = True
        return real_load(f, *a, **k)

    class _Refuse:
        @staticmethod
        def loads(*_a: Any, **_k: Any) -> Any:
            raise UserError("the .pt2 file holds a pickled object; Photoproof does not unpickle")

    torch.load = weights_only_load  # type: ignore[assignment]
    _package.pickle = _Refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = real_load
        _package.pickle = real_pickle


def _check_pt2_archive(path: Path, where: str) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                n = info.filename
                if re.search(r"data/constants/(custom_obj_|opaque_obj_)", n) or n.endswith(".pkl") or re.search(r"data/(weights|constants)/[^/]+\.pt$", n):
                    raise UserError(f"{where}: holds a pickled object ({n}); Photoproof does not unpickle (re-export plain tensors)")
                if n.endswith(".json") and info.file_size < 50_000_000 and _REFUSE_PICKLE.search(z.read(info)):
                    raise UserError(f"{where}: stores some weights pickled ({n}); Photoproof does not unpickle (re-export plain tensors)")
    except zipfile.BadZipFile:
        raise UserError(f"{where}: not a torch.export archive (not a zip file); save it with torch.export.save") from None


class _Exported(nn.Module):
    """A ``torch.export`` program's module; exported in eval mode, it keeps that mode (``.eval()`` is a no-op)."""

    def __init__(self, gm: nn.Module) -> None:
        super().__init__()
        self.gm = gm

    def train(self, mode: bool = True) -> "_Exported":
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gm(x)


def load_pt2(ref: str) -> _Raw:
    """A ``torch.export`` program (see the module docstring for what is refused)."""
    path = Path(ref)
    where = f"--source {ref}"
    _check_pt2_archive(path, where)
    try:
        with _no_unpickling():
            ep = torch.export.load(str(path))
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{where}: torch.export.load failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    users = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    if len(users) != 1:
        raise UserError(f"{where}: not an image classifier: the program takes {len(users)} inputs, expected one image batch")
    val = users[0].meta.get("val")
    shape = [int(d) if isinstance(d, int) else None for d in val.shape] if val is not None else None
    fixed = shape[0] if shape and shape[0] else None
    return _Raw(_Exported(ep.module()), {}, shape, sha256_file(path), "pt2", fixed_batch=fixed)


def load_torchscript(ref: str) -> _Raw:
    """A TorchScript archive (``torch.jit.save``)."""
    path = Path(ref)
    where = f"--source {ref}"
    if not zipfile.is_zipfile(path):
        raise UserError(f"{where}: not a TorchScript archive; Photoproof does not unpickle .pt files: save the model with torch.jit.save (or use .pt2/.onnx)")
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise UserError(
            f"{where}: not a TorchScript archive ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            f"save it with torch.jit.save, or use .pt2 or .onnx"
        ) from None
    return _Raw(net, {}, None, sha256_file(path), "torchscript")


def _state_sha256(net: nn.Module) -> str:
    """sha256 over the module's state dict (names, shapes, dtypes, bytes), in key order."""
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _timm_spec(net: nn.Module) -> dict[str, Any]:
    """A timm model's ``pretrained_cfg`` as spec fields (its mean/std are in 0..1 units)."""
    cfg = getattr(net, "pretrained_cfg", None) or getattr(net, "default_cfg", None)
    if not isinstance(cfg, dict):
        return {}
    out: dict[str, Any] = {}
    size = cfg.get("input_size")
    if isinstance(size, (list, tuple)) and len(size) == 3 and size[1] == size[2]:
        out["input_size"] = int(size[1])
    if cfg.get("mean") and cfg.get("std"):
        out["mean"] = [255.0 * float(v) for v in cfg["mean"]]
        out["std"] = [255.0 * float(v) for v in cfg["std"]]
    if cfg.get("interpolation") in ("bicubic", "bilinear", "nearest"):
        out["resize"] = cfg["interpolation"]
    if isinstance(cfg.get("crop_pct"), (int, float)) and 0.05 <= cfg["crop_pct"] <= 1:
        out["crop_pct"] = float(cfg["crop_pct"])
    if cfg.get("crop_mode") == "squash":
        out["crop"] = "squash"
    return out


def load_factory(ref: str) -> _Raw:
    """Import ``package.module`` (from the current folder or the installed packages) and call ``factory()``."""
    mod_name, func_name = ref.split(":", 1)
    where = f"--source {ref}"
    added = str(Path.cwd())
    sys.path.insert(0, added)
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise UserError(f"{where}: cannot import {mod_name!r} ({e}); is the package installed, or its folder the current one?") from None
    except Exception as e:
        raise UserError(f"{where}: importing {mod_name!r} raised {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(added)
    obj: Any = module
    for part in func_name.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
            from contracts.labels import nearest

            near = nearest(part, names)
            raise UserError(f"{where}: {mod_name!r} has no {func_name!r}" + (f"; did you mean {', '.join(near)}?" if near else ""))
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{where}: {func_name!r} is not callable; name a function that returns an nn.Module")
    try:
        net = obj()
    except Exception as e:
        raise UserError(f"{where}: calling {func_name}() raised {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}") from None
    if not isinstance(net, nn.Module):
        raise UserError(f"{where}: {func_name}() returned {type(net).__name__}, not a torch nn.Module")
    spec = _timm_spec(net)
    return _Raw(net, {"spec": spec} if spec else {}, None, _state_sha256(net), type(net).__name__)


LOADERS: dict[str, Callable[[str], _Raw]] = {
    "onnx": _load_onnx,
    "pt2": load_pt2,
    "torchscript": load_torchscript,
    "factory": load_factory,
}


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


def _labels(raw: _Raw, opts: ModelOptions, sidecar_labels: Path | None, n_out: int, where: str) -> tuple[str, ...]:
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
        raise UserError(f"{where}: it outputs {n_out} classes; give --labels FILE with {n_out} class names, one per line")
    if len(names) != n_out:
        raise UserError(f"{where}: it outputs {n_out} classes but {src} names {len(names)}; the model and its labels must agree")
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
            f"{where}: running it on a 2x3x{s}x{s} batch ({spec.layout}) failed ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            f"check --input-size and the model's input"
        ) from None
    if not isinstance(y, torch.Tensor) or y.ndim != 2 or y.shape[0] != 2:
        shape = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise UserError(f"{where}: not an image classifier: its output for 2 images is {shape}, expected [2, classes]")
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
        sm = SourceModel(ref, "zoo", ref, entry.arch, weights_sha256(ref), entry.spec, imagenet_names(), module, entry.weights_package)
    else:
        raw = LOADERS[kind](ref)
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
        sm.module = sm.module.to(memory_format=torch.channels_last)
    return sm


def from_module(net: nn.Module, spec: PreprocessSpec, classes: Sequence[str] | None = None, name: str = "model", device: str = "cpu") -> SourceModel:
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
    return SourceModel(name, "module", name, type(net).__name__, _state_sha256(net), spec, names, module.to(torch.device(device)))
