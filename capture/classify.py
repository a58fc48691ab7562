"""Classify tile crops with an ONNX image classifier through onnxruntime.

A model exported by Photoproof carries its preprocessing spec, class names and
name in the ONNX metadata (``photoproof.preprocess``, ``photoproof.classes``,
``photoproof.model``). A foreign ``.onnx`` gets its spec from CLI flags
(:func:`foreign_spec`); its tensor layout (NCHW or NHWC) is read from the input
shape and its class count must match the labels.

Execution providers: TensorRT, then CUDA, when onnxruntime has them and a CUDA
device answers; otherwise the CPU. ``OnnxClassifier.provider`` says which one runs.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from capture.cachedir import private_dir, user_cache_dir
from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.paths import sha256_file
from contracts.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

META_SPEC = "photoproof.preprocess"
META_CLASSES = "photoproof.classes"
META_MODEL = "photoproof.model"
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


# -- providers ---------------------------------------------------------------


def cuda_device_count() -> int:
    """CUDA devices reported by the driver (0 when there is no driver or no device)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return 0
            n = ctypes.c_int(0)
            return n.value if lib.cuDeviceGetCount(ctypes.byref(n)) == 0 else 0
        except AttributeError:
            return 0
    return 0


def _loadable(*names: str) -> bool:
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def default_providers() -> list[str]:
    """TensorRT and CUDA when onnxruntime offers them and a GPU is present, then the CPU."""
    avail = ort.get_available_providers()
    out: list[str] = []
    if (TENSORRT in avail or CUDA in avail) and cuda_device_count() > 0:
        if hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()  # CUDA and cuDNN from the nvidia-* wheels, when installed
            except Exception as e:  # pragma: no cover - depends on the machine
                log.debug("onnxruntime.preload_dlls: %s", e)
        if TENSORRT in avail and _loadable("libnvinfer.so.10", "libnvinfer.so", "nvinfer_10.dll"):
            out.append(TENSORRT)
        if CUDA in avail:
            out.append(CUDA)
    out.append(CPU)
    return out


# -- specs and labels ----------------------------------------------------------


def _triple(values: list[float] | tuple[float, ...] | None, flag: str) -> tuple[float, float, float] | None:
    if values is None:
        return None
    v = [float(x) for x in values]
    if len(v) == 1:
        v = v * 3
    if len(v) != 3:
        raise UserError(f"{flag}: expected 1 or 3 numbers, got {len(v)}")
    return (v[0], v[1], v[2])


def foreign_spec(
    input_size: int | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    scale: float | None = None,
    channel_order: str | None = None,
    resize: str | None = None,
) -> dict[str, Any]:
    """Preprocessing fields from CLI flags, for a foreign ``.onnx`` (only the flags given).

    ``mean``/``std`` are in 0..255 pixel units, or in 0..1 units when every value is
    at most 1 (torchvision's 0.485,0.456,0.406 / 0.229,0.224,0.225). ``scale`` is a
    divisor: ``--scale 255`` feeds pixels/255, ``--scale 1`` raw 0..255. Fields not
    given come from the model's metadata, or for a foreign model: its input shape,
    the ImageNet mean and std (with a warning), RGB and bilinear resizing.
    """
    m, s = _triple(mean, "--mean"), _triple(std, "--std")
    if scale is not None:
        if mean is not None or std is not None:
            raise UserError("--scale: give either --scale or --mean/--std, not both")
        if scale <= 0:
            raise UserError(f"--scale: must be > 0, got {scale}")
        m, s = (0.0, 0.0, 0.0), (float(scale),) * 3  # type: ignore[assignment]
    elif m is not None and s is not None and max(m) <= 1 and max(s) <= 1:
        m = tuple(255.0 * v for v in m)  # type: ignore[assignment]
        s = tuple(255.0 * v for v in s)  # type: ignore[assignment]
    elif (m is None) != (s is None):
        raise UserError("--mean and --std go together (or use --scale)")
    out: dict[str, Any] = {}
    if input_size is not None:
        out["input_size"] = int(input_size)
    if m is not None:
        out["mean"], out["std"] = m, s
    if channel_order is not None:
        if channel_order.upper() not in ("RGB", "BGR"):
            raise UserError(f"--channel-order: RGB or BGR, got {channel_order!r}")
        out["channel_order"] = channel_order.upper()
    if resize is not None:
        out["resize"] = resize
    return out


