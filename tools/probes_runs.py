"""Hostile probes of runs: photos, simulate and PDF, models, full disks, options and frames (issue 24)."""

import json
import shutil
import sys

from probekit import FULL, ROOT, cap, model_capture, probe, sim_capture


# --- photos
def _craft_one_photo(d, labels_csv: bytes):
    """``craft`` on one 64x64 photo whose ``labels.csv`` holds ``labels_csv``."""
    from PIL import Image

    im = d / "imgs"
    im.mkdir()
    Image.new("RGB", (64, 64), (90, 20, 20)).save(im / "a.png")
    (im / "labels.csv").write_bytes(labels_csv)
    return ["craft", "--out", str(d / "nb"), "--images", str(im), "--limit", "1", "--eps", "4", "--attack", "fgsm"]


@probe("photos:all-garbage")
def _(d):
    for p in (d / "photos").iterdir():
        p.write_bytes(b"garbage")
    return cap(d, "--frames", "2")


@probe("photos:labels-not-utf8:craft")
def _(d):
    return _craft_one_photo(d, b"file,label\na.png,caf\xe9\n")


@probe("photos:label-superscript:craft")
def _(d):
    return _craft_one_photo(d, "file,label\na.png,²\n".encode())


@probe("photos:gray16:craft")
def _(d):
    import numpy as np
    from PIL import Image

    im = d / "imgs"
    im.mkdir()
    Image.fromarray((np.random.default_rng(0).integers(0, 65535, (64, 64))).astype(np.uint16)).save(im / "a.png")
    return ["craft", "--out", str(d / "nb"), "--images", str(im), "--limit", "1", "--eps", "4", "--attack", "fgsm"]


@probe("photos:bomb:craft")
def _(d):
    sys.path.insert(0, str(ROOT))
    from testkit.capture import png_bomb

    im = d / "imgs"
    im.mkdir()
    png_bomb(im / "a.png", 20000, 20000)
    return ["craft", "--out", str(d / "nb"), "--images", str(im), "--limit", "1", "--eps", "4", "--attack", "fgsm"]


# --- simulate / pdf
@probe("pdf:corrupt:simulate")
def _(d):
    (d / "batch/sheets.pdf").write_bytes(b"%PDF-1.4 garbage")
    return sim_capture(d)


@probe("pdf:missing:simulate")
def _(d):
    (d / "batch/sheets.pdf").unlink()
    return sim_capture(d)


# --- models
@probe("model:garbage-onnx")
def _(d):
    (d / "g.onnx").write_bytes(b"garbage" * 100)
    return model_capture(d, d / "g.onnx")


@probe("model:empty-onnx")
def _(d):
    (d / "g.onnx").write_bytes(b"")
    return model_capture(d, d / "g.onnx")


@probe("model:dir-onnx")
def _(d):
    (d / "g.onnx").mkdir()
    return model_capture(d, d / "g.onnx")


def _meta_spec_capture(d, edit):
    """A copy of tiny.onnx whose stored preprocessing spec is ``edit(text)``, and a capture command with it."""
    import onnx

    m = onnx.load(str(d / "tiny.onnx"))
    for p in m.metadata_props:
        if p.key == "photoproof.preprocess":
            p.value = edit(p.value)
    onnx.save(m, str(d / "m.onnx"))
    return model_capture(d, d / "m.onnx")


@probe("model:bad-meta-spec")
def _(d):
    return _meta_spec_capture(d, lambda v: '{"input_size": "big"}')


@probe("model:meta-spec-notjson")
def _(d):
    return _meta_spec_capture(d, lambda v: "{{{")


@probe("model:meta-size-huge")
def _(d):
    return _meta_spec_capture(d, lambda v: json.dumps({**json.loads(v), "input_size": 10**6}))


@probe("model:labels-not-utf8")
def _(d):
    (d / "l.txt").write_bytes(b"\xff\n" * 1000)
    return model_capture(d, d / "tiny.onnx", "--labels", str(d / "l.txt"))


# --- disks: full (RLIMIT_FSIZE, probekit.FULL) for print, report, export


@probe("full:print")
def _(d):
    FULL.append(1)
    return ["print", str(d / "batch")]


@probe("full:report")
def _(d):
    FULL.append(1)
    return ["report", str(d / "batch")]


