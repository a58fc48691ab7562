"""``--model NAME`` or ``--model FILE.onnx`` as the ONNX file that capture and sweep run.

Torch-free: a zoo model is exported (``craft.export``, which needs torch) only when the batch has
no ONNX copy of it yet, so a capture station without torch runs with the ``.onnx`` file it is handed.
"""

from __future__ import annotations

from pathlib import Path

from contracts.batchdir import model_path
from contracts.errors import UserError


def resolve_onnx_model(name_or_path: str, batch_dir: Path | None) -> Path:
    """Turn ``--model lite2`` or ``--model FILE.onnx`` into an ONNX file.

    A zoo name is exported once into ``BATCH/models/<name>.onnx``; that needs
    torch, so a torch-free capture station must be handed the ``.onnx`` file.
    """
    p = Path(name_or_path)
    if p.suffix.lower() in (".pt2", ".pt", ".ts", ".jit", ".torchscript") or (
        ":" in name_or_path and not p.exists() and "/" not in name_or_path
    ):
        raise UserError(
            f"--model {name_or_path}: capture and sweep run ONNX models; run 'photoproof models export {name_or_path} "
            "--out model.onnx' (with its preprocessing flags) and pass model.onnx"
        )
    if p.suffix == ".onnx" or p.exists():
        if not p.is_file():
            raise UserError(f"--model {name_or_path}: no such file")
        return p
    if batch_dir is None:
        raise UserError(f"--model {name_or_path}: give a .onnx file")
    out = model_path(Path(batch_dir), name_or_path)
    if out.is_file():
        return out
    from contracts.detection import DETECTORS

    if name_or_path in DETECTORS:  # a face detector: prepared once from its registry package (onnx, never torch)
        spec = DETECTORS[name_or_path]
        if spec.runtime != "onnx":
            raise UserError(
                f"--model {name_or_path}: a torch detector (the white-box source); give centerface or yunet"
            )
        from craft.detectors.onnxprep import prepare_onnx

        prepare_onnx(spec, out)
        return out
    try:
        from craft import zoo
    except ImportError:
        raise UserError(
            f"--model {name_or_path}: torch is not installed here, so the model cannot be exported; run 'photoproof "
            f"models export {name_or_path} --out {name_or_path}.onnx' on a crafting machine and pass the file"
        ) from None
    zoo.get_entry(name_or_path)  # a clear error for an unknown name
    from craft.export import export_onnx

    export_onnx(name_or_path, out)
    return out
