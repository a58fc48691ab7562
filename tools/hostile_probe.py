"""Drive the real CLI with about a hundred bad inputs and faults; print each outcome.

Not a test (it takes minutes): a probe for people, run by hand::

    python tools/hostile_probe.py [NAME-FILTER ...]     # work folder: $PHOTOPROOF_PROBE_DIR or /tmp/photoproof-probe

Each probe copies a small base batch (synthetic, printed, with photos and a tiny
ONNX model), damages one thing, runs ``python app.py ...`` and classifies the
outcome: ``error2`` (one-line error, exit 2), ``ok`` (exit 0, possibly with a
warning), ``TRACEBACK`` or ``rcN``. Disk-full probes run under a real file-size
limit (RLIMIT_FSIZE). docs/reliability.md lists what the outcomes must be.
"""

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
WORK = Path(os.environ.get("PHOTOPROOF_PROBE_DIR", "/tmp/photoproof-probe"))
only = sys.argv[1:]  # run only the probes whose name contains one of these
BASE, RUN = WORK / "base", WORK / "run"


def make_base() -> None:
    """A batch of 3 synthetic items, printed, then given a renderable layout, 3 photos of its sheet and a tiny model."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from printouts.sheets import print_batch
    from testkit.batch import write_batch as make_synthetic_batch
    from testkit.scenes import make_layout, scene, tiny_classifier

    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(parents=True)
    b = BASE / "batch"
    make_synthetic_batch(b, n_items=3, size=64)
    print_batch(b)
    lay = make_layout(b)
    photos = BASE / "photos"
    photos.mkdir()
    for k in range(3):
        sc = scene(b, lay, {lay.sheets[0].sheet_id: dict(tilt_deg=10 * k, fill=0.8)}, seed=k)
        cv2.imwrite(str(photos / f"IMG_{k}.jpg"), sc.frame)
    tiny_classifier(BASE / "tiny.onnx", size=48)


make_base()


def fresh(name):
    d = RUN / name
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(BASE, d, symlinks=True)
    return d


def jmod(path, fn):
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


P = []


def probe(name):
    def deco(f):
        P.append((name, f))
        return f

    return deco


def cap(d, *extra, batch=None):
    return [
        "capture",
        str(batch or d / "batch"),
        "--model",
        str(d / "tiny.onnx"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--no-crops",
        "--min-tile-px",
        "40",
        "--min-sharpness",
        "1",
        *extra,
    ]


# --- manifest
for nm, fn in {
    "label-index-string": lambda d: d["items"][0]["label"].__setitem__("index", "243"),
    "dup-item-ids": lambda d: d["items"][1].__setitem__("id", d["items"][0]["id"]),
    "eps-string": lambda d: d["items"][0].__setitem__("eps", "x"),
    "items-not-list": lambda d: d.__setitem__("items", {"a": 1}),
    "item-null": lambda d: d["items"].__setitem__(0, None),
    "top5-garbage": lambda d: d["items"][0]["clean"].__setitem__("top5", {"lite0": [["a", "b"]]}),
    "top5-not-dict": lambda d: d["items"][0]["clean"].__setitem__("top5", [1, 2]),
    "path-int": lambda d: d["items"][0]["clean"].__setitem__("path", 5),
    "path-escape": lambda d: d["items"][0]["clean"].__setitem__("path", "../../etc/passwd"),
    "models-garbage": lambda d: d.__setitem__("models", [1]),
    "config-list": lambda d: d.__setitem__("config", []),
    "label-bool": lambda d: d["items"][0]["label"].__setitem__("index", True),
    "label-huge": lambda d: d["items"][0]["label"].__setitem__("index", 10**30),
    "label-past-the-set": lambda d: d["items"][0]["label"].__setitem__("index", 5000),
    "no-items": lambda d: d.__setitem__("items", []),
}.items():
    for cmd in ("report", "print"):

        def f(d, fn=fn, cmd=cmd):
            jmod(d / "batch/batch.json", fn)
            return [cmd, str(d / "batch")]

        P.append((f"manifest:{nm}:{cmd}", f))


@probe("manifest:not-utf8:report")
def _(d):
    (d / "batch/batch.json").write_bytes(b"\xff\xfe{")
    return ["report", str(d / "batch")]


@probe("manifest:array:report")
def _(d):
    (d / "batch/batch.json").write_text("[1]")
    return ["report", str(d / "batch")]


# --- layout
for nm, fn in {
    "size-huge": lambda d: d["sheets"][0].__setitem__("size_mm", [1e7, 1e7]),
    "marker-id-str": lambda d: d["sheets"][0]["markers"][0].__setitem__("id", "3"),
    "box-str": lambda d: d["sheets"][0]["tiles"][0].__setitem__("box_mm", ["a", 1, 2, 3]),
    "sheets-null": lambda d: d.__setitem__("sheets", None),
    "marker-size-nan": lambda d: d.__setitem__("marker_size_mm", float("nan")),
    "corners-short": lambda d: d["sheets"][0]["markers"][0].__setitem__("corners_mm", [[0, 0]]),
    "role-bad": lambda d: d["sheets"][0]["tiles"][0].__setitem__("role", "evil"),
}.items():

    def f(d, fn=fn):
        jmod(d / "batch/layout.json", fn)
        return cap(d, "--frames", "2")

    P.append((f"layout:{nm}:capture", f))


@probe("layout:array:capture")
def _(d):
    (d / "batch/layout.json").write_text("[]")
    return cap(d, "--frames", "2")


@probe("layout:size-huge:simulate")
def _(d):
    jmod(d / "batch/layout.json", lambda x: x["sheets"][0].__setitem__("size_mm", [1e6, 1e6]))
    return ["capture", str(d / "batch"), "--model", str(d / "tiny.onnx"), "--simulate", "--frames", "1", "--headless"]


# --- profile
for nm, text in {
    "width-huge": "[camera]\nwidth = 1000000\nheight = 1000000\n",
    "range-str": "[scene]\ntilt_deg = ['a', 'b']\n",
    "section-scalar": "camera = 5\n",
    "nan": "[camera]\nfps = nan\n",
    "fps-zero": "[camera]\nfps = 0\n",
    "dpi-huge": "[printer]\ndpi = 1e9\n",
    "jpeg-neg": "[camera]\njpeg_quality = [-5, 300]\n",
}.items():

    def f(d, text=text, nm=nm):
        (d / f"{nm}.toml").write_text(text)
        return [
            "capture",
            str(d / "batch"),
            "--model",
            str(d / "tiny.onnx"),
            "--simulate",
            "--profile",
            str(d / f"{nm}.toml"),
            "--frames",
            "1",
            "--headless",
        ]

    P.append((f"profile:{nm}:simulate", f))


@probe("profile:not-utf8:simulate")
def _(d):
    (d / "p.toml").write_bytes(b"\xff\xfe[camera]")
    return [
        "capture",
        str(d / "batch"),
        "--model",
        str(d / "tiny.onnx"),
        "--simulate",
        "--profile",
        str(d / "p.toml"),
        "--frames",
        "1",
        "--headless",
    ]


# --- capture db
def mkdb(d, sid="s1"):
    r = subprocess.run(
        [PY, str(ROOT / "app.py"), *cap(d, "--frames", "2", "--session", sid)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return d / "batch/captures" / f"{sid}.sqlite"


for nm, sql in {
    "started-str": "UPDATE sessions SET started='abc'",
    "config-array": "UPDATE sessions SET config='[1,2]'",
    "config-garbage": "UPDATE sessions SET config='{{{'",
    "top5-garbage": "UPDATE observations SET top5_ids='xx'",
    "top5-obj": "UPDATE observations SET top5_ids='{\"a\":1}'",
    "top5-mismatch": "UPDATE observations SET top5_probs='[0.5]'",
    "digital-garbage": "UPDATE digital SET top5_probs='nope'",
    "frame-idx-str": "UPDATE observations SET frame_idx='x'",
    "sharp-str": "UPDATE observations SET sharpness='x'",
    "no-sessions-table": "DROP TABLE sessions",
    "meta-version": "UPDATE meta SET value='99' WHERE key='schema_version'",
    "batch-id-other": "UPDATE sessions SET batch_id='other'",
    "top1-null-probs": "UPDATE observations SET top5_ids='[]', top5_probs='[]'",
    "seed-str": "UPDATE sessions SET seed='abc'",
}.items():
    for cmd in ("report", "resume"):

        def f(d, sql=sql, cmd=cmd):
            db = mkdb(d)
            con = sqlite3.connect(db)
            con.execute(sql)
            con.commit()
            con.close()
            return ["report", str(d / "batch")] if cmd == "report" else cap(d, "--frames", "4", "--session", "s1")

        P.append((f"db:{nm}:{cmd}", f))


@probe("db:garbage-file:report")
def _(d):
    (d / "batch/captures").mkdir()
    (d / "batch/captures/x.sqlite").write_bytes(os.urandom(5000))
    return ["report", str(d / "batch")]


@probe("db:symlink-out:report")
def _(d):
    db = mkdb(d)
    out = d / "outside.sqlite"
    db.rename(out)
    db.symlink_to(out)
    return ["report", str(d / "batch")]


@probe("db:calibrate-garbage")
def _(d):
    db = mkdb(d)
    con = sqlite3.connect(db)
    con.execute("UPDATE sessions SET config='[1]'")
    con.commit()
    con.close()
    return ["calibrate", str(d / "batch"), "--session", "s1", "--out", str(d / "o.toml")]


# --- paths
for ch in ("#", "?", "[red]", "%41"):

    @probe(f"path:{ch}:report+capture")
    def _(d, ch=ch):
        nb = d / f"b{ch}x"
        (d / "batch").rename(nb)
        r = subprocess.run(
            [PY, str(ROOT / "app.py"), *cap(d, "--frames", "2", "--session", "s1", batch=nb)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        return ["report", str(nb)]


@probe("markup:model-name")
def _(d):
    shutil.copy(d / "tiny.onnx", d / "[bold red]evil[red].onnx")
    return [
        "capture",
        str(d / "batch"),
        "--model",
        str(d / "[bold red]evil[red].onnx"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--frames",
        "1",
    ]


@probe("markup:bad-tag-path")
def _(d):
    nb = d / "b[/bold]x"
    nb.mkdir(parents=True)
    (d / "batch").rename(nb / "y")
    return ["print", str(nb / "y")]


@probe("markup:session-missing-brackets")
def _(d):
    return ["report", str(d / "batch"), "--session", "[/nope]"]


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
    return ["capture", str(d / "batch"), "--model", str(d / "tiny.onnx"), "--simulate", "--frames", "1", "--headless"]


@probe("pdf:missing:simulate")
def _(d):
    (d / "batch/sheets.pdf").unlink()
    return ["capture", str(d / "batch"), "--model", str(d / "tiny.onnx"), "--simulate", "--frames", "1", "--headless"]


# --- models
@probe("model:garbage-onnx")
def _(d):
    (d / "g.onnx").write_bytes(b"garbage" * 100)
    return [
        "capture",
        str(d / "batch"),
        "--model",
        str(d / "g.onnx"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--frames",
        "1",
    ]


@probe("model:empty-onnx")
def _(d):
    (d / "g.onnx").write_bytes(b"")
    return [
        "capture",
        str(d / "batch"),
        "--model",
        str(d / "g.onnx"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--frames",
        "1",
    ]


@probe("model:dir-onnx")
def _(d):
    (d / "g.onnx").mkdir()
    return [
        "capture",
        str(d / "batch"),
        "--model",
        str(d / "g.onnx"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--frames",
        "1",
    ]


def _meta_spec_capture(d, edit):
    """A copy of tiny.onnx whose stored preprocessing spec is ``edit(text)``, and a capture command with it."""
    import onnx

    m = onnx.load(str(d / "tiny.onnx"))
    for p in m.metadata_props:
        if p.key == "photoproof.preprocess":
            p.value = edit(p.value)
    onnx.save(m, str(d / "m.onnx"))
    return [
        "capture",
        str(d / "batch"),
        "--model",
        str(d / "m.onnx"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--frames",
        "1",
    ]


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
    return [
        "capture",
        str(d / "batch"),
        "--model",
        str(d / "tiny.onnx"),
        "--labels",
        str(d / "l.txt"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--frames",
        "1",
    ]


# --- disks: full (RLIMIT_FSIZE) for print, report, export
FULL = []


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


def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))


res = {}
for name, f in P:
    if only and not any(o in name for o in only):
        continue
    d = fresh(name.replace(":", "_").replace("/", "_"))
    FULL.clear()
    try:
        argv = f(d)
    except Exception as e:
        print(f"SETUP-FAIL {name}: {e!r}"[:300])
        continue
    t = time.time()
    r = subprocess.run(
        [PY, str(ROOT / "app.py"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit if FULL else None,
    )
    tb = "Traceback" in r.stderr or "Traceback" in r.stdout or "╭─" in r.stderr
    errl = [line for line in r.stderr.strip().splitlines() if line.strip()]
    kind = (
        "TRACEBACK"
        if tb
        else (
            "error2" if r.returncode == 2 and len(errl) == 1 else ("ok" if r.returncode == 0 else f"rc{r.returncode}")
        )
    )
    res[name] = kind
    last = (r.stderr.strip().splitlines() or [""])[-1][:230]
    print(f"{kind:9s} {name:40s} {last}", flush=True)

print(Counter(res.values()), len(res))
json.dump(res, open(WORK / "results.json", "w"), indent=1)