@probe("full:capture")
def _(d):
    FULL.append(1)
    return cap(d, "--frames", "200", "--loop")


@probe("full:export")
def _(d):
    FULL.append(1)
    return ["models", "export", "lite0", "--out", str(d / "x.onnx")]


@probe("full:craft")
def _(d):
    FULL.append(1)
    return ["craft", "--out", str(d / "nb"), "--limit", "2", "--eps", "4", "--attack", "fgsm"]


@probe("readonly:craft-out-is-file")
def _(d):
    (d / "nb").write_text("x")
    return ["craft", "--out", str(d / "nb"), "--limit", "1", "--eps", "4", "--attack", "fgsm"]


@probe("readonly:report-is-file")
def _(d):
    (d / "batch/report").write_text("x")
    return ["report", str(d / "batch")]


@probe("readonly:captures-is-file")
def _(d):
    (d / "batch/captures").write_text("x")
    return cap(d, "--frames", "1")


@probe("readonly:print-pdf-is-dir")
def _(d):
    (d / "batch/sheets.pdf").unlink()
    (d / "batch/sheets.pdf").mkdir()
    return ["print", str(d / "batch")]


@probe("readonly:export-out-is-dir")
def _(d):
    (d / "x.onnx").mkdir()
    return ["models", "export", "lite0", "--out", str(d / "x.onnx")]


# --- second pass (issue 24): models, options and frames
def _craft_tiny(d, *extra):
    return ["craft", "--out", str(d / "nb"), "--source", str(d / "tiny.onnx"), "--limit", "1", "--eps", "4", *extra]


@probe("labels-csv:duplicate:craft")
def _(d):
    return _craft_one_photo(d, b"file,label\na.png,1\na.png,2\n")


@probe("mean:nan:craft")
def _(d):
    return _craft_tiny(d, "--mean", "nan,0,0", "--std", "1,1,1")


@probe("std:negative:export")
def _(d):
    return ["models", "export", str(d / "tiny.onnx"), "--mean", "0", "--std", "-1", "--out", str(d / "x.onnx")]


@probe("model-toml:labels-escape:export")
def _(d):
    m = d / "m"
    m.mkdir()
    shutil.copy(d / "tiny.onnx", m / "tiny.onnx")
    (d / "secret.txt").write_text("a\n")
    (m / "model.toml").write_text('labels = "../secret.txt"\n')
    return ["models", "export", str(m / "tiny.onnx"), "--out", str(d / "x.onnx")]


def _fixed_batch(d, n):
    import onnx

    m = onnx.load(str(d / "tiny.onnx"))
    dim = m.graph.input[0].type.tensor_type.shape.dim[0]
    dim.ClearField("dim_param")
    dim.dim_value = n
    onnx.save(m, str(d / "fixed.onnx"))
    return d / "fixed.onnx"


@probe("onnx:fixed-batch-2e6:export")
def _(d):
    return ["models", "export", str(_fixed_batch(d, 2_000_000)), "--out", str(d / "x.onnx")]


@probe("onnx:fixed-batch-2e6:capture")
def _(d):
    args = cap(d, "--frames", "2")
    args[args.index("--model") + 1] = str(_fixed_batch(d, 2_000_000))
    return args


@probe("onnx:fixed-batch-2:capture")
def _(d):
    args = cap(d, "--frames", "3")
    args[args.index("--model") + 1] = str(_fixed_batch(d, 2))
    return args


@probe("craft:eot-samples-1e5")
def _(d):
    return _craft_tiny(d, "--attack", "fgsm+eot", "--eot-samples", "100000", "--batch-size", "1")


@probe("craft:patch-area-1e-9")
def _(d):
    return _craft_tiny(d, "--attack", "patch", "--patch-area", "1e-9", "--steps", "2", "--limit", "2")


@probe("scene:1x1-frames")
def _(d):
    import cv2
    import numpy as np

    ph = d / "tiny-frames"
    ph.mkdir()
    for k in range(2):
        cv2.imwrite(str(ph / f"p{k}.png"), np.full((1, 1, 3), 100 * k, np.uint8))
    return ["capture", str(d / "batch"), "--scene", "--photos", str(ph), "--model", str(d / "tiny.onnx"), "--headless"]
