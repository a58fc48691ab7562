"""Hostile probes of the batch's files: manifest, layout, channel profile, capture database, paths."""

import os
import shutil
import sqlite3
import subprocess

from probekit import PY, ROOT, P, cap, jmod, model_capture, probe, sim_capture

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
    return sim_capture(d)


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
        return sim_capture(d, "--profile", str(d / f"{nm}.toml"))

    P.append((f"profile:{nm}:simulate", f))


@probe("profile:not-utf8:simulate")
def _(d):
    (d / "p.toml").write_bytes(b"\xff\xfe[camera]")
    return sim_capture(d, "--profile", str(d / "p.toml"))


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
    return model_capture(d, d / "[bold red]evil[red].onnx")


@probe("markup:bad-tag-path")
def _(d):
    nb = d / "b[/bold]x"
    nb.mkdir(parents=True)
    (d / "batch").rename(nb / "y")
    return ["print", str(nb / "y")]


@probe("markup:session-missing-brackets")
def _(d):
    return ["report", str(d / "batch"), "--session", "[/nope]"]
