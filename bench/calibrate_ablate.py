"""Where the fitted profile's agreement gap comes from: sessions of the fitted profile with one thing set to the truth.

For runs of ``bench/calibrate_loop.py`` (no ``--truth-seed``: the real camera is the preset's printer, light,
optics and sensor, no ISP and no JPEG of its own, then ``testkit.foreign_isp``), ``capture`` adds sessions to
each run's batch, each at the fitted session's seed (``--seed`` + 4: the same hand-held draws, common random
numbers) unless named otherwise:

- ``real-3``, ``real-4``: the real camera again at seeds + 5 and + 6 (more draws of the camera's own repeat);
- ``t-crn``: the real camera at the fitted session's seed (the whole truth);
- ``fitted-b``, ``fitted-c``: the fitted profile again at seeds + 5 and + 6 (paired with ``real-3`` and ``real-4``);
- ``f-optnoise-b``, ``f-optnoise-c``: ``f-optnoise`` (below) at seeds + 5 and + 6;
- ``f-noise``, ``f-noise-b``, ``f-noise-c``: the fitted profile with the true sensor noise only, seeds + 4, + 5, + 6;
- ``f-frame``: the fitted profile with the true framing (sheet fill, tilt and rotation ranges);
- ``f-optnoise``: ... with the true blur and sensor noise (defocus, motion blur, shot and read noise);
- ``f-light``: ... with the true light (illuminance, colour temperature, gradient, glare, exposure, white balance);
- ``f-isp``: the fitted printer, framing, light, optics and noise with no ISP or JPEG of its own, then the camera's
  own (foreign) ISP;
- ``f-prisp``: as ``f-isp`` with the true printer too (only the framing, light, optics and noise are fitted);
- ``t-fitframe``: the truth with the fitted framing.

``pool`` prints, pooled over the runs, each session's agreement with ``real-1`` minus ``real-2``'s and minus
``fitted``'s, and its clean accuracy minus ``real-1``'s and ``fitted``'s (paired on the tiles ``real-1``, ``real-2``,
``fitted`` and that session all saw); the fitted profile (and the blur and noise variants) against the real camera at
the same seeds; pairs of sessions of one channel; each session's mean agreement with several real sessions against the
camera's own repeat over all their pairs; and how often two observations of a tile in one session agree. 95 %
bootstrap intervals clustered by photo (as ``bench/calibrate_pool.py``). Run (after ``calibrate_loop.py ... --phase
fit``; ``capture`` takes 12-70 s a session, so split it with ``--sessions`` to keep a command short)::

    python bench/calibrate_ablate.py capture /tmp/loop-e16:40 /tmp/loop-e4:50
    python bench/calibrate_ablate.py pool /tmp/loop-e16 /tmp/loop-e4
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.calibrate_loop import finished, tiles  # noqa: E402
from bench.calibrate_pool import Key, _fmt, clustered  # noqa: E402
from capture.session import run_capture  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from contracts.manifest import load_batch  # noqa: E402
from contracts.profile import ChannelProfile, Isp, load_profile  # noqa: E402
from testkit.foreign_isp import ForeignCamera  # noqa: E402

VARIANTS = (
    "real-3",
    "real-4",
    "t-crn",
    "fitted-b",
    "fitted-c",
    "f-optnoise-b",
    "f-optnoise-c",
    "f-noise",
    "f-noise-b",
    "f-noise-c",
    "f-frame",
    "f-optnoise",
    "f-light",
    "f-isp",
    "f-prisp",
    "t-fitframe",
)


def real_camera(preset: str) -> ChannelProfile:
    """The real camera of ``calibrate_loop.py``: the preset without its ISP and JPEG (the foreign ISP follows)."""
    base = load_profile(preset)
    return replace(base, isp=Isp(), camera=replace(base.camera, jpeg_quality=(100.0, 100.0)))


def variants(f: ChannelProfile, r: ChannelProfile, seed: int) -> dict[str, tuple[ChannelProfile, bool, int]]:
    """Session name -> (profile, through the foreign ISP, seed), for fitted profile ``f`` and real camera ``r``."""
    fs, rs, fc, rc = f.scene, r.scene, f.camera, r.camera
    frame = dict(sheet_fill=rs.sheet_fill, tilt_deg=rs.tilt_deg, rotation_deg=rs.rotation_deg)
    fit_frame = dict(sheet_fill=fs.sheet_fill, tilt_deg=fs.tilt_deg, rotation_deg=fs.rotation_deg)
    optnoise = replace(
        fc,
        defocus_sigma_px=rc.defocus_sigma_px,
        motion_blur_px=rc.motion_blur_px,
        shot_noise=rc.shot_noise,
        read_noise=rc.read_noise,
    )
    noise = replace(fc, shot_noise=rc.shot_noise, read_noise=rc.read_noise)
    light = dict(
        illuminance=rs.illuminance, colour_temperature_k=rs.colour_temperature_k, gradient=rs.gradient, glare=rs.glare
    )
    no_isp = replace(f, isp=Isp(), camera=replace(fc, jpeg_quality=(100.0, 100.0)))
    return {
        "real-3": (r, True, seed + 5),
        "real-4": (r, True, seed + 6),
        "t-crn": (r, True, seed + 4),
        "fitted-b": (f, False, seed + 5),
        "fitted-c": (f, False, seed + 6),
        "f-optnoise-b": (replace(f, camera=optnoise), False, seed + 5),
        "f-optnoise-c": (replace(f, camera=optnoise), False, seed + 6),
        "f-noise": (replace(f, camera=noise), False, seed + 4),
        "f-noise-b": (replace(f, camera=noise), False, seed + 5),
        "f-noise-c": (replace(f, camera=noise), False, seed + 6),
        "f-frame": (replace(f, scene=replace(fs, **frame)), False, seed + 4),
        "f-optnoise": (replace(f, camera=optnoise), False, seed + 4),
        "f-light": (
            replace(
                f,
                scene=replace(fs, **light),
                camera=replace(fc, exposure=rc.exposure, white_balance_error=rc.white_balance_error),
            ),
            False,
            seed + 4,
        ),
        "f-isp": (no_isp, True, seed + 4),
        "f-prisp": (replace(no_isp, printer=r.printer), True, seed + 4),
        "t-fitframe": (replace(r, scene=replace(rs, **fit_frame)), True, seed + 4),
    }


def capture(runs: list[str], names: list[str], preset: str, model: str) -> None:
    """Capture the named variant sessions (skipping finished ones) in each ``RUN:SEED``."""
    real = real_camera(preset)
    for arg in runs:
        path, seed = arg.rsplit(":", 1)
        out, work = Path(path), Path(path) / "work"
        fitted = load_profile(str(out / "fitted.toml"))
        frames = 2 * len(SimulatedCamera.from_batch(work, real, n_frames=1).groups)
        for name, (prof, foreign, sd) in variants(fitted, real, int(seed)).items():
            if name not in names or finished(work, name):
                continue
            t0 = time.perf_counter()
            sim = SimulatedCamera.from_batch(work, prof, seed=sd, n_frames=frames)
            cam = ForeignCamera(sim) if foreign else sim
            run_capture(work, out / "onnx" / f"{model}.onnx", cam, frames=frames, session_id=name, save_crops=False)
            print(f"{out.name} {name} seed {sd}: {time.perf_counter() - t0:.0f} s", flush=True)


def load(runs: list[Path], sessions: list[str]) -> tuple[dict[str, dict[Key, int]], dict[Key, int], dict[Key, str]]:
    """Per session present, (run, item, role) -> the tile's top-1; and every key's label and photo."""
    every: dict[str, dict[Key, int]] = {}
    labels: dict[Key, int] = {}
    photo: dict[Key, str] = {}
    for run in runs:
        work = run / "work"
        for it in load_batch(work).items:
            for role in ("clean", "adv"):
                labels[(run.name, it.id, role)] = it.label.index
                photo[(run.name, it.id, role)] = it.source.file
        for s in sessions:
            if finished(work, s):
                every.setdefault(s, {}).update({(run.name, i, r): t for (i, r), t in tiles(work, s).items()})
    return every, labels, photo


def pool(runs: list[Path], names: list[str]) -> None:
    """Paired agreement and clean accuracy of every named session, pooled over ``runs``."""
    wanted = ["real-1", "real-2", "fitted", *[n for n in names if n not in ("real-1", "real-2", "fitted")]]
    every, labels, photo = load(runs, wanted)
    sessions = [s for s in wanted if s in every]
    ref = every["real-1"]
    print(f"{len(runs)} runs; each row paired on the tiles real-1, real-2, fitted and that session all saw (n tiles,")
    print("of which clean); 95 % bootstrap intervals clustered by photo (4,000 resamples), points\n")
    print(
        "| session | n | agreement with real-1 | − real-2 | − fitted | clean acc. | clean − real-1 | clean − fitted |"
    )
    print("|---|---|---|---|---|---|---|---|")
    per_run: dict[str, list[str]] = {r.name: [] for r in runs}
    for s in sessions[1:]:
        keys = set(ref) & set(every["real-2"]) & set(every["fitted"]) & set(every[s])
        clean = [k for k in keys if k[2] == "clean"]

        def same(t: str, k: Key) -> float:
            return float(ref[k] == every[t][k])

        def ok(t: str, k: Key) -> float:
            return float(every[t][k] == labels[k])

        cells = [f"{s} | {len(keys)} ({len(clean)})", f"{100 * sum(same(s, k) for k in keys) / len(keys):.1f} %"]
        for other in ("real-2", "fitted"):
            cells.append("" if s == other else _fmt(*clustered({k: same(s, k) - same(other, k) for k in keys}, photo)))
        cells.append(f"{100 * sum(ok(s, k) for k in clean) / max(len(clean), 1):.1f} %")
        for other in ("real-1", "fitted"):
            cells.append("" if s == other else _fmt(*clustered({k: ok(s, k) - ok(other, k) for k in clean}, photo)))
        print("| " + " | ".join(cells) + " |")
        for r in runs:
            rk = [k for k in keys if k[0] == r.name]
            per_run[r.name].append(f"{100 * sum(same(s, k) for k in rk) / len(rk):.0f}" if rk else "-")
    print("\nper run, agreement with real-1 (%), each on its row's tiles: " + " / ".join(sessions[1:]))
    for r in runs:
        print(f"- {r.name}: " + " / ".join(per_run[r.name]))
    matched(every, labels, photo)
    same_camera(every, labels, photo)
    all_pairs(every, photo, sessions)
    within(runs, sessions)


MATCHED = (("fitted", "t-crn"), ("fitted-b", "real-3"), ("fitted-c", "real-4"))
MATCHED_OPTNOISE = (("f-optnoise", "t-crn"), ("f-optnoise-b", "real-3"), ("f-optnoise-c", "real-4"))
MATCHED_NOISE = (("f-noise", "t-crn"), ("f-noise-b", "real-3"), ("f-noise-c", "real-4"))


def _matched_diff(
    every: dict[str, dict[Key, int]], labels: dict[Key, int], photo: dict[Key, str], pairs: tuple[tuple[str, str], ...]
) -> set[Key]:
    """Print agreement with ``real-1`` and clean accuracy of ``pairs`` (a, b at one seed), a − b averaged over the
    pairs; returns the tiles used."""
    names = [s for pair in pairs for s in pair]
    keys = set(every["real-1"]).intersection(*(set(every[s]) for s in names))
    clean = [k for k in keys if k[2] == "clean"]
    ref, n = every["real-1"], len(pairs)
    agree = {k: sum(float(ref[k] == every[a][k]) - float(ref[k] == every[b][k]) for a, b in pairs) / n for k in keys}
    ok = {
        k: sum(float(every[a][k] == labels[k]) - float(every[b][k] == labels[k]) for a, b in pairs) / n for k in clean
    }
    print(f"\n{' + '.join(a for a, _ in pairs)} minus {' + '.join(b for _, b in pairs)} at the same seeds")
    print(f"({n} seeds, {len(keys)} tiles, {len(clean)} clean):")
    print(f"- agreement with real-1: {_fmt(*clustered(agree, photo))}; clean accuracy: {_fmt(*clustered(ok, photo))}")
    return keys


def matched(every: dict[str, dict[Key, int]], labels: dict[Key, int], photo: dict[Key, str]) -> None:
    """The fitted profile against the real camera at the same seeds (the same hand-held draws), averaged over the
    three seeds: agreement with ``real-1`` and clean accuracy, fitted minus real; the same with the true blur and
    noise, and against the fitted profile."""
    for variant in (MATCHED_OPTNOISE, MATCHED_NOISE):
        if all(s in every for pair in variant for s in pair):
            _matched_diff(every, labels, photo, variant)
            fam = tuple((a, f) for (a, _), (f, _) in zip(variant, MATCHED, strict=True))
            _matched_diff(every, labels, photo, fam)
    if not all(s in every for pair in MATCHED for s in pair):
        return
    keys = _matched_diff(every, labels, photo, MATCHED)
    ref = every["real-1"]
    # how much one session's draw moves the pooled agreement: the camera's four repeats and the profile's three
    keys &= set(every["real-2"])
    for group in (["real-2", "t-crn", "real-3", "real-4"], ["fitted", "fitted-b", "fitted-c"]):
        a = [100 * sum(ref[k] == every[s][k] for k in keys) / len(keys) for s in group]
        print(
            f"- on {len(keys)} tiles, agreement with real-1 of "
            + ", ".join(f"{s} {v:.1f} %" for s, v in zip(group, a, strict=True))
        )
        print(f"  (standard deviation between sessions {np.std(a, ddof=1):.1f} points)")
    rest = {
        k: float(ref[k] == every["real-2"][k]) - sum(float(ref[k] == every[t][k]) for _, t in MATCHED) / 3 for k in keys
    }
    print(f"- real-2 minus the camera's three other sessions: {_fmt(*clustered(rest, photo))}")


def same_camera(every: dict[str, dict[Key, int]], labels: dict[Key, int], photo: dict[Key, str]) -> None:
    """Pairs of sessions of one channel (the camera's four, the fitted profile's three; and the camera with the fitted
    framing against it): agreement with ``real-1`` and clean accuracy, one minus the other, on the tiles ``real-1``
    and both saw."""
    groups = (["real-2", "t-crn", "real-3", "real-4"], ["fitted", "fitted-b", "fitted-c"])
    pairs = [(a, b) for g in groups for i, a in enumerate(g) for b in g[i + 1 :]] + [("t-fitframe", "t-crn")]
    print("\npairs of sessions (agreement with real-1; clean accuracy), points:")
    ref = every["real-1"]
    for a, b in pairs:
        if a not in every or b not in every:
            continue
        keys = set(ref) & set(every[a]) & set(every[b])
        clean = [k for k in keys if k[2] == "clean"]
        ag = {k: float(ref[k] == every[a][k]) - float(ref[k] == every[b][k]) for k in keys}
        ok = {k: float(every[a][k] == labels[k]) - float(every[b][k] == labels[k]) for k in clean}
        print(f"- {a} − {b} ({len(keys)} tiles): {_fmt(*clustered(ag, photo))}; {_fmt(*clustered(ok, photo))}")


def within(runs: list[Path], sessions: list[str]) -> None:
    """Per session, the share of pairs of good observations of one tile with the same top-1 (the verdicts' noise)."""
    print("\nwithin a session, pairs of good observations of one tile with the same top-1:")
    for s in sessions:
        same = pairs = 0
        for run in runs:
            path = run / "work" / "captures" / f"{s}.sqlite"
            if not finished(run / "work", s):
                continue
            con = sqlite3.connect(path)
            rows = con.execute("SELECT item_id, role, top1 FROM observations WHERE good=1").fetchall()
            con.close()
            votes: dict[tuple[str, str], list[int]] = {}
            for item, role, top1 in rows:
                votes.setdefault((item, role), []).append(int(top1))
            for v in votes.values():
                same += sum(a == b for i, a in enumerate(v) for b in v[i + 1 :])
                pairs += len(v) * (len(v) - 1) // 2
        if pairs:
            print(f"- {s}: {100 * same / pairs:.1f} % of {pairs} pairs")


def all_pairs(every: dict[str, dict[Key, int]], photo: dict[Key, str], sessions: list[str]) -> None:
    """Several real sessions as references: each other session's mean agreement with them minus the camera's own
    (the mean over all pairs of them), on the tiles they and that session all saw; once with every real session,
    once without ``real-2`` (the session the profile was fitted to)."""
    for reals in (
        [s for s in sessions if s.startswith("real-")],
        [s for s in sessions if s.startswith("real-") and s != "real-2"],
    ):
        if len(reals) < 3:
            continue
        pairs = [(a, b) for i, a in enumerate(reals) for b in reals[i + 1 :]]
        print(f"\n{', '.join(reals)} as references ({len(pairs)} pairs of real sessions):")
        print("| session | n | agreement with the real sessions | the camera's repeat | difference |")
        print("|---|---|---|---|---|")
        for s in sessions:
            if s.startswith("real-"):
                continue
            keys = sorted(set(every[s]).intersection(*(set(every[r]) for r in reals)))
            cam = {k: sum(every[a][k] == every[b][k] for a, b in pairs) / len(pairs) for k in keys}
            got = {k: sum(every[s][k] == every[r][k] for r in reals) / len(reals) for k in keys}
            d = _fmt(*clustered({k: got[k] - cam[k] for k in keys}, photo))
            g, c = 100 * sum(got.values()) / len(keys), 100 * sum(cam.values()) / len(keys)
            print(f"| {s} | {len(keys)} | {g:.1f} % | {c:.1f} % | {d} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", choices=("capture", "pool"))
    ap.add_argument("runs", nargs="+", help="capture: RUN:SEED (calibrate_loop --out and --seed); pool: RUN")
    ap.add_argument("--sessions", default=",".join(("uncalibrated", *VARIANTS)), help="comma-separated session names")
    ap.add_argument("--preset", default="office-laser-webcam")
    ap.add_argument("--model", default="lite0")
    a = ap.parse_args()
    names = [n for n in a.sessions.split(",") if n]
    if a.phase == "capture":
        capture(a.runs, names, a.preset, a.model)
    else:
        pool([Path(r) for r in a.runs], names)


if __name__ == "__main__":
    main()