def load_labels(path: Path) -> list[str]:
    """Class names from a text file (one per line) or a JSON list."""
    if not path.is_file():
        raise UserError(f"--labels {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"--labels {path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    if path.suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise UserError(f"--labels {path}: invalid JSON ({e})") from None
        if not isinstance(names, list):
            raise UserError(f"--labels {path}: expected a JSON list of class names")
        return [str(n) for n in names]
    names = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not names:
        raise UserError(f"--labels {path}: no class names in it")
    return names


# -- the classifier ------------------------------------------------------------


def _static(d: Any) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


class OnnxClassifier:
    """An ONNX image classifier: ``N x S x S x 3`` uint8 RGB crops in, top-5 out.

    Args:
        model_path: the ``.onnx`` file.
        providers: onnxruntime execution providers (default: :func:`default_providers`).
        spec: preprocessing; overrides the model's metadata (required for foreign models
            whose input size is dynamic). A foreign model's NCHW/NHWC comes from its shape.
        class_names: labels; override the metadata (default for foreign models: ImageNet-1k).
        threads: CPU threads for onnxruntime (default: all cores but one, left to the camera loop).
        max_batch: the largest batch sent in one run.
        overrides: spec fields set from CLI flags (see :func:`foreign_spec`), applied on top of
            ``spec``, the metadata or the defaults.

    Raises:
        UserError: naming the file when it is not an ONNX image classifier or its
            class count does not match its labels.
    """

    def __init__(
        self,
        model_path: Path,
        providers: list[str] | None = None,
        spec: PreprocessSpec | None = None,
        class_names: list[str] | None = None,
        *,
        threads: int | None = None,
        max_batch: int = 32,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise UserError(f"--model {model_path}: no such file")
        self.max_batch = max_batch
        self.sha256 = sha256_file(self.path)
        self.threads = threads if threads is not None else max(1, (os.cpu_count() or 2) - 1)
        try:
            probe = ort.InferenceSession(str(self.path), self._options(), providers=[CPU])
        except Exception as e:
            raise UserError(f"--model {model_path}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        meta = probe.get_modelmeta().custom_metadata_map or {}
        self.name = meta.get(META_MODEL) or self.path.stem
        self.spec = self._resolve_spec(probe, meta, spec, overrides or {})
        self._input = probe.get_inputs()[0].name
        self._output = probe.get_outputs()[0].name
        n_out = self._probe_classes(probe)
        self.class_names = self._resolve_classes(meta, class_names, n_out)
        self.n_classes = n_out
        wanted = providers if providers is not None else default_providers()
        self._session = self._gpu_session(wanted) if any(p != CPU for p in wanted) else None
        if self._session is None:
            self._session = probe
        self.provider = self._session.get_providers()[0]
        log.info("model %s (%s): %s, input %s, %d classes, provider %s", self.name, self.path.name, self.spec.layout, self.spec.input_size, n_out, self.provider)

    # -- construction helpers ------------------------------------------------
    def _options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        return so

    def _resolve_spec(
        self, sess: ort.InferenceSession, meta: dict[str, str], spec: PreprocessSpec | None, overrides: dict[str, Any]
    ) -> PreprocessSpec:
        inputs = sess.get_inputs()
        where = f"--model {self.path}"
        if len(inputs) != 1:
            raise UserError(f"{where}: not an image classifier: it takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}), expected one image batch")
        shape = list(inputs[0].shape)
        if len(shape) != 4 or "float" not in inputs[0].type:
            raise UserError(f"{where}: not an image classifier: input {inputs[0].name!r} is {inputs[0].type} of shape {shape}, expected a float [N, 3, S, S] or [N, S, S, 3] batch")
        if shape[1] == 3 and shape[3] != 3:
            layout, dims = "NCHW", (shape[2], shape[3])
        elif shape[3] == 3 and shape[1] != 3:
            layout, dims = "NHWC", (shape[1], shape[2])
        elif shape[1] == 3 and shape[3] == 3:
            layout, dims = "NCHW", (shape[2], shape[3])
        else:
            raise UserError(f"{where}: not an image classifier: input shape {shape} has no channel dimension of 3 (dim 1 for NCHW or last for NHWC)")
        self._dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        self._fixed_batch = _static(shape[0])
        if self._fixed_batch:
            self.max_batch = self._fixed_batch
        static = [_static(d) for d in dims]
        if static[0] and static[1] and static[0] != static[1]:
            raise UserError(f"{where}: input {dims[0]}x{dims[1]} is not square; Photoproof tiles are square")
        if META_SPEC in meta and (spec is not None or overrides):
            log.warning("%s: preprocessing flags override the spec stored in the model", self.path.name)
        if spec is None and META_SPEC in meta:
            try:
                spec = PreprocessSpec.from_json(meta[META_SPEC])
            except UserError as e:  # metadata from outside: name the model it came from
                raise UserError(f"{where}: its metadata {META_SPEC!r}: {e}") from None
        if spec is None:
            size = overrides.get("input_size") or static[0]
            if not size:
                raise UserError(f"{where}: a foreign model with a dynamic input size; give --input-size")
            if not {"mean", "std"} & set(overrides):
                log.warning("%s: no Photoproof metadata; assuming ImageNet mean/std (set --mean/--std or --scale, --channel-order)", self.path.name)
            spec = PreprocessSpec(input_size=int(size), resize="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD, layout=layout)  # type: ignore[arg-type]
        if overrides:
            spec = dataclasses.replace(spec, **overrides)
        if spec.layout != layout:
            log.info("%s: input shape %s is %s; using that layout", self.path.name, shape, layout)
            spec = dataclasses.replace(spec, layout=layout)  # type: ignore[arg-type]
        if static[0] and static[0] != spec.input_size:
            raise UserError(f"{where}: the model takes {static[0]}x{static[0]} images but the preprocessing says {spec.input_size} (--input-size)")
        return spec

    def _probe_classes(self, sess: ort.InferenceSession) -> int:
        where = f"--model {self.path}"
        outs = sess.get_outputs()
        if not outs:
            raise UserError(f"{where}: not an image classifier: it has no outputs")
        o = outs[0]
        if len(o.shape) != 2:
            raise UserError(f"{where}: not an image classifier: output {o.name!r} has shape {list(o.shape)}, expected [N, classes]")
        n = self._fixed_batch or 2
        x = self.spec.normalize(np.full((n, self.spec.input_size, self.spec.input_size, 3), 128, np.uint8)).astype(self._dtype)
        try:
            y = sess.run([o.name], {sess.get_inputs()[0].name: x})[0]
        except Exception as e:
            raise UserError(f"{where}: running it on a {list(x.shape)} batch failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        if y.ndim != 2 or y.shape[0] != n:
            raise UserError(f"{where}: not an image classifier: output {o.name!r} came out {list(y.shape)} for {n} images, expected [{n}, classes]")
        if y.shape[1] < 2:
            raise UserError(f"{where}: not an image classifier: {y.shape[1]} output class")
        return int(y.shape[1])

    def _resolve_classes(self, meta: dict[str, str], names: list[str] | None, n_out: int) -> list[str]:
        source = "--labels"
        if names is None and META_CLASSES in meta:
            try:
                names = [str(n) for n in json.loads(meta[META_CLASSES])]
            except (json.JSONDecodeError, TypeError, RecursionError):
                raise UserError(f"--model {self.path}: the class names in its metadata are not a JSON list") from None
            source = "its metadata"
        if names is None:
            names, source = list(imagenet_names()), "the ImageNet-1k labels"
        if len(names) != n_out:
            raise UserError(
                f"--model {self.path}: it outputs {n_out} classes but {source} name {len(names)}; "
                f"give --labels FILE with {n_out} class names, one per line"
            )
        return names

    def _gpu_session(self, providers: list[str]) -> ort.InferenceSession | None:
        opts: list[Any] = []
        for p in providers:
            if p == TENSORRT:
                s = self.spec.input_size
                dims = f"3x{s}x{s}" if self.spec.layout == "NCHW" else f"{s}x{s}x3"
                opts.append((TENSORRT, {
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(self._cache_dir()),
                    "trt_profile_min_shapes": f"{self._input}:1x{dims}",
                    "trt_profile_opt_shapes": f"{self._input}:{min(16, self.max_batch)}x{dims}",
                    "trt_profile_max_shapes": f"{self._input}:{self.max_batch}x{dims}",
                }))
            else:
                opts.append(p)
        try:
            sess = ort.InferenceSession(str(self.path), self._options(), providers=opts)
            sess.run([self._output], {self._input: self.logits_input(np.zeros((1, self.spec.input_size, self.spec.input_size, 3), np.uint8))})
        except Exception as e:
            log.warning("%s: GPU execution providers failed (%s); using the CPU", self.path.name, str(e).splitlines()[0][:200])
            return None
        if sess.get_providers()[0] == CPU:
            log.warning("%s: no GPU execution provider could start; using the CPU", self.path.name)
        return sess

    def _cache_dir(self) -> Path:
        """Where TensorRT keeps its engines: ``trt-cache/`` beside the model, else a per-user cache folder.

        A cached engine is loaded as code, so the folder must be this user's own and
        writable by nobody else (:func:`private_dir`); a shared, predictable temporary
        folder is never used.
        """
        beside = self.path.parent / "trt-cache"
        for d in (beside, user_cache_dir() / "trt"):
            if private_dir(d):
                return d
        raise UserError(f"--provider tensorrt: no private folder for the engine cache ({beside} and {user_cache_dir()} are not this user's own); use --provider cuda")

    # -- inference -----------------------------------------------------------
    def logits_input(self, crops_rgb: np.ndarray) -> np.ndarray:
        """The model's input tensor for ``N x S x S x 3`` uint8 RGB crops (spec normalisation, model dtype)."""
        return self.spec.normalize(crops_rgb).astype(self._dtype, copy=False)

    def logits(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Raw model outputs ``N x C`` for ``N x S x S x 3`` uint8 RGB crops, in batches of ``max_batch``."""
        s = self.spec.input_size
        if crops_rgb.ndim != 4 or crops_rgb.shape[1:] != (s, s, 3) or crops_rgb.dtype != np.uint8:
            raise ValueError(f"expected N x {s} x {s} x 3 uint8 RGB crops, got {crops_rgb.shape} {crops_rgb.dtype}")
        outs = []
        for i in range(0, len(crops_rgb), self.max_batch):
            x = self.logits_input(crops_rgb[i : i + self.max_batch])
            n = len(x)
            if self._fixed_batch and n < self._fixed_batch:  # a model exported with a fixed batch size
                x = np.concatenate([x, np.zeros((self._fixed_batch - n, *x.shape[1:]), x.dtype)])
            outs.append(self._session.run([self._output], {self._input: x})[0][:n])
        return np.concatenate(outs).astype(np.float64) if outs else np.zeros((0, self.n_classes))

    def classify(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-5 class ids ``N x 5`` (int64) and softmax probabilities ``N x 5`` (float32), best first.

        Outputs that already are probabilities (non-negative rows summing to 1) are
        not passed through softmax again.
        """
        y = self.logits(crops_rgb)
        k = min(5, self.n_classes)
        if len(y) == 0:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        if (y >= 0).all() and np.allclose(y.sum(axis=1), 1.0, atol=1e-3):
            p = y
        else:
            e = np.exp(y - y.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
        idx = np.argpartition(-p, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(p, idx, axis=1), axis=1, kind="stable")
        ids = np.take_along_axis(idx, order, axis=1)
        return ids.astype(np.int64), np.take_along_axis(p, ids, axis=1).astype(np.float32)
