"""The closed loop of ``bench/calibrate_loop.py`` pooled over several runs: enough tiles to bound "fitted − camera".

Each run (``--out`` of ``calibrate_loop.py``: one printed batch, e.g. FGSM at one ε on the validation
half) has the four sessions ``real-1``, ``real-2``, ``uncalibrated`` and ``fitted``; its ``fitted.toml`` is
fitted to its own ``real-2``. Tiles of all runs are pooled; a photo's tiles (its clean and adversarial tile
in every run) form one cluster of the paired bootstrap, so the interval counts photos, not tiles. Runs whose
sessions share seeds (``calibrate_loop.py --seed``) photograph their clean tiles alike (the same image at the
same place, pose and noise): a clean tile is then counted once, from the first such run.

Per session: the share of tiles with the same top-1 as ``real-1`` (Wilson 95 %), clean accuracy and
adversarial success (top-1 against the item's label). Paired on the tiles every session saw: agreement with
``real-1`` of the fitted profile (and the preset) minus the camera's own (``real-2``); and the fitted
profile's clean accuracy and adversarial success minus the camera's (``real-1`` and ``real-2`` pooled as
the camera), each with a 95 % bootstrap interval clustered by photo.

With runs of ``calibrate_loop.py --repeats K`` (K >= 2), the goal is also judged against every reference:
the camera's repeat is the mean agreement over all pairs of its reference sessions (``real-1``, ``real-3`` ...;
not ``real-2``, which the profile was fitted to), the fitted profile's the mean over each of its sessions
(``fitted``, ``fitted-2`` ...) against each reference, and the preset's likewise; clean accuracy and
adversarial success are the mean over the camera's sessions (``real-*``) and over the fitted profile's. Every
seed differs, so no two sessions share hand-held draws, except the two-session profile's (``calibrate_loop
--pool``: ``pooled``, ``pooled-2`` ...), which share the one-session profile's seeds, so that the two profiles
are compared on the same draws. Each difference gets a second interval that resamples runs (each with
its sessions) and photos independently, the pigeonhole bootstrap for crossed random effects (Owen 2007, "The
pigeonhole bootstrap", Ann. Appl. Stat. 1(2)), because sessions of one camera differ by more than photos alone
explain.

Run::

    python bench/calibrate_pool.py /tmp/loop-e2 /tmp/loop-e4 /tmp/loop-e8 /tmp/loop-e16
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.calibrate_loop import _pct, tiles  # noqa: E402
from contracts.manifest import load_batch  # noqa: E402
from contracts.profile import load_profile  # noqa: E402

SESSIONS = ("real-1", "real-2", "uncalibrated", "fitted")
Key = tuple[str, str, str]  # (run, item, role)


def pooled(runs: list[Path]) -> tuple[dict[str, dict[Key, int]], dict[Key, int], dict[Key, str]]:
    """Per session, (run, item, role) -> top-1; the label and the photo of every key."""
    every: dict[str, dict[Key, int]] = {s: {} for s in SESSIONS}
    labels: dict[Key, int] = {}
    photo: dict[Key, str] = {}
    seen: set[tuple[int, str]] = set()  # (real-1's seed, photo) of the clean tiles counted so far
    for run in runs:
        work = run / "work"
        items = load_batch(work).items
        con = sqlite3.connect(work / "captures" / "real-1.sqlite")
        seed = int(con.execute("SELECT seed FROM sessions").fetchone()[0])
        con.close()
        for name in SESSIONS:
            if not (work / "captures" / f"{name}.sqlite").is_file():
                raise SystemExit(f"{run}: no session {name}; run bench/calibrate_loop.py on it first")
            every[name].update({(run.name, i, r): t for (i, r), t in tiles(work, name).items()})
        for it in items:
            for role in ("clean", "adv"):
                if role == "clean" and (seed, it.source.file) in seen:
                    for name in SESSIONS:
                        every[name].pop((run.name, it.id, role), None)
                    continue
                labels[(run.name, it.id, role)] = it.label.index
                photo[(run.name, it.id, role)] = it.source.file
            seen.add((seed, it.source.file))
    return every, labels, photo


def clustered(
    values: dict[Key, float], photo: dict[Key, str], seed: int = 0, n: int = 4000
) -> tuple[float, float, float]:
    """Mean of per-tile ``values`` and its 95 % bootstrap interval, resampling photos (a photo's tiles together)."""
    photos = sorted({photo[k] for k in values})
    idx = {p: i for i, p in enumerate(photos)}
    s, c = np.zeros(len(photos)), np.zeros(len(photos))
    for k, v in values.items():
        s[idx[photo[k]]] += v
        c[idx[photo[k]]] += 1
    w = np.random.default_rng(seed).multinomial(len(photos), np.full(len(photos), 1.0 / len(photos)), size=n)
    boot = (w @ s) / np.maximum(w @ c, 1)
    lo, hi = np.quantile(boot, (0.025, 0.975))
    return float(s.sum() / c.sum()), float(lo), float(hi)


def crossed(
    values: dict[Key, float], photo: dict[Key, str], seed: int = 0, n: int = 4000
) -> tuple[float, float, float]:
    """Mean of per-tile ``values`` and its 95 % interval by the pigeonhole bootstrap (Owen 2007): runs (``Key[0]``)
    and photos resampled independently, a tile weighted by its run's count times its photo's."""
    runs = sorted({k[0] for k in values})
    photos = sorted({photo[k] for k in values})
    ri, pi = {r: i for i, r in enumerate(runs)}, {p: i for i, p in enumerate(photos)}
    s, c = np.zeros((len(runs), len(photos))), np.zeros((len(runs), len(photos)))
    for k, v in values.items():
        s[ri[k[0]], pi[photo[k]]] += v
        c[ri[k[0]], pi[photo[k]]] += 1
    rng = np.random.default_rng(seed)
    wr = rng.multinomial(len(runs), np.full(len(runs), 1.0 / len(runs)), size=n)
    wp = rng.multinomial(len(photos), np.full(len(photos), 1.0 / len(photos)), size=n)
    num = np.einsum("nr,rp,np->n", wr, s, wp)
    den = np.einsum("nr,rp,np->n", wr, c, wp)
    boot = num[den > 0] / den[den > 0]
    lo, hi = np.quantile(boot, (0.025, 0.975))
    return float(s.sum() / c.sum()), float(lo), float(hi)


def extra_sessions(runs: list[Path]) -> list[str]:
    """The ``real-N`` (N >= 3), ``fitted-N`` and ``pooled[-N]`` sessions that every run has finished
    (``calibrate_loop --repeats``, ``--pool``)."""
    from bench.calibrate_loop import finished

    found: set[str] | None = None
    for run in runs:
        names = {p.stem for p in (run / "work" / "captures").glob("*.sqlite")}
        pattern = r"(real-([3-9]|\d\d+)|fitted-\d+|pooled(-\d+)?)"
        names = {m for m in names if re.fullmatch(pattern, m) and finished(run / "work", m)}
        found = names if found is None else found & names
    return sorted(found or set(), key=lambda m: (m.split("-")[0], int(m.split("-")[1]) if "-" in m else 1))


def references(runs: list[Path], labels: dict[Key, int], photo: dict[Key, str]) -> None:
    """The goal against every reference session (``calibrate_loop --repeats``): agreement, clean accuracy and
    adversarial success of the fitted profile and the preset minus the camera's, with intervals by photo and
    by runs and photos (:func:`crossed`)."""
    extra = extra_sessions(runs)
    every: dict[str, dict[Key, int]] = {}
    for name in ("real-1", "real-2", "uncalibrated", "fitted", *extra):
        every[name] = {}
        for run in runs:
            got = tiles(run / "work", name)
            every[name].update({(run.name, i, r): t for (i, r), t in got.items() if (run.name, i, r) in labels})
    refs = ["real-1", *[m for m in extra if m.startswith("real-")]]
    if len(refs) < 2:
        return
    camera = ["real-1", "real-2", *refs[1:]]
    fits = ["fitted", *[m for m in extra if m.startswith("fitted-")]]
    pools = [m for m in extra if m.startswith("pooled")]
    pairs = [(a, b) for i, a in enumerate(refs) for b in refs[i + 1 :]]
    common = sorted(set.intersection(*(set(t) for t in every.values())))
    n_photos = len({photo[k] for k in common})

    def same(a: str, b: str, k: Key) -> float:
        return float(every[a][k] == every[b][k])

    cam = {k: sum(same(a, b, k) for a, b in pairs) / len(pairs) for k in common}
    fit = {k: sum(same(f, r, k) for f in fits for r in refs) / (len(fits) * len(refs)) for k in common}
    pre = {k: sum(same("uncalibrated", r, k) for r in refs) / len(refs) for k in common}
    pool = {k: sum(same(f, r, k) for f in pools for r in refs) / max(len(pools) * len(refs), 1) for k in common}
    print(f"\nagainst every reference ({', '.join(refs)}; not real-2, the session fitted to),")
    print(f"on the {len(common)} tiles ({n_photos} photos, {len(runs)} runs) every session saw; the camera's repeat")
    print(f"over {len(pairs)} pairs, the fitted profile over {len(fits)} x {len(refs)}, the preset over {len(refs)};")
    print("points, 95 % intervals by photo and by runs and photos (pigeonhole bootstrap):\n")
    print("| agreement | mean | − the camera's repeat, by photo | by runs and photos |")
    print("|---|---|---|---|")
    print(f"| the camera's repeat | {100 * sum(cam.values()) / len(common):.1f} % | | |")
    rows = [("fitted", fit), ("uncalibrated preset", pre)] + ([("pooled (2 sessions)", pool)] if pools else [])
    for name, got in rows:
        d = {k: got[k] - cam[k] for k in common}
        print(f"| {name} | {100 * sum(got.values()) / len(common):.1f} % | {_fmt(*clustered(d, photo))} "
              f"| {_fmt(*crossed(d, photo))} |")  # fmt: skip
    for name, a, b in (("fitted − preset", fit, pre), *([("pooled − fitted", pool, fit)] if pools else [])):
        d = {k: a[k] - b[k] for k in common}
        print(f"| {name} | | {_fmt(*clustered(d, photo))} | {_fmt(*crossed(d, photo))} |")
    if pools:
        print("\nper run, agreement − the camera's repeat (points): " + "; ".join(
            f"{r}: fitted {_run_mean(fit, cam, r):+.1f}, pooled {_run_mean(pool, cam, r):+.1f}" for r in
            sorted({k[0] for k in common})
        ))  # fmt: skip
        for name, got in (("fitted", fit), ("pooled", pool)):
            per = [_run_mean(got, cam, r) for r in sorted({k[0] for k in common})]
            sd = float(np.std(per, ddof=1)) if len(per) > 1 else float("nan")
            print(f"- {name}: standard deviation over runs {sd:.1f} points")
        written(runs)
    print("\n| rate | the camera | fitted | preset | fitted − camera, by photo | by runs and photos |")
    print("|---|---|---|---|---|---|")
    for role, what in (("clean", "clean accuracy"), ("adv", "adversarial success")):
        keys = [k for k in common if k[2] == role]

        def rate(names: list[str], k: Key, clean: bool = role == "clean") -> float:
            return sum(float((every[s][k] == labels[k]) == clean) for s in names) / len(names)

        c = {k: rate(camera, k) for k in keys}
        f = {k: rate(fits, k) for k in keys}
        u = {k: rate(["uncalibrated"], k) for k in keys}
        d = {k: f[k] - c[k] for k in keys}
        means = " | ".join(f"{100 * sum(v.values()) / max(len(keys), 1):.1f} %" for v in (c, f, u))
        print(f"| {what} ({len(keys)} tiles) | {means} | {_fmt(*clustered(d, photo))} | {_fmt(*crossed(d, photo))} |")
        if pools:
            p = {k: rate(pools, k) for k in keys}
            for name, d in (("pooled − camera", {k: p[k] - c[k] for k in keys}),
                            ("pooled − fitted", {k: p[k] - f[k] for k in keys})):  # fmt: skip
                print(f"| {what}, {name}: pooled {100 * sum(p.values()) / max(len(keys), 1):.1f} % | | | | "
                      f"{_fmt(*clustered(d, photo))} | {_fmt(*crossed(d, photo))} |")  # fmt: skip


def written(runs: list[Path]) -> None:
    """The defocus and unsharp mask each run's one-session (``fitted.toml``) and two-session (``pooled.toml``)
    profiles wrote, and the spread of the defocus's centre over the runs."""
    centres: dict[str, list[float]] = {"fitted": [], "pooled": []}
    print("\n| run | fitted: defocus (px), unsharp | pooled: defocus (px), unsharp |\n|---|---|---|")
    for run in runs:
        cells = []
        for name in centres:
            p = load_profile(str(run / f"{name}.toml"))
            lo, hi = p.camera.defocus_sigma_px
            centres[name].append((lo + hi) / 2)
            mask = f"{p.isp.sharpen_amount:g} at {p.isp.sharpen_sigma_px:g} px" if p.isp.sharpen_amount else "0"
            cells.append(f"{lo:.2f}-{hi:.2f}, {mask}")
        print(f"| {run.name} | {cells[0]} | {cells[1]} |")
    for name, c in centres.items():
        print(f"- {name}: defocus centre {np.mean(c):.2f} px, standard deviation over runs {np.std(c, ddof=1):.2f} px")


def _run_mean(got: dict[Key, float], cam: dict[Key, float], run: str) -> float:
    """Points: the mean over run ``run``'s tiles of ``got`` minus the camera's repeat."""
    keys = [k for k in got if k[0] == run]
    return 100 * sum(got[k] - cam[k] for k in keys) / max(len(keys), 1)


def _fmt(m: float, lo: float, hi: float) -> str:
    return f"{100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="calibrate_loop.py --out folders")
    a = ap.parse_args()
    every, labels, photo = pooled(a.runs)
    ref = every["real-1"]
    print(f"{len(a.runs)} runs, {len({photo[k] for k in labels})} photos, {len(labels)} tiles printed\n")
    print("| session | same top-1 as real-1 | clean accuracy | adversarial success |")
    print("|---|---|---|---|")
    for name in SESSIONS:
        got = every[name]
        both = [k for k in ref if k in got]
        clean = [k for k in got if k[2] == "clean"]
        adv = [k for k in got if k[2] == "adv"]
        agree = "(itself)" if name == "real-1" else _pct(sum(ref[k] == got[k] for k in both), len(both))
        ok = sum(got[k] == labels[k] for k in clean)
        fooled = sum(got[k] != labels[k] for k in adv)
        print(f"| {name} | {agree} | {_pct(ok, len(clean))} | {_pct(fooled, len(adv))} |")
    common = set.intersection(*(set(t) for t in every.values()))
    n_photos = len({photo[k] for k in common})
    print(f"\npaired on the {len(common)} tiles ({n_photos} photos) every session saw, bootstrap by photo:")
    same = {s: {k: float(ref[k] == every[s][k]) for k in common} for s in SESSIONS[1:]}
    for a_name, b_name in (("fitted", "real-2"), ("uncalibrated", "real-2"), ("fitted", "uncalibrated")):
        d = {k: same[a_name][k] - same[b_name][k] for k in common}
        m, lo, hi = clustered(d, photo)
        print(f"- agreement with real-1, {a_name} minus {b_name}: {100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    for role, what in (("clean", "clean accuracy"), ("adv", "adversarial success")):
        keys = [k for k in common if k[2] == role]

        def hit(s: str, k: Key, clean: bool = role == "clean") -> float:
            return float((every[s][k] == labels[k]) == clean)

        for other in ("real-1", "real-2", "uncalibrated"):
            d = {k: hit("fitted", k) - hit(other, k) for k in keys}
            m, lo, hi = clustered(d, photo)
            print(f"- {what}, fitted minus {other}: {100 * m:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
                  f"({len(keys)} tiles)")  # fmt: skip
    references(a.runs, labels, photo)


if __name__ == "__main__":
    main()
