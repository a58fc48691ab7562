"""The loaders behind ``--source``: each reads one kind of model file (or calls a factory).

Each returns a :class:`Raw`: the bare network, its metadata, input shape, sha256
and architecture, which :func:`craft.sources.load_source` turns into a source
model. What is refused, and why nothing is unpickled, is in :mod:`craft.sources`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contracts.errors import UserError
from contracts.modelspec import META_CLASSES, META_MODEL, check_fixed_batch
from contracts.paths import sha256_file


@dataclass
class Raw:
    net: nn.Module
    meta: dict[str, Any]
    shape: Sequence[Any] | None
    sha256: str
    arch: str
    classes: list[str] | None = None
    weights_package: str = ""
    fixed_batch: int | None = None


def _load_onnx(ref: str) -> Raw:
    import onnx

    from craft.onnxtorch import convert_onnx

    path = Path(ref)
    where = f"--source {ref}"
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise UserError(
            f"{where}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
    meta = {p.key: p.value for p in proto.metadata_props}
    inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(inputs) != 1:
        raise UserError(f"{where}: not an image classifier: it takes {len(inputs)} inputs, expected one image batch")
    dims = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in inputs[0].type.tensor_type.shape.dim
    ]
    classes = None
    if META_CLASSES in meta:
        try:
            classes = [str(c) for c in json.loads(meta[META_CLASSES])]
        except (json.JSONDecodeError, TypeError):
            raise UserError(f"{where}: the class names in its metadata are not a JSON list") from None
    fixed = check_fixed_batch(dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None, where)
    return Raw(
        convert_onnx(path, where),
        meta,
        dims,
        sha256_file(path),
        meta.get(META_MODEL, "onnx"),
        classes,
        fixed_batch=fixed,
    )


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

    torch.load = weights_only_load
    _package.pickle = _Refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = real_load
        _package.pickle = real_pickle


_NATIVE = re.compile(r"(^|[/\\])data[/\\]aotinductor[/\\]|\.(so|dll|dylib|pyd|cubin)$", re.IGNORECASE)


def _check_pt2_archive(path: Path, where: str, allow_native: bool = False) -> None:
    """Refuse what would unpickle, and (unless ``allow_native``) compiled AOTInductor artefacts.

    ``torch.export.load`` hands any ``data/aotinductor/`` entry to AOTInductor's
    package loader, which compiles or ``dlopen``s it: native code runs on load.
    """
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                n = info.filename
                if not allow_native and _NATIVE.search(n):
                    raise UserError(
                        f"{where}: holds compiled native code ({n}), which loading would run; Photoproof loads only "
                        f"plain torch.export programs: re-export without AOTInductor, or pass --unsafe-native-code "
                        f"if you trust this file"
                    )
                if (
                    re.search(r"data/constants/(custom_obj_|opaque_obj_)", n)
                    or n.endswith(".pkl")
                    or re.search(r"data/(weights|constants)/[^/]+\.pt$", n)
                ):
                    raise UserError(
                        f"{where}: holds a pickled object ({n}); Photoproof does not unpickle (re-export plain tensors)"
                    )
                if n.endswith(".json") and info.file_size < 50_000_000 and _REFUSE_PICKLE.search(z.read(info)):
                    raise UserError(
                        f"{where}: stores some weights pickled ({n}); Photoproof does not unpickle (re-export plain "
                        "tensors)"
                    )
    except zipfile.BadZipFile:
        raise UserError(
            f"{where}: not a torch.export archive (not a zip file); save it with torch.export.save"
        ) from None


class _Exported(nn.Module):
    """A ``torch.export`` program's module; exported in eval mode, it keeps that mode (``.eval()`` is a no-op)."""

    def __init__(self, gm: nn.Module) -> None:
        super().__init__()
        self.gm = gm

    def train(self, mode: bool = True) -> _Exported:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gm(x)


