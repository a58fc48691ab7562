"""Classify tile crops with an ONNX image classifier through onnxruntime.

A model exported by Photoproof carries its preprocessing spec, class names and
name in the ONNX metadata (keys in :mod:`contracts.modelspec`). A foreign
``.onnx`` gets its spec from CLI flags (:func:`contracts.modelspec.spec_overrides`) or a sidecar
``model.toml``, resolved by :func:`contracts.modelspec.resolve_spec`; its tensor
layout (NCHW or NHWC) is read from the input shape and its class count must
match the labels.

Execution providers: TensorRT, then CUDA, when onnxruntime has them and a CUDA
device answers; CoreML on a Mac; otherwise the CPU. ``OnnxClassifier.provider`` says which one runs.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from capture.cachedir import private_dir, user_cache_dir
from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.labels import read_label_file
from contracts.modelspec import (
    META_CLASSES,
    META_MODEL,
    META_SPEC,
    check_fixed_batch,
    layout_of,
    read_sidecar,
    resolve_spec,
    sidecar_path,
)
from contracts.paths import sha256_file
from contracts.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
COREML = "CoreMLExecutionProvider"  # Apple's Neural Engine and GPU, in onnxruntime's macOS wheels


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


def default_providers(available: list[str] | None = None, platform: str = sys.platform) -> list[str]:
    """TensorRT and CUDA when onnxruntime offers them and a GPU is present; CoreML on a Mac whose
    onnxruntime has it; then the CPU. ``available`` defaults to what this onnxruntime offers."""
    avail = ort.get_available_providers() if available is None else available
    out: list[str] = []
    if platform == "darwin" and COREML in avail:
        return [COREML, CPU]
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
        overrides: spec fields set from CLI flags (see :func:`contracts.modelspec.spec_overrides`), applied on top of
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
            raise UserError(
                f"--model {model_path}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            ) from None
        meta = probe.get_modelmeta().custom_metadata_map or {}
        self.name = meta.get(META_MODEL) or self.path.stem
        self.spec = self._resolve_spec(probe, meta, spec, overrides or {})
        self._input = probe.get_inputs()[0].name
        self._output = probe.get_outputs()[0].name
        n_out = self._probe_classes(probe)
        self.class_names = self._resolve_classes(meta, class_names, n_out)
        self.n_classes = n_out
        wanted = providers if providers is not None else default_providers()
        gpu = self._gpu_session(wanted) if any(p != CPU for p in wanted) else None
        self._session = gpu if gpu is not None else probe
        self.provider = self._session.get_providers()[0]
        log.info(
            "model %s (%s): %s, input %s, %d classes, provider %s",
            self.name,
            self.path.name,
            self.spec.layout,
            self.spec.input_size,
            n_out,
            self.provider,
        )

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
            raise UserError(
                f"{where}: not an image classifier: it takes {len(inputs)} inputs "
                f"({', '.join(i.name for i in inputs)}), expected one image batch"
            )
        shape = list(inputs[0].shape)
        if len(shape) != 4 or "float" not in inputs[0].type:
            raise UserError(
                f"{where}: not an image classifier: input {inputs[0].name!r} is {inputs[0].type} of shape {shape}, "
                "expected a float [N, 3, S, S] or [N, S, S, 3] batch"
            )
        layout_of(shape, where)
        self._dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        self._fixed_batch = check_fixed_batch(_static(shape[0]), where)
        if self._fixed_batch:
            self.max_batch = self._fixed_batch
        if META_SPEC in meta and (spec is not None or overrides):
            log.warning("%s: preprocessing flags override the spec stored in the model", self.path.name)
        sc = sidecar_path(self.path)
        side = read_sidecar(sc) if sc is not None else None
        self.sidecar_labels = side.labels if side is not None else None
        base = {META_SPEC: spec.to_json()} if spec is not None else meta
        try:
            return resolve_spec(base, shape, overrides, side.overrides if side else None, where=where)
        except UserError as e:  # metadata from outside: name the model it came from
            if where in str(e):
                raise
            raise UserError(f"{where}: {e}") from None

    def _probe_classes(self, sess: ort.InferenceSession) -> int:
        where = f"--model {self.path}"
        outs = sess.get_outputs()
        if not outs:
            raise UserError(f"{where}: not an image classifier: it has no outputs")
        o = outs[0]
        if len(o.shape) != 2:
            raise UserError(
                f"{where}: not an image classifier: output {o.name!r} has shape {list(o.shape)}, expected [N, classes]"
            )
        n = self._fixed_batch or 2
        x = self.spec.normalize(np.full((n, self.spec.input_size, self.spec.input_size, 3), 128, np.uint8)).astype(
            self._dtype
        )
        try:
            y = sess.run([o.name], {sess.get_inputs()[0].name: x})[0]
        except Exception as e:
            raise UserError(
                f"{where}: running it on a {list(x.shape)} batch failed ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200]})"
            ) from None
        if y.ndim != 2 or y.shape[0] != n:
            raise UserError(
                f"{where}: not an image classifier: output {o.name!r} came out {list(y.shape)} for {n} images, "
                f"expected [{n}, classes]"
            )
        if y.shape[1] < 2:
            raise UserError(f"{where}: not an image classifier: {y.shape[1]} output class")
        return int(y.shape[1])

    def _resolve_classes(self, meta: dict[str, str], names: list[str] | None, n_out: int) -> list[str]:
        source = "--labels"
        if names is None and getattr(self, "sidecar_labels", None) is not None:
            names, source = read_label_file(self.sidecar_labels, flag="labels of model.toml"), str(self.sidecar_labels)  # type: ignore[arg-type]
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
                opts.append(
                    (
                        TENSORRT,
                        {
                            "trt_engine_cache_enable": True,
                            "trt_engine_cache_path": str(self._cache_dir()),
                            "trt_profile_min_shapes": f"{self._input}:1x{dims}",
                            "trt_profile_opt_shapes": f"{self._input}:{min(16, self.max_batch)}x{dims}",
                            "trt_profile_max_shapes": f"{self._input}:{self.max_batch}x{dims}",
                        },
                    )
                )
            else:
                opts.append(p)
        try:
            sess = ort.InferenceSession(str(self.path), self._options(), providers=opts)
            sess.run(
                [self._output],
                {
                    self._input: self.logits_input(
                        np.zeros((1, self.spec.input_size, self.spec.input_size, 3), np.uint8)
                    )
                },
            )
        except Exception as e:
            log.warning(
                "%s: GPU execution providers failed (%s); using the CPU", self.path.name, str(e).splitlines()[0][:200]
            )
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
        raise UserError(
            f"--provider tensorrt: no private folder for the engine cache ({beside} and {user_cache_dir()} are not "
            "this user's own); use --provider cuda"
        )

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