def load_pt2(ref: str, allow_native: bool = False) -> Raw:
    """A ``torch.export`` program (see the module docstring for what is refused).

    ``allow_native``: load AOTInductor artefacts (compiled code that runs on load) too.
    """
    path = Path(ref)
    where = f"--source {ref}"
    _check_pt2_archive(path, where, allow_native)
    try:
        with _no_unpickling():
            ep = torch.export.load(str(path))
    except UserError:
        raise
    except Exception as e:
        raise UserError(
            f"{where}: torch.export.load failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
    users = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    if len(users) != 1:
        raise UserError(
            f"{where}: not an image classifier: the program takes {len(users)} inputs, expected one image batch"
        )
    val = users[0].meta.get("val")
    shape = [int(d) if isinstance(d, int) else None for d in val.shape] if val is not None else None
    fixed = check_fixed_batch(shape[0] if shape and shape[0] else None, where)
    return Raw(_Exported(ep.module()), {}, shape, sha256_file(path), "pt2", fixed_batch=fixed)


def load_torchscript(ref: str) -> Raw:
    """A TorchScript archive (``torch.jit.save``)."""
    path = Path(ref)
    where = f"--source {ref}"
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{where}: not a TorchScript archive; Photoproof does not unpickle .pt files: save the model with "
            "torch.jit.save (or use .pt2/.onnx)"
        )
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise UserError(
            f"{where}: not a TorchScript archive ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            f"save it with torch.jit.save, or use .pt2 or .onnx"
        ) from None
    return Raw(net, {}, None, sha256_file(path), "torchscript")


def state_sha256(net: nn.Module) -> str:
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


@contextlib.contextmanager
def _contained(where: str, doing: str) -> Iterator[None]:
    """Run the user's code with ``sys.exit`` and ``breakpoint()`` turned into one-line errors.

    A factory that exits would end Photoproof with its status (0: a silent "success"
    with nothing written); one that calls ``breakpoint()`` would stop at a debugger prompt.
    """

    def no_debugger(*_a: Any, **_k: Any) -> None:
        raise UserError(f"{where}: {doing} called breakpoint(); remove it from the code")

    old_hook = sys.breakpointhook
    sys.breakpointhook = no_debugger
    try:
        yield
    except SystemExit as e:
        raise UserError(
            f"{where}: {doing} called sys.exit({e.code!r}); a factory must return an nn.Module, not exit"
        ) from None
    finally:
        sys.breakpointhook = old_hook


_CALLED: dict[str, Any] = {}  # a factory's result, called once to see what it is and kept for the load that follows


def call_factory(ref: str) -> Any:
    """Import ``package.module`` (from the current folder or the installed packages) and call ``factory()``; the
    result is kept until :func:`take_factory` takes it, so one run calls the user's code once."""
    if ref in _CALLED:
        return _CALLED[ref]
    mod_name, func_name = ref.split(":", 1)
    where = f"--source {ref}"
    added = str(Path.cwd())
    sys.path.insert(0, added)
    try:
        with _contained(where, f"importing {mod_name!r}"):
            module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise UserError(
            f"{where}: cannot import {mod_name!r} ({e}); is the package installed, or its folder the current one?"
        ) from None
    except UserError:
        raise
    except Exception as e:
        raise UserError(
            f"{where}: importing {mod_name!r} raised {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}"
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(added)
    obj: Any = module
    for part in func_name.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
            from contracts.labels import nearest

            near = nearest(part, names)
            raise UserError(
                f"{where}: {mod_name!r} has no {func_name!r}" + (f"; did you mean {', '.join(near)}?" if near else "")
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{where}: {func_name!r} is not callable; name a function that returns an nn.Module")
    try:
        with _contained(where, f"calling {func_name}()"):
            net = obj()
    except UserError:
        raise
    except Exception as e:
        raise UserError(
            f"{where}: calling {func_name}() raised {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}"
        ) from None
    if not isinstance(net, nn.Module):
        raise UserError(
            f"{where}: {func_name}() returned {type(net).__name__}, not a torch nn.Module (a classifier, or a face "
            "detector with task = 'face-detector': docs/detectors.md)"
        )
    _CALLED[ref] = net
    return net


def take_factory(ref: str) -> nn.Module:
    """The factory's result (:func:`call_factory`), no longer kept: a later load calls the factory afresh."""
    net: nn.Module = call_factory(ref)
    _CALLED.pop(ref, None)
    return net


def load_factory(ref: str) -> Raw:
    """A classifier from a factory (:func:`call_factory`)."""
    net = take_factory(ref)
    spec = _timm_spec(net)
    return Raw(net, {"spec": spec} if spec else {}, None, state_sha256(net), type(net).__name__)


LOADERS: dict[str, Callable[[str], Raw]] = {
    "onnx": _load_onnx,
    "pt2": load_pt2,
    "torchscript": load_torchscript,
    "factory": load_factory,
}
